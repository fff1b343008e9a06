//! The dashboard: a live feed of security events and decisions (server-sent events on
//! `/events/live`), charts drawn here as SVG (attacks per hour by detector, top attacking sources,
//! targeted extensions, scanner User-Agents), calls in progress and registrations.
//!
//! The summary is computed at most every few seconds and shared by every viewer: fifty open
//! dashboards cost one set of aggregate queries, not fifty.

use super::super::access::Authed;
use super::super::layout;
use super::super::shared::Shared;
use super::ui::broken;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use pbxguard_app::reports::{self, Dashboard};
use pbxguard_shield::Decision;
use pbxguard_store::EventRow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// How old a shared summary may be before the next viewer recomputes it.
const FRESH: Duration = Duration::from_secs(5);
/// Rows of the feed rendered with the page (the script keeps about 100).
const FEED_ROWS: i64 = 50;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/", get(page)).route("/events/live", get(live))
}

static CACHE: Mutex<Option<(Instant, Arc<Dashboard>)>> = Mutex::new(None);
/// A recomputation is running: others keep serving the previous summary meanwhile.
static REFRESHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Viewers arriving before the first summary exists wait for one computation, not one each.
static FIRST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A summary to compute at `now` (ms), and where to send it.
type Job = (i64, tokio::sync::oneshot::Sender<pbxguard_app::Result<Dashboard>>);

/// The summary's own thread, at the lowest priority (nice 19). Its aggregates read the whole day's
/// events (0.2-0.3 s for 100,000, every few seconds while anyone watches); at the pages' own priority
/// that is one of two cores taken from every other page for as long. Pages never wait for it except
/// at the very first view.
fn refresher(data: &std::path::Path) -> pbxguard_app::Result<&'static std::sync::mpsc::Sender<Job>> {
    static SENDER: std::sync::OnceLock<std::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    if let Some(tx) = SENDER.get() {
        return Ok(tx);
    }
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let data = data.to_owned();
    std::thread::Builder::new()
        .name("pbxguard-dash".into())
        .spawn(move || {
            crate::daemon::nice::lower_this_thread(19);
            let mut store = None;
            for (now, reply) in rx {
                let started = Instant::now();
                let r = match &mut store {
                    Some(s) => reports::dashboard(s, now, 10),
                    None => pbxguard_app::open_store(&data).and_then(|s| reports::dashboard(store.insert(s), now, 10)),
                };
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "dashboard summary computed");
                let _ = reply.send(r);
            }
        })
        .map_err(|e| pbxguard_app::Error::Io(format!("cannot start the dashboard's thread: {e}")))?;
    Ok(SENDER.get_or_init(|| tx))
}

async fn compute(gui: &Shared) -> pbxguard_app::Result<Arc<Dashboard>> {
    let gone = || pbxguard_app::Error::Io("the dashboard's thread has stopped".into());
    let (tx, rx) = tokio::sync::oneshot::channel();
    refresher(&gui.data)?.send((pbxguard_app::clock::now_ms() as i64, tx)).map_err(|_| gone())?;
    let d = Arc::new(rx.await.map_err(|_| gone())??);
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), d.clone()));
    Ok(d)
}

/// The shared summary. A stale one is still served while one task recomputes it in the background,
/// so no viewer waits for the aggregates (hundreds of milliseconds on a busy log) except the first.
async fn summary(gui: &Shared) -> pbxguard_app::Result<Arc<Dashboard>> {
    use std::sync::atomic::Ordering;
    let cached = CACHE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match cached {
        Some((at, d)) if at.elapsed() < FRESH => Ok(d),
        Some((_, d)) => {
            if !REFRESHING.swap(true, Ordering::AcqRel) {
                let gui = gui.clone();
                tokio::spawn(async move {
                    if let Err(e) = compute(&gui).await {
                        tracing::warn!(error = %e, "dashboard summary");
                    }
                    REFRESHING.store(false, Ordering::Release);
                });
            }
            Ok(d)
        }
        None => {
            let _one = FIRST.lock().await;
            if let Some((_, d)) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return Ok(d);
            }
            // In a task of its own: a viewer who gives up (a closed tab, a client timeout) must not
            // take the computation with it, or a crowd of impatient clients never gets a summary.
            let gui = gui.clone();
            tokio::spawn(async move { compute(&gui).await })
                .await
                .map_err(|e| pbxguard_app::Error::Io(format!("the dashboard summary failed: {e}")))?
        }
    }
}

/// `2026-11-30 23:59:01` (UTC) from Unix milliseconds.
pub(super) fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = pbxguard_pbx::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The feed's table row for a stored event (the script builds the same cells for live ones).
pub(super) fn event_row(e: &EventRow) -> Markup {
    html! {
        tr data-id=(e.id) {
            td { (utc(e.at_ms)) }
            td { span.kind { (e.kind) } }
            td { (e.source.as_deref().unwrap_or("")) }
            td { (e.user.as_deref().unwrap_or("")) }
            td { (e.detail) }
        }
    }
}

