//! `pbxguard firewall ...`: finds what pbxguard and sshd listen on, builds the ruleset through the
//! application layer, runs `nft` (checks always; loads directly only without a rollback) and hands
//! applies with a rollback to the running daemon, which owns the timer.
//!
//! Why the daemon and not a detached watcher: the rollback must outlive the SSH session that asked for
//! it, and the daemon is already the supervised process (systemd restarts it; it re-arms a pending
//! rollback from the store at start). A `setsid` watcher would be a second, unsupervised copy of the
//! timer that a crash or a reboot loses silently. So without a daemon, an apply with a rollback is
//! refused and says how to proceed.

use crate::cli::{FirewallCommand, FirewallSource};
use crate::nftcmd as nft;
use crate::outln;
use anyhow::{Context, Result, bail};
use pbxguard_app::firewall::{self as fw, HostPorts, WizardInput};
use pbxguard_app::{Error, clock};
use pbxguard_firewall::render;
use pbxguard_store::{ApplyState, Store};
use std::path::Path;
use std::time::{Duration, Instant};

pub(super) fn firewall(store: &mut Store, data: &Path, cmd: FirewallCommand) -> Result<()> {
    match cmd {
        FirewallCommand::Render { source } => {
            let rs = fw::ruleset(store, &host_ports(store, data, &source)?)?;
            outln!("{}", render::ruleset(&rs).trim_end());
        }
        FirewallCommand::Apply { rollback_after, source } => {
            let rollback = fw::parse_rollback(&rollback_after)?;
            let rs = fw::ruleset(store, &host_ports(store, data, &source)?)?;
            fw::check_lockout(&rs, &callers())?;
            apply(store, data, &render::chains(&rs), rollback)?;
        }
        FirewallCommand::Wizard { yes, ssh_from, gui_from, rtp, mgcp, rollback_after, source } => {
            let rollback = fw::parse_rollback(&rollback_after)?;
            let mut input = WizardInput { ssh_from, gui_from, rtp, mgcp };
            let interactive = !yes;
            if interactive {
                if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    bail!(Error::Invalid(
                        "firewall wizard asks questions on a terminal; without one give the flags and --yes".into()
                    ));
                }
                ask(&mut input)?;
            }
            let rows = fw::plan(store, &input)?;
            let rs = fw::ruleset_of(store, &rows, &host_ports(store, data, &source)?)?;
            fw::check_lockout(&rs, &callers())?;
            let chains = render::chains(&rs);
            print_diff(&chains)?;
            if interactive && !confirm_prompt(rollback)? {
                outln!("nothing changed");
                return Ok(());
            }
            // Checked before anything is stored: a refusal changes nothing.
            nft::check_apply(&chains).map_err(|e| Error::Invalid(format!("nft refused the ruleset: {e}")))?;
            fw::refuse_if_pending(store)?;
            if rollback > 0 {
                refuse_without_daemon(data)?;
            }
            fw::save(store, &rows)?;
            apply(store, data, &chains, rollback)?;
        }
        FirewallCommand::Confirm => {
            let row = fw::confirm(store)?;
            outln!("confirmed: apply {} stays in force; the rollback is called off", row.id);
        }
        FirewallCommand::Status { json } => status(store, json)?,
        FirewallCommand::Disable => {
            let cancelled = fw::disable(store)?;
            let deleted = nft::delete_table().map_err(Error::Io)?;
            if deleted {
                outln!("table inet pbxguard deleted; firewall.enabled = false");
            } else {
                outln!("no table inet pbxguard was loaded; firewall.enabled = false");
            }
            if cancelled > 0 {
                outln!("{cancelled} pending apply(s) cancelled");
            }
        }
    }
    Ok(())
}

/// The live sessions an apply must not cut: the SSH connection this runs from.
fn callers() -> Vec<fw::Caller> {
    std::env::var("SSH_CONNECTION").ok().as_deref().and_then(fw::ssh_caller).into_iter().collect()
}

