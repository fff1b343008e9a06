//! The firewall's rollback timer, owned by the daemon so that it survives the SSH session that asked
//! for an apply (research/firewall.md §4: netplan's timer dies with the terminal). The CLI queues an
//! apply in the store; this thread sees the `firewall` topic in the change feed, loads the ruleset with
//! `nft`, keeps the chains it replaced, and puts them back at the deadline unless a confirm (another
//! store write) came first. Both moves are conditional updates, so a confirm racing the deadline has
//! exactly one winner.
//!
//! The state lives in the store, not in this thread: a daemon restarted within the window re-arms
//! the rollback, and one restarted after it rolls back at once. At start, with `firewall.enabled`, the
//! last confirmed ruleset is loaded again if the kernel has none of our chains (after a reboot).

use super::changes::Subscription;
use crate::nftcmd as nft;
use pbxguard_app::clock::now_ms;
use pbxguard_app::firewall as fw;
use pbxguard_store::prelude::*;
use pbxguard_store::{ApplyState, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `changes` carries the `firewall` topic: requests and confirms wake the thread; a rollback's deadline
/// is slept to directly.
pub(crate) fn start(db: PathBuf, changes: Subscription) -> std::io::Result<()> {
    std::thread::Builder::new().name("pbxguard-firewall".into()).spawn(move || run(&db, &changes)).map(drop)
}

fn run(db: &Path, changes: &Subscription) {
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "firewall thread cannot open the database; applies and rollbacks will not run");
            return;
        }
    };
    restore_after_boot(&store);
    let mut dirty = true;
    let mut deadline: Option<i64> = None;
    loop {
        if dirty {
            carry_out_requests(&store);
            deadline = next_deadline(&store);
        }
        if deadline.is_some_and(|d| now_ms() as i64 >= d) {
            roll_back_due(&store);
            deadline = next_deadline(&store);
        }
        let until_deadline = deadline.map(|d| Duration::from_millis((d - now_ms() as i64).max(1) as u64));
        dirty = !changes.wait(until_deadline).is_empty();
    }
}

fn carry_out_requests(store: &Store) {
    let rows = match fw::requested(store) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reading firewall apply requests failed");
            return;
        }
    };
    for row in rows {
        match nft::apply(&row.ruleset) {
            Err(e) => {
                tracing::warn!(apply = row.id, error = %e, "firewall ruleset not loaded");
                let _ = fw::mark_failed(store, row.id, &e);
            }
            Ok(previous) => {
                let deadline = (row.rollback_ms > 0).then(|| now_ms() as i64 + row.rollback_ms);
                match fw::mark_applied(store, row.id, previous.as_deref(), deadline) {
                    Ok(true) => {
                        tracing::info!(apply = row.id, rollback_ms = row.rollback_ms, "firewall ruleset loaded")
                    }
                    // The CLI gave up waiting and told its operator nothing changed: make that true.
                    _ => {
                        tracing::warn!(
                            apply = row.id,
                            "firewall apply abandoned by its caller; putting the previous ruleset back"
                        );
                        if let Err(e) = nft::restore(previous.as_deref()) {
                            tracing::error!(apply = row.id, error = %e, "restoring the previous firewall ruleset failed");
                        }
                    }
                }
            }
        }
    }
}

fn next_deadline(store: &Store) -> Option<i64> {
    fw::armed(store).ok()?.iter().filter_map(|r| r.deadline_ms).min()
}

fn roll_back_due(store: &Store) {
    let now = now_ms() as i64;
    let Ok(rows) = fw::armed(store) else { return };
    for row in rows.into_iter().filter(|r| r.deadline_ms.is_some_and(|d| d <= now)) {
        let detail = format!("no confirm within {} s; the previous ruleset was restored", row.rollback_ms / 1000);
        match fw::claim_rollback(store, row.id, &detail) {
            Ok(true) => match nft::restore(row.previous.as_deref()) {
                Ok(()) => {
                    tracing::warn!(apply = row.id, "firewall apply not confirmed in time: previous ruleset restored")
                }
                Err(e) => tracing::error!(apply = row.id, error = %e, "firewall rollback failed"),
            },
            Ok(false) => {}
            Err(e) => tracing::error!(apply = row.id, error = %e, "firewall rollback: updating the store failed"),
        }
    }
}

/// After a reboot the kernel has no ruleset: load the last confirmed one again, if the firewall is on.
fn restore_after_boot(store: &Store) {
    let enabled = pbxguard_app::settings::get(store, "firewall.enabled").is_ok_and(|v| v == "true");
    if !enabled {
        return;
    }
    let Ok(Some(row)) = store.last_firewall_apply(&[ApplyState::Confirmed]) else { return };
    match nft::list_table() {
        Ok(Some(listing)) if !pbxguard_firewall::render::chain_names(&listing).is_empty() => {}
        Ok(_) => match nft::apply(&row.ruleset) {
            Ok(_) => tracing::info!(
                apply = row.id,
                "no pbxguard chains in the kernel: last confirmed firewall ruleset loaded"
            ),
            Err(e) => tracing::error!(apply = row.id, error = %e, "loading the confirmed firewall ruleset failed"),
        },
        Err(e) => tracing::warn!(error = %e, "cannot list the firewall table"),
    }
}
