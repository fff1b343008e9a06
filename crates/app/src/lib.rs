//! The application layer of pbxguard: every operation an operator can perform, written once as a typed
//! function that validates its input, changes the store and returns a typed result or a typed
//! [`Error`]. The CLI parses arguments and prints what comes back; the daemon and the HTTP API call the
//! same functions, so a rule lives in one place whichever door the operator uses.
//!
//! It also builds the runtime views the daemon hands to the sans-IO services (directory, dial plan,
//! trusted networks, ACL groups) from what is stored. Nothing here opens a socket, starts a runtime,
//! prints or resolves a name: where an operation needs the network (a trunk's DNS name, a blacklist
//! URL) the caller passes it in.

pub mod admins;
pub mod audit;
pub mod backup;
pub mod blacklist;
pub mod calls;
pub mod certs;
pub mod clock;
pub mod configure;
mod error;
pub mod extensions;
pub mod firewall;
pub mod import;
pub mod mailboxes;
pub mod policy;
pub mod random;
pub mod reports;
pub mod security;
pub mod settings;
pub mod ssh;
pub mod tls;
pub mod tokens;
pub mod validate;
pub mod views;

pub use error::{Error, Result};

use pbxguard_store::{Backend, Store};
use std::path::Path;

/// The data directory used when none is given.
pub const DEFAULT_DATA: &str = "pbxguard-data";

/// Security events kept in the store: at most this many, and none older than 30 days.
pub const EVENTS_KEPT: i64 = 100_000;
pub const EVENTS_MAX_AGE_MS: i64 = 30 * 86_400_000;

/// Opens the database in `data`, creating the directory (mode 0700) if it is missing: for the daemon
/// (`pbxguard run`), the one command that may create a data directory. Fixes the computed defaults on
/// first use so that every later command sees the same realm, and the default admin account.
pub fn open_store(data: &Path) -> Result<Store> {
    if !data.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(data).map_err(|e| Error::Io(format!("creating data directory {}: {e}", data.display())))?;
    }
    open_in(data)
}

/// Opens the database in an existing data directory: for every command but `run`, so that a mistyped
/// `--data` (or a command run in the wrong directory) says so instead of creating an empty one.
pub fn open_existing(data: &Path) -> Result<Store> {
    if !data.exists() {
        let shown = std::path::absolute(data).unwrap_or_else(|_| data.to_owned());
        return Err(not_found!(
            "no data directory at {}: start the daemon once with `pbxguard run` to create it, or point at yours with `--data DIR`",
            shown.display()
        ));
    }
    open_in(data)
}

/// The database file's name inside a data directory.
pub const DB_FILE: &str = "pbxguard.db";

/// SQLite's file header: anything else is not a database, and its content is not shown.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn open_in(data: &Path) -> Result<Store> {
    if !data.is_dir() {
        return Err(invalid!(
            "--data {} is not a directory: give the data directory, not a file in it",
            data.display()
        ));
    }
    let path = data.join(DB_FILE);
    let not_ours = || {
        invalid!(
            "{} is not a pbxguard database; move it away, or point --data at your pbxguard data directory",
            path.display()
        )
    };
    if path.is_dir() {
        return Err(not_ours());
    }
    // Created 0600 before SQLite sees it: it holds HA1 hashes (password-equivalent for digest) and
    // admin password hashes, whatever the umask or the directory's mode. SQLite gives its -wal and
    // -shm files the database's mode; older databases and their side files are tightened here too.
    // Never through a file descriptor of our own once the file exists: closing any descriptor of a
    // file drops every POSIX lock this process holds on it, SQLite's included, and another process
    // then rebuilds the -shm under the daemon's other connections (SIGBUS).
    if !path.exists() {
        create_private(&path)?;
    }
    tighten(&path)?;
    let store = Store::open(&path).map_err(|e| match e.to_string() {
        m if m.contains("not a database") => not_ours(),
        m => Error::Io(format!("opening database {}: {m}", path.display())),
    })?;
    for side in ["-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(side);
        let p = std::path::PathBuf::from(p);
        if p.exists() {
            tighten(&p)?;
        }
    }
    settings::initialise(&store)?;
    admins::ensure_default(&store)?;
    Ok(store)
}

/// Creates `path` with mode 0600 (nothing has it open yet).
fn create_private(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map(drop).map_err(|e| Error::Io(format!("creating {}: {e}", path.display())))
}

/// Creates `path` 0600 if missing, else takes group and other access away: for files no connection of
/// this process has open.
pub(crate) fn secure_file(path: &Path) -> Result<()> {
    if !path.exists() {
        create_private(path)?;
    }
    tighten(path)
}

/// Takes group and other access away, by path (chmod), never through a descriptor: see `open_in`.
fn tighten(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let io = |e: std::io::Error| Error::Io(format!("securing {}: {e}", path.display()));
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)).map_err(io)?;
        }
    }
    Ok(())
}

/// Appends security events with the store's retention.
pub(crate) fn log_events(store: &mut dyn Backend, rows: &[pbxguard_store::EventRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    store.append_events(rows, EVENTS_KEPT, EVENTS_MAX_AGE_MS, clock::now_ms() as i64)?;
    Ok(())
}
