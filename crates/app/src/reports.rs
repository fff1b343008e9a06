//! What the admin GUI and the API show about attacks and traffic: the security event log a page at a
//! time, bans and calls paged, and the dashboard's summary (attacks per hour by detector, the top
//! attacking sources, targeted extensions and scanner User-Agents, calls in progress, registrations).
//! Every count is made in SQL over indexed columns; nothing here loads a whole table.

use crate::extensions::Page;
use crate::{Result, invalid};
use pbxguard_store::{Backend, BanRow, Binding, CallRow, EventQuery, EventRow};
use serde::Serialize;

/// Rows on one page of a list.
pub const PAGE: u64 = 50;

/// The event kinds that are not attacks: left out of the attack chart.
pub const NOT_ATTACKS: &[&str] =
    &["unban", "trunk-registered", "trunk-registration-failed", "call-cut", "secret-autofix"];

/// Events that name an attacking source (for the top sources).
pub const FROM_ATTACKERS: &[&str] = &[
    "scanner",
    "auth-failed",
    "nonce-replay",
    "identity-mismatch",
    "malformed",
    "acl-denied",
    "unknown-user",
    "call-refused",
    "ban",
    "suspected-spoof",
];

/// Events whose user is an extension someone tried to get into (for the top targets).
pub const AGAINST_EXTENSIONS: &[&str] =
    &["auth-failed", "nonce-replay", "identity-mismatch", "acl-denied", "unknown-user", "throttle"];

/// Filters of the event log as an operator types them; empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub kind: String,
    pub source: String,
    pub user: String,
    pub text: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// One page of the security event log, newest first: older than event `before`, or (with `after`)
/// the page just newer than event `after`.
pub fn events(
    store: &dyn Backend,
    f: &EventFilter,
    before: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<EventRow>> {
    for (name, v) in [("kind", &f.kind), ("source", &f.source), ("user", &f.user), ("text", &f.text)] {
        if v.len() > 200 {
            return Err(invalid!("the {name} filter is longer than 200 characters: shorten it"));
        }
    }
    let source = match opt(&f.source) {
        // Stored addresses are canonical: "::ffff:192.0.2.1" or " 192.0.2.01" would never match.
        Some(s) => Some(
            s.parse::<std::net::IpAddr>()
                .map_err(|_| invalid!("source {s:?} is not an IP address (such as 192.0.2.1 or 2001:db8::1)"))?
                .to_canonical()
                .to_string(),
        ),
        None => None,
    };
    let q = EventQuery {
        kind: opt(&f.kind),
        source,
        user: opt(&f.user),
        text: opt(&f.text),
        before,
        after,
        limit: limit.clamp(1, 1000),
    };
    Ok(store.events_page(&q)?)
}

/// The kinds of event in the log, for a filter's choices.
pub fn event_kinds(store: &dyn Backend) -> Result<Vec<String>> {
    Ok(store.event_kinds()?)
}

/// The newest security event's id (0: none yet): a live view follows the log from there.
pub fn last_event_id(store: &dyn Backend) -> Result<i64> {
    Ok(store.last_event_id()?)
}

/// Hours in the dashboard's attack chart.
pub const HOURS: i64 = 24;
const HOUR_MS: i64 = 3_600_000;

/// The dashboard's summary at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub at_ms: i64,
    /// Start of the first hourly bucket (the chart spans [`HOURS`] buckets from here).
    pub since_ms: i64,
    pub bucket_ms: i64,
    /// `(bucket start ms, kind, count)`, attacks only.
    pub per_bucket: Vec<(i64, String, i64)>,
    pub top_sources: Vec<(String, i64)>,
    pub top_extensions: Vec<(String, i64)>,
    /// From scanner detections (the fingerprint's evidence); other events record no User-Agent.
    pub top_user_agents: Vec<(String, i64)>,
    pub calls_in_progress: i64,
    pub calls: Vec<CallRow>,
    pub registrations: i64,
    pub bans_in_force: i64,
}

