//! Rules on names that several operations share.

use crate::{Result, invalid, not_found};
use pbxguard_shield::CountryCode;
use pbxguard_store::Store;

/// Extension numbers are what phones put in the user part of a SIP URI; keep them to characters that
/// need no escaping there.
pub fn check_number(n: &str) -> Result<()> {
    if n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(invalid!("invalid extension number {n:?}: use 1-32 letters, digits, '.', '_' or '-'"));
    }
    Ok(())
}

/// Names of trunks and Classes of Service.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(invalid!("{what} name {name:?}: use 1-64 letters, digits, '-', '_' or '.'"));
    }
    Ok(())
}

pub fn require_cos(store: &Store, name: &str) -> Result<()> {
    if !store.cos_exists(name)? {
        return Err(not_found!(
            "class of service {name:?} does not exist; create it first with `pbxguard cos add {name} --allow internal,local,...`"
        ));
    }
    Ok(())
}

pub fn require_acl(store: &Store, group: &str) -> Result<()> {
    if store.acl(group)?.is_none() {
        return Err(not_found!(
            "ACL group {group:?} does not exist; create it first with `pbxguard acl add {group} CIDR...`"
        ));
    }
    Ok(())
}

/// Parses a country list (`44,49,33`): assigned E.164 country codes, each once, at least one.
pub fn parse_countries(list: &str) -> Result<Vec<CountryCode>> {
    let mut out: Vec<CountryCode> = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let code = CountryCode::try_from(item).map_err(|e| invalid!("--countries: {e}"))?;
        if out.contains(&code) {
            return Err(invalid!("--countries: {code} ({}) is listed twice", code.name()));
        }
        out.push(code);
    }
    if out.is_empty() {
        return Err(invalid!("--countries: give at least one E.164 country code, such as 44,49,33"));
    }
    Ok(out)
}

/// A country list as stored and shown: `44,49,33`.
pub fn countries_text(list: &[CountryCode]) -> String {
    list.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}
