//! Backup and restore of the database: everything pbxguard keeps (extensions and their HA1 hashes,
//! settings, bans, trunks, registrations, events) is in the one SQLite file. Keys and certificates in
//! the data directory are not in it: `nonce.key` is regenerated harmlessly (phones simply get a new
//! challenge) and TLS files belong with the operator's own certificate management.
//!
//! A backup is online: it is one read transaction, so a running daemon keeps answering and writing,
//! and the copy is the database as it was at one instant. A restore is offline: it refuses while a
//! daemon holds the data directory's lock, and holds that lock itself until it is done.

use crate::{DB_FILE, Error, Result, conflict, invalid, not_found};
use pbxguard_store::DatabaseInfo;
use std::fs::{File, TryLockError};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The daemon's lock file inside a data directory (`pbxguard run` holds it, with its PID inside).
pub const LOCK_FILE: &str = "pbxguard.lock";

/// What a backup or a restore produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The file written: the backup, or the restored database.
    pub path: PathBuf,
    /// The schema version of what was copied (the restored database is brought up to this build's).
    pub schema: i64,
    pub extensions: i64,
    pub registrations: i64,
    pub bytes: u64,
    /// Where a database that was replaced (`restore --force`) was moved to.
    pub replaced: Option<PathBuf>,
}

/// Writes a consistent copy of the database in `data` to `out` (mode 0600: it holds HA1 and admin
/// password hashes). Refuses an `out` that exists; a failed backup leaves no file behind.
pub fn backup(data: &Path, out: &Path) -> Result<Summary> {
    let store = crate::open_existing(data)?;
    if out.exists() || out.is_symlink() {
        return Err(conflict!("{} already exists: choose a new file name, or remove it first", out.display()));
    }
    // Written beside its final name and renamed: an interrupted backup never looks like a finished one.
    let partial = with_suffix(out, ".partial");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(&partial).map_err(|e| Error::Io(format!("creating {}: {e}", partial.display())))?;
    let done = store
        .backup_into(&partial)
        .map_err(|e| Error::Io(format!("writing the backup {}: {e}", partial.display())))
        .and_then(|()| {
            std::fs::rename(&partial, out).map_err(|e| Error::Io(format!("renaming to {}: {e}", out.display())))
        });
    if let Err(e) = done {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let info = inspect(out)?;
    Ok(summary(out, &info, None))
}

/// Checks that `file` is a pbxguard database this build can use: an SQLite file with pbxguard's tables,
/// intact, at a schema version no newer than this build's.
pub fn inspect(file: &Path) -> Result<DatabaseInfo> {
    let not_ours = || invalid!("{} is not a pbxguard database (or is damaged); nothing was changed", file.display());
    if !file.exists() {
        return Err(not_found!("no backup file at {}", file.display()));
    }
    if !file.is_file() {
        return Err(invalid!("{} is not a file: give the backup file `pbxguard backup` wrote", file.display()));
    }
    let mut head = [0u8; 16];
    let n = File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| Error::Io(format!("reading {}: {e}", file.display())))?;
    if n < head.len() || &head != crate::SQLITE_MAGIC {
        return Err(not_ours());
    }
    let info = pbxguard_store::inspect(file).map_err(|_| not_ours())?.ok_or_else(not_ours)?;
    let known = pbxguard_store::schema_version();
    if info.schema > known {
        return Err(invalid!(
            "{} was written by a newer pbxguard (database schema {}, this one knows up to {known}); \
             restore it with that version or a newer one: migrations only go forward",
            file.display(),
            info.schema
        ));
    }
    Ok(info)
}

