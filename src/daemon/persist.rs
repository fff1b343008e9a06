//! Persists what the service reports (bindings) and logs security events, on its own thread so the
//! packet path never waits for the disk. The queue is bounded: when full, events are dropped and counted
//! (bindings are re-sent in full on the next change or refresh, so nothing is lost for good). Bans do
//! not travel in it: they are kept as the latest state per address until written ([`BanWrites`]), so a
//! burst of events never costs a ban; only a storm of detector bans that outruns SQLite for seconds
//! leaves some in memory alone (counted and logged), and an operator's change is always stored.

use anyhow::Result;
use pbxguard_app::{EVENTS_KEPT, EVENTS_MAX_AGE_MS};
use pbxguard_pbx::{Binding, Event};
use pbxguard_shield::{Ban, Decision, Lifted, Prefix};
use pbxguard_store::EventRow;
use pbxguard_store::Store;
use pbxguard_store::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const QUEUE: usize = 65_536;
/// Registrations are written back (and events logged) at most this often, in one transaction: a phone refreshing every
/// minute costs one row write per interval however busy the server is, and a crash loses at most this
/// much (a clean shutdown flushes).
const WRITE_BACK: Duration = Duration::from_millis(250);
/// With nothing to write, the thread blocks on its queue; it still wakes this often, for the warnings
/// about what was dropped.
const IDLE: Duration = Duration::from_secs(5);

pub(crate) enum Msg {
    Event(Event),
    Decision(Decision),
    Flush,
}

#[derive(Clone)]
pub(crate) struct Sender {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    bans: Arc<BanWrites>,
}

impl Sender {
    /// (events dropped because the queue was full, detector bans not stored), since start.
    pub(crate) fn losses(&self) -> (u64, u64) {
        (self.dropped.load(Ordering::Relaxed), self.bans.skipped.load(Ordering::Relaxed))
    }

