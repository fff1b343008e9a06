//! `pbxguard bans | trust | acl | events | blacklist`: the protection engine's operator side.

use super::out::print_json;
use crate::cli::{AclCommand, BansCommand, BlacklistCommand, TrustCommand};
use crate::outln;
use anyhow::Result;
use pbxguard_app::{blacklist, security};
use pbxguard_shield::config::format_duration_ms;
use pbxguard_store::Store;
use serde_json::json;
use std::time::Duration;

fn now_ms() -> i64 {
    pbxguard_app::clock::now_ms() as i64
}

/// "in 59m", "12s ago", "never".
fn relative(at_ms: Option<i64>, now: i64) -> String {
    match at_ms {
        None => "never".into(),
        Some(t) if t >= now => format!("in {}", format_duration_ms(round(t - now))),
        Some(t) => format!("{} ago", format_duration_ms(round(now - t))),
    }
}

fn round(ms: i64) -> u64 {
    let s = (ms.max(0) as u64).div_ceil(1000).max(1);
    let unit = [604_800, 86_400, 3_600, 60, 1].into_iter().find(|u| s >= *u).unwrap_or(1);
    (s / unit).max(1) * unit * 1000
}

pub(super) fn bans(store: &Store, cmd: BansCommand) -> Result<()> {
    let now = now_ms();
    match cmd {
        BansCommand::List { json } => {
            let rows = security::bans(store)?;
            let trusted = pbxguard_app::views::trusted(store, &[], &[])?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|b| {
                        json!({"target": b.target, "reason": b.reason, "evidence": b.evidence, "note": b.note,
                               "first_seen_ms": b.first_seen_ms, "created_ms": b.created_ms, "expires_ms": b.expires_ms,
                               "offence": b.offence,
                               "overridden_by": security::overriding_trust(&trusted, &b.target).map(|t| t.to_string())})
                    })
                    .collect();
                return print_json(&v);
            }
            outln!("{:<20} {:<12} {:<8} {:<10} {:<10} EVIDENCE", "TARGET", "REASON", "OFFENCE", "SINCE", "EXPIRES");
            for b in rows {
                let mut ev = b.note.as_ref().map_or(b.evidence.clone(), |n| format!("{} ({n})", b.evidence));
                if let Some(t) = security::overriding_trust(&trusted, &b.target) {
                    ev = format!("[overridden: {t} is trusted] {ev}");
                }
                outln!(
                    "{:<20} {:<12} {:<8} {:<10} {:<10} {ev}",
                    b.target,
                    b.reason,
                    b.offence,
                    relative(Some(b.first_seen_ms), now),
                    relative(b.expires_ms, now)
                );
            }
        }
        BansCommand::Add { target, reason, duration, force } => {
            let row = security::ban(store, &target, &reason, duration.as_deref(), force, &crate::resolve::System)?;
            outln!("banned {} {}", row.target, duration.map_or("until removed".to_owned(), |d| format!("for {d}")));
        }
        BansCommand::Del { target } => {
            let p = security::unban(store, &target)?;
            outln!("ban on {p} lifted");
        }
    }
    Ok(())
}

pub(super) fn trust(store: &Store, cmd: TrustCommand) -> Result<()> {
    match cmd {
        TrustCommand::Add { cidr, note, force } => {
            let (p, overridden) = security::trust(store, &cidr, note.as_deref(), force)?;
            for b in overridden {
                outln!(
                    "the ban on {} ({}) is overridden while {p} is trusted; `pbxguard trust del {p}` brings it back",
                    b.target,
                    b.reason
                );
            }
            outln!("trusted {p}: never banned, never flood-limited");
        }
        TrustCommand::List { json } => {
            let rows = security::trusted(store)?;
            if json {
                let v: Vec<_> = rows.iter().map(|(c, n)| json!({"cidr": c, "note": n})).collect();
                return print_json(&v);
            }
            for (c, n) in rows {
                outln!("{c:<24} {}", n.unwrap_or_default());
            }
        }
        TrustCommand::Del { cidr } => {
            let p = security::untrust(store, &cidr)?;
            outln!("{p} is no longer trusted");
        }
    }
    Ok(())
}