/// Horizontal bars: one per (label, count).
fn bars(id: &str, title: &str, rows: &[(String, i64)], empty: &str) -> Markup {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let h = 22;
    let height = (rows.len().max(1) * h) as i64 + 4;
    html! {
        div.card {
            h2 { (title) }
            @if rows.is_empty() {
                p.hint { (empty) }
            } @else {
                svg.chart #(id) viewBox={"0 0 400 " (height)} role="img" aria-label=(title) {
                    @for (i, (label, n)) in rows.iter().enumerate() {
                        @let y = (i * h) as i64 + 2;
                        @let w = 1 + n * 150 / max;
                        text x="0" y=(y + 15) font-size="12" fill="#1c2430" { (label.chars().take(32).collect::<String>()) }
                        rect x="200" y=(y + 3) width=(w) height="14" fill="#0b5cad" {}
                        text x=(205 + w) y=(y + 15) font-size="12" fill="#5b6675" { (n) }
                    }
                }
            }
        }
    }
}

const COLOURS: &[&str] = &["#0b5cad", "#b3261e", "#1e7b34", "#9a6700", "#6a3fb5", "#00838f", "#c2185b", "#5b6675"];

/// Attacks per hour, stacked by detector, over the last 24 hours.
fn timeline(d: &Dashboard) -> Markup {
    let hours = reports::HOURS as usize;
    let mut kinds: Vec<&str> = d.per_bucket.iter().map(|r| r.1.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut grid = vec![vec![0i64; kinds.len()]; hours];
    for (b, kind, n) in &d.per_bucket {
        let i = ((b - d.since_ms) / d.bucket_ms) as usize;
        if let (Some(row), Ok(k)) = (grid.get_mut(i), kinds.binary_search(&kind.as_str())) {
            row[k] += n;
        }
    }
    let max = grid.iter().map(|r| r.iter().sum::<i64>()).max().unwrap_or(0).max(1);
    let (w, h, bw) = (24 * 25 + 40, 160i64, 25usize);
    // Stacked bars: (x, y, height, kind index, count).
    let mut rects = Vec::new();
    for (i, row) in grid.iter().enumerate() {
        let mut y = h;
        for (k, n) in row.iter().enumerate().filter(|(_, n)| **n > 0) {
            let bh = (n * (h - 20) / max).max(1);
            y -= bh;
            rects.push((40 + i * bw, y, bh, k, *n));
        }
    }
    html! {
        div.card.wide {
            h2 { "Attacks per hour, last 24 hours (UTC)" }
            @if kinds.is_empty() {
                p.hint { "No attack recorded in the last 24 hours." }
            } @else {
                svg.chart #attacks-chart viewBox={"0 0 " (w) " " (h + 20)} role="img" aria-label="attacks per hour by detector" {
                    text x="0" y="12" font-size="11" fill="#5b6675" { (max) }
                    @for (x, y, bh, k, n) in &rects {
                        rect x=(x) y=(y) width=(bw - 3) height=(bh) fill=(COLOURS[k % COLOURS.len()]) {
                            title { (kinds[*k]) ": " (n) }
                        }
                    }
                    @for i in (0..hours).step_by(6) {
                        text x=(40 + i * bw) y=(h + 15) font-size="11" fill="#5b6675" { (utc(d.since_ms + i as i64 * d.bucket_ms)[11..16]) }
                    }
                }
                ul.legend {
                    @for (k, kind) in kinds.iter().enumerate() {
                        li { svg width="12" height="12" { rect width="12" height="12" fill=(COLOURS[k % COLOURS.len()]) {} } " " (kind) }
                    }
                }
            }
        }
    }
}

