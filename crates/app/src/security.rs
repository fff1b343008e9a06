//! Operators' changes to the protection engine: bans, trusted networks, ACL groups; and the security
//! event log. Ban changes are written to the store (so they show at once and survive restarts) and
//! queued for a running daemon, which applies them within a second.

use crate::views::Resolver;
use crate::{Result, conflict, invalid, not_found};
use pbxguard_shield::config::parse_duration_ms;
use pbxguard_shield::{Prefix, Rule};
use pbxguard_store::{AclRow, BanRow, EventRow, Store};

fn now_ms() -> i64 {
    crate::clock::now_ms() as i64
}

/// The trusted network containing `p`, as the daemon computes them (listeners aside).
fn trusted_by(store: &Store, p: &Prefix, resolver: &dyn Resolver) -> Result<Option<Prefix>> {
    let trunks = crate::views::trunk_addresses(store, resolver)?;
    Ok(crate::views::trusted(store, &[], &trunks)?.into_iter().find(|t| t.contains(p.addr())))
}

pub fn bans(store: &Store) -> Result<Vec<BanRow>> {
    Ok(store.bans(now_ms())?)
}

/// Bans an address or network (`duration`: e.g. "12h"; `None`: until removed). Refused for a trusted
/// network, which is never banned.
pub fn ban(
    store: &Store,
    target: &str,
    reason: &str,
    duration: Option<&str>,
    resolver: &dyn Resolver,
) -> Result<BanRow> {
    let p = Prefix::parse_strict(target).map_err(|e| invalid!("{e}"))?;
    if let Some(t) = trusted_by(store, &p, resolver)? {
        return Err(conflict!(
            "{p} is in the trusted network {t}, which is never banned; remove it with `pbxguard trust del {t}` first"
        ));
    }
    let duration_ms = match duration {
        Some(d) => Some(
            parse_duration_ms(d).ok_or_else(|| invalid!("--for {d:?}: expected a duration such as 30m, 12h or 7d"))?
                as i64,
        ),
        None => None,
    };
    let now = now_ms();
    let row = BanRow {
        target: p.to_string(),
        reason: "manual".into(),
        evidence: "added by an operator".into(),
        first_seen_ms: now,
        created_ms: now,
        expires_ms: duration_ms.map(|d| now + d),
        offence: 1,
        note: Some(reason.to_owned()),
    };
    store.upsert_ban(&row)?;
    store.push_ban_op(true, &row.target, duration_ms, Some(reason), now)?;
    Ok(row)
}

/// Lifts a ban (a ban on a network is lifted by its CIDR).
pub fn unban(store: &Store, target: &str) -> Result<Prefix> {
    let p = Prefix::parse_strict(target).map_err(|e| invalid!("{e}"))?;
    let existed = store.delete_ban(&p.to_string())?;
    store.push_ban_op(false, &p.to_string(), None, None, now_ms())?;
    if !existed {
        return Err(not_found!(
            "no ban for {p} (see `pbxguard bans list`; a ban on a whole network is removed by its CIDR)"
        ));
    }
    Ok(p)
}

/// Trusts a network; returns the bans lifted because they fell inside it.
pub fn trust(store: &Store, cidr: &str, note: Option<&str>) -> Result<(Prefix, Vec<BanRow>)> {
    let p = Prefix::parse_strict(cidr).map_err(|e| invalid!("{e}"))?;
    if !store.add_trusted(&p.to_string(), note, crate::clock::now_secs())? {
        return Err(conflict!("{p} is already trusted"));
    }
    // Bans on trusted addresses would never be enforced; lift them now.
    let mut lifted = Vec::new();
    for b in store.bans(now_ms())? {
        if Prefix::parse_lenient(&b.target).is_ok_and(|t| p.contains(t.addr())) {
            store.delete_ban(&b.target)?;
            store.push_ban_op(false, &b.target, None, None, now_ms())?;
            lifted.push(b);
        }
    }
    Ok((p, lifted))
}

pub fn trusted(store: &Store) -> Result<Vec<(String, Option<String>)>> {
    Ok(store.trusted()?)
}

pub fn untrust(store: &Store, cidr: &str) -> Result<Prefix> {
    let p = Prefix::parse_strict(cidr).map_err(|e| invalid!("{e}"))?;
    if !store.delete_trusted(&p.to_string())? {
        return Err(not_found!("{p} is not in the trusted networks (see `pbxguard trust list`)"));
    }
    Ok(p)
}

/// Creates or replaces an ACL group; returns its rules, normalised.
pub fn put_acl(store: &Store, name: &str, rules: &[String]) -> Result<Vec<Rule>> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(invalid!("invalid ACL group name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"));
    }
    let parsed =
        rules.iter().map(|r| Rule::parse(r).map_err(|e| invalid!("rule {r:?}: {e}"))).collect::<Result<Vec<_>>>()?;
    if !parsed.iter().any(|r| matches!(r, Rule::Allow(_))) {
        return Err(invalid!(
            "ACL group {name} would deny every address (it has no allow rule); add at least one network to allow"
        ));
    }
    let text: Vec<String> = parsed.iter().map(ToString::to_string).collect();
    store.put_acl(name, &text.join(" "), crate::clock::now_secs())?;
    Ok(parsed)
}

pub fn acls(store: &Store) -> Result<Vec<AclRow>> {
    Ok(store.acls()?)
}

pub fn delete_acl(store: &Store, name: &str) -> Result<()> {
    if !store.delete_acl(name)? {
        return Err(not_found!("no ACL group {name:?}"));
    }
    Ok(())
}

/// The id after which the last `n` security events start.
pub fn events_tail_start(store: &Store, n: i64) -> Result<i64> {
    Ok(store.events_tail_start(n.max(0))?)
}

/// Security events after id `after`, oldest first, at most `limit`.
pub fn events_after(store: &Store, after: i64, limit: i64) -> Result<Vec<EventRow>> {
    Ok(store.events_after(after, limit)?)
}
