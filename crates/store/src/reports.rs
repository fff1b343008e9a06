//! Read-only queries for the admin GUI's security pages and dashboard: one page of a large table at a
//! time (keyset or indexed offset paging), and aggregates computed in SQL so nothing loads a whole
//! table to show a summary. The indexes they rely on come with migration 17.

use crate::bindings::{BINDING_COLUMNS, binding};
use crate::calls::{CALL_COLUMNS, call};
use crate::security::{ban, event};
use crate::{BanRow, Binding, CallRow, EventRow, Result, Store};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter};

/// Which security events to show, newest first. `before`/`after` are event ids (keyset paging: the
/// page stays fast however deep it is); with `after` the page is the one just newer than it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub kind: Option<String>,
    /// An address as stored (exact).
    pub source: Option<String>,
    /// An extension, trunk or account name as stored (exact).
    pub user: Option<String>,
    /// A substring of the detail text (case-insensitive for ASCII).
    pub text: Option<String>,
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: i64,
}

/// `text` for a `LIKE ... ESCAPE '\'` pattern, its own wildcards taken literally.
fn like_escape(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}

/// `(?, ?, ...)` for `n` values.
fn placeholders(n: usize) -> String {
    let mut s = "(".to_owned();
    for i in 0..n {
        s.push_str(if i == 0 { "?" } else { ", ?" });
    }
    s.push(')');
    s
}

/// Pages and aggregates for the GUI and the API: bounded by their indexes.
pub trait ReportsRepo {
    /// One page of the security event log, newest first (see [`EventQuery`]). Each filter uses its
    /// own index (kind, source, user: migration 17) in id order; the text search scans, bounded by the
    /// log's retention.
    fn events_page(&self, q: &EventQuery) -> Result<Vec<EventRow>>;

    /// The event kinds present in the log, by name: one index seek per kind (a skip scan), since
    /// `SELECT DISTINCT` reads every entry of the index — 5 ms on 100,000 events, on every page view.
    fn event_kinds(&self) -> Result<Vec<String>>;

    /// The newest event's id (0 for an empty log).
    fn last_event_id(&self) -> Result<i64>;

    /// Events since `since_ms` counted per `bucket_ms` and kind, kinds in `exclude` left out:
    /// `(bucket start ms, kind, count)`, oldest bucket first.
    fn events_per_bucket(&self, since_ms: i64, bucket_ms: i64, exclude: &[&str]) -> Result<Vec<(i64, String, i64)>>;

    /// The addresses behind the most events of `kinds` since `since_ms`.
    fn top_event_sources(&self, since_ms: i64, kinds: &[&str], limit: i64) -> Result<Vec<(String, i64)>>;

    /// The user names (extensions) named by the most events of `kinds` since `since_ms`.
    fn top_event_users(&self, since_ms: i64, kinds: &[&str], limit: i64) -> Result<Vec<(String, i64)>>;

    /// The User-Agents of scanner detections since `since_ms` (the fingerprint's evidence starts
    /// `User-Agent "..."`), most frequent first.
    fn top_scanner_agents(&self, since_ms: i64, limit: i64) -> Result<Vec<(String, i64)>>;

    /// Bans in force at `now_ms` whose target starts with `target_prefix` (all if empty), newest
    /// first: `(total, one page)`.
    fn bans_page(&self, now_ms: i64, target_prefix: &str, offset: i64, limit: i64) -> Result<(i64, Vec<BanRow>)>;

    /// Calls in progress (not ended), newest first, at most `limit`; and how many there are.
    fn live_calls(&self, limit: i64) -> Result<(i64, Vec<CallRow>)>;

    /// The calls log, newest first, one page: `(total, rows)`.
    fn calls_page(&self, offset: i64, limit: i64) -> Result<(i64, Vec<CallRow>)>;

    /// Registrations valid at `now` (seconds), by extension, one page: `(total, rows)`.
    fn bindings_page(&self, now: i64, offset: i64, limit: i64) -> Result<(i64, Vec<Binding>)>;
}