/// Puts the backup `file` in place as the database of `data` (created, mode 0700, if missing), then
/// opens it, which brings an older schema up to date. Refuses while a daemon runs on `data`, and when
/// `data` already holds a database unless `force` (that one is then kept beside it, renamed).
pub fn restore(data: &Path, file: &Path, force: bool) -> Result<Summary> {
    let info = inspect(file)?;
    if data.exists() && !data.is_dir() {
        return Err(invalid!("--data {} is not a directory", data.display()));
    }
    if !data.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(data).map_err(|e| Error::Io(format!("creating data directory {}: {e}", data.display())))?;
    }
    // Held to the end: a daemon started meanwhile waits for nothing, it refuses, like a second daemon.
    let _lock = lock(data)?;
    let db = data.join(DB_FILE);
    let replaced = if db.exists() {
        if !force {
            return Err(conflict!(
                "{} already holds a database: restore into a new data directory (--data DIR), or add --force \
                 to replace it (the current one is kept as {DB_FILE}.before-restore-TIME)",
                data.display()
            ));
        }
        let aside = data.join(format!("{DB_FILE}.before-restore-{}", crate::clock::now_secs()));
        for side in ["", "-wal", "-shm"] {
            let (from, to) = (with_suffix(&db, side), with_suffix(&aside, side));
            if from.exists() {
                std::fs::rename(&from, &to).map_err(|e| Error::Io(format!("moving {} aside: {e}", from.display())))?;
            }
        }
        Some(aside)
    } else {
        // Side files without a database would be applied to the restored one by SQLite.
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&db, side));
        }
        None
    };
    let tmp = with_suffix(&db, ".restoring");
    let _ = std::fs::remove_file(&tmp);
    crate::secure_file(&tmp)?;
    std::fs::copy(file, &tmp).map_err(|e| Error::Io(format!("copying {}: {e}", file.display())))?;
    std::fs::rename(&tmp, &db).map_err(|e| Error::Io(format!("renaming to {}: {e}", db.display())))?;
    // Migrates an older backup forward and tightens modes, as for any database.
    drop(crate::open_in(data)?);
    Ok(summary(&db, &info, replaced))
}

/// Takes the data directory's lock, or says which daemon holds it.
fn lock(data: &Path) -> Result<File> {
    let path = data.join(LOCK_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&path).map_err(|e| Error::Io(format!("opening the lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let who = pid
                .trim()
                .parse::<u32>()
                .map_or("a pbxguard daemon".to_owned(), |p| format!("a pbxguard daemon (PID {p})"));
            Err(conflict!(
                "{who} is running on {}; stop it first (systemctl stop pbxguard), then restore",
                data.display()
            ))
        }
        Err(TryLockError::Error(e)) => Err(Error::Io(format!("locking {}: {e}", path.display()))),
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn summary(path: &Path, info: &DatabaseInfo, replaced: Option<PathBuf>) -> Summary {
    Summary {
        path: path.to_owned(),
        schema: info.schema,
        extensions: info.extensions,
        registrations: info.registrations,
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        replaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pbxguard-backup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn backup_then_restore_into_a_new_directory_keeps_extensions_and_file_modes() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (dir("a"), dir("b"));
        let store = crate::open_store(&a).unwrap();
        let new = crate::extensions::NewExtension {
            number: "1001".into(),
            secret: crate::extensions::Secret::Generate,
            algorithms: None,
            acl: None,
            cos: None,
        };
        crate::extensions::add(&store, new).unwrap();
        drop(store);
        let file = a.join("copy.db");
        let s = backup(&a, &file).unwrap();
        assert_eq!((s.extensions, s.schema), (1, pbxguard_store::schema_version()));
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let e = backup(&a, &file).unwrap_err().to_string();
        assert!(e.contains("already exists"), "an existing file is never overwritten: {e}");
        let r = restore(&b, &file, false).unwrap();
        assert_eq!(r.extensions, 1);
        assert_eq!(std::fs::metadata(b.join(DB_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        // A data directory that holds a database needs --force, and keeps the old one beside.
        let e = restore(&b, &file, false).unwrap_err().to_string();
        assert!(e.contains("--force"), "{e}");
        let r = restore(&b, &file, true).unwrap();
        assert!(r.replaced.unwrap().exists());
        let _ = std::fs::remove_dir_all(a);
        let _ = std::fs::remove_dir_all(b);
    }

    #[test]
    fn restore_refuses_what_is_not_a_pbxguard_database_without_echoing_it() {
        let d = dir("bad");
        std::fs::create_dir_all(&d).unwrap();
        let text = d.join("notes.txt");
        std::fs::write(&text, "root:secret-line-of-some-file\n").unwrap();
        let e = restore(&d.join("data"), &text, false).unwrap_err().to_string();
        assert!(e.contains("is not a pbxguard database") && !e.contains("secret-line"), "{e}");
        assert!(!d.join("data").exists(), "a refused restore creates nothing");
        let e = restore(&d.join("data"), &d.join("missing.db"), false).unwrap_err().to_string();
        assert!(e.contains("no backup file at"), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }
}
