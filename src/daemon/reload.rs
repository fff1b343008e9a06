//! Applies what other processes (the CLI) commit, within a second, and runs the periodic housekeeping.

use super::net::Net;
use super::{Shared, acl_groups, directory, drain, lock, now_ms, persist, trusted};
use crate::commands::now_secs;
use crate::settings::{self, registrar_config};
use pbxguard_shield::Prefix;
use pbxguard_store::Store;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

fn reload_config(
    store: &Store,
    net: &Net,
    listening: &[SocketAddr],
    lists: &mut Vec<(String, i64, i64)>,
) -> anyhow::Result<()> {
    // Blacklists are compiled here, outside the lock, and only when their content changed.
    let fp = crate::blacklist::fingerprint(store)?;
    let blacklist = if fp != *lists {
        let set = crate::blacklist::load(store)?;
        tracing::info!(entries = set.len(), "blacklists loaded");
        *lists = fp;
        Some(std::sync::Arc::new(set))
    } else {
        None
    };
    let dir = directory(store)?;
    let plan = super::dialplan(store)?;
    let tls_trunks = super::tls::peers(&store.trunks()?, &plan.trunks);
    let cfg = registrar_config(store)?;
    let shield_cfg = settings::shield_config(store)?;
    let fingerprints = settings::fingerprints(store)?;
    let trusted = trusted(store, listening, &plan.trunks)?;
    let _ = acl_groups(store)?;
    net.set_tls_peers(tls_trunks);
    let mut core = lock(&net.shared);
    if core.sip.config() != &cfg {
        tracing::info!(?cfg, "registrar settings changed");
        core.sip.set_config(cfg);
    }
    if core.shield.config() != &shield_cfg {
        tracing::info!(?shield_cfg, "protection settings changed");
        core.shield.set_config(shield_cfg);
    }
    core.sip.set_fingerprints(fingerprints);
    core.shield.set_trusted(trusted);
    core.sip.set_directory(std::sync::Arc::new(dir));
    core.sip.set_dialplan(std::sync::Arc::new(plan));
    if let Some(b) = blacklist {
        core.shield.set_blacklist(b);
    }
    Ok(())
}

/// Applies operators' ban changes queued since `after`; returns the last applied id.
fn apply_ban_ops(store: &Store, shared: &Shared, events: &persist::Sender, after: i64) -> anyhow::Result<i64> {
    let ops = store.ban_ops_after(after)?;
    let Some(last) = ops.last().map(|o| o.id) else { return Ok(after) };
    {
        let mut core = lock(shared);
        for op in ops {
            let Ok(target) = Prefix::parse_lenient(&op.target) else { continue };
            if op.ban {
                if let Err(e) = core.shield.ban(now_ms(), target, op.duration_ms.map(|d| d as u64), op.note) {
                    tracing::warn!(%target, error = %e, "operator ban not applied");
                }
            } else {
                core.shield.unban(target);
            }
        }
        let super::Core { shield, sip } = &mut *core;
        drain(shield, sip, events);
    }
    Ok(last)
}

pub(crate) fn run(db: &Path, net: &Net, listening: &[SocketAddr], mut lists: Vec<(String, i64, i64)>) {
    let (shared, events) = (&net.shared, &net.events);
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "reload thread cannot open the database; CLI changes need a restart");
            return;
        }
    };
    let mut version = store.data_version().unwrap_or(0);
    let mut revision = store.config_revision().unwrap_or(0);
    let mut last_op = store.last_ban_op().unwrap_or(0);
    let mut last_purge = now_secs();
    let mut last_calls_purge = 0;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        match store.data_version() {
            Ok(v) if v != version => {
                version = v;
                match store.config_revision() {
                    Ok(r) if r != revision => {
                        revision = r;
                        if let Err(e) = reload_config(&store, net, listening, &mut lists) {
                            tracing::error!(error = %e, "reloading configuration failed; keeping the previous one");
                        }
                        match apply_ban_ops(&store, shared, events, last_op) {
                            Ok(id) => last_op = id,
                            Err(e) => tracing::error!(error = %e, "applying ban changes failed"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "reading the configuration revision failed"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checking the database for changes failed"),
        }
        let now = now_secs();
        if now - last_purge >= 1 {
            last_purge = now;
            {
                let mut core = lock(shared);
                let super::Core { shield, sip } = &mut *core;
                let now_ms = now_ms();
                sip.handle_timeout(now_ms);
                shield.handle_timeout(now_ms);
                drain(shield, sip, events);
            }
            if let Some(dir) = db.parent()
                && let Err(e) = write_metrics(dir, shared, events)
            {
                tracing::debug!(error = %e, "writing metrics.prom failed");
            }
            if let Err(e) = store.purge_expired_bindings(now) {
                tracing::warn!(error = %e, "purging expired registrations failed");
            }
            // Expired bans are kept while they still count as offences (history window), then dropped.
            let history_ms = lock(shared).shield.config().history_ms as i64;
            if let Err(e) = store.purge_bans(now * 1000 - history_ms) {
                tracing::warn!(error = %e, "purging old bans failed");
            }
            if now - last_calls_purge >= 3600 {
                last_calls_purge = now;
                if let Err(e) = store.purge_calls(now - CALLS_KEPT_S) {
                    tracing::warn!(error = %e, "purging the calls log failed");
                }
            }
        }
    }
}

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
        crate::blacklist::refresh_due(&mut store, interval);
        std::thread::sleep(Duration::from_secs(30));
    }
}

/// Writes `<data>/metrics.prom` in the Prometheus text format (node_exporter's textfile collector reads
/// it as is), replaced atomically every second.
fn write_metrics(dir: &Path, shared: &Shared, persister: &persist::Sender) -> std::io::Result<()> {
    let (events_lost, bans_unstored) = persister.losses();
    let (c, bans, listed, (sources, users, evicted), regs, (tx, nonces, _), dropped_events, calls) = {
        let core = lock(shared);
        (
            core.shield.counters(),
            core.shield.ban_count(),
            core.shield.blacklist().len(),
            core.shield.tracker_stats(),
            core.sip.registrar().binding_count(),
            core.sip.table_sizes(),
            core.sip.dropped_events(),
            core.sip.active_calls(),
        )
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
        c.dropped_banned, c.dropped_blacklisted, c.bans, c.evicted_bans
    );
    let tmp = dir.join("metrics.prom.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join("metrics.prom"))
}
