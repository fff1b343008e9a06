//! SIP extensions: adding them under the password policy, changing their secret, ACL group, Class of
//! Service and toll-fraud limits, lifting a suspension, listing them with their registrations.

use crate::{Result, invalid, not_found};
use pbxguard_store::{Backend, Binding, Extension};

/// A SIP secret as the operator gives it.
pub enum Secret {
    Given(String),
    /// A random policy-compliant secret, returned once.
    Generate,
}

/// Returns the secret and whether it was generated (and must be shown once).
fn secret_of(store: &dyn Backend, number: &str, s: Secret) -> Result<(String, bool)> {
    match s {
        Secret::Given(s) => {
            if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
                return Err(invalid!(
                    "invalid secret: use 1-128 printable characters (or --generate for a strong random one)"
                ));
            }
            Ok((s, false))
        }
        Secret::Generate => Ok((crate::policy::generate(&crate::policy::policy(store)?, number), true)),
    }
}

pub struct NewExtension {
    pub number: String,
    pub secret: Secret,
    /// Digest algorithms offered to it, in order (`None`: the global `auth.algorithms`).
    pub algorithms: Option<String>,
    pub acl: Option<String>,
    pub cos: Option<String>,
}

/// Adds an extension; returns the generated secret if one was asked for (shown once, never stored).
pub fn add(store: &dyn Backend, new: NewExtension) -> Result<Option<String>> {
    let NewExtension { number, secret, algorithms, acl, cos } = new;
    crate::validate::check_number(&number)?;
    if let Some(c) = &cos {
        crate::validate::require_cos(store, c)?;
    }
    if let Some(g) = &acl {
        crate::validate::require_acl(store, g)?;
    }
    if let Some(a) = &algorithms {
        crate::settings::parse_algorithms(a).map_err(|e| invalid!("--algorithms: {e}"))?;
    }
    if store.extension(&number)?.is_some() {
        return Err(crate::conflict!(
            "extension {number} already exists (change its secret with `pbxguard ext passwd {number}`)"
        ));
    }
    let realm = crate::settings::get(store, "sip.realm")?;
    let (secret, generated) = secret_of(store, &number, secret)?;
    let violations = crate::policy::require(store, &number, &secret)?;
    let ext = Extension {
        algorithms,
        acl,
        policy_violations: crate::policy::codes(&violations),
        cos,
        ..Extension::new(number.clone(), crate::policy::credentials(&number, &realm, &secret), crate::clock::now_secs())
    };
    store.add_extension(&ext)?;
    Ok(generated.then_some(secret))
}

/// Changes an extension's secret; returns the generated one if asked for.
pub fn set_secret(store: &dyn Backend, number: &str, secret: Secret) -> Result<Option<String>> {
    if store.extension(number)?.is_none() {
        return Err(not_found!("extension {number} does not exist"));
    }
    let realm = crate::settings::get(store, "sip.realm")?;
    let (secret, generated) = secret_of(store, number, secret)?;
    let violations = crate::policy::require(store, number, &secret)?;
    let creds = crate::policy::credentials(number, &realm, &secret);
    store.set_credentials(number, &creds, crate::policy::codes(&violations).as_deref(), crate::clock::now_secs())?;
    Ok(generated.then_some(secret))
}

/// Puts an extension in an ACL group (`None`: no group, any address may register it).
pub fn set_acl(store: &dyn Backend, number: &str, group: Option<&str>) -> Result<()> {
    if let Some(g) = group {
        crate::validate::require_acl(store, g)?;
    }
    store.set_extension_acl(number, group)?;
    Ok(())
}

/// Gives an extension a Class of Service (`None`: the default one).
pub fn set_cos(store: &dyn Backend, number: &str, cos: Option<&str>) -> Result<()> {
    if let Some(c) = cos {
        crate::validate::require_cos(store, c)?;
    }
    store.set_extension_cos(number, cos)?;
    Ok(())
}