    pub(crate) fn send(&self, m: Msg) {
        if let Msg::Decision(d) = &m {
            self.bans.note(d);
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(m) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The store as an enforcer: bans kept as their latest state until written, and an event row for each
/// decision.
impl super::enforce::Enforcer for Sender {
    fn enforce(&self, d: &Decision) {
        if !matches!(d, Decision::Report { .. }) {
            self.send(Msg::Decision(d.clone()));
        }
    }
}

/// The bans to write: the latest state of each address or network since the last write (`None`: the
/// row goes). Filled in decision order under the core lock, so the last decision about a target wins.
#[derive(Default)]
pub(crate) struct BanWrites {
    pending: Mutex<HashMap<Prefix, Option<Ban>>>,
    /// Detector bans not stored because a storm outran the disk (still enforced in memory).
    skipped: AtomicU64,
}

/// Distinct targets waiting to be written. Reached only when spoofed sources produce bans faster than
/// SQLite stores them, for seconds on end; then detector bans wait in memory only (the shield caps
/// those), while operators' changes are always kept.
const MAX_PENDING_BANS: usize = 250_000;

impl BanWrites {
    fn note(&self, d: &Decision) {
        let (target, row, operator) = match d {
            Decision::Ban(b) => (b.target, Some(b.clone()), b.reason == pbxguard_shield::BanReason::Manual),
            Decision::Unban { ban, why: Lifted::Operator } => (ban.target, None, true),
            // Ended early: stored with its new end, so it is not restored and still counts as an offence.
            Decision::Unban { ban, why: Lifted::Evicted } => (ban.target, Some(ban.clone()), false),
            // The stored row already says when it ends.
            Decision::Unban { why: Lifted::Expired, .. } | Decision::Report { .. } => return,
            Decision::Alert { .. } | Decision::ThrottleUser { .. } | Decision::SuspectedSpoof { .. } => return,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !operator && pending.len() >= MAX_PENDING_BANS && !pending.contains_key(&target) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.insert(target, row);
    }

    fn write(&self, store: &mut Store) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.is_empty() {
            return;
        }
        let began = store.begin().is_ok();
        for (target, row) in &pending {
            let r = match row {
                Some(b) => store.upsert_ban(&super::rows::ban_to_row(b)),
                None => store.delete_ban(&target.to_string()).map(drop),
            };
            if let Err(e) = r {
                tracing::error!(error = %e, %target, "saving a ban failed");
            }
        }
        if began && let Err(e) = store.commit() {
            tracing::error!(error = %e, bans = pending.len(), "saving bans failed");
        }
    }
}

pub(crate) struct Persister {
    tx: SyncSender<Msg>,
    done: Arc<(Mutex<bool>, Condvar)>,
}

impl Persister {
    /// Writes everything queued so far before returning (bounded wait).
    pub(crate) fn flush(&self) {
        let (m, cv) = &*self.done;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = false;
        if self.tx.send(Msg::Flush).is_ok() {
            let g = m.lock().unwrap_or_else(|p| p.into_inner());
            let _ = cv.wait_timeout_while(g, Duration::from_secs(5), |done| !*done);
        }
    }
}

/// Security events worth keeping are logged and returned as rows; routine ones only logged at debug.
fn event_row(e: &Event, at_ms: i64) -> Option<EventRow> {
    let row = |kind: &str, source: &std::net::SocketAddr, user: Option<&str>, detail: String| EventRow {
        id: 0,
        at_ms,
        kind: kind.to_owned(),
        source: Some(source.ip().to_string()),
        user: user.map(str::to_owned),
        detail,
    };
    match e {
        Event::BindingsChanged { extension, bindings } => {
            tracing::debug!(extension, contacts = bindings.len(), "registration changed");
            None
        }
        Event::AuthFailed { source, user, known, method } => {
            tracing::warn!(%source, user, known, method, "authentication failed");
            let what = if *known { "wrong credentials" } else { "unknown user" };
            Some(row("auth-failed", source, Some(user), format!("{method}: {what}")))
        }
        Event::NonceReplay { source, user } => {
            tracing::warn!(%source, user, "replayed nonce-count refused");
            Some(row("nonce-replay", source, Some(user), "replayed nonce-count refused".into()))
        }
        Event::IdentityMismatch { source, user, aor } => {
            tracing::warn!(%source, user, aor, "authenticated user tried to register another extension");
            Some(row("identity-mismatch", source, Some(user), format!("tried to register {aor}")))
        }
        Event::Malformed { source, reason } => {
            tracing::info!(%source, reason, "malformed message");
            Some(row("malformed", source, None, reason.clone()))
        }
        Event::Scanner { source, evidence } => {
            tracing::warn!(%source, evidence, "scanner");
            Some(row("scanner", source, None, evidence.clone()))
        }
        Event::AclDenied { source, user, group, rule } => {
            tracing::warn!(%source, user, group, ?rule, "outside the extension's ACL");
            let why = rule.as_ref().map_or("no rule matches".to_owned(), |r| format!("rule {r}"));
            Some(row("acl-denied", source, Some(user), format!("group {group}: {why}")))
        }
        Event::UnknownUser { source, user } => {
            tracing::info!(%source, user, "REGISTER for an unknown extension");
            Some(row("unknown-user", source, Some(user), "REGISTER for an unknown extension".into()))
        }
        Event::CallRefused { source, extension, number, status, rule } => {
            tracing::warn!(%source, extension, number, status, rule, "call refused");
            Some(row("call-refused", source, Some(extension), format!("call to {number} refused ({status}): {rule}")))
        }
        Event::ExtensionSuspended { extension, rule } => {
            tracing::warn!(extension, rule, "extension suspended");
            Some(EventRow {
                id: 0,
                at_ms,
                kind: "suspended".into(),
                source: None,
                user: Some(extension.clone()),
                detail: format!("outbound calls suspended: {rule}; re-enable with `pbxguard ext enable {extension}`"),
            })
        }
        Event::TrunkRegistration { trunk, registered, detail } => {
            let kind = if *registered {
                tracing::info!(trunk, detail, "registered at trunk");
                "trunk-registered"
            } else {
                tracing::warn!(trunk, detail, "registration at trunk failed");
                "trunk-registration-failed"
            };
            Some(EventRow {
                id: 0,
                at_ms,
                kind: kind.into(),
                source: None,
                user: Some(trunk.clone()),
                detail: detail.clone(),
            })
        }
        Event::UnusualCall { extension, number, detail, suspended } => {
            tracing::warn!(extension, number, detail, suspended, "unusual call");
            Some(EventRow {
                id: 0,
                at_ms,
                kind: "unusual-call".into(),
                source: None,
                user: Some(extension.clone()),
                detail: format!(
                    "call to {number}: {detail}{}",
                    if *suspended { "; extension suspended, call refused" } else { "" }
                ),
            })
        }
        Event::CallCut { call_id, extension, number, trunk, duration_ms, limit_ms } => {
            let took = pbxguard_shield::config::format_duration_ms(*duration_ms / 1000 * 1000);
            tracing::warn!(call_id, extension, number, trunk, took, "trunk call cut at its longest length");
            Some(EventRow {
                id: 0,
                at_ms,
                kind: "call-cut".into(),
                source: None,
                user: Some(extension.clone()),
                detail: format!(
                    "call with {number} through trunk {trunk} ended after {took}: {}",
                    cut_reason(*limit_ms)
                ),
            })
        }
        Event::CallStarted { .. } | Event::CallAnswered { .. } | Event::CallEnded { .. } => None,
    }
}

/// Why the calls log says a cut call ended.
fn cut_reason(limit_ms: u64) -> String {
    format!("longest trunk call {} reached", pbxguard_shield::config::format_duration_ms(limit_ms))
}

/// The calls log and suspensions: state, not security events.
fn apply_call(store: &Store, e: &Event, now_s: i64) {
    let r = match e {
        Event::CallStarted { call_id, source, caller, callee, category, trunk } => {
            tracing::debug!(call_id, caller, callee, category, ?trunk, "call started");
            store.call_started(&pbxguard_store::CallRow {
                call_id: call_id.clone(),
                caller: caller.clone(),
                callee: callee.clone(),
                category: (*category).to_owned(),
                trunk: trunk.clone(),
                source: source.to_string(),
                state: "ringing".into(),
                status: None,
                started_at: now_s,
                answered_at: None,
                ended_at: None,
                end_reason: None,
            })
        }
        Event::CallAnswered { call_id } => {
            tracing::debug!(call_id, "call answered");
            store.call_answered(call_id, now_s)
        }
        Event::CallEnded { call_id, status } => {
            tracing::debug!(call_id, status, "call ended");
            store.call_ended(call_id, *status, now_s)
        }
        Event::CallCut { call_id, limit_ms, .. } => store.call_cut(call_id, &cut_reason(*limit_ms), now_s),
        Event::ExtensionSuspended { extension, rule } => store.set_suspended(extension, Some(rule)),
        _ => Ok(()),
    };
    if let Err(err) = r {
        tracing::error!(error = %err, "saving a call failed");
    }
}

/// Logs a decision; returns the event row that records it (the ban itself is stored by [`BanWrites`]).
fn decision_row(d: &Decision, at_ms: i64) -> Option<EventRow> {
    let ev = |kind: &str, source: Option<String>, detail: String| {
        Some(EventRow { id: 0, at_ms, kind: kind.to_owned(), source, user: None, detail })
    };
    match d {
        Decision::Ban(b) => {
            let until = b.expires_ms.map_or("until removed".to_owned(), |e| {
                format!("for {}", pbxguard_shield::config::format_duration_ms(e.saturating_sub(b.created_ms)))
            });
            tracing::warn!(target = %b.target, reason = b.reason.as_str(), evidence = b.evidence, offence = b.offence, until, "banned");
            ev(
                "ban",
                Some(b.target.to_string()),
                format!("{}: {} ({until}, offence {})", b.reason.as_str(), b.evidence, b.offence),
            )
        }
        Decision::Unban { ban, why } => {
            tracing::info!(target = %ban.target, why = why.as_str(), "ban lifted");
            ev("unban", Some(ban.target.to_string()), why.as_str().into())
        }
        Decision::Alert { message } => {
            tracing::warn!(message, "alert");
            ev("alert", None, message.clone())
        }
        Decision::ThrottleUser { user, until_ms } => {
            let r = ev("throttle", None, format!("extension {user} throttled until {until_ms}"));
            r.map(|mut r| {
                r.user = Some(user.clone());
                r
            })
        }
        Decision::SuspectedSpoof { ip, evidence } => {
            tracing::warn!(%ip, evidence, "unverified evidence against a known-good address; dropped, not banned");
            ev(
                "suspected-spoof",
                Some(ip.to_string()),
                format!(
                    "{evidence}: dropped, not banned (the address authenticated recently; UDP sources can be forged)"
                ),
            )
        }
        Decision::Report { .. } => None,
    }
}

pub(crate) fn start(db: PathBuf) -> Result<(Sender, Persister)> {
    let (tx, rx) = sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let mut store = Store::open(&db)?;
    let d2 = done.clone();
    let dr = dropped.clone();
    let bans = Arc::new(BanWrites::default());
    let b2 = bans.clone();
    std::thread::Builder::new().name("pbxguard-persist".into()).spawn(move || {
        super::mmsg::lower_thread_priority();
        run(&mut store, &rx, &b2, &d2, &dr)
    })?;
    Ok((Sender { tx: tx.clone(), dropped, bans }, Persister { tx, done }))
}

fn run(store: &mut Store, rx: &Receiver<Msg>, bans: &BanWrites, done: &(Mutex<bool>, Condvar), dropped: &AtomicU64) {
    let mut pending: HashMap<String, Vec<Binding>> = HashMap::new();
    let (mut reported_drops, mut reported_skips) = (0, 0);
    let mut next_write = Instant::now() + WRITE_BACK;
    let (mut first, mut idle) = (None, false);
    loop {
        // Idle: wait for the next message instead of waking four times a second for nothing.
        // The first message after a quiet spell is written at once (an operator waiting on
        // `events` sees it); a busy stream is batched every WRITE_BACK.
        if idle {
            match rx.recv_timeout(IDLE) {
                Ok(m) => first = Some(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            next_write = Instant::now();
        }
        // Sleep, then drain: the packet path's sends never wake this thread one by one.
        std::thread::sleep(next_write.saturating_duration_since(Instant::now()));
        let mut flush = false;
        let mut rows: Vec<EventRow> = Vec::new();
        let mut calls: Vec<Event> = Vec::new();
        let mut received = 0usize;
        loop {
            let next = match first.take() {
                Some(m) => Ok(m),
                None => rx.try_recv(),
            };
            received += usize::from(next.is_ok());
            match next {
                Ok(Msg::Event(Event::BindingsChanged { extension, bindings })) => {
                    pending.insert(extension, bindings);
                }
                Ok(Msg::Event(e)) => {
                    rows.extend(event_row(&e, pbxguard_app::clock::now_ms() as i64));
                    if matches!(
                        e,
                        Event::CallStarted { .. }
                            | Event::CallAnswered { .. }
                            | Event::CallEnded { .. }
                            | Event::CallCut { .. }
                            | Event::ExtensionSuspended { .. }
                    ) {
                        calls.push(e);
                    }
                }
                Ok(Msg::Decision(d)) => rows.extend(decision_row(&d, pbxguard_app::clock::now_ms() as i64)),
                Ok(Msg::Flush) => flush = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        next_write = Instant::now() + WRITE_BACK;
        // Bans are noted with a message of their own, so nothing received means nothing to write.
        idle = received == 0 && pending.is_empty();
        bans.write(store);
        if !pending.is_empty() {
            let rows: Vec<(String, Vec<pbxguard_store::Binding>)> = pending
                .drain()
                .map(|(ext, bs)| {
                    let rows = bs.iter().map(|b| super::rows::binding_to_row(&ext, b)).collect();
                    (ext, rows)
                })
                .collect();
            if let Err(e) =
                store.replace_bindings_batch(&rows.iter().map(|(e, r)| (e.as_str(), r.as_slice())).collect::<Vec<_>>())
            {
                tracing::error!(error = %e, "saving registrations failed");
            }
        }
        if !calls.is_empty() {
            let now_s = pbxguard_app::clock::now_ms() as i64 / 1000;
            // One transaction for the batch: a busy proxy writes a few rows per call.
            let began = store.begin().is_ok();
            for e in &calls {
                apply_call(store, e, now_s);
            }
            if began && let Err(e) = store.commit() {
                tracing::error!(error = %e, "saving calls failed");
            }
        }
        if !rows.is_empty() {
            let now = pbxguard_app::clock::now_ms() as i64;
            if let Err(e) = store.append_events(&rows, EVENTS_KEPT, EVENTS_MAX_AGE_MS, now) {
                tracing::error!(error = %e, "saving security events failed");
            }
        }
        let s = bans.skipped.load(Ordering::Relaxed);
        if s != reported_skips {
            tracing::warn!(
                bans = s - reported_skips,
                "bans arrive faster than they can be stored; these are enforced but not stored"
            );
            reported_skips = s;
        }
        let d = dropped.load(Ordering::Relaxed);
        if d != reported_drops {
            tracing::warn!(dropped = d - reported_drops, "event queue full; events dropped");
            reported_drops = d;
        }
        if flush {
            let (m, cv) = done;
            *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbxguard_shield::BanReason;

    fn ban(i: u32, reason: BanReason) -> Decision {
        Decision::Ban(Ban {
            target: Prefix::host(std::net::Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i)).into()),
            reason,
            evidence: String::new(),
            first_seen_ms: 0,
            created_ms: 0,
            expires_ms: Some(1),
            offence: 1,
            note: None,
        })
    }

    #[test]
    fn a_storm_that_outruns_the_disk_never_costs_an_operators_change() {
        let w = BanWrites::default();
        for i in 0..MAX_PENDING_BANS as u32 {
            w.note(&ban(i, BanReason::Scanner));
        }
        // Full: a new detector ban waits in memory only (counted); a change to a pending target and an
        // operator's ban are kept.
        w.note(&ban(u32::MAX - 1, BanReason::Flood));
        w.note(&ban(7, BanReason::Flood));
        w.note(&ban(u32::MAX - 2, BanReason::Manual));
        let pending = w.pending.lock().unwrap();
        assert_eq!((pending.len(), w.skipped.load(Ordering::Relaxed)), (MAX_PENDING_BANS + 1, 1));
        let reason = |i: u32| {
            let t = Prefix::host(std::net::Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i)).into());
            pending.get(&t).and_then(|b| b.as_ref().map(|b| b.reason))
        };
        assert_eq!((reason(7), reason(u32::MAX - 2)), (Some(BanReason::Flood), Some(BanReason::Manual)));
    }
}
