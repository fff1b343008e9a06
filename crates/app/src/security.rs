//! Operators' changes to the protection engine: bans, trusted networks, ACL groups; and the security
//! event log. Ban changes are written to the store (so they show at once and survive restarts) and
//! queued for a running daemon, which applies them within a second.

use crate::views::Resolver;
use crate::{Result, conflict, invalid, not_found};
use pbxguard_shield::config::parse_duration_ms;
use pbxguard_shield::{Prefix, Rule};
use pbxguard_store::{AclRow, Backend, BanRow, EventRow};

fn now_ms() -> i64 {
    crate::clock::now_ms() as i64
}

/// The trusted network containing `p`, as the daemon computes them (listeners aside).
fn trusted_by(store: &dyn Backend, p: &Prefix, resolver: &dyn Resolver) -> Result<Option<Prefix>> {
    let trunks = crate::views::trunk_addresses(store, resolver)?;
    Ok(crate::views::trusted(store, &[], &trunks)?.into_iter().find(|t| t.contains(p.addr())))
}

pub fn bans(store: &dyn Backend) -> Result<Vec<BanRow>> {
    Ok(store.bans(now_ms())?)
}

/// The longest ban an operator can set with a duration (10 years); longer is a typo (`99999999d`), and
/// "until removed" is what no duration means.
pub const MAX_BAN_MS: u64 = 10 * 365 * 86_400_000;

/// Bans an address or network (`duration`: e.g. "12h", at most 10 years; `None`: until removed).
/// Refused for a trusted network, which is never banned, and for a network wider than /8 (IPv4) or /32
/// (IPv6) unless `force`.
pub fn ban(
    store: &dyn Backend,
    target: &str,
    reason: &str,
    duration: Option<&str>,
    force: bool,
    resolver: &dyn Resolver,
) -> Result<BanRow> {
    let p = Prefix::parse_strict(target).map_err(|e| invalid!("{e}"))?;
    crate::validate::check_breadth(&p, "banning", force)?;
    if let Some(t) = trusted_by(store, &p, resolver)? {
        return Err(conflict!(
            "{p} is in the trusted network {t}, which is never banned; remove it with `pbxguard trust del {t}` first"
        ));
    }
    let duration_ms = match duration {
        Some(d) => Some(parse_duration_ms(d).filter(|ms| (1..=MAX_BAN_MS).contains(ms)).ok_or_else(|| {
            invalid!(
                "--for {d:?}: expected a duration from 1s to 3650d (10 years), such as 30m, 12h or 7d; \
                     leave --for out to ban until removed"
            )
        })? as i64),
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
pub fn unban(store: &dyn Backend, target: &str) -> Result<Prefix> {
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

/// Trusts a network (wider than /8 or /32 only with `force`); returns the bans inside it, which stay
/// stored: trust overrides them while it lasts (the gate checks trust first), and removing the trust
/// brings them back.
pub fn trust(store: &dyn Backend, cidr: &str, note: Option<&str>, force: bool) -> Result<(Prefix, Vec<BanRow>)> {
    let p = Prefix::parse_strict(cidr).map_err(|e| invalid!("{e}"))?;
    crate::validate::check_breadth(&p, "trusting", force)?;
    if !store.add_trusted(&p.to_string(), note, crate::clock::now_secs())? {
        return Err(conflict!("{p} is already trusted"));
    }
    let overridden = store
        .bans(now_ms())?
        .into_iter()
        .filter(|b| Prefix::parse_lenient(&b.target).is_ok_and(|t| p.contains(t.addr())));
    Ok((p, overridden.collect()))
}

/// The operator's trusted network overriding a ban on `target`, if any (trunks and listeners aside).
pub fn overriding_trust(trusted: &[Prefix], target: &str) -> Option<Prefix> {
    let t = Prefix::parse_lenient(target).ok()?;
    trusted.iter().find(|n| n.contains(t.addr())).copied()
}

pub fn trusted(store: &dyn Backend) -> Result<Vec<(String, Option<String>)>> {
    Ok(store.trusted()?)
}

pub fn untrust(store: &dyn Backend, cidr: &str) -> Result<Prefix> {
    let p = Prefix::parse_strict(cidr).map_err(|e| invalid!("{e}"))?;
    if !store.delete_trusted(&p.to_string())? {
        return Err(not_found!("{p} is not in the trusted networks (see `pbxguard trust list`)"));
    }
    Ok(p)
}

/// Creates or replaces an ACL group; returns its rules, normalised. An allow rule wider than /8 (IPv4)
/// or /32 (IPv6) is refused unless `force` (deny rules may be as wide as they like).
pub fn put_acl(store: &dyn Backend, name: &str, rules: &[String], force: bool) -> Result<Vec<Rule>> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(invalid!("invalid ACL group name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"));
    }
    let parsed =
        rules.iter().map(|r| Rule::parse(r).map_err(|e| invalid!("rule {r:?}: {e}"))).collect::<Result<Vec<_>>>()?;
    for r in &parsed {
        if let Rule::Allow(p) = r {
            crate::validate::check_breadth(p, "allowing", force)?;
        }
    }
    if !parsed.iter().any(|r| matches!(r, Rule::Allow(_))) {
        return Err(invalid!(
            "ACL group {name} would deny every address (it has no allow rule); add at least one network to allow"
        ));
    }
    let text: Vec<String> = parsed.iter().map(ToString::to_string).collect();
    store.put_acl(name, &text.join(" "), crate::clock::now_secs())?;
    Ok(parsed)
}

pub fn acls(store: &dyn Backend) -> Result<Vec<AclRow>> {
    Ok(store.acls()?)
}

pub fn delete_acl(store: &dyn Backend, name: &str) -> Result<()> {
    if !store.delete_acl(name)? {
        return Err(not_found!("no ACL group {name:?}"));
    }
    Ok(())
}

/// Creates an ACL group, refused if the name is taken: a form that only adds must not replace a
/// group by accident (`put_acl`, as `acl add` uses it, creates or replaces).
pub fn create_acl(store: &dyn Backend, name: &str, rules: &[String], force: bool) -> Result<Vec<Rule>> {
    if store.acl(name)?.is_some() {
        return Err(conflict!("ACL group {name} already exists; change its networks in its row instead"));
    }
    put_acl(store, name, rules, force)
}

/// Replaces the rules of an existing ACL group; the extensions using it follow at once.
pub fn edit_acl(store: &dyn Backend, name: &str, rules: &[String], force: bool) -> Result<Vec<Rule>> {
    if store.acl(name)?.is_none() {
        return Err(not_found!("no ACL group {name:?}; add it first"));
    }
    put_acl(store, name, rules, force)
}

/// How many extensions use each ACL group, by name; a group no extension uses is absent.
pub fn acl_usage(store: &dyn Backend) -> Result<std::collections::BTreeMap<String, u64>> {
    Ok(store.acl_usage()?.into_iter().collect())
}

/// The id after which the last `n` security events start.
pub fn events_tail_start(store: &dyn Backend, n: i64) -> Result<i64> {
    Ok(store.events_tail_start(n.max(0))?)
}

/// Security events after id `after`, oldest first, at most `limit`.
pub fn events_after(store: &dyn Backend, after: i64, limit: i64) -> Result<Vec<EventRow>> {
    Ok(store.events_after(after, limit)?)
}
