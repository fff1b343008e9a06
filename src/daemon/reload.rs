//! Applies what other processes (the CLI) commit, within a second, and runs the periodic housekeeping.

use super::net::Net;
use super::state::State;
use pbxguard_app::clock::{now_ms, now_secs};
use pbxguard_app::settings::{self, registrar_config};
use pbxguard_app::views;
use pbxguard_shield::Prefix;
use pbxguard_store::prelude::*;
use pbxguard_store::{Store, Topic};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Applies what changed, by topic: each view is rebuilt only when something it is built from changed
/// (a new extension rebuilds the directory, not the dial plan, and resolves no trunk name).
fn reload(
    store: &Store,
    net: &Net,
    listening: &[SocketAddr],
    lists: &mut Vec<(String, i64, i64)>,
    topics: &BTreeSet<Topic>,
) -> anyhow::Result<()> {
    let any = |t: &[Topic]| t.iter().any(|t| topics.contains(t));
    // Blacklists are compiled here, outside the lock, and only when their content changed.
    let blacklist = if any(&[Topic::Blacklists]) {
        let fp = pbxguard_app::blacklist::fingerprint(store)?;
        if fp != *lists {
            let set = pbxguard_app::blacklist::load(store)?;
            tracing::info!(entries = set.len(), "blacklists loaded");
            *lists = fp;
            Some(std::sync::Arc::new(set))
        } else {
            None
        }
    } else {
        None
    };
    // The directory is built from extensions and ACL groups alone.
    let dir = any(&[Topic::Extensions, Topic::Acls]).then(|| views::directory(store)).transpose()?;
    // The dial plan carries the numbering plan and fraud limits (settings) and the trunks' addresses,
    // which the trusted networks include.
    let plan_changed = any(&[Topic::Trunks, Topic::Routes, Topic::Dids, Topic::Cos, Topic::Settings]);
    let plan = plan_changed.then(|| views::dialplan(store, &crate::resolve::System)).transpose()?;
    if let Some(plan) = &plan {
        net.set_tls_peers(super::tls::peers(&store.trunks()?, &plan.trunks));
    }
    let settings = any(&[Topic::Settings])
        .then(|| {
            anyhow::Ok((registrar_config(store)?, settings::shield_config(store)?, settings::fingerprints(store)?))
        })
        .transpose()?;
    let mut tx = Vec::new();
    net.state.with_sip(&mut tx, |gate, sip| {
        if let Some((cfg, shield_cfg, fingerprints)) = settings {
            if sip.config() != &cfg {
                tracing::info!(?cfg, "registrar settings changed");
                sip.set_config(cfg);
            }
            if gate.config() != &shield_cfg {
                tracing::info!(?shield_cfg, "protection settings changed");
                gate.set_config(shield_cfg);
            }
            sip.set_fingerprints(fingerprints);
        }
        if let Some(dir) = dir {
            sip.set_directory(std::sync::Arc::new(dir));
        }
        if let Some(plan) = plan {
            sip.set_dialplan(std::sync::Arc::new(plan));
        }
        if let Some(b) = blacklist {
            gate.set_blacklist(b);
        }
    });
    if any(&[Topic::Settings]) {
        net.conns.set_timeouts(settings::stream_timeouts(store)?);
    }
    if plan_changed || any(&[Topic::Trusted]) {
        let trunks: Vec<_> = net.state.sip().dialplan().trunks.iter().map(|t| t.addr).collect();
        let trusted = views::trusted(store, listening, &trunks)?;
        net.state.with_gate(|gate| gate.set_trusted(trusted));
    }
    Ok(())
}

/// Applies operators' ban changes queued since `after`; returns the last applied id.
fn apply_ban_ops(store: &Store, state: &State, after: i64) -> anyhow::Result<i64> {
    let ops = store.ban_ops_after(after)?;
    let Some(last) = ops.last().map(|o| o.id) else { return Ok(after) };
    let now = now_ms();
    state.with_gate(|gate| {
        for op in ops {
            let Ok(target) = Prefix::parse_lenient(&op.target) else { continue };
            if op.ban {
                if let Err(e) = gate.ban(now, target, op.duration_ms.map(|d| d as u64), op.note) {
                    tracing::warn!(%target, error = %e, "operator ban not applied");
                }
            } else {
                gate.unban(target);
            }
        }
    });
    Ok(last)
}

