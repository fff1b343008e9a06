//! Pages of the configuration lists that can grow large (mailboxes come with extensions, thousands
//! of them): one page and a count, never the whole table.

use crate::{Mailbox, Result, Store};
use rusqlite::params;

impl Store {
    /// Mailboxes in extension order from `offset`, at most `limit`; `text` keeps those whose
    /// extension contains it.
    pub fn mailboxes_page(&self, text: Option<&str>, offset: u64, limit: u64) -> Result<Vec<Mailbox>> {
        let mut st = self.conn.prepare_cached(
            "SELECT extension, pin_hash, must_initialise, force_name, force_greeting, name_recorded, greeting_recorded, updated_at
             FROM mailboxes WHERE (?1 IS NULL OR instr(extension, ?1) > 0) ORDER BY extension LIMIT ?2 OFFSET ?3",
        )?;
        let big = |n: u64| n.min(i64::MAX as u64) as i64;
        let rows = st.query_map(params![text, big(limit), big(offset)], |r| {
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
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn mailboxes_matching(&self, text: Option<&str>) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM mailboxes WHERE (?1 IS NULL OR instr(extension, ?1) > 0)")?
            .query_row([text], |r| r.get(0))?)
    }
}
