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
pub mod blacklist;
pub mod calls;
pub mod clock;
pub mod configure;
mod error;
pub mod extensions;
pub mod import;
pub mod mailboxes;
pub mod policy;
pub mod random;
pub mod security;
pub mod settings;
pub mod tls;
pub mod validate;
pub mod views;

pub use error::{Error, Result};

use pbxguard_store::Store;
use std::path::Path;

/// The data directory used when none is given.
pub const DEFAULT_DATA: &str = "pbxguard-data";

/// Security events kept in the store: at most this many, and none older than 30 days.
pub const EVENTS_KEPT: i64 = 100_000;
pub const EVENTS_MAX_AGE_MS: i64 = 30 * 86_400_000;

/// Opens the database in `data`, creating the directory (mode 0700) and fixing the computed defaults on
/// first use so that every later command sees the same realm, and the default admin account.
pub fn open_store(data: &Path) -> Result<Store> {
    if !data.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(data).map_err(|e| Error::Io(format!("creating data directory {}: {e}", data.display())))?;
    }
    let path = data.join("pbxguard.db");
    let store = Store::open(&path).map_err(|e| Error::Io(format!("opening database {}: {e}", path.display())))?;
    settings::initialise(&store)?;
    admins::ensure_default(&store)?;
    Ok(store)
}

/// Appends security events with the store's retention.
pub(crate) fn log_events(store: &mut Store, rows: &[pbxguard_store::EventRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    store.append_events(rows, EVENTS_KEPT, EVENTS_MAX_AGE_MS, clock::now_ms() as i64)?;
    Ok(())
}