pub(crate) fn run(
    db: &Path,
    net: &std::sync::Arc<Net>,
    listening: &[SocketAddr],
    mut lists: Vec<(String, i64, i64)>,
    changes: &super::changes::Subscription,
) {
    let state = &net.state;
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "reload thread cannot open the database; CLI changes need a restart");
            return;
        }
    };
    let mut last_op = store.last_ban_op().unwrap_or(0);
    let mut last_calls_purge = 0;
    let mut housekeeping = std::time::Instant::now();
    let mut metrics = Metrics::default();
    loop {
        // Woken at once by what another process commits; housekeeping once a second.
        let topics = changes.wait(Some(housekeeping.saturating_duration_since(std::time::Instant::now())));
        if !topics.is_empty() {
            tracing::debug!(?topics, "applying changes");
            if let Err(e) = reload(&store, net, listening, &mut lists, &topics) {
                tracing::error!(error = %e, "reloading configuration failed; keeping the previous one");
            }
            if topics.contains(&Topic::Bans) {
                match apply_ban_ops(&store, state, last_op) {
                    Ok(id) => last_op = id,
                    Err(e) => tracing::error!(error = %e, "applying ban changes failed"),
                }
            }
        }
        if std::time::Instant::now() < housekeeping {
            continue;
        }
        housekeeping = std::time::Instant::now() + Duration::from_secs(1);
        let now = now_secs();
        {
            // Ban expiry; the SIP service's own timers run on the timer thread.
            let now_ms = now_ms();
            state.with_gate(|gate| gate.handle_timeout(now_ms));
            if let Some(dir) = db.parent()
                && let Err(e) = metrics.write(dir, state, &net.conns)
            {
                tracing::debug!(error = %e, "writing metrics.prom failed");
            }
            if let Err(e) = store.purge_expired_bindings(now) {
                tracing::warn!(error = %e, "purging expired registrations failed");
            }
            // Expired bans are kept while they still count as offences (history window), then dropped.
            let history_ms = state.gate().config().history_ms as i64;
            if let Err(e) = store.purge_bans(now * 1000 - history_ms) {
                tracing::warn!(error = %e, "purging old bans failed");
            }
            if now - last_calls_purge >= 3600 {
                last_calls_purge = now;
                if let Err(e) = store.prune_changes(CHANGES_KEPT) {
                    tracing::warn!(error = %e, "pruning the change feed failed");
                }
                if let Err(e) = store.purge_calls(now - CALLS_KEPT_S) {
                    tracing::warn!(error = %e, "purging the calls log failed");
                }
            }
        }
    }
}

/// Changes kept in the feed for readers that fall behind.
const CHANGES_KEPT: i64 = 100_000;

/// Ended calls stay in the calls log this long.
const CALLS_KEPT_S: i64 = 30 * 86_400;

/// Downloads URL blacklists again when their refresh interval has passed.
pub(crate) fn refresh_blacklists(db: &Path) {
    let mut store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "blacklist refresh thread cannot open the database");
            return;
        }
    };
    loop {
        let interval = settings::get(&store, "blacklist.refresh")
            .ok()
            .and_then(|v| pbxguard_shield::config::parse_duration_ms(&v))
            .map_or(4 * 3600, |ms| (ms / 1000) as i64);
        refresh_due(&mut store, interval);
        std::thread::sleep(Duration::from_secs(30));
    }
}

/// Downloads again the URL lists whose refresh interval has passed. Failures are recorded on the list
/// and keep its previous content (fail-safe: an unreachable server never empties a blacklist).
fn refresh_due(store: &mut Store, interval_s: i64) {
    let Ok(lists) = pbxguard_app::blacklist::due(store, interval_s) else { return };
    for b in lists {
        let imported = crate::download::fetch(&b.source)
            .and_then(|text| Ok(pbxguard_app::blacklist::import(store, &b.name, &b.source, &text, |_, _| {})?));
        match imported {
            Ok(r) => tracing::info!(list = b.name, entries = r.entries, "blacklist refreshed"),
            Err(e) => {
                tracing::warn!(list = b.name, error = %e, "blacklist refresh failed; keeping the previous entries");
                let _ = store.blacklist_error(&b.name, &e.to_string());
            }
        }
    }
}

/// `<data>/metrics.prom`, in the Prometheus text format (node_exporter's textfile collector reads it as
/// is), replaced atomically: within a second of a change, and every [`METRICS_REFRESH`] regardless, so
/// that its age (node_exporter's `node_textfile_mtime_seconds`) shows the daemon is alive. An idle
/// daemon does not write its disk every second.
#[derive(Default)]
struct Metrics {
    written: String,
    at: Option<std::time::Instant>,
}

const METRICS_REFRESH: Duration = Duration::from_secs(10);

impl Metrics {
    fn write(&mut self, dir: &Path, state: &State, conns: &super::conns::Conns) -> std::io::Result<()> {
        let text = metrics_text(state, conns);
        if text == self.written && self.at.is_some_and(|t| t.elapsed() < METRICS_REFRESH) {
            return Ok(());
        }
        let tmp = dir.join("metrics.prom.tmp");
        std::fs::write(&tmp, &text)?;
        std::fs::rename(tmp, dir.join("metrics.prom"))?;
        (self.written, self.at) = (text, Some(std::time::Instant::now()));
        Ok(())
    }
}

