//! One daemon per data directory: `run` holds an exclusive lock on `<data>/pbxguard.lock` for its whole
//! life, and writes its PID there. Two daemons on one database would split bans between them and the
//! second would delete the first one's `listen.json` on exit. The kernel drops the lock when the
//! process ends, however it ends, so a crash never leaves a stale lock behind.

use anyhow::{Result, bail};
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "pbxguard.lock";

/// Held while the daemon runs; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DataLock {
    _file: File,
}

/// Takes the data directory's lock, or says which process holds it.
pub(crate) fn acquire(data: &Path) -> Result<DataLock> {
    let path = data.join(LOCK_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&path).map_err(|e| anyhow::anyhow!("opening the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.parse::<u32>().is_ok() { format!("PID {pid}") } else { "another process".into() };
            bail!(
                "another pbxguard daemon ({who}) is already running on the data directory {}; \
                 stop it first, or give this one its own --data DIR",
                data.display()
            );
        }
        Err(TryLockError::Error(e)) => bail!("locking {}: {e}", path.display()),
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(DataLock { _file: file })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("pbxguard-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = super::acquire(&dir).unwrap();
        let e = super::acquire(&dir).unwrap_err().to_string();
        assert!(e.contains(&format!("PID {}", std::process::id())), "{e}");
        drop(first);
        super::acquire(&dir).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