/// The dashboard's numbers over the last 24 hours (`now_ms`), `top` entries per list.
pub fn dashboard(store: &dyn Backend, now_ms: i64, top: i64) -> Result<Dashboard> {
    let since_ms = (now_ms / HOUR_MS - (HOURS - 1)) * HOUR_MS;
    let (calls_in_progress, calls) = store.live_calls(10)?;
    let (registrations, _) = store.bindings_page(now_ms / 1000, 0, 0)?;
    let (bans_in_force, _) = store.bans_page(now_ms, "", 0, 0)?;
    Ok(Dashboard {
        at_ms: now_ms,
        since_ms,
        bucket_ms: HOUR_MS,
        per_bucket: store.events_per_bucket(since_ms, HOUR_MS, NOT_ATTACKS)?,
        top_sources: store.top_event_sources(since_ms, FROM_ATTACKERS, top)?,
        top_extensions: store.top_event_users(since_ms, AGAINST_EXTENSIONS, top)?,
        top_user_agents: store.top_scanner_agents(since_ms, top)?,
        calls_in_progress,
        calls,
        registrations,
        bans_in_force,
    })
}

/// A ban as a list shows it: with the operator's trusted network that overrides it, if any.
#[derive(Debug, Clone, Serialize)]
pub struct BanView {
    #[serde(flatten)]
    pub ban: BanRow,
    pub overridden_by: Option<String>,
}

/// A page number as asked for, kept where an offset cannot overflow; and its first row.
fn page_number(page: u64) -> (u64, i64) {
    let page = page.clamp(1, 1_000_000);
    (page, ((page - 1) * PAGE) as i64)
}

fn page_of<T>(page: u64, total: i64, items: Vec<T>) -> Page<T> {
    Page { items, total: total.max(0) as u64, page, per_page: PAGE }
}

/// Bans in force, newest first, one page; `filter`: the start of the target (such as `192.0.2.`).
pub fn bans(store: &dyn Backend, filter: &str, page: u64) -> Result<Page<BanView>> {
    if filter.len() > 64 {
        return Err(invalid!("the address filter is longer than 64 characters: give the start of an address"));
    }
    let (page, offset) = page_number(page);
    let now = crate::clock::now_ms() as i64;
    let (total, rows) = store.bans_page(now, filter.trim(), offset, PAGE as i64)?;
    let trusted = crate::views::trusted(store, &[], &[])?;
    let rows = rows
        .into_iter()
        .map(|ban| {
            let overridden_by = crate::security::overriding_trust(&trusted, &ban.target).map(|t| t.to_string());
            BanView { ban, overridden_by }
        })
        .collect();
    Ok(page_of(page, total, rows))
}

/// The calls log, newest first, one page.
pub fn calls(store: &dyn Backend, page: u64) -> Result<Page<CallRow>> {
    let (page, offset) = page_number(page);
    let (total, rows) = store.calls_page(offset, PAGE as i64)?;
    Ok(page_of(page, total, rows))
}

/// Calls in progress (at most `limit`), and how many there are.
pub fn live_calls(store: &dyn Backend, limit: i64) -> Result<Page<CallRow>> {
    let (total, rows) = store.live_calls(limit)?;
    Ok(page_of(1, total, rows))
}

/// Registrations in force, by extension, one page.
pub fn registrations(store: &dyn Backend, page: u64) -> Result<Page<Binding>> {
    let (page, offset) = page_number(page);
    let (total, rows) = store.bindings_page(crate::clock::now_secs(), offset, PAGE as i64)?;
    Ok(page_of(page, total, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbxguard_store::Store;
    use pbxguard_store::prelude::*;

    #[test]
    fn a_source_filter_must_be_an_address_and_is_made_canonical() {
        let s = Store::open_in_memory().unwrap();
        let row = EventRow {
            id: 0,
            at_ms: 1,
            kind: "scanner".into(),
            source: Some("192.0.2.1".into()),
            user: None,
            detail: String::new(),
        };
        let mut s = s;
        s.append_events(&[row], 10, i64::MAX / 2, 2).unwrap();
        let f = |source: &str| EventFilter { source: source.into(), ..Default::default() };
        assert_eq!(events(&s, &f("::ffff:192.0.2.1"), None, None, 50).unwrap().len(), 1);
        let e = events(&s, &f("192.0.2"), None, None, 50).unwrap_err().to_string();
        assert!(e.contains("not an IP address"), "{e}");
        let d = dashboard(&s, 3_600_000, 5).unwrap();
        assert_eq!(d.top_sources, [("192.0.2.1".to_owned(), 1)]);
        assert_eq!(d.per_bucket, [(0, "scanner".to_owned(), 1)]);
    }
}