fn body(d: &Dashboard, recent: &[EventRow], last_id: i64) -> Markup {
    html! {
        h1 { "Dashboard" }
        div.cards {
            div.card { h2 { "Bans in force" } p.big #bans-count { a href="/bans" { (d.bans_in_force) } } }
            div.card { h2 { "Calls in progress" } p.big #calls-count { a href="/calls" { (d.calls_in_progress) } } }
            div.card { h2 { "Registrations" } p.big #reg-count { (d.registrations) } }
        }
        h2 { "Live security feed" }
        p.hint { "New events and bans appear here as they happen, newest first." span #live-state {} }
        div.table-wrap {
            table #live-feed data-after=(last_id) {
                thead { tr { th { "When (UTC)" } th { "Kind" } th { "Source" } th { "User" } th { "Detail" } } }
                tbody { @for e in recent { (event_row(e)) } }
            }
        }
        div.cards {
            (timeline(d))
            (bars("top-sources", "Top attacking sources", &d.top_sources, "No attacking source in the last 24 hours."))
            (bars("top-extensions", "Top targeted extensions", &d.top_extensions, "No extension targeted in the last 24 hours."))
            (bars("top-agents", "Top scanner User-Agents", &d.top_user_agents,
                "No scanner recognised by its User-Agent in the last 24 hours (User-Agents are recorded only for fingerprinted scanners)."))
        }
        h2 { "Calls in progress" }
        @if d.calls.is_empty() {
            p.hint { "No call in progress." }
        } @else {
            div.table-wrap { table #live-calls {
                thead { tr { th { "Started (UTC)" } th { "From" } th { "To" } th { "State" } th { "Trunk" } } }
                tbody { @for c in &d.calls { tr {
                    td { (utc(c.started_at * 1000)) } td { (c.caller) } td { (c.callee) } td { (c.state) }
                    td { (c.trunk.as_deref().unwrap_or("")) }
                } } }
            } }
        }
        p.hint { "Charts as of " (utc(d.at_ms)) " UTC, refreshed every few seconds." }
    }
}

async fn page(State(gui): State<Shared>, who: Authed) -> Response {
    let d = match summary(&gui).await {
        Ok(d) => d,
        Err(e) => return broken("Dashboard", &who, &e),
    };
    let recent = gui
        .db
        .run(|s| {
            let rows = reports::events(s, &Default::default(), None, None, FEED_ROWS)?;
            Ok((reports::last_event_id(s)?, rows))
        })
        .await;
    match recent {
        Ok((last, rows)) => layout::page("Dashboard", Some(&who), body(&d, &rows, last)).into_response(),
        Err(e) => broken("Dashboard", &who, &e),
    }
}

#[derive(serde::Deserialize)]
struct LiveQuery {
    after: Option<i64>,
}

/// What one stream has: the feed's decisions as they are made, and stored events after `last`.
struct Live {
    gui: Shared,
    decisions: tokio::sync::broadcast::Receiver<Decision>,
    last: i64,
    pending: std::collections::VecDeque<Event>,
    tick: tokio::time::Interval,
}

/// The kinds stored from decisions: shown live from the feed, so not again from the log.
const FROM_DECISIONS: &[&str] = &["ban", "unban", "alert", "throttle", "suspected-spoof"];

fn decision_json(d: &Decision) -> Option<serde_json::Value> {
    let now = pbxguard_app::clock::now_ms() as i64;
    let (kind, source, user, detail) = match d {
        Decision::Ban(b) => (
            "ban",
            Some(b.target.to_string()),
            None,
            format!("{}: {} (offence {})", b.reason.as_str(), b.evidence, b.offence),
        ),
        Decision::Unban { ban, why } => ("unban", Some(ban.target.to_string()), None, why.as_str().to_owned()),
        Decision::Alert { message } => ("alert", None, None, message.clone()),
        Decision::ThrottleUser { user, .. } => {
            ("throttle", None, Some(user.clone()), format!("extension {user} throttled"))
        }
        Decision::SuspectedSpoof { ip, evidence } => ("suspected-spoof", Some(ip.to_string()), None, evidence.clone()),
        Decision::Report { .. } => return None,
    };
    Some(serde_json::json!({"at": utc(now), "kind": kind, "source": source, "user": user, "detail": detail}))
}

fn event_json(e: &EventRow) -> serde_json::Value {
    serde_json::json!({"id": e.id, "at": utc(e.at_ms), "kind": e.kind, "source": e.source, "user": e.user, "detail": e.detail})
}

impl Live {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            tokio::select! {
                d = self.decisions.recv() => match d {
                    Ok(d) => if let Some(v) = decision_json(&d) {
                        return Some(Event::default().event("decision").data(v.to_string()));
                    },
                    // A slow page skips what it missed; the gate never waits for it.
                    Err(RecvError::Lagged(n)) => return Some(Event::default().comment(format!("skipped {n}"))),
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    let after = self.last;
                    let rows = self.gui.db.run(move |s| reports::events(s, &Default::default(), None, Some(after), 100)).await;
                    if let Ok(rows) = rows {
                        for r in rows {
                            self.last = self.last.max(r.id);
                            if !FROM_DECISIONS.contains(&r.kind.as_str()) {
                                self.pending.push_back(Event::default().event("stored").id(r.id.to_string()).data(event_json(&r).to_string()));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The live feed as server-sent events: `decision` (bans, unbans, alerts, throttles: at once) and
/// `stored` (detector events as the daemon stores them, checked every 300 ms; resumable by id).
async fn live(State(gui): State<Shared>, _who: Authed, headers: HeaderMap, Query(q): Query<LiveQuery>) -> Response {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    let last = match resume.or(q.after) {
        Some(id) => id,
        None => gui.db.run(|s| reports::last_event_id(s)).await.unwrap_or(0),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let live = Live { decisions: gui.feed.subscribe(), gui, last, pending: Default::default(), tick };
    let stream = futures_util::stream::unfold(live, |mut l| async move {
        l.next().await.map(|e| (Ok::<_, std::convert::Infallible>(e), l))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_764_547_199_000), "2025-11-30 23:59:59");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00");
    }
}
