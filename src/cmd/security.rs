//! Operator commands for the protection engine: bans, trusted networks, ACL groups, security events.
//! Ban changes are written to the database (so they show at once and survive restarts) and queued for
//! a running daemon, which applies them within a second.

use crate::cli::{AclCommand, BansCommand, BlacklistCommand, TrustCommand};
use crate::commands::now_secs;
use crate::outln;
use anyhow::{Result, anyhow, bail};
use pbxguard_shield::config::{format_duration_ms, parse_duration_ms};
use pbxguard_shield::{Prefix, Rule};
use pbxguard_store::{BanRow, Store};
use serde_json::json;
use std::time::Duration;

fn now_ms() -> i64 {
    crate::daemon::now_ms() as i64
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

/// The trusted network containing `p`, as the daemon computes them.
fn is_trusted(store: &Store, p: &Prefix) -> Result<Option<Prefix>> {
    let trunks = crate::daemon::dialplan(store)?.trunks;
    Ok(crate::daemon::trusted(store, &[], &trunks)?.into_iter().find(|t| t.contains(p.addr())))
}

pub(crate) fn bans(store: &Store, cmd: BansCommand) -> Result<()> {
    let now = now_ms();
    match cmd {
        BansCommand::List { json } => {
            let rows = store.bans(now)?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|b| {
                        json!({"target": b.target, "reason": b.reason, "evidence": b.evidence, "note": b.note,
                               "first_seen_ms": b.first_seen_ms, "created_ms": b.created_ms, "expires_ms": b.expires_ms,
                               "offence": b.offence})
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("{:<20} {:<12} {:<8} {:<10} {:<10} EVIDENCE", "TARGET", "REASON", "OFFENCE", "SINCE", "EXPIRES");
                for b in rows {
                    let ev = b.note.as_ref().map_or(b.evidence.clone(), |n| format!("{} ({n})", b.evidence));
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
        }
        BansCommand::Add { target, reason, duration } => {
            let p = Prefix::parse_strict(&target)?;
            if let Some(t) = is_trusted(store, &p)? {
                bail!(
                    "{p} is in the trusted network {t}, which is never banned; remove it with `pbxguard trust del {t}` first"
                );
            }
            let duration_ms = match &duration {
                Some(d) => Some(
                    parse_duration_ms(d)
                        .ok_or_else(|| anyhow!("--for {d:?}: expected a duration such as 30m, 12h or 7d"))?
                        as i64,
                ),
                None => None,
            };
            let row = BanRow {
                target: p.to_string(),
                reason: "manual".into(),
                evidence: "added by an operator".into(),
                first_seen_ms: now,
                created_ms: now,
                expires_ms: duration_ms.map(|d| now + d),
                offence: 1,
                note: Some(reason.clone()),
            };
            store.upsert_ban(&row)?;
            store.push_ban_op(true, &row.target, duration_ms, Some(&reason), now)?;
            outln!("banned {p} {}", duration.map_or("until removed".to_owned(), |d| format!("for {d}")));
        }
        BansCommand::Del { target } => {
            let p = Prefix::parse_strict(&target)?;
            let existed = store.delete_ban(&p.to_string())?;
            store.push_ban_op(false, &p.to_string(), None, None, now)?;
            if !existed {
                bail!("no ban for {p} (see `pbxguard bans list`; a ban on a whole network is removed by its CIDR)");
            }
            outln!("ban on {p} lifted");
        }
    }
    Ok(())
}

pub(crate) fn trust(store: &Store, cmd: TrustCommand) -> Result<()> {
    match cmd {
        TrustCommand::Add { cidr, note } => {
            let p = Prefix::parse_strict(&cidr)?;
            if !store.add_trusted(&p.to_string(), note.as_deref(), now_secs())? {
                bail!("{p} is already trusted");
            }
            // Bans on trusted addresses would never be enforced; lift them now.
            for b in store.bans(now_ms())? {
                if Prefix::parse_lenient(&b.target).is_ok_and(|t| p.contains(t.addr())) {
                    store.delete_ban(&b.target)?;
                    store.push_ban_op(false, &b.target, None, None, now_ms())?;
                    outln!("lifted the ban on {} ({})", b.target, b.reason);
                }
            }
            outln!("trusted {p}: never banned, never flood-limited");
        }
        TrustCommand::List { json } => {
            let rows = store.trusted()?;
            if json {
                let v: Vec<_> = rows.iter().map(|(c, n)| json!({"cidr": c, "note": n})).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (c, n) in rows {
                    outln!("{c:<24} {}", n.unwrap_or_default());
                }
            }
        }
        TrustCommand::Del { cidr } => {
            let p = Prefix::parse_strict(&cidr)?;
            if !store.delete_trusted(&p.to_string())? {
                bail!("{p} is not in the trusted networks (see `pbxguard trust list`)");
            }
            outln!("{p} is no longer trusted");
        }
    }
    Ok(())
}

pub(crate) fn acl(store: &Store, cmd: AclCommand) -> Result<()> {
    match cmd {
        AclCommand::Add { name, rules } => {
            if name.is_empty()
                || name.len() > 64
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                bail!("invalid ACL group name {name:?}: use 1-64 letters, digits, '.', '_' or '-'");
            }
            let parsed = rules
                .iter()
                .map(|r| Rule::parse(r).map_err(|e| anyhow!("rule {r:?}: {e}")))
                .collect::<Result<Vec<_>>>()?;
            if !parsed.iter().any(|r| matches!(r, Rule::Allow(_))) {
                bail!(
                    "ACL group {name} would deny every address (it has no allow rule); add at least one network to allow"
                );
            }
            let text: Vec<String> = parsed.iter().map(ToString::to_string).collect();
            store.put_acl(&name, &text.join(" "), now_secs())?;
            outln!("ACL group {name}: {}", text.join(" "));
        }
        AclCommand::List { json } => {
            let rows = store.acls()?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|a| json!({"name": a.name, "rules": a.rules.split_whitespace().collect::<Vec<_>>()}))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for a in rows {
                    outln!("{:<16} {}", a.name, a.rules);
                }
            }
        }
        AclCommand::Del { name } => {
            if !store.delete_acl(&name)? {
                bail!("no ACL group {name:?}");
            }
            outln!("ACL group {name} deleted");
        }
    }
    Ok(())
}

