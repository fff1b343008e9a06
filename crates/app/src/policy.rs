//! The password policy applied to SIP secrets: checking a secret when it is set, generating compliant
//! ones, and the guide's two switches (enforce; automatically fix invalid passwords).

use crate::settings;
use crate::{Result, invalid};
use pbxguard_shield::{PasswordPolicy, Violation};
use pbxguard_sip::{Algorithm, ha1};
use pbxguard_store::{Backend, Credentials, EventRow};

pub fn policy(store: &dyn Backend) -> Result<PasswordPolicy> {
    let min_len = settings::get(store, "password_policy.min_length")?.parse().map_err(|_| {
        invalid!("stored password_policy.min_length is invalid; set it again with `pbxguard settings set`")
    })?;
    Ok(PasswordPolicy { min_len, ..Default::default() })
}

pub fn enforced(store: &dyn Backend) -> Result<bool> {
    Ok(settings::get(store, "password_policy.enforce")? == "true")
}

pub fn check(p: &PasswordPolicy, number: &str, secret: &str) -> Vec<Violation> {
    p.check(secret, &[(number, "the extension number")])
}

/// The recorded form of a check: `None` when compliant, else the rule codes.
pub fn codes(v: &[Violation]) -> Option<String> {
    (!v.is_empty()).then(|| v.iter().map(Violation::code).collect::<Vec<_>>().join(","))
}

/// Refuses a non-compliant secret when the policy is enforced, listing every reason.
pub fn require(store: &dyn Backend, number: &str, secret: &str) -> Result<Vec<Violation>> {
    let v = check(&policy(store)?, number, secret);
    if !v.is_empty() && enforced(store)? {
        return Err(invalid!(
            "the secret for extension {number} does not meet the password policy:\n{}\nnothing was changed. Use --generate \
             for a strong random secret (or turn the policy off with `pbxguard settings set password_policy.enforce false`, \
             which is not recommended)",
            reasons(&v)
        ));
    }
    Ok(v)
}

/// A random secret that passes the policy for this extension.
pub fn generate(p: &PasswordPolicy, number: &str) -> String {
    generate_for(p, &[(number, "the extension number")])
}

/// A random secret that passes the policy and contains none of `identities`.
pub fn generate_for(p: &PasswordPolicy, identities: &[(&str, &str)]) -> String {
    loop {
        // 20 characters, or longer when the policy asks for more.
        let s = crate::random::generate_secret(p.min_len.max(20));
        if p.check(&s, identities).is_empty() {
            return s;
        }
    }
}

/// Every reason, one per line, for an operator-facing refusal.
pub fn reasons(v: &[Violation]) -> String {
    v.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n")
}

pub fn credentials(number: &str, realm: &str, secret: &str) -> Credentials {
    let [md5, sha256, sha512] = Algorithm::ALL.map(|a| ha1(a, number, realm, secret));
    Credentials { realm: realm.to_owned(), ha1_md5: md5, ha1_sha256: sha256, ha1_sha512_256: sha512 }
}

/// Lists the extensions whose secret broke the policy when it was set; with `fix`, gives each a new
/// compliant secret, returns them (to be shown once) and records a security event per extension.
/// One extension whose secret breaks the policy, as [`review`] found (and maybe fixed) it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reviewed {
    pub extension: String,
    /// The rule codes it broke.
    pub violations: String,
    /// The generated replacement, shown once (only when fixed).
    pub new_secret: Option<String>,
}

pub fn review(store: &mut dyn Backend, fix: bool) -> Result<Vec<Reviewed>> {
    let p = policy(store)?;
    let realm = settings::get(store, "sip.realm")?;
    let now = crate::clock::now_secs();
    let mut out = Vec::new();
    let mut events = Vec::new();
    for e in store.extensions()?.into_iter().filter(|e| e.policy_violations.is_some()) {
        let reasons = e.policy_violations.clone().unwrap_or_default();
        if fix {
            let secret = generate(&p, &e.number);
            store.set_credentials(&e.number, &credentials(&e.number, &realm, &secret), None, now)?;
            events.push(EventRow {
                id: 0,
                at_ms: crate::clock::now_ms() as i64,
                kind: "secret-autofix".into(),
                source: None,
                user: Some(e.number.clone()),
                detail: format!("non-compliant secret ({reasons}) replaced by a generated one"),
            });
            out.push(Reviewed { extension: e.number, violations: reasons, new_secret: Some(secret) });
        } else {
            out.push(Reviewed { extension: e.number, violations: reasons, new_secret: None });
        }
    }
    crate::log_events(store, &events)?;
    Ok(out)
}