fn metrics_text(state: &State, conns: &super::conns::Conns) -> String {
    let (events_lost, bans_unstored) = state.events.losses();
    let (c, bans, listed, (sources, users, evicted)) = {
        let gate = state.gate();
        (gate.counters(), gate.ban_count(), gate.blacklist().len(), gate.tracker_stats())
    };
    let (regs, (tx, nonces, _), dropped_events, calls) = {
        let sip = state.sip();
        (sip.registrar().binding_count(), sip.table_sizes(), sip.dropped_events(), sip.active_calls())
    };
    let text = format!(
        "# HELP pbxguard_dropped_total Messages dropped before parsing, without a reply.\n\
         # TYPE pbxguard_dropped_total counter\n\
         pbxguard_dropped_total{{reason=\"banned\"}} {}\n\
         pbxguard_dropped_total{{reason=\"blacklisted\"}} {}\n\
         # HELP pbxguard_bans_total Bans decided by the detectors since start.\n\
         # TYPE pbxguard_bans_total counter\n\
         pbxguard_bans_total {}\n\
         # HELP pbxguard_bans_active Bans in force.\n\
         # TYPE pbxguard_bans_active gauge\n\
         pbxguard_bans_active {bans}\n\
         # HELP pbxguard_bans_evicted_total Detector bans lifted early because the ban table was full (shield.max_bans).\n\
         # TYPE pbxguard_bans_evicted_total counter\n\
         pbxguard_bans_evicted_total {}\n\
         # HELP pbxguard_spoofs_dropped_total Messages from known-good addresses dropped as probable spoofs (over the flood limit, or unverified evidence), without a ban.\n\
         # TYPE pbxguard_spoofs_dropped_total counter\n\
         pbxguard_spoofs_dropped_total {}\n\
         # HELP pbxguard_blacklist_entries Entries in the loaded blacklists.\n\
         # TYPE pbxguard_blacklist_entries gauge\n\
         pbxguard_blacklist_entries {listed}\n\
         # HELP pbxguard_trackers Detector state entries (capped).\n\
         # TYPE pbxguard_trackers gauge\n\
         pbxguard_trackers{{kind=\"source\"}} {sources}\n\
         pbxguard_trackers{{kind=\"user\"}} {users}\n\
         pbxguard_trackers{{kind=\"transaction\"}} {tx}\n\
         pbxguard_trackers{{kind=\"nonce\"}} {nonces}\n\
         # HELP pbxguard_trackers_evicted_total Detector entries evicted by the cap.\n\
         # TYPE pbxguard_trackers_evicted_total counter\n\
         pbxguard_trackers_evicted_total {evicted}\n\
         # HELP pbxguard_registrations Current bindings.\n\
         # TYPE pbxguard_registrations gauge\n\
         pbxguard_registrations {regs}\n\
         # HELP pbxguard_calls Calls being set up or established (dialogs).\n\
         # TYPE pbxguard_calls gauge\n\
         pbxguard_calls {calls}\n\
         # HELP pbxguard_events_dropped_total Service events dropped because the queue was full.\n\
         # TYPE pbxguard_events_dropped_total counter\n\
         pbxguard_events_dropped_total {dropped_events}\n\
         # HELP pbxguard_persist_dropped_total What did not reach the database: event rows (queue full), detector bans (a storm outran the disk; still enforced).\n\
         # TYPE pbxguard_persist_dropped_total counter\n\
         pbxguard_persist_dropped_total{{kind=\"event\"}} {events_lost}\n\
         pbxguard_persist_dropped_total{{kind=\"ban\"}} {bans_unstored}\n",
        c.dropped_banned, c.dropped_blacklisted, c.bans, c.evicted_bans, c.spoofs_dropped
    );
    let mut text = text;
    text.push_str(&conns_metrics(conns));
    text
}

/// TCP and TLS connections: open, opened, and how each one refused or closed by the daemon ended.
fn conns_metrics(conns: &super::conns::Conns) -> String {
    use std::fmt::Write;
    let s = conns.stats();
    let mut text = format!(
        "# HELP pbxguard_connections_open Accepted TCP/TLS connections open.\n\
         # TYPE pbxguard_connections_open gauge\n\
         pbxguard_connections_open {}\n\
         # HELP pbxguard_connection_sources Sources holding accepted TCP/TLS connections.\n\
         # TYPE pbxguard_connection_sources gauge\n\
         pbxguard_connection_sources {}\n\
         # HELP pbxguard_connections_opened_total TCP/TLS connections accepted since start.\n\
         # TYPE pbxguard_connections_opened_total counter\n\
         pbxguard_connections_opened_total {}\n\
         # HELP pbxguard_connections_ended_total TCP/TLS connections refused at accept (global cap; banned source or the connections detector) or closed by a timeout.\n\
         # TYPE pbxguard_connections_ended_total counter\n",
        s.open, s.sources, s.opened
    );
    for (o, n) in s.outcomes {
        let _ = writeln!(text, "pbxguard_connections_ended_total{{reason=\"{}\"}} {n}", o.as_str());
    }
    text
}