pub(crate) fn events(store: &Store, follow: bool, json: bool, last: i64) -> Result<()> {
    let mut after = store.events_tail_start(last.max(0))?;
    loop {
        let rows = store.events_after(after, 1000)?;
        for e in &rows {
            if json {
                outln!("{}", serde_json::to_string(e)?);
            } else {
                let secs = e.at_ms / 1000;
                outln!(
                    "{}.{:03} {:<18} {:<16} {:<10} {}",
                    secs,
                    e.at_ms % 1000,
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

pub(crate) fn blacklist(store: &mut Store, cmd: BlacklistCommand) -> Result<()> {
    match cmd {
        BlacklistCommand::Import { source, name } => {
            let name = name.unwrap_or_else(|| crate::blacklist::default_name(&source));
            let started = std::time::Instant::now();
            let (n, bad) = crate::blacklist::import(store, &name, &source, true)?;
            outln!(
                "blacklist {name}: {n} entries from {source} ({bad} unreadable lines skipped) in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        BlacklistCommand::Check { ip } => {
            let set = crate::blacklist::load(store)?;
            let p = Prefix::host(ip);
            match set.lookup(ip) {
                Some((entry, list)) => {
                    outln!("{ip} is listed in {list} (entry {entry})");
                    if let Some(t) = is_trusted(store, &p)? {
                        outln!("but it is in the trusted network {t}, which wins: it is not blocked");
                    }
                }
                None => outln!("{ip} is not in any blacklist"),
            }
        }
        BlacklistCommand::Stats { json } => {
            let lists = store.blacklists()?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&lists)?);
            } else {
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
        }
        BlacklistCommand::Del { name } => {
            if !store.delete_blacklist(&name)? {
                bail!("no blacklist named {name:?} (see `pbxguard blacklist stats`)");
            }
            outln!("blacklist {name} removed");
        }
    }
    Ok(())
}