impl ReportsRepo for Store {
    fn events_page(&self, q: &EventQuery) -> Result<Vec<EventRow>> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        for (col, v) in [("kind = ?", &q.kind), ("source = ?", &q.source), ("user = ?", &q.user)] {
            if let Some(v) = v {
                clauses.push(col);
                values.push(Value::Text(v.clone()));
            }
        }
        if let Some(t) = &q.text {
            clauses.push("detail LIKE ? ESCAPE '\\'");
            values.push(Value::Text(format!("%{}%", like_escape(t))));
        }
        let newer = q.after.is_some();
        if let Some(a) = q.after {
            clauses.push("id > ?");
            values.push(Value::Integer(a));
        } else if let Some(b) = q.before {
            clauses.push("id < ?");
            values.push(Value::Integer(b));
        }
        values.push(Value::Integer(q.limit.clamp(1, 1000)));
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let order = if newer { "ASC" } else { "DESC" };
        let sql =
            format!("SELECT id, at_ms, kind, source, user, detail FROM events {filter} ORDER BY id {order} LIMIT ?");
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows: Vec<EventRow> = st.query_map(params_from_iter(values), event)?.collect::<Result<_, _>>()?;
        if newer {
            rows.reverse();
        }
        Ok(rows)
    }

    fn event_kinds(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "WITH RECURSIVE k(kind) AS (SELECT MIN(kind) FROM events
                UNION ALL SELECT (SELECT MIN(kind) FROM events WHERE kind > k.kind) FROM k WHERE k.kind IS NOT NULL)
             SELECT kind FROM k WHERE kind IS NOT NULL",
        )?;
        Ok(st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
    }

    fn last_event_id(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?)
    }

    // The aggregates read a time window: its (covering) index is the right plan whatever the planner guesses
    // without statistics (a scan of the kind or source index would read the whole log).

    fn events_per_bucket(&self, since_ms: i64, bucket_ms: i64, exclude: &[&str]) -> Result<Vec<(i64, String, i64)>> {
        let sql = format!(
            "SELECT (at_ms / ?) * ? AS b, kind, COUNT(*) FROM events INDEXED BY events_window
             WHERE at_ms >= ? AND kind NOT IN {} GROUP BY b, kind ORDER BY b, kind",
            placeholders(exclude.len())
        );
        let bucket = bucket_ms.max(1);
        let mut values = vec![Value::Integer(bucket), Value::Integer(bucket), Value::Integer(since_ms)];
        values.extend(exclude.iter().map(|k| Value::Text((*k).to_owned())));
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params_from_iter(values), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn top_event_sources(&self, since_ms: i64, kinds: &[&str], limit: i64) -> Result<Vec<(String, i64)>> {
        self.top_of("source", since_ms, kinds, limit)
    }

    fn top_event_users(&self, since_ms: i64, kinds: &[&str], limit: i64) -> Result<Vec<(String, i64)>> {
        self.top_of("user", since_ms, kinds, limit)
    }

    fn top_scanner_agents(&self, since_ms: i64, limit: i64) -> Result<Vec<(String, i64)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT substr(detail, 13, instr(substr(detail, 13), '\"') - 1) AS ua, COUNT(*) AS n
             FROM events INDEXED BY events_at WHERE kind = 'scanner' AND at_ms >= ?1 AND detail LIKE 'User-Agent \"%'
             GROUP BY ua ORDER BY n DESC, ua LIMIT ?2",
        )?;
        let rows = st.query_map(params![since_ms, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn bans_page(&self, now_ms: i64, target_prefix: &str, offset: i64, limit: i64) -> Result<(i64, Vec<BanRow>)> {
        let like = format!("{}%", like_escape(target_prefix));
        let filter = "(expires_ms IS NULL OR expires_ms > ?1) AND (?2 = '%' OR target LIKE ?2 ESCAPE '\\')";
        let total =
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM bans WHERE {filter}"), params![now_ms, like], |r| r.get(0))?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT target, reason, evidence, first_seen_ms, created_ms, expires_ms, offence, note FROM bans
             WHERE {filter} ORDER BY created_ms DESC, target LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = st.query_map(params![now_ms, like, limit, offset.max(0)], ban)?.collect::<Result<_, _>>()?;
        Ok((total, rows))
    }

    fn live_calls(&self, limit: i64) -> Result<(i64, Vec<CallRow>)> {
        let total = self.conn.query_row("SELECT COUNT(*) FROM calls WHERE state != 'ended'", [], |r| r.get(0))?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE state != 'ended' ORDER BY started_at DESC, rowid DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit], call)?.collect::<Result<_, _>>()?;
        Ok((total, rows))
    }

    fn calls_page(&self, offset: i64, limit: i64) -> Result<(i64, Vec<CallRow>)> {
        let total = self.conn.query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = st.query_map(params![limit, offset.max(0)], call)?.collect::<Result<_, _>>()?;
        Ok((total, rows))
    }

    fn bindings_page(&self, now: i64, offset: i64, limit: i64) -> Result<(i64, Vec<Binding>)> {
        let total = self.conn.query_row("SELECT COUNT(*) FROM bindings WHERE expires_at > ?1", [now], |r| r.get(0))?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {BINDING_COLUMNS} FROM bindings WHERE expires_at > ?1 ORDER BY extension, uri LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = st.query_map(params![now, limit, offset.max(0)], binding)?.collect::<Result<_, _>>()?;
        Ok((total, rows))
    }
}