fn apply(store: &Store, data: &Path, chains: &str, rollback_ms: u64) -> Result<()> {
    nft::check_apply(chains).map_err(|e| Error::Invalid(format!("nft refused the ruleset, nothing changed: {e}")))?;
    if let Some(n) = nft::legacy_rules() {
        eprintln!(
            "warning: {n} iptables-legacy rule(s) are loaded; the kernel runs them besides nftables, and a drop there wins over pbxguard's accept (see `iptables-legacy-save`)"
        );
    }
    if rollback_ms == 0 {
        fw::refuse_if_pending(store)?;
        nft::apply(chains).map_err(|e| Error::Io(format!("loading the ruleset failed, nothing changed: {e}")))?;
        fw::record_apply(store, chains)?;
        outln!("applied (no rollback)");
        return Ok(());
    }
    refuse_without_daemon(data)?;
    let id = fw::request_apply(store, chains, rollback_ms)?;
    let end = Instant::now() + Duration::from_secs(15);
    let row = loop {
        let row = fw::apply_request(store, id)?;
        if row.state != ApplyState::Requested {
            break row;
        }
        if Instant::now() > end {
            if fw::abandon(store, id, "the daemon did not pick the request up within 15 s")? {
                bail!(Error::Io(
                    "the daemon did not load the ruleset within 15 s (is it running, and as root?); nothing changed"
                        .into()
                ));
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    match row.state {
        ApplyState::Applied => {
            let at = row.deadline_ms.map(clock::utc).unwrap_or_default();
            outln!(
                "applied (apply {id}); the previous ruleset comes back at {at} unless you run `pbxguard firewall confirm` \
                 (from a new SSH login: that proves you can still get in)"
            );
        }
        ApplyState::Confirmed => outln!("applied (apply {id})"),
        _ => bail!(Error::Io(format!(
            "the daemon could not load the ruleset, nothing changed: {}",
            row.detail.as_deref().unwrap_or("no reason given")
        ))),
    }
    Ok(())
}

fn refuse_without_daemon(data: &Path) -> Result<()> {
    if daemon_running(data) {
        return Ok(());
    }
    bail!(Error::Conflict(format!(
        "no pbxguard daemon is running on {}: the rollback timer lives in the daemon so that it survives your SSH session. \
         Start it (`pbxguard run`, or systemctl start pbxguard), or apply without a safety net with --rollback-after 0",
        data.display()
    )))
}

/// The daemon holds an exclusive lock on `<data>/pbxguard.lock` while it runs.
fn daemon_running(data: &Path) -> bool {
    let Ok(f) = std::fs::File::open(data.join("pbxguard.lock")) else { return false };
    matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}

fn status(store: &Store, json: bool) -> Result<()> {
    let table = nft::list_table_json().map_err(Error::Io)?;
    let mut rules = Vec::new();
    for o in table.iter().flat_map(|t| t["nftables"].as_array().into_iter().flatten()) {
        let r = &o["rule"];
        let Some(exprs) = r["expr"].as_array() else { continue };
        let Some(counter) = exprs.iter().find_map(|e| e.get("counter")) else { continue };
        // Which family a rule matches (its first match on an ip or ip6 header field), so the IPv4 and
        // IPv6 rules of one service can be told apart.
        let family = exprs
            .iter()
            .find_map(|e| e["match"]["left"]["payload"]["protocol"].as_str())
            .filter(|p| matches!(*p, "ip" | "ip6"));
        rules.push(serde_json::json!({
            "chain": r["chain"],
            "rule": r["comment"].as_str().unwrap_or(""),
            "family": family,
            "packets": counter["packets"],
            "bytes": counter["bytes"],
        }));
    }
    let mut sets = serde_json::Map::new();
    // Listing a large interval set takes nft seconds (research/firewall.md §2): the blacklist sets are
    // counted in the kernel only while the store's lists are small, and shown as null otherwise.
    let stored: i64 = pbxguard_app::blacklist::stats(store)?.iter().map(|b| b.entries).sum();
    if table.is_some() {
        for name in [
            pbxguard_firewall::sets::TRUSTED4,
            pbxguard_firewall::sets::TRUSTED6,
            pbxguard_firewall::sets::BANNED4,
            pbxguard_firewall::sets::BANNED6,
            pbxguard_firewall::sets::BLACKLIST4,
            pbxguard_firewall::sets::BLACKLIST6,
        ] {
            let large = name.starts_with("blacklist") && stored > LARGE_SET;
            let size = if large { None } else { nft::set_size(name).ok() };
            sets.insert(name.into(), size.map_or(serde_json::Value::Null, Into::into));
        }
    }
    let active = table.is_some() && !rules.is_empty();
    let pending = fw::pending(store)?;
    let last = fw::last(store)?;
    let enabled = pbxguard_app::settings::get(store, "firewall.enabled")? == "true";
    let legacy = nft::legacy_rules();
    if json {
        let v = serde_json::json!({
            "active": active,
            "enabled": enabled,
            "pending": pending.as_ref().map(|p| serde_json::json!({
                "id": p.id,
                "state": p.state.as_str(),
                "deadline_ms": p.deadline_ms,
                "rollback_ms": p.rollback_ms,
            })),
            "last": last.as_ref().map(|l| serde_json::json!({
                "id": l.id, "state": l.state.as_str(), "detail": l.detail, "at_ms": l.updated_ms,
            })),
            "rules": rules,
            "sets": sets,
            "iptables_legacy_rules": legacy,
            "blacklist_entries_stored": stored,
        });
        return super::out::print_json(&v);
    }
    outln!(
        "firewall: {} (firewall.enabled = {enabled})",
        if active { "active, table inet pbxguard loaded" } else { "not loaded" }
    );
    match &pending {
        Some(p) if p.state == ApplyState::Applied => outln!(
            "pending: apply {} rolls back at {} unless `pbxguard firewall confirm`",
            p.id,
            p.deadline_ms.map(clock::utc).unwrap_or_default()
        ),
        Some(p) => outln!("pending: apply {} waits for the daemon", p.id),
        None => {}
    }
    if let Some(l) = last.filter(|l| pending.as_ref().is_none_or(|p| p.id != l.id)) {
        outln!(
            "last apply: {} {} at {}{}",
            l.id,
            l.state.as_str(),
            clock::utc(l.updated_ms),
            l.detail.map(|d| format!(" ({d})")).unwrap_or_default()
        );
    }
    if !rules.is_empty() {
        outln!("{:<8} {:<14} {:<6} {:>12} {:>14}", "CHAIN", "RULE", "FAMILY", "PACKETS", "BYTES");
        for r in &rules {
            outln!(
                "{:<8} {:<14} {:<6} {:>12} {:>14}",
                r["chain"].as_str().unwrap_or(""),
                r["rule"].as_str().unwrap_or(""),
                r["family"].as_str().unwrap_or("any"),
                r["packets"].as_u64().unwrap_or(0),
                r["bytes"].as_u64().unwrap_or(0)
            );
        }
    }
    for (name, n) in &sets {
        if n.is_null() {
            outln!("set {name:<11} not counted (large; the store's blacklists hold {stored} entries)");
        } else {
            outln!("set {name:<11} {n} element(s)");
        }
    }
    if let Some(n) = legacy {
        outln!("warning: {n} iptables-legacy rule(s) loaded; they run besides nftables (see `iptables-legacy-save`)");
    }
    Ok(())
}

/// The current chains against the new ones, as a unified diff.
fn print_diff(chains: &str) -> Result<()> {
    let old = nft::list_table().ok().flatten().as_deref().and_then(render::saved_chains).unwrap_or_default();
    if old.is_empty() {
        outln!("no pbxguard ruleset is loaded; the new one:");
        outln!("{}", chains.trim_end());
        return Ok(());
    }
    // nft lists what it loaded in its own words (counters, normalised sets), so compare rule lines
    // without their counter values.
    let strip = |s: &str| -> String {
        s.lines()
            .map(|l| {
                let l = l.trim();
                match l.find("counter packets") {
                    Some(i) => {
                        let rest = &l[i..];
                        let after = rest.split_whitespace().skip(5).collect::<Vec<_>>().join(" ");
                        format!("{}counter {after}", &l[..i])
                    }
                    None => l.to_owned(),
                }
            })
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let (old, new) = (strip(&old), strip(chains));
    if old == new {
        outln!("the loaded ruleset is the same");
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(&old, &new);
    outln!("{}", diff.unified_diff().context_radius(3).header("loaded", "new"));
    Ok(())
}

fn ask(input: &mut WizardInput) -> Result<()> {
    let who = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .map(|ip| format!(" (you are connected from {ip})"))
        .unwrap_or_default();
    if input.ssh_from.is_empty() {
        input.ssh_from = words(&prompt(&format!("SSH from which networks or ACL groups{who}? [any]: "))?);
    }
    if input.gui_from.is_empty() {
        input.gui_from = words(&prompt("Admin GUI from which networks or ACL groups? [any]: ")?);
    }
    if input.rtp.is_none() {
        let r = prompt(&format!("RTP port range? [{}]: ", fw::RTP_DEFAULT))?;
        input.rtp = (!r.is_empty()).then_some(r);
    }
    if !input.mgcp {
        input.mgcp = matches!(prompt("Open MGCP (2727/udp)? [y/N]: ")?.as_str(), "y" | "yes");
    }
    Ok(())
}

fn words(s: &str) -> Vec<String> {
    s.split([' ', ',']).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

fn prompt(q: &str) -> Result<String> {
    use std::io::Write as _;
    eprint!("{q}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the answer")?;
    Ok(line.trim().to_owned())
}

fn confirm_prompt(rollback_ms: u64) -> Result<bool> {
    let q = if rollback_ms > 0 {
        format!("Save and apply, rolling back after {} s unless confirmed? [y/N]: ", rollback_ms / 1000)
    } else {
        "Save and apply with NO rollback? [y/N]: ".into()
    };
    Ok(matches!(prompt(&q)?.as_str(), "y" | "yes"))
}

fn host_ports(store: &Store, data: &Path, source: &FirewallSource) -> Result<HostPorts> {
    crate::host::ports(store, data, source.config.as_deref(), source.sshd_config.as_deref())
}

/// Blacklist entries past which status does not list the kernel's blacklist sets.
const LARGE_SET: i64 = 10_000;
