//! VoIP blacklists: parse (voipbl format), store atomically, and compile into the prefix set the shield
//! checks on the fast path. Downloading a list is the caller's job (the CLI and the daemon's refresher
//! fetch the text, then call [`import`]).

use crate::{Result, invalid, not_found};
use pbxguard_shield::{ListName, Prefix, PrefixSet, parse_list};
use pbxguard_store::{Backend, BlacklistInfo};
use std::net::IpAddr;
use std::sync::Arc;

/// Lists larger than this are refused (voipbl's full list is a few MB).
pub const MAX_LIST_BYTES: u64 = 128 << 20;

pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// A list's default name: the URL's host or the file's stem.
pub fn default_name(source: &str) -> String {
    let base = if is_url(source) {
        source.split("//").nth(1).and_then(|r| r.split(['/', ':']).next()).unwrap_or("list").to_owned()
    } else {
        std::path::Path::new(source).file_stem().map_or("list".into(), |s| s.to_string_lossy().into_owned())
    };
    base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

/// What an import stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub entries: usize,
    /// Lines skipped: unreadable ones and `too_broad` ones.
    pub bad_lines: usize,
    /// Of `bad_lines`, entries refused for being wider than /8 (IPv4) or /32 (IPv6), `0.0.0.0/0` among
    /// them: a list must never blackhole a large part of the Internet, so no `--force` applies here.
    pub too_broad: usize,
}

/// Parses `text` (fetched from `source`) and stores it as list `name`, replacing its previous content
/// in one transaction. `progress` is called with the entries written so far and the total.
pub fn import(
    store: &mut dyn Backend,
    name: &str,
    source: &str,
    text: &str,
    mut progress: impl FnMut(usize, usize),
) -> Result<Imported> {
    let (mut prefixes, bad) = parse_list(text);
    let before = prefixes.len();
    prefixes.retain(|p| !crate::validate::is_over_broad(p));
    let too_broad = before - prefixes.len();
    let bad_lines = bad.len() + too_broad;
    if prefixes.is_empty() {
        return Err(invalid!(
            "{source} holds no usable addresses ({} unreadable lines, {too_broad} networks wider than /8 or /32 refused): \
             is it a voipbl-format list (one IP or CIDR per line)?",
            bad.len()
        ));
    }
    let entries: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
    let total = entries.len();
    store.replace_blacklist(name, source, &entries, bad_lines as i64, crate::clock::now_secs(), &mut |done| {
        progress(done, total)
    })?;
    Ok(Imported { entries: entries.len(), bad_lines, too_broad })
}

/// Compiles every stored list into one prefix set, each range remembering its list's name.
pub fn load(store: &dyn Backend) -> Result<PrefixSet<ListName>> {
    let mut names: std::collections::HashMap<String, ListName> = std::collections::HashMap::new();
    let mut entries = Vec::new();
    for (list, cidr) in store.blacklist_entries()? {
        let Ok(p) = Prefix::parse_lenient(&cidr) else { continue };
        // Stored before over-broad entries were refused at import: still never enforced.
        if crate::validate::is_over_broad(&p) {
            continue;
        }
        let name = names.entry(list).or_insert_with_key(|k| Arc::from(k.as_str())).clone();
        entries.push((p, name));
    }
    Ok(PrefixSet::new(entries))
}

/// What identifies the stored lists' content: reload only when it changes.
pub fn fingerprint(store: &dyn Backend) -> Result<Vec<(String, i64, i64)>> {
    Ok(store.blacklists()?.into_iter().map(|b| (b.name, b.refreshed_at, b.entries)).collect())
}

/// Every list with its size, source and last refresh.
pub fn stats(store: &dyn Backend) -> Result<Vec<BlacklistInfo>> {
    Ok(store.blacklists()?)
}

/// URL lists whose refresh interval has passed.
pub fn due(store: &dyn Backend, interval_s: i64) -> Result<Vec<BlacklistInfo>> {
    let now = crate::clock::now_secs();
    Ok(store.blacklists()?.into_iter().filter(|b| is_url(&b.source) && b.refreshed_at + interval_s <= now).collect())
}

/// Where an address is listed, and whether a trusted network overrides the listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub list: String,
    pub entry: String,
    /// The trusted network containing the address: trust wins, it is not blocked.
    pub trusted_by: Option<String>,
}

pub fn check(store: &dyn Backend, ip: IpAddr, trusted: &[Prefix]) -> Result<Option<Listed>> {
    let set = load(store)?;
    Ok(set.lookup(ip).map(|(entry, list)| Listed {
        list: list.to_string(),
        entry: entry.to_string(),
        trusted_by: trusted.iter().find(|t| t.contains(ip)).map(ToString::to_string),
    }))
}

pub fn delete(store: &dyn Backend, name: &str) -> Result<()> {
    if !store.delete_blacklist(name)? {
        return Err(not_found!("no blacklist named {name:?} (see `pbxguard blacklist stats`)"));
    }
    Ok(())
}
