//! VoIP blacklists: each list is replaced whole, in one transaction, so a reader sees the old list or
//! the new one, never half of each.

use crate::{Result, Store};
use rusqlite::params;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlacklistInfo {
    pub name: String,
    /// File path or URL it came from (refreshed on a schedule when a URL).
    pub source: String,
    pub entries: i64,
    pub bad_lines: i64,
    pub refreshed_at: i64,
    pub last_error: Option<String>,
}

/// Imported VoIP blacklists (voipbl format).
pub trait BlacklistsRepo {
    /// Replaces list `name` with `entries` (CIDR text), atomically. `progress` is called every 10,000.
    fn replace_blacklist(
        &mut self,
        name: &str,
        source: &str,
        entries: &[String],
        bad_lines: i64,
        now: i64,
        progress: &mut dyn FnMut(usize),
    ) -> Result<()>;

    /// Records a failed refresh without touching the list's entries.
    fn blacklist_error(&self, name: &str, error: &str) -> Result<()>;

    fn blacklists(&self) -> Result<Vec<BlacklistInfo>>;

    /// Every entry of every list, as (list, CIDR).
    fn blacklist_entries(&self) -> Result<Vec<(String, String)>>;

    fn delete_blacklist(&self, name: &str) -> Result<bool>;
}

impl BlacklistsRepo for Store {
    fn replace_blacklist(
        &mut self,
        name: &str,
        source: &str,
        entries: &[String],
        bad_lines: i64,
        now: i64,
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO blacklists(name, source, entries, bad_lines, refreshed_at, last_error) VALUES (?1, ?2, 0, 0, 0, NULL)
             ON CONFLICT(name) DO NOTHING",
            params![name, source],
        )?;
        tx.execute("DELETE FROM blacklist_entries WHERE list = ?1", [name])?;
        {
            let mut st = tx.prepare_cached("INSERT INTO blacklist_entries(list, cidr) VALUES (?1, ?2)")?;
            for (i, e) in entries.iter().enumerate() {
                st.execute(params![name, e])?;
                if i % 10_000 == 0 {
                    progress(i);
                }
            }
        }
        tx.execute(
            "UPDATE blacklists SET source = ?2, entries = ?3, bad_lines = ?4, refreshed_at = ?5, last_error = NULL WHERE name = ?1",
            params![name, source, entries.len() as i64, bad_lines, now],
        )?;
        tx.commit()?;
        progress(entries.len());
        Ok(())
    }

    fn blacklist_error(&self, name: &str, error: &str) -> Result<()> {
        self.conn.execute("UPDATE blacklists SET last_error = ?2 WHERE name = ?1", params![name, error])?;
        Ok(())
    }

    fn blacklists(&self) -> Result<Vec<BlacklistInfo>> {
        let mut st = self.conn.prepare(
            "SELECT name, source, entries, bad_lines, refreshed_at, last_error FROM blacklists ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(BlacklistInfo {
                name: r.get(0)?,
                source: r.get(1)?,
                entries: r.get(2)?,
                bad_lines: r.get(3)?,
                refreshed_at: r.get(4)?,
                last_error: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn blacklist_entries(&self) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare("SELECT list, cidr FROM blacklist_entries")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_blacklist(&self, name: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM blacklists WHERE name = ?1", [name])? > 0)
    }
}
