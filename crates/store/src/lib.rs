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
mod firewall;
mod migrations;
mod reports;
mod security;
mod settings;
mod tokens;

pub use accounts::{AccountsRepo, Admin, Mailbox};
pub use bindings::{Binding, RegistrationsRepo};
pub use blacklists::{BlacklistInfo, BlacklistsRepo};
pub use calls::{CallRow, CallsRepo, CosRow, DidRow, RouteRow, TrunkRow};
pub use changes::{Change, ChangeFeed, ChangesRepo, SqliteFeed, Topic, Wake};
pub use extensions::{Credentials, Extension, ExtensionFilter, ExtensionsRepo};
pub use firewall::{ApplyRow, ApplyState, FirewallRepo, FirewallServiceRow};
pub use reports::{EventQuery, ReportsRepo};
pub use security::{AclRow, BanOp, BanRow, EventRow, SecurityRepo};
pub use settings::SettingsRepo;
pub use tokens::{TokenRow, TokensRepo};

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

    /// Writes a consistent copy of the whole database to `path` (SQLite `VACUUM INTO`: one read
    /// transaction, so other processes keep writing meanwhile and the copy is a single point in time).
    /// `path` must not exist, or be an empty file (whose mode the copy keeps).
    pub fn backup_into(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| StoreError::Sqlite(rusqlite::Error::InvalidPath(path.to_owned())))?;
        self.conn.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }
}

/// Transactions spanning several repository calls (an import, a batch of call records).
pub trait TransactionsRepo {
    /// Starts a transaction; end it with [`TransactionsRepo::commit`] or [`TransactionsRepo::rollback`].
    /// Calls that open their own transaction cannot be used inside.
    fn begin(&self) -> Result<()>;
    fn commit(&self) -> Result<()>;
    fn rollback(&self) -> Result<()>;
}

impl TransactionsRepo for Store {
    fn begin(&self) -> Result<()> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&self) -> Result<()> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&self) -> Result<()> {
        Ok(self.conn.execute_batch("ROLLBACK")?)
    }
}

/// Everything the application layer and the daemon ask of a database, area by area: the interface a
/// second backend (PostgreSQL, for several nodes) implements. [`Store`] is the SQLite one; what only
/// SQLite can do (open a file, `VACUUM INTO` a backup, `EXPLAIN QUERY PLAN`) stays on it. Methods take
/// plain values and `now`, so a backend never reads the clock.
pub trait Backend:
    AccountsRepo
    + BlacklistsRepo
    + CallsRepo
    + ChangesRepo
    + ExtensionsRepo
    + FirewallRepo
    + RegistrationsRepo
    + ReportsRepo
    + SecurityRepo
    + SettingsRepo
    + TokensRepo
    + TransactionsRepo
{
}

impl<T> Backend for T where
    T: AccountsRepo
        + BlacklistsRepo
        + CallsRepo
        + ChangesRepo
        + ExtensionsRepo
        + FirewallRepo
        + RegistrationsRepo
        + ReportsRepo
        + SecurityRepo
        + SettingsRepo
        + TokensRepo
        + TransactionsRepo
        + ?Sized
{
}

/// `use pbxguard_store::prelude::*;` brings every repository's methods into scope (anonymously: the
/// trait names stay out of the caller's namespace).
pub mod prelude {
    pub use crate::TransactionsRepo as _;
    pub use crate::accounts::AccountsRepo as _;
    pub use crate::bindings::RegistrationsRepo as _;
    pub use crate::blacklists::BlacklistsRepo as _;
    pub use crate::calls::CallsRepo as _;
    pub use crate::changes::ChangesRepo as _;
    pub use crate::extensions::ExtensionsRepo as _;
    pub use crate::firewall::FirewallRepo as _;
    pub use crate::reports::ReportsRepo as _;
    pub use crate::security::SecurityRepo as _;
    pub use crate::settings::SettingsRepo as _;
    pub use crate::tokens::TokensRepo as _;
}

/// The schema version this build creates and understands (migrations are forward-only).
pub fn schema_version() -> i64 {
    migrations::known()
}

/// What a database file holds, read without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// `PRAGMA user_version`: how many migrations it has.
    pub schema: i64,
    pub extensions: i64,
    pub registrations: i64,
}

/// Reads a database file read-only (a backup about to be restored): its schema version and a few
/// counts. `Ok(None)` when the file is an SQLite database but not a pbxguard one (no schema version or
/// no `settings`/`extensions` tables) or fails SQLite's integrity check.
pub fn inspect(path: &Path) -> Result<Option<DatabaseInfo>> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let schema: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('settings', 'extensions', 'bindings')",
        [],
        |r| r.get(0),
    )?;
    if schema < 1 || tables != 3 {
        return Ok(None);
    }
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Ok(None);
    }
    let count = |t: &str| conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0));
    Ok(Some(DatabaseInfo { schema, extensions: count("extensions")?, registrations: count("bindings")? }))
}
