//! Rules on names that several operations share.

use crate::{Result, invalid, not_found};
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
