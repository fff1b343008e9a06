//! Reports banned attackers to a voipbl-style HTTP endpoint (setting `report.url`; off when empty):
//! one form POST per attacker (`ip`, `reason`, `evidence`, `time`), queued, retried with exponential
//! backoff, and rate-limited (`report.per_minute`). The queue is bounded; when full the oldest report is
//! dropped (a reporter that cannot keep up must not grow memory).

use pbxguard_app::settings;
use pbxguard_store::Store;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

const QUEUE: usize = 10_000;
const MAX_ATTEMPTS: u32 = 8;

pub(crate) struct Report {
    pub(crate) ip: IpAddr,
    pub(crate) reason: &'static str,
    pub(crate) evidence: String,
    pub(crate) at_ms: u64,
}

struct Pending {
    report: Report,
    attempts: u32,
    not_before: Instant,
}

/// The reporter as an enforcer: detector bans' reports are queued for its thread.
pub(crate) struct Reporter(SyncSender<Report>);

impl super::enforce::Enforcer for Reporter {
    fn enforce(&self, d: &pbxguard_shield::Decision) {
        if let pbxguard_shield::Decision::Report { ip, reason, evidence } = d {
            let r = Report {
                ip: *ip,
                reason: reason.as_str(),
                evidence: evidence.clone(),
                at_ms: pbxguard_app::clock::now_ms(),
            };
            // Full: the report is dropped; the ban itself is unaffected.
            let _ = self.0.try_send(r);
        }
    }
}

pub(crate) fn start(db: &Path) -> anyhow::Result<Reporter> {
    let (tx, rx) = sync_channel(QUEUE);
    let store = Store::open(db)?;
    std::thread::Builder::new().name("pbxguard-report".into()).spawn(move || run(&store, &rx))?;
    Ok(Reporter(tx))
}

fn post(agent: &ureq::Agent, url: &str, r: &Report) -> Result<(), String> {
    let ip = r.ip.to_string();
    let time = (r.at_ms / 1000).to_string();
    let form = [("ip", ip.as_str()), ("reason", r.reason), ("evidence", r.evidence.as_str()), ("time", time.as_str())];
    match agent.post(url).send_form(form) {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// How long an idle reporter sleeps when nothing arrives (settings are read again when it wakes).
const IDLE: Duration = Duration::from_secs(60);
/// Settings are read again at most this often while reports flow.
const SETTINGS_EVERY: Duration = Duration::from_secs(2);

fn run(store: &Store, rx: &Receiver<Report>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let (mut url, mut per_minute) = (String::new(), 30u32);
    let mut checked: Option<Instant> = None;
    let (mut tokens, mut refilled) = (0f64, Instant::now());
    let queue = |pending: &mut VecDeque<Pending>, report| {
        if pending.len() >= QUEUE {
            pending.pop_front();
            tracing::warn!("report queue full; oldest report dropped");
        }
        pending.push_back(Pending { report, attempts: 0, not_before: Instant::now() });
    };
    // Sleeps up to `wait` for a report; false when the daemon is stopping.
    let next = |pending: &mut VecDeque<Pending>, wait: Duration| match rx.recv_timeout(wait) {
        Ok(report) => {
            queue(pending, report);
            true
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => true,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => false,
    };
    loop {
        loop {
            match rx.try_recv() {
                Ok(report) => queue(&mut pending, report),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if checked.is_none_or(|t| t.elapsed() >= SETTINGS_EVERY) {
            checked = Some(Instant::now());
            url = settings::get(store, "report.url").unwrap_or_default();
            per_minute = settings::get(store, "report.per_minute").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
        }
        if url.is_empty() {
            // Reporting off: what arrived is dropped. The next report wakes the thread.
            pending.clear();
            // The settings are read again when that report is looked at, if they are older than
            // SETTINGS_EVERY: turning reporting on takes effect within that.
            if !next(&mut pending, IDLE) {
                return;
            }
            continue;
        }
        let rate = f64::from(per_minute) / 60.0;
        tokens = (tokens + refilled.elapsed().as_secs_f64() * rate).min(f64::from(per_minute.max(1)));
        refilled = Instant::now();
        let now = Instant::now();
        let due = pending.iter().position(|p| p.not_before <= now);
        match due {
            Some(i) if tokens >= 1.0 => {
                tokens -= 1.0;
                let mut p = pending.remove(i).expect("index from position");
                match post(&agent, &url, &p.report) {
                    Ok(()) => tracing::info!(ip = %p.report.ip, reason = p.report.reason, "attacker reported"),
                    Err(e) if p.attempts + 1 >= MAX_ATTEMPTS => {
                        tracing::warn!(ip = %p.report.ip, error = e, "report failed; giving up after {MAX_ATTEMPTS} attempts");
                    }
                    Err(e) => {
                        p.attempts += 1;
                        let backoff = Duration::from_secs(1 << p.attempts.min(8)).min(Duration::from_secs(300));
                        tracing::debug!(ip = %p.report.ip, error = e, ?backoff, "report failed; will retry");
                        p.not_before = Instant::now() + backoff;
                        pending.push_back(p);
                    }
                }
            }
            _ => {
                // Until a report arrives, the first retry is due, or the rate allows the next post.
                let retry = pending.iter().map(|p| p.not_before.saturating_duration_since(now)).min();
                let token = (rate > 0.0 && tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / rate));
                let wait = match (retry, due) {
                    (_, Some(_)) => token.unwrap_or(IDLE),
                    (Some(r), None) => r,
                    (None, None) => IDLE,
                };
                if !next(&mut pending, wait.clamp(Duration::from_millis(10), IDLE)) {
                    return;
                }
            }
        }
    }
}
