//! The host firewall's rows: the services it opens and the apply requests a running daemon carries out.
//! An apply moves `requested` → `applied` (rollback armed) → `confirmed` or `rolled_back`, or
//! `requested` → `failed` / `cancelled`; every move is a conditional update, so the daemon's rollback and
//! an operator's confirm racing each other cannot both win.

use crate::{Result, Store};
use rusqlite::{OptionalExtension, params};

/// A service the firewall opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallServiceRow {
    pub name: String,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Comma-separated ports and ranges; `None`: from pbxguard's listeners or sshd.
    pub ports: Option<String>,
    /// Space-separated CIDRs and ACL group names; empty: anyone.
    pub sources: String,
}

/// Where an apply request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyState {
    Requested,
    Applied,
    Confirmed,
    RolledBack,
    Failed,
    Cancelled,
}

impl ApplyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Applied => "applied",
            Self::Confirmed => "confirmed",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "requested" => Self::Requested,
            "applied" => Self::Applied,
            "confirmed" => Self::Confirmed,
            "rolled_back" => Self::RolledBack,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyRow {
    pub id: i64,
    /// The chains to load (`nft -f` text).
    pub ruleset: String,
    /// 0: no rollback.
    pub rollback_ms: i64,
    pub state: ApplyState,
    /// Why it failed, or what the rollback did.
    pub detail: Option<String>,
    /// The chains in force before (restored by a rollback); `None`: there were none.
    pub previous: Option<String>,
    pub requested_ms: i64,
    /// When the daemon rolls back unless confirmed.
    pub deadline_ms: Option<i64>,
    pub updated_ms: i64,
}

const APPLY_COLUMNS: &str =
    "id, ruleset, rollback_ms, state, detail, previous, requested_ms, deadline_ms, updated_ms FROM firewall_applies";

fn apply_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApplyRow> {
    Ok(ApplyRow {
        id: r.get(0)?,
        ruleset: r.get(1)?,
        rollback_ms: r.get(2)?,
        state: ApplyState::parse(&r.get::<_, String>(3)?),
        detail: r.get(4)?,
        previous: r.get(5)?,
        requested_ms: r.get(6)?,
        deadline_ms: r.get(7)?,
        updated_ms: r.get(8)?,
    })
}

/// The firewall wizard's services and the apply/confirm/rollback requests.
pub trait FirewallRepo {
    /// The services, in rule order.
    fn firewall_services(&self) -> Result<Vec<FirewallServiceRow>>;

    /// Replaces every service at once (the wizard's plan), in the order given.
    fn replace_firewall_services(&mut self, rows: &[FirewallServiceRow], now: i64) -> Result<()>;

    /// Queues an apply for the daemon; returns its id.
    fn request_firewall_apply(&self, ruleset: &str, rollback_ms: i64, now: i64) -> Result<i64>;

    /// Records an apply carried out directly (no daemon, no rollback) as confirmed.
    fn record_firewall_apply(&self, ruleset: &str, now: i64) -> Result<i64>;

    fn firewall_apply(&self, id: i64) -> Result<Option<ApplyRow>>;

    /// The newest request in any of `states`.
    fn last_firewall_apply(&self, states: &[ApplyState]) -> Result<Option<ApplyRow>>;

    /// Requests in `state`, oldest first.
    fn firewall_applies_in(&self, state: ApplyState) -> Result<Vec<ApplyRow>>;

    /// Moves a request from `from` to `to` if it is still in `from`; false when someone else moved it
    /// first.
    fn move_firewall_apply(
        &self,
        id: i64,
        from: ApplyState,
        to: ApplyState,
        detail: Option<&str>,
        now: i64,
    ) -> Result<bool>;

    /// The daemon loaded the request: what it replaced, and when it rolls back (None: never).
    fn firewall_applied(&self, id: i64, previous: Option<&str>, deadline_ms: Option<i64>, now: i64) -> Result<bool>;

    /// Ends every request still waiting or armed (the firewall was disabled); returns how many.
    fn cancel_firewall_applies(&self, now: i64) -> Result<usize>;
}

