//! VoIP blacklists: fetch (file or http(s) URL), parse (voipbl format), store atomically, and compile
//! into the prefix set the shield checks on the fast path.

use anyhow::{Context, Result, anyhow, bail};
use pbxguard_shield::{ListName, Prefix, PrefixSet, parse_list};
use pbxguard_store::Store;
use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;
use std::time::Duration;

/// Lists larger than this are refused (voipbl's full list is a few MB).
const MAX_LIST_BYTES: u64 = 128 << 20;

pub(crate) fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).build().into()
}

pub(crate) fn fetch(source: &str) -> Result<String> {
    if is_url(source) {
        let mut resp = agent().get(source).call().map_err(|e| anyhow!("downloading {source}: {e}"))?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_LIST_BYTES)
            .read_to_string()
            .map_err(|e| anyhow!("reading {source}: {e}"))?;
        Ok(text)
    } else {
        let f = std::fs::File::open(source).with_context(|| format!("opening {source}"))?;
        let mut text = String::new();
        f.take(MAX_LIST_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {source} (expected a text file)"))?;
        if text.len() as u64 > MAX_LIST_BYTES {
            bail!("{source} is larger than {} MB", MAX_LIST_BYTES >> 20);
        }
        Ok(text)
    }
}

/// A list's default name: the URL's host or the file's stem.
pub(crate) fn default_name(source: &str) -> String {
    let base = if is_url(source) {
        source.split("//").nth(1).and_then(|r| r.split(['/', ':']).next()).unwrap_or("list").to_owned()
    } else {
        std::path::Path::new(source).file_stem().map_or("list".into(), |s| s.to_string_lossy().into_owned())
    };
    base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

/// Fetches, parses and stores a list, replacing its previous content. Returns (entries, bad lines).
pub(crate) fn import(store: &mut Store, name: &str, source: &str, show_progress: bool) -> Result<(usize, usize)> {
    let text = fetch(source)?;
    let (prefixes, bad) = parse_list(&text);
    if prefixes.is_empty() {
        bail!(
            "{source} holds no addresses ({} unreadable lines): is it a voipbl-format list (one IP or CIDR per line)?",
            bad.len()
        );
    }
    let entries: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
    let total = entries.len();
    let tty = show_progress && std::io::stderr().is_terminal();
    let progress = |done: usize| {
        if tty {
            let pct = done * 100 / total.max(1);
            let bar = "#".repeat(pct / 4) + &".".repeat(25 - pct / 4);
            eprint!("\r[{bar}] {pct:>3}% {done}/{total} entries");
            let _ = std::io::stderr().flush();
        }
    };
    store.replace_blacklist(name, source, &entries, bad.len() as i64, crate::commands::now_secs(), progress)?;
    if tty {
        eprintln!();
    }
    Ok((total, bad.len()))
}

/// Compiles every stored list into one prefix set, each range remembering its list's name.
pub(crate) fn load(store: &Store) -> Result<PrefixSet<ListName>> {
    let mut names: std::collections::HashMap<String, ListName> = std::collections::HashMap::new();
    let mut entries = Vec::new();
    for (list, cidr) in store.blacklist_entries()? {
        let Ok(p) = Prefix::parse_lenient(&cidr) else { continue };
        let name = names.entry(list).or_insert_with_key(|k| Arc::from(k.as_str())).clone();
        entries.push((p, name));
    }
    Ok(PrefixSet::new(entries))
}

/// What identifies the stored lists' content: reload only when it changes.
pub(crate) fn fingerprint(store: &Store) -> Result<Vec<(String, i64, i64)>> {
    Ok(store.blacklists()?.into_iter().map(|b| (b.name, b.refreshed_at, b.entries)).collect())
}

/// Re-imports URL lists whose refresh interval has passed. Failures are recorded on the list and
/// keep its previous content (fail-safe: an unreachable server never empties a blacklist).
pub(crate) fn refresh_due(store: &mut Store, interval_s: i64) {
    let Ok(lists) = store.blacklists() else { return };
    let now = crate::commands::now_secs();
    for b in lists.into_iter().filter(|b| is_url(&b.source) && b.refreshed_at + interval_s <= now) {
        match import(store, &b.name, &b.source, false) {
            Ok((n, _)) => tracing::info!(list = b.name, entries = n, "blacklist refreshed"),
            Err(e) => {
                tracing::warn!(list = b.name, error = %e, "blacklist refresh failed; keeping the previous entries");
                let _ = store.blacklist_error(&b.name, &e.to_string());
            }
        }
    }
}
