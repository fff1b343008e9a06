//! Protection data: bans, operator ban intents, trusted networks, ACL groups and security events.
//! Addresses and rules are stored as text; the shield validates them before they get here.

use crate::{Result, Store, StoreError};
use rusqlite::Row;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BanRow {
    pub target: String,
    pub reason: String,
    pub evidence: String,
    pub first_seen_ms: i64,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub offence: u32,
    pub note: Option<String>,
}

/// An operator's ban change, queued for a running daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanOp {
    pub id: i64,
    pub ban: bool,
    pub target: String,
    pub duration_ms: Option<i64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub source: Option<String>,
    pub user: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AclRow {
    pub name: String,
    /// Rules separated by spaces, `!` marking a deny.
    pub rules: String,
    pub created_at: i64,
}

/// Bans, the ban operations log, trusted networks, ACL groups and security events.
pub trait SecurityRepo {
    /// Records a ban. A detector's ban never replaces an operator's ban that is still running: the CLI
    /// writes its ban at once while the daemon applies it up to a second later, and a flood or scanner
    /// ban found in between must not erase the operator's note and duration.
    fn upsert_ban(&self, b: &BanRow) -> Result<()>;

    fn delete_ban(&self, target: &str) -> Result<bool>;

    fn ban(&self, target: &str) -> Result<Option<BanRow>>;

    /// Bans still in force at `now_ms`.
    fn bans(&self, now_ms: i64) -> Result<Vec<BanRow>>;

    /// Bans in force at `since_ms` or later, expired ones included: their offence counts make repeat
    /// offenders' next bans longer.
    fn bans_for_history(&self, since_ms: i64) -> Result<Vec<BanRow>>;

    /// Forgets expired bans older than the history window.
    fn purge_bans(&self, before_ms: i64) -> Result<usize>;

    fn push_ban_op(
        &self,
        ban: bool,
        target: &str,
        duration_ms: Option<i64>,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<()>;

    fn ban_ops_after(&self, id: i64) -> Result<Vec<BanOp>>;

    fn last_ban_op(&self) -> Result<i64>;

    fn add_trusted(&self, cidr: &str, note: Option<&str>, now: i64) -> Result<bool>;

    fn delete_trusted(&self, cidr: &str) -> Result<bool>;

    fn trusted(&self) -> Result<Vec<(String, Option<String>)>>;

    fn put_acl(&self, name: &str, rules: &str, now: i64) -> Result<()>;

    /// Deletes an ACL group; refused while extensions use it (names them).
    fn delete_acl(&self, name: &str) -> Result<bool>;

    fn acl(&self, name: &str) -> Result<Option<AclRow>>;

    fn acls(&self) -> Result<Vec<AclRow>>;

    /// How many extensions use each ACL group, by name; a group no extension uses is absent.
    fn acl_usage(&self) -> Result<Vec<(String, u64)>>;

    fn set_extension_acl(&self, number: &str, acl: Option<&str>) -> Result<()>;

    /// Appends security events and enforces retention: at most `keep` rows and none older than
    /// `max_age_ms`.
    fn append_events(&mut self, events: &[EventRow], keep: i64, max_age_ms: i64, now_ms: i64) -> Result<()>;

    /// Events with id above `after`, oldest first, at most `limit`.
    fn events_after(&self, after: i64, limit: i64) -> Result<Vec<EventRow>>;

    /// The id of the `n`-th newest event (to show the tail of the log).
    fn events_tail_start(&self, n: i64) -> Result<i64>;
}

impl SecurityRepo for Store {
    fn upsert_ban(&self, b: &BanRow) -> Result<()> {
        // Cached: a storm of bans is written thousands at a time.
        self.conn
            .prepare_cached(
                "INSERT INTO bans(target, reason, evidence, first_seen_ms, created_ms, expires_ms, offence, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(target) DO UPDATE SET reason = excluded.reason, evidence = excluded.evidence,
               created_ms = excluded.created_ms, expires_ms = excluded.expires_ms, offence = excluded.offence,
               note = excluded.note
             WHERE excluded.reason = 'manual' OR bans.reason != 'manual'
               OR (bans.expires_ms IS NOT NULL AND bans.expires_ms <= excluded.created_ms)",
            )?
            .execute(params![
                b.target,
                b.reason,
                b.evidence,
                b.first_seen_ms,
                b.created_ms,
                b.expires_ms,
                b.offence,
                b.note
            ])?;
        Ok(())
    }

    fn delete_ban(&self, target: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM bans WHERE target = ?1", [target])? > 0)
    }

    fn ban(&self, target: &str) -> Result<Option<BanRow>> {
        Ok(self.bans_where("WHERE target = ?1", [target])?.pop())
    }

    fn bans(&self, now_ms: i64) -> Result<Vec<BanRow>> {
        self.bans_where("WHERE expires_ms IS NULL OR expires_ms > ?1 ORDER BY created_ms", [now_ms])
    }

