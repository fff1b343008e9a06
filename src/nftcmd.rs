//! Running the `nft` binary for the ruleset (the CLI and the daemon both do): check a script with
//! `nft -c -f -`, load it with `nft -f -`, list our table tersely, delete it. Set elements never go
//! through here: the daemon's enforcer sends them over netlink (an `nft` process costs milliseconds,
//! and seconds once a large interval set exists; research/firewall.md §2).
//!
//! Listings use `-t` (no set elements): listing a 200,000-range blacklist takes seconds.

use pbxguard_firewall::{FAMILY, TABLE, render};
use std::io::Write;
use std::process::{Command, Stdio};

fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new("nft");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "nft not found: install nftables (apt-get install nftables)".to_string()
        } else {
            format!("running nft: {e}")
        }
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("running nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(if err.contains("Operation not permitted") {
            format!("nft: {err} (the firewall needs root, or CAP_NET_ADMIN)")
        } else {
            format!("nft: {err}")
        })
    }
}

/// Checks a script without loading it (`nft -c`): the kernel validates it in a transaction it aborts.
pub(crate) fn check(script: &str) -> Result<(), String> {
    nft(&["-c", "-f", "-"], Some(script)).map(drop)
}

/// Loads a script as one transaction: all of it, or (on any error) none of it.
pub(crate) fn load(script: &str) -> Result<(), String> {
    nft(&["-f", "-"], Some(script)).map(drop)
}

/// Our table as `nft -t list table` prints it; `None` when it does not exist.
pub(crate) fn list_table() -> Result<Option<String>, String> {
    match nft(&["-t", "list", "table", FAMILY, TABLE], None) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.contains("No such file or directory") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The same as JSON (rules with their counters; sets without elements).
pub(crate) fn list_table_json() -> Result<Option<serde_json::Value>, String> {
    match nft(&["-t", "-j", "list", "table", FAMILY, TABLE], None) {
        Ok(s) => serde_json::from_str(&s).map(Some).map_err(|e| format!("reading nft's JSON: {e}")),
        Err(e) if e.contains("No such file or directory") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Elements in one of our sets (prefixes and ranges count one each).
pub(crate) fn set_size(name: &str) -> Result<usize, String> {
    let text = nft(&["-j", "list", "set", FAMILY, TABLE, name], None)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("reading nft's JSON: {e}"))?;
    Ok(v["nftables"].as_array().into_iter().flatten().filter_map(|o| o["set"]["elem"].as_array()).map(Vec::len).sum())
}

/// Replaces our chains with `chains` after checking the whole transaction; returns the chains it
/// replaced (what a rollback restores; `None`: there were none).
pub(crate) fn apply(chains: &str) -> Result<Option<String>, String> {
    let listing = list_table()?;
    let existing = listing.as_deref().map(render::chain_names).unwrap_or_default();
    let previous = listing.as_deref().and_then(render::saved_chains);
    let script = render::replace_script(&existing, chains);
    check(&script)?;
    load(&script)?;
    Ok(previous)
}

/// The script [`apply`] would load, checked but not loaded.
pub(crate) fn check_apply(chains: &str) -> Result<(), String> {
    let listing = list_table()?;
    let existing = listing.as_deref().map(render::chain_names).unwrap_or_default();
    check(&render::replace_script(&existing, chains))
}

/// Puts back chains saved by [`apply`] (`None`: no chains, the sets stay).
pub(crate) fn restore(previous: Option<&str>) -> Result<(), String> {
    let listing = list_table()?;
    let existing = listing.as_deref().map(render::chain_names).unwrap_or_default();
    let empty = format!("table {FAMILY} {TABLE} {{\n}}\n");
    load(&render::replace_script(&existing, previous.unwrap_or(&empty)))
}

/// Deletes our table (chains, sets and their elements); false when there was none.
pub(crate) fn delete_table() -> Result<bool, String> {
    if list_table()?.is_none() {
        return Ok(false);
    }
    load(&render::delete_table()).map(|_| true)
}

/// Rules loaded through iptables-legacy: the kernel runs them besides nftables, and a drop there is
/// final whatever pbxguard accepts. `None` when the tool is missing or shows none.
pub(crate) fn legacy_rules() -> Option<usize> {
    let out = Command::new("iptables-legacy-save").stderr(Stdio::null()).output().ok()?;
    let n = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("-A ")).count();
    let out6 = Command::new("ip6tables-legacy-save").stderr(Stdio::null()).output();
    let n6 = out6.map_or(0, |o| String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with("-A ")).count());
    (n + n6 > 0).then_some(n + n6)
}
