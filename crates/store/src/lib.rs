//! The embedded store: one SQLite database (WAL) in the data directory, its schema and migrations, and
//! typed repositories for what pbxguard keeps: settings, extensions (credentials as HA1 only) and
//! registrations. It knows nothing about SIP or sockets; callers pass plain values and `now`.
//!
//! Several processes share the file (the daemon and the CLI); SQLite's locking and `busy_timeout`
//! serialise writers, and [`Store::data_version`] lets the daemon notice another process's commit.

mod accounts;
mod bindings;
mod blacklists;
mod calls;
mod changes;
mod extensions;
mod migrations;
mod security;
mod settings;

pub use accounts::{Admin, Mailbox};
pub use bindings::Binding;
pub use blacklists::BlacklistInfo;
pub use calls::{CallRow, CosRow, DidRow, RouteRow, TrunkRow};
pub use changes::{Change, Topic};
pub use extensions::{Credentials, Extension};
pub use security::{AclRow, BanOp, BanRow, EventRow};

use rusqlite::Connection;
use std::path::Path;
use thiserror::Error;

/// Store errors, worded for the operator.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("extension {0} already exists")]
    ExtensionExists(String),
    #[error("extension {0} does not exist")]
    NoSuchExtension(String),
    #[error("{0}")]
    InUse(String),
    #[error("database schema version {found} is newer than this pbxguard understands ({known}); upgrade pbxguard")]
    SchemaTooNew { found: i64, known: i64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection to the database. Not `Sync`: each thread or process opens its own.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self { conn };
        migrations::run(&mut store.conn)?;
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::run(&mut conn)?;
        Ok(Self { conn })
    }

    /// Changes whenever another connection commits (SQLite `PRAGMA data_version`).
    pub fn data_version(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Bumped by every change to extensions or settings (triggers), but not by registrations: what a
    /// running daemon must reload.
    pub fn config_revision(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT n FROM revision WHERE id = 1", [], |r| r.get(0))?)
    }

    /// Starts a transaction spanning several repository calls (an import); end it with [`Store::commit`]
    /// or [`Store::rollback`]. Calls that open their own transaction cannot be used inside.
    pub fn begin(&self) -> Result<()> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    pub fn commit(&self) -> Result<()> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    pub fn rollback(&self) -> Result<()> {
        Ok(self.conn.execute_batch("ROLLBACK")?)
    }
}