pub(super) fn acl(store: &Store, cmd: AclCommand) -> Result<()> {
    match cmd {
        AclCommand::Add { name, mut rules, mut force } => {
            // clap hands every word after the name to `rules` (allow_hyphen_values), so a `--force`
            // written after the rules lands there: it is the flag, never a rule.
            let before = rules.len();
            rules.retain(|r| r != "--force");
            force |= rules.len() != before;
            let rules = security::put_acl(store, &name, &rules, force)?;
            let text: Vec<String> = rules.iter().map(ToString::to_string).collect();
            outln!("ACL group {name}: {}", text.join(" "));
        }
        AclCommand::List { json } => {
            let rows = security::acls(store)?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|a| json!({"name": a.name, "rules": a.rules.split_whitespace().collect::<Vec<_>>()}))
                    .collect();
                return print_json(&v);
            }
            for a in rows {
                outln!("{:<16} {}", a.name, a.rules);
            }
        }
        AclCommand::Del { name } => {
            security::delete_acl(store, &name)?;
            outln!("ACL group {name} deleted");
        }
    }
    Ok(())
}

pub(super) fn events(store: &Store, follow: bool, json: bool, last: i64) -> Result<()> {
    let mut after = security::events_tail_start(store, last)?;
    loop {
        let rows = security::events_after(store, after, 1000)?;
        for e in &rows {
            if json {
                outln!("{}", serde_json::to_string(e)?);
            } else {
                outln!(
                    "{} {:<18} {:<16} {:<10} {}",
                    pbxguard_app::clock::utc(e.at_ms),
                    e.kind,
                    e.source.as_deref().unwrap_or("-"),
                    e.user.as_deref().unwrap_or("-"),
                    e.detail
                );
            }
            after = e.id;
        }
        if !follow {
            return Ok(());
        }
        if rows.len() < 1000 {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

pub(super) fn blacklist(store: &mut Store, cmd: BlacklistCommand) -> Result<()> {
    match cmd {
        BlacklistCommand::Import { source, name } => {
            let name = name.unwrap_or_else(|| blacklist::default_name(&source));
            let started = std::time::Instant::now();
            let text = crate::download::fetch(&source)?;
            let r = blacklist::import(store, &name, &source, &text, crate::download::progress)?;
            crate::download::progress_done();
            outln!(
                "blacklist {name}: {} entries from {source} ({} unreadable lines skipped) in {:.1}s",
                r.entries,
                r.bad_lines,
                started.elapsed().as_secs_f64()
            );
            if r.too_broad > 0 {
                outln!(
                    "{} of them refused: networks wider than /8 (IPv4) or /32 (IPv6) are never taken from a list",
                    r.too_broad
                );
            }
        }
        BlacklistCommand::Check { ip } => {
            let trunks = pbxguard_app::views::trunk_addresses(store, &crate::resolve::System)?;
            let trusted = pbxguard_app::views::trusted(store, &[], &trunks)?;
            match blacklist::check(store, ip, &trusted)? {
                Some(l) => {
                    outln!("{ip} is listed in {} (entry {})", l.list, l.entry);
                    if let Some(t) = l.trusted_by {
                        outln!("but it is in the trusted network {t}, which wins: it is not blocked");
                    }
                }
                None => outln!("{ip} is not in any blacklist"),
            }
        }
        BlacklistCommand::Stats { json } => {
            let lists = blacklist::stats(store)?;
            if json {
                return print_json(&lists);
            }
            let now = now_ms();
            outln!("{:<16} {:>9} {:>6} {:<12} {:<40} LAST ERROR", "LIST", "ENTRIES", "BAD", "REFRESHED", "SOURCE");
            for b in lists {
                outln!(
                    "{:<16} {:>9} {:>6} {:<12} {:<40} {}",
                    b.name,
                    b.entries,
                    b.bad_lines,
                    relative(Some(b.refreshed_at * 1000), now),
                    b.source,
                    b.last_error.unwrap_or_default()
                );
            }
        }
        BlacklistCommand::Del { name } => {
            blacklist::delete(store, &name)?;
            outln!("blacklist {name} removed");
        }
    }
    Ok(())
}