/// Per-extension toll-fraud limits after a change (`None`: the global setting applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    pub concurrent: Option<u32>,
    pub per_hour: Option<u32>,
    /// Longest trunk call, seconds (0: no limit).
    pub max_duration_secs: Option<u32>,
}

/// Changes an extension's limits. Each value is a whole number (a duration such as `2h` or `off` for
/// the longest trunk call), "default" (back to the global setting) or absent (unchanged). Nothing
/// changes unless every value is valid.
pub fn set_limits(
    store: &dyn Backend,
    number: &str,
    concurrent: Option<&str>,
    per_hour: Option<&str>,
    max_duration: Option<&str>,
) -> Result<Limits> {
    let Some(e) = store.extension(number)? else { return Err(not_found!("extension {number} does not exist")) };
    let parse = |flag: &str, v: Option<&str>, current: Option<u32>, max: u32| -> Result<Option<u32>> {
        match v {
            None => Ok(current),
            Some("default") => Ok(None),
            Some(x) => match x.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(invalid!("--{flag} {x:?}: give a whole number from 1 to {max}, or \"default\"")),
            },
        }
    };
    let concurrent = parse("concurrent", concurrent, e.max_calls, 1000)?;
    let per_hour = parse("per-hour", per_hour, e.calls_per_hour, 1_000_000)?;
    let max_duration_secs = match max_duration {
        None => e.max_call_secs,
        Some("default") => None,
        Some(v) => Some(
            crate::settings::parse_max_trunk_duration(v)
                .map(|ms| (ms / 1000) as u32)
                .map_err(|err| invalid!("--max-duration {v:?}: {err}, or \"default\" for calls.max_trunk_duration"))?,
        ),
    };
    store.set_call_limits(number, concurrent, per_hour)?;
    if max_duration_secs != e.max_call_secs {
        store.set_max_call_secs(number, max_duration_secs)?;
    }
    Ok(Limits { concurrent, per_hour, max_duration_secs })
}

/// Lifts a suspension; returns why it was suspended (`None`: it was not).
pub fn enable(store: &dyn Backend, number: &str) -> Result<Option<String>> {
    let Some(e) = store.extension(number)? else { return Err(not_found!("extension {number} does not exist")) };
    store.set_suspended(number, None)?;
    Ok(e.suspended)
}

pub fn delete(store: &dyn Backend, number: &str) -> Result<()> {
    store.delete_extension(number)?;
    Ok(())
}

/// An extension as the operator sees it: never its credentials.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtensionView {
    pub number: String,
    pub algorithms: Option<String>,
    pub acl: Option<String>,
    pub cos: Option<String>,
    pub suspended: Option<String>,
    pub max_calls: Option<u32>,
    pub calls_per_hour: Option<u32>,
    /// Own longest trunk call, seconds (0: no limit); `None`: calls.max_trunk_duration.
    pub max_call_secs: Option<u32>,
    pub compliant: bool,
    pub policy_violations: Option<String>,
    pub registrations: usize,
    pub created_at: i64,
    pub updated_at: i64,
}