    fn bans_for_history(&self, since_ms: i64) -> Result<Vec<BanRow>> {
        self.bans_where("WHERE expires_ms IS NULL OR expires_ms > ?1 ORDER BY created_ms", [since_ms])
    }

    fn purge_bans(&self, before_ms: i64) -> Result<usize> {
        Ok(self.conn.execute("DELETE FROM bans WHERE expires_ms IS NOT NULL AND expires_ms < ?1", [before_ms])?)
    }

    fn push_ban_op(
        &self,
        ban: bool,
        target: &str,
        duration_ms: Option<i64>,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO ban_ops(op, target, duration_ms, note, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![if ban { "ban" } else { "unban" }, target, duration_ms, note, now_ms],
        )?;
        // Intents older than a day have been applied by any daemon that was running.
        self.conn.execute("DELETE FROM ban_ops WHERE created_ms < ?1", [now_ms - 86_400_000])?;
        Ok(())
    }

    fn ban_ops_after(&self, id: i64) -> Result<Vec<BanOp>> {
        let mut st =
            self.conn.prepare("SELECT id, op, target, duration_ms, note FROM ban_ops WHERE id > ?1 ORDER BY id")?;
        let rows = st.query_map([id], |r| {
            Ok(BanOp {
                id: r.get(0)?,
                ban: r.get::<_, String>(1)? == "ban",
                target: r.get(2)?,
                duration_ms: r.get(3)?,
                note: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn last_ban_op(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM ban_ops", [], |r| r.get(0))?)
    }

    fn add_trusted(&self, cidr: &str, note: Option<&str>, now: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO trusted(cidr, note, created_at) VALUES (?1, ?2, ?3)",
            params![cidr, note, now],
        )? > 0)
    }

    fn delete_trusted(&self, cidr: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM trusted WHERE cidr = ?1", [cidr])? > 0)
    }

    fn trusted(&self) -> Result<Vec<(String, Option<String>)>> {
        let mut st = self.conn.prepare("SELECT cidr, note FROM trusted ORDER BY cidr")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_acl(&self, name: &str, rules: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO acl_groups(name, rules, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET rules = excluded.rules",
            params![name, rules, now],
        )?;
        Ok(())
    }

    fn delete_acl(&self, name: &str) -> Result<bool> {
        // Ten numbers and a count: a group of 10,000 extensions must not make a 60 kB error message.
        const SHOWN: usize = 10;
        let (count, users): (u64, Vec<String>) = {
            let count = self.conn.query_row("SELECT COUNT(*) FROM extensions WHERE acl = ?1", [name], |r| r.get(0))?;
            let mut st = self.conn.prepare("SELECT number FROM extensions WHERE acl = ?1 ORDER BY number LIMIT ?2")?;
            (count, st.query_map(rusqlite::params![name, SHOWN as i64], |r| r.get(0))?.collect::<Result<_, _>>()?)
        };
        if count > 0 {
            let more =
                if count as usize > SHOWN { format!(" and {} more", count as usize - SHOWN) } else { String::new() };
            return Err(StoreError::InUse(format!(
                "ACL group {name} is assigned to extension(s) {}{more}",
                users.join(", ")
            )));
        }
        Ok(self.conn.execute("DELETE FROM acl_groups WHERE name = ?1", [name])? > 0)
    }

    fn acl(&self, name: &str) -> Result<Option<AclRow>> {
        Ok(self
            .conn
            .query_row("SELECT name, rules, created_at FROM acl_groups WHERE name = ?1", [name], |r| {
                Ok(AclRow { name: r.get(0)?, rules: r.get(1)?, created_at: r.get(2)? })
            })
            .optional()?)
    }

    fn acls(&self) -> Result<Vec<AclRow>> {
        let mut st = self.conn.prepare("SELECT name, rules, created_at FROM acl_groups ORDER BY name")?;
        let rows = st.query_map([], |r| Ok(AclRow { name: r.get(0)?, rules: r.get(1)?, created_at: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn acl_usage(&self) -> Result<Vec<(String, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT acl, COUNT(*) FROM extensions WHERE acl IS NOT NULL GROUP BY acl ORDER BY acl")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_extension_acl(&self, number: &str, acl: Option<&str>) -> Result<()> {
        if self.conn.execute("UPDATE extensions SET acl = ?2 WHERE number = ?1", params![number, acl])? == 0 {
            return Err(StoreError::NoSuchExtension(number.to_owned()));
        }
        Ok(())
    }

    fn append_events(&mut self, events: &[EventRow], keep: i64, max_age_ms: i64, now_ms: i64) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Inside an import's transaction, write in it; otherwise in a transaction of our own.
        let own = self.conn.is_autocommit();
        if own {
            self.conn.execute_batch("BEGIN")?;
        }
        let write = || -> Result<()> {
            let mut st = self
                .conn
                .prepare_cached("INSERT INTO events(at_ms, kind, source, user, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for e in events {
                st.execute(params![e.at_ms, e.kind, e.source, e.user, e.detail])?;
            }
            self.conn.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1", [keep])?;
            self.conn.execute("DELETE FROM events WHERE at_ms < ?1", [now_ms - max_age_ms])?;
            Ok(())
        };
        let r = write();
        if own {
            self.conn.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        }
        r
    }

    fn events_after(&self, after: i64, limit: i64) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare("SELECT id, at_ms, kind, source, user, detail FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let rows = st.query_map([after, limit], event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn events_tail_start(&self, n: i64) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(id), 0) - ?1 FROM events", [n], |r| r.get(0))?)
    }
}

impl Store {
    fn bans_where<P: rusqlite::Params>(&self, clause: &str, p: P) -> Result<Vec<BanRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT target, reason, evidence, first_seen_ms, created_ms, expires_ms, offence, note FROM bans {clause}"
        ))?;
        let rows = st.query_map(p, ban)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// An `events` row: id, at_ms, kind, source, user, detail.
pub(crate) fn event(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        source: r.get(3)?,
        user: r.get(4)?,
        detail: r.get(5)?,
    })
}

/// A `bans` row: target, reason, evidence, first_seen_ms, created_ms, expires_ms, offence, note.
pub(crate) fn ban(r: &Row<'_>) -> rusqlite::Result<BanRow> {
    Ok(BanRow {
        target: r.get(0)?,
        reason: r.get(1)?,
        evidence: r.get(2)?,
        first_seen_ms: r.get(3)?,
        created_ms: r.get(4)?,
        expires_ms: r.get(5)?,
        offence: r.get(6)?,
        note: r.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn bans_events_acl() {
        let mut s = Store::open_in_memory().unwrap();
        let b = BanRow {
            target: "192.0.2.1".into(),
            reason: "scanner".into(),
            evidence: "ua".into(),
            first_seen_ms: 1,
            created_ms: 1,
            expires_ms: Some(100),
            offence: 1,
            note: None,
        };
        s.upsert_ban(&b).unwrap();
        s.upsert_ban(&BanRow { offence: 2, ..b.clone() }).unwrap();
        assert_eq!(s.bans(50).unwrap()[0].offence, 2);
        assert!(s.bans(100).unwrap().is_empty());
        assert!(s.delete_ban("192.0.2.1").unwrap());
        // An operator's running ban outlives a detector's; an expired one does not.
        let manual = BanRow { reason: "manual".into(), note: Some("abuse #42".into()), expires_ms: None, ..b.clone() };
        s.upsert_ban(&manual).unwrap();
        s.upsert_ban(&BanRow { reason: "flood".into(), created_ms: 5, ..b.clone() }).unwrap();
        assert_eq!(s.ban("192.0.2.1").unwrap().unwrap().note.as_deref(), Some("abuse #42"));
        s.upsert_ban(&BanRow { expires_ms: Some(10), ..manual.clone() }).unwrap();
        s.upsert_ban(&BanRow { reason: "flood".into(), created_ms: 20, ..b.clone() }).unwrap();
        assert_eq!(s.ban("192.0.2.1").unwrap().unwrap().reason, "flood");
        assert!(s.delete_ban("192.0.2.1").unwrap());
        s.push_ban_op(true, "10.0.0.0/8", None, Some("x"), 1000).unwrap();
        assert_eq!(s.ban_ops_after(0).unwrap().len(), 1);
        assert_eq!(s.last_ban_op().unwrap(), 1);
        let ev = |i| EventRow { id: 0, at_ms: i, kind: "k".into(), source: None, user: None, detail: "d".into() };
        s.append_events(&(0..10).map(ev).collect::<Vec<_>>(), 5, 1_000_000, 10).unwrap();
        assert_eq!(s.events_after(0, 100).unwrap().len(), 5);
        s.put_acl("office", "192.0.2.0/24", 0).unwrap();
        s.add_extension(&crate::Extension { acl: Some("office".into()), ..crate::bindings::tests::ext("100") })
            .unwrap();
        assert!(matches!(s.delete_acl("office"), Err(StoreError::InUse(m)) if m.contains("100")));
    }

    #[test]
    fn a_group_in_use_names_ten_extensions_and_counts_the_rest() {
        let s = Store::open_in_memory().unwrap();
        s.put_acl("office", "192.0.2.0/24", 0).unwrap();
        for n in 100..112 {
            let e = crate::Extension { acl: Some("office".into()), ..crate::bindings::tests::ext(&n.to_string()) };
            s.add_extension(&e).unwrap();
        }
        let Err(StoreError::InUse(m)) = s.delete_acl("office") else { panic!("deleted a group in use") };
        assert_eq!(
            m,
            "ACL group office is assigned to extension(s) 100, 101, 102, 103, 104, 105, 106, 107, 108, 109 and 2 more"
        );
        assert!(s.acl("office").unwrap().is_some());
    }
}
