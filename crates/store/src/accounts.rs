//! Voicemail mailboxes and admin accounts. Hashing is the caller's (PINs and passwords arrive as
//! PHC strings); this module only stores and reads.

use crate::{ExtensionsRepo as _, Result, Store, StoreError};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub extension: String,
    #[serde(skip)]
    pub pin_hash: String,
    /// The PIN was set to the extension number: at first login the owner must choose a new PIN, and
    /// record a name and a greeting where forced.
    pub must_initialise: bool,
    pub force_name: bool,
    pub force_greeting: bool,
    pub name_recorded: bool,
    pub greeting_recorded: bool,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    pub name: String,
    #[serde(skip)]
    pub hash: String,
    pub must_change: bool,
    pub updated_at: i64,
}

/// Voicemail mailboxes and admin accounts.
pub trait AccountsRepo {
    fn put_mailbox(&self, m: &Mailbox) -> Result<()>;

    fn mailbox(&self, extension: &str) -> Result<Option<Mailbox>>;

    fn mailboxes(&self) -> Result<Vec<Mailbox>>;

    /// Creates the account unless it exists; returns whether it was created.
    fn ensure_admin(&self, name: &str, hash: &str, must_change: bool, now: i64) -> Result<bool>;

    fn admin(&self, name: &str) -> Result<Option<Admin>>;

    fn admins(&self) -> Result<Vec<Admin>>;

    /// Deletes the account unless it is the last one (checked in the same statement, so two
    /// concurrent deletions cannot leave none); returns whether it was deleted.
    fn delete_admin(&self, name: &str) -> Result<bool>;

    fn set_admin_password(&self, name: &str, hash: &str, now: i64) -> Result<bool>;

    /// Mailboxes in extension order from `offset`, at most `limit`; `text` keeps those whose
    /// extension contains it.
    fn mailboxes_page(&self, text: Option<&str>, offset: u64, limit: u64) -> Result<Vec<Mailbox>>;

    fn mailboxes_matching(&self, text: Option<&str>) -> Result<u64>;
}

impl AccountsRepo for Store {
    fn put_mailbox(&self, m: &Mailbox) -> Result<()> {
        if self.extension(&m.extension)?.is_none() {
            return Err(StoreError::NoSuchExtension(m.extension.clone()));
        }
        self.conn.execute(
            "INSERT INTO mailboxes(extension, pin_hash, must_initialise, force_name, force_greeting, name_recorded, greeting_recorded, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(extension) DO UPDATE SET pin_hash = excluded.pin_hash, must_initialise = excluded.must_initialise,
               force_name = excluded.force_name, force_greeting = excluded.force_greeting, updated_at = excluded.updated_at",
            params![m.extension, m.pin_hash, m.must_initialise, m.force_name, m.force_greeting, m.name_recorded, m.greeting_recorded, m.updated_at],
        )?;
        Ok(())
    }

    fn mailbox(&self, extension: &str) -> Result<Option<Mailbox>> {
        Ok(self.mailboxes_where("WHERE extension = ?1", [extension])?.pop())
    }

    fn mailboxes(&self) -> Result<Vec<Mailbox>> {
        self.mailboxes_where("ORDER BY extension", [])
    }

    fn ensure_admin(&self, name: &str, hash: &str, must_change: bool, now: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO admins(name, hash, must_change, updated_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, hash, must_change, now],
        )? > 0)
    }

    fn admin(&self, name: &str) -> Result<Option<Admin>> {
        Ok(self
            .conn
            .query_row("SELECT name, hash, must_change, updated_at FROM admins WHERE name = ?1", [name], |r| {
                Ok(Admin { name: r.get(0)?, hash: r.get(1)?, must_change: r.get(2)?, updated_at: r.get(3)? })
            })
            .optional()?)
    }

    fn admins(&self) -> Result<Vec<Admin>> {
        let mut st = self.conn.prepare("SELECT name, hash, must_change, updated_at FROM admins ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(Admin { name: r.get(0)?, hash: r.get(1)?, must_change: r.get(2)?, updated_at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_admin(&self, name: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM admins WHERE name = ?1 AND (SELECT COUNT(*) FROM admins) > 1", [name])? > 0)
    }

    fn set_admin_password(&self, name: &str, hash: &str, now: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE admins SET hash = ?2, must_change = 0, updated_at = ?3 WHERE name = ?1",
            params![name, hash, now],
        )? > 0)
    }

    fn mailboxes_page(&self, text: Option<&str>, offset: u64, limit: u64) -> Result<Vec<Mailbox>> {
        let mut st = self.conn.prepare_cached(
            "SELECT extension, pin_hash, must_initialise, force_name, force_greeting, name_recorded, greeting_recorded, updated_at
             FROM mailboxes WHERE (?1 IS NULL OR instr(extension, ?1) > 0) ORDER BY extension LIMIT ?2 OFFSET ?3",
        )?;
        let big = |n: u64| n.min(i64::MAX as u64) as i64;
        let rows = st.query_map(params![text, big(limit), big(offset)], mailbox)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn mailboxes_matching(&self, text: Option<&str>) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM mailboxes WHERE (?1 IS NULL OR instr(extension, ?1) > 0)")?
            .query_row([text], |r| r.get(0))?)
    }
}

/// A `mailboxes` row: extension, pin_hash, must_initialise, force_name, force_greeting, name_recorded,
/// greeting_recorded, updated_at.
fn mailbox(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        extension: r.get(0)?,
        pin_hash: r.get(1)?,
        must_initialise: r.get(2)?,
        force_name: r.get(3)?,
        force_greeting: r.get(4)?,
        name_recorded: r.get(5)?,
        greeting_recorded: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

impl Store {
    fn mailboxes_where<P: rusqlite::Params>(&self, clause: &str, p: P) -> Result<Vec<Mailbox>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT extension, pin_hash, must_initialise, force_name, force_greeting, name_recorded, greeting_recorded, updated_at
             FROM mailboxes {clause}"
        ))?;
        let rows = st.query_map(p, mailbox)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