impl Store {
    /// The `column` values (`source` or `user`) most frequent among events since `since_ms` whose kind is
    /// one of `kinds`, most frequent first.
    fn top_of(&self, column: &str, since_ms: i64, kinds: &[&str], limit: i64) -> Result<Vec<(String, i64)>> {
        let sql = format!(
            "SELECT {column}, COUNT(*) AS n FROM events INDEXED BY events_window
             WHERE at_ms >= ? AND {column} IS NOT NULL AND kind IN {}
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?",
            placeholders(kinds.len())
        );
        let mut values = vec![Value::Integer(since_ms)];
        values.extend(kinds.iter().map(|k| Value::Text((*k).to_owned())));
        values.push(Value::Integer(limit));
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params_from_iter(values), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How SQLite runs `sql` (`EXPLAIN QUERY PLAN`'s detail lines), for tests that keep the pages'
    /// queries on their indexes.
    #[doc(hidden)]
    pub fn query_plan(&self, sql: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        Ok(st.query_map([], |r| r.get(3))?.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn ev(at_ms: i64, kind: &str, source: Option<&str>, user: Option<&str>, detail: &str) -> EventRow {
        EventRow {
            id: 0,
            at_ms,
            kind: kind.into(),
            source: source.map(Into::into),
            user: user.map(Into::into),
            detail: detail.into(),
        }
    }

    fn seeded() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        let rows = vec![
            ev(
                1_000,
                "scanner",
                Some("192.0.2.1"),
                None,
                "User-Agent \"friendly-scanner\" matches \"friendly-scanner\"",
            ),
            ev(2_000, "auth-failed", Some("192.0.2.1"), Some("1001"), "REGISTER: wrong credentials"),
            ev(3_600_500, "auth-failed", Some("192.0.2.2"), Some("1001"), "REGISTER: 100% wrong_credentials"),
            ev(3_600_600, "unban", Some("192.0.2.1"), None, "operator"),
            ev(3_700_000, "scanner", Some("192.0.2.3"), None, "User-Agent \"sipvicious\" matches \"sipvicious\""),
        ];
        s.append_events(&rows, 1_000, i64::MAX / 2, 4_000_000).unwrap();
        s
    }

    #[test]
    fn event_pages_follow_ids_both_ways_with_filters() {
        let s = seeded();
        let page = |q: EventQuery| s.events_page(&EventQuery { limit: 2, ..q }).unwrap();
        let ids = |rows: Vec<EventRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(page(EventQuery::default())), [5, 4]);
        assert_eq!(ids(page(EventQuery { before: Some(4), ..Default::default() })), [3, 2]);
        assert_eq!(ids(page(EventQuery { after: Some(1), ..Default::default() })), [3, 2]);
        assert_eq!(ids(page(EventQuery { kind: Some("auth-failed".into()), ..Default::default() })), [3, 2]);
        assert_eq!(ids(page(EventQuery { source: Some("192.0.2.1".into()), ..Default::default() })), [4, 2]);
        assert_eq!(ids(page(EventQuery { user: Some("1001".into()), before: Some(3), ..Default::default() })), [2]);
        // The search text's wildcards are literal.
        assert_eq!(ids(page(EventQuery { text: Some("100%".into()), ..Default::default() })), [3]);
        assert_eq!(ids(page(EventQuery { text: Some("wrong_c".into()), ..Default::default() })), [3]);
        assert_eq!(ids(page(EventQuery { text: Some("FRIENDLY".into()), ..Default::default() })), [1]);
        assert_eq!(s.event_kinds().unwrap(), ["auth-failed", "scanner", "unban"]);
        assert_eq!(s.last_event_id().unwrap(), 5);
    }

    #[test]
    fn aggregates_count_in_sql() {
        let s = seeded();
        let per = s.events_per_bucket(0, 3_600_000, &["unban"]).unwrap();
        assert_eq!(
            per,
            [
                (0, "auth-failed".to_owned(), 1),
                (0, "scanner".to_owned(), 1),
                (3_600_000, "auth-failed".to_owned(), 1),
                (3_600_000, "scanner".to_owned(), 1)
            ]
        );
        let attacks = ["scanner", "auth-failed"];
        assert_eq!(s.top_event_sources(0, &attacks, 1).unwrap(), [("192.0.2.1".to_owned(), 2)]);
        assert_eq!(s.top_event_users(0, &attacks, 5).unwrap(), [("1001".to_owned(), 2)]);
        assert_eq!(
            s.top_scanner_agents(0, 5).unwrap(),
            [("friendly-scanner".to_owned(), 1), ("sipvicious".to_owned(), 1)]
        );
        assert_eq!(s.top_scanner_agents(3_000_000, 5).unwrap(), [("sipvicious".to_owned(), 1)]);
    }

    #[test]
    fn the_pages_queries_stay_on_their_indexes() {
        let s = Store::open_in_memory().unwrap();
        let plan = |sql: &str| s.query_plan(sql).unwrap().join(" | ");
        for (sql, index) in [
            ("SELECT * FROM events WHERE kind = 'x' AND id < 5 ORDER BY id DESC LIMIT 50", "events_kind"),
            ("SELECT * FROM events WHERE source = 'x' ORDER BY id DESC LIMIT 50", "events_source"),
            ("SELECT * FROM events WHERE user = 'x' ORDER BY id DESC LIMIT 50", "events_user"),
            (
                "SELECT source, COUNT(*) FROM events INDEXED BY events_window WHERE at_ms >= 5 GROUP BY source",
                "COVERING INDEX events_window",
            ),
            ("SELECT * FROM calls WHERE state != 'ended' ORDER BY started_at DESC LIMIT 50", "calls_live"),
            ("SELECT * FROM bans ORDER BY created_ms DESC LIMIT 50", "bans_created"),
        ] {
            let p = plan(sql);
            assert!(p.contains(index), "{sql}: {p}");
            assert!(sql.contains("GROUP BY") || !p.contains("TEMP B-TREE"), "{sql}: sorts: {p}");
        }
    }

    #[test]
    fn ban_and_call_pages() {
        let s = Store::open_in_memory().unwrap();
        for (i, t) in ["192.0.2.1", "192.0.2.10", "198.51.100.0/24"].iter().enumerate() {
            s.upsert_ban(&BanRow {
                target: (*t).into(),
                reason: "scanner".into(),
                evidence: "ua".into(),
                first_seen_ms: 0,
                created_ms: i as i64,
                expires_ms: Some(100),
                offence: 1,
                note: None,
            })
            .unwrap();
        }
        let targets = |(n, rows): (i64, Vec<BanRow>)| (n, rows.into_iter().map(|b| b.target).collect::<Vec<_>>());
        assert_eq!(
            targets(s.bans_page(50, "", 0, 2).unwrap()),
            (3, vec!["198.51.100.0/24".to_owned(), "192.0.2.10".to_owned()])
        );
        assert_eq!(targets(s.bans_page(50, "192.0.2.1", 0, 5).unwrap()).0, 2);
        assert_eq!(targets(s.bans_page(50, "%", 0, 5).unwrap()).0, 0, "a wildcard is literal");
        assert_eq!(targets(s.bans_page(100, "", 0, 5).unwrap()).0, 0, "expired");
        let (live, _) = s.live_calls(10).unwrap();
        assert_eq!(live, 0);
    }
}
