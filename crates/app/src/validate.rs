//! Rules on names that several operations share.

use crate::{Result, invalid, not_found};
use pbxguard_shield::CountryCode;
use pbxguard_store::Backend;

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

pub fn require_cos(store: &dyn Backend, name: &str) -> Result<()> {
    if !store.cos_exists(name)? {
        return Err(not_found!(
            "class of service {name:?} does not exist; create it first with `pbxguard cos add {name} --allow internal,local,...`"
        ));
    }
    Ok(())
}

pub fn require_acl(store: &dyn Backend, group: &str) -> Result<()> {
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

/// The shortest IPv4 prefix taken without `--force`: a /7 or wider spans several /8 allocations.
pub const MIN_IPV4_PREFIX: u8 = 8;
/// The shortest IPv6 prefix taken without `--force`: a /32 is a whole ISP's allocation.
pub const MIN_IPV6_PREFIX: u8 = 32;

/// Whether `p` spans more than one typo should be able to reach: shorter than /8 (IPv4) or /32 (IPv6),
/// `0.0.0.0/0` and `::/0` included.
pub fn is_over_broad(p: &pbxguard_shield::Prefix) -> bool {
    let min = if p.addr().is_ipv4() { MIN_IPV4_PREFIX } else { MIN_IPV6_PREFIX };
    p.prefix_len() < min
}

/// Refuses an over-broad network unless the operator said `--force`; `what` says what it was for
/// ("trusting", "banning", "allowing").
pub fn check_breadth(p: &pbxguard_shield::Prefix, what: &str, force: bool) -> Result<()> {
    if is_over_broad(p) && !force {
        let min = if p.addr().is_ipv4() { MIN_IPV4_PREFIX } else { MIN_IPV6_PREFIX };
        return Err(invalid!(
            "{p} is wider than /{min}: {what} it would cover a large part of the Internet. \
             Check for a typo; if you really mean it, add --force"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod breadth_tests {
    use super::*;
    use pbxguard_shield::Prefix;

    #[test]
    fn over_broad_networks_are_refused_without_force() {
        for (cidr, broad) in [
            ("0.0.0.0/0", true),
            ("::/0", true),
            ("0.0.0.0/7", true),
            ("10.0.0.0/8", false),
            ("192.0.2.1", false),
            ("2000::/3", true),
            ("2001:db8::/31", true),
            ("2001:db8::/32", false),
        ] {
            let p = Prefix::parse_strict(cidr).unwrap();
            assert_eq!(is_over_broad(&p), broad, "{cidr}");
            assert_eq!(check_breadth(&p, "trusting", false).is_err(), broad, "{cidr}");
            assert!(check_breadth(&p, "trusting", true).is_ok(), "{cidr} with --force");
        }
        let e = check_breadth(&Prefix::parse_strict("0.0.0.0/0").unwrap(), "banning", false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
    }
}