impl FirewallRepo for Store {
    fn firewall_services(&self) -> Result<Vec<FirewallServiceRow>> {
        let mut st =
            self.conn.prepare("SELECT name, proto, ports, sources FROM firewall_services ORDER BY position, name")?;
        let rows = st.query_map([], |r| {
            Ok(FirewallServiceRow { name: r.get(0)?, proto: r.get(1)?, ports: r.get(2)?, sources: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn replace_firewall_services(&mut self, rows: &[FirewallServiceRow], now: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM firewall_services", [])?;
        for (i, r) in rows.iter().enumerate() {
            tx.execute(
                "INSERT INTO firewall_services(name, proto, ports, sources, position, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.name, r.proto, r.ports, r.sources, i as i64, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn request_firewall_apply(&self, ruleset: &str, rollback_ms: i64, now: i64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO firewall_applies(ruleset, rollback_ms, state, requested_ms, updated_ms) VALUES (?1, ?2, 'requested', ?3, ?3)",
            params![ruleset, rollback_ms, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn record_firewall_apply(&self, ruleset: &str, now: i64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO firewall_applies(ruleset, rollback_ms, state, requested_ms, updated_ms) VALUES (?1, 0, 'confirmed', ?2, ?2)",
            params![ruleset, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn firewall_apply(&self, id: i64) -> Result<Option<ApplyRow>> {
        Ok(self.conn.query_row(&format!("SELECT {APPLY_COLUMNS} WHERE id = ?1"), [id], apply_row).optional()?)
    }

    fn last_firewall_apply(&self, states: &[ApplyState]) -> Result<Option<ApplyRow>> {
        let list = states.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {APPLY_COLUMNS} WHERE state IN ({list}) ORDER BY id DESC LIMIT 1"),
                [],
                apply_row,
            )
            .optional()?)
    }

    fn firewall_applies_in(&self, state: ApplyState) -> Result<Vec<ApplyRow>> {
        let mut st = self.conn.prepare(&format!("SELECT {APPLY_COLUMNS} WHERE state = ?1 ORDER BY id"))?;
        let rows = st.query_map([state.as_str()], apply_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn move_firewall_apply(
        &self,
        id: i64,
        from: ApplyState,
        to: ApplyState,
        detail: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE firewall_applies SET state = ?3, detail = COALESCE(?4, detail), updated_ms = ?5 WHERE id = ?1 AND state = ?2",
            params![id, from.as_str(), to.as_str(), detail, now],
        )? == 1)
    }

    fn firewall_applied(&self, id: i64, previous: Option<&str>, deadline_ms: Option<i64>, now: i64) -> Result<bool> {
        let state = if deadline_ms.is_some() { "applied" } else { "confirmed" };
        Ok(self.conn.execute(
            "UPDATE firewall_applies SET state = ?2, previous = ?3, deadline_ms = ?4, updated_ms = ?5 WHERE id = ?1 AND state = 'requested'",
            params![id, state, previous, deadline_ms, now],
        )? == 1)
    }

    fn cancel_firewall_applies(&self, now: i64) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE firewall_applies SET state = 'cancelled', updated_ms = ?1 WHERE state IN ('requested', 'applied')",
            [now],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Topic;
    use crate::prelude::*;

    #[test]
    fn an_apply_is_confirmed_or_rolled_back_never_both() {
        let mut s = Store::open_in_memory().unwrap();
        let start = s.last_change().unwrap();
        let row = FirewallServiceRow { name: "ssh".into(), proto: "tcp".into(), ports: None, sources: String::new() };
        s.replace_firewall_services(std::slice::from_ref(&row), 1).unwrap();
        assert_eq!(s.firewall_services().unwrap(), [row]);
        let id = s.request_firewall_apply("table inet pbxguard {}", 2000, 10).unwrap();
        assert_eq!(s.firewall_applies_in(ApplyState::Requested).unwrap().len(), 1);
        assert!(s.firewall_applied(id, Some("old"), Some(2010), 11).unwrap());
        assert!(!s.firewall_applied(id, None, None, 11).unwrap(), "applied twice");
        assert!(s.move_firewall_apply(id, ApplyState::Applied, ApplyState::RolledBack, Some("timer"), 12).unwrap());
        assert!(!s.move_firewall_apply(id, ApplyState::Applied, ApplyState::Confirmed, None, 13).unwrap());
        let r = s.firewall_apply(id).unwrap().unwrap();
        assert_eq!((r.state, r.previous.as_deref(), r.deadline_ms), (ApplyState::RolledBack, Some("old"), Some(2010)));
        let topics: Vec<Topic> = s.changes_after(start, 100).unwrap().into_iter().map(|c| c.topic).collect();
        assert_eq!(topics, [Topic::Firewall, Topic::Firewall, Topic::Firewall]);
        s.request_firewall_apply("x", 0, 20).unwrap();
        assert_eq!(s.cancel_firewall_applies(21).unwrap(), 1);
        assert_eq!(s.last_firewall_apply(&[ApplyState::Cancelled]).unwrap().unwrap().ruleset, "x");
    }
}