fn view(e: Extension, registrations: usize) -> ExtensionView {
    ExtensionView {
        registrations,
        compliant: e.policy_violations.is_none(),
        number: e.number,
        algorithms: e.algorithms,
        acl: e.acl,
        cos: e.cos,
        suspended: e.suspended,
        max_calls: e.max_calls,
        calls_per_hour: e.calls_per_hour,
        max_call_secs: e.max_call_secs,
        policy_violations: e.policy_violations,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

pub fn list(store: &dyn Backend) -> Result<Vec<ExtensionView>> {
    let regs = store.bindings(crate::clock::now_secs())?;
    let count = |n: &str| regs.iter().filter(|b| b.extension == n).count();
    Ok(store
        .extensions()?
        .into_iter()
        .map(|e| {
            let n = count(&e.number);
            view(e, n)
        })
        .collect())
}

/// One extension, as [`list`] shows it.
pub fn show(store: &dyn Backend, number: &str) -> Result<ExtensionView> {
    let e = store.extension(number)?.ok_or_else(|| not_found!("extension {number} does not exist"))?;
    let regs = store.bindings(crate::clock::now_secs())?.iter().filter(|b| b.extension == number).count();
    Ok(view(e, regs))
}

/// Live registrations.
pub fn registrations(store: &dyn Backend) -> Result<Vec<Binding>> {
    Ok(store.bindings(crate::clock::now_secs())?)
}

/// One row of `export csv`: what can be exported (secrets exist only as hashes and never leave).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportRow {
    pub number: String,
    pub acl: String,
    pub algorithms: String,
    pub compliant: bool,
    pub mailbox: bool,
    pub must_initialise: bool,
}

pub fn export(store: &dyn Backend) -> Result<Vec<ExportRow>> {
    let boxes: std::collections::HashMap<String, bool> =
        store.mailboxes()?.into_iter().map(|m| (m.extension, m.must_initialise)).collect();
    Ok(store
        .extensions()?
        .into_iter()
        .map(|e| {
            let mb = boxes.get(&e.number);
            ExportRow {
                acl: e.acl.unwrap_or_default(),
                algorithms: e.algorithms.unwrap_or_default(),
                compliant: e.policy_violations.is_none(),
                mailbox: mb.is_some(),
                must_initialise: mb.copied().unwrap_or(false),
                number: e.number,
            }
        })
        .collect())
}

/// One page of a list, with what the pager needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many rows the filter matches in all.
    pub total: u64,
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
}

impl<T> Page<T> {
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }
}

/// Longest page a caller may ask for.
pub const MAX_PER_PAGE: u64 = 500;

/// One page of extensions (1-based `page`, `per_page` up to [`MAX_PER_PAGE`]), as [`list`] shows them:
/// only that page is read, so 10,000 extensions cost what 50 do.
pub fn page(
    store: &dyn Backend,
    filter: &pbxguard_store::ExtensionFilter<'_>,
    page: u64,
    per_page: u64,
) -> Result<Page<ExtensionView>> {
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(invalid!("per page {per_page}: give 1 to {MAX_PER_PAGE}"));
    }
    if filter.text.is_some_and(|t| t.len() > 64) {
        return Err(invalid!("search text too long: give at most 64 characters"));
    }
    let page = page.max(1);
    let total = store.extensions_matching(filter)?;
    let offset = (page - 1).saturating_mul(per_page);
    let items = store
        .extensions_page(filter, crate::clock::now_secs(), offset, per_page)?
        .into_iter()
        .map(|(e, regs)| view(e, regs as usize))
        .collect();
    Ok(Page { items, total, page, per_page })
}

/// What the password policy says of a candidate secret for `number`, before anything is stored:
/// every reason it breaks, and whether the policy is enforced (then such a secret is refused).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SecretCheck {
    pub enforced: bool,
    pub reasons: Vec<String>,
}

pub fn check_secret(store: &dyn Backend, number: &str, secret: &str) -> Result<SecretCheck> {
    if secret.len() > 1024 || number.len() > 64 {
        return Err(invalid!("too long: a secret has at most 128 characters"));
    }
    let v = crate::policy::check(&crate::policy::policy(store)?, number, secret);
    Ok(SecretCheck { enforced: crate::policy::enforced(store)?, reasons: v.iter().map(ToString::to_string).collect() })
}

/// Suspends an extension's outbound calls by hand, as the toll-fraud limits do, until [`enable`].
pub fn suspend(store: &dyn Backend, number: &str, reason: &str) -> Result<()> {
    let reason = reason.trim();
    if reason.len() > 200 || reason.chars().any(char::is_control) {
        return Err(invalid!("the reason must be at most 200 printable characters"));
    }
    let reason = if reason.is_empty() { "suspended by an operator" } else { reason };
    if store.extension(number)?.is_none() {
        return Err(not_found!("extension {number} does not exist"));
    }
    store.set_suspended(number, Some(reason))?;
    Ok(())
}
