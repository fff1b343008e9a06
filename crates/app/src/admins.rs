//! Admin accounts: argon2id hashes only. At first start admin/admin exists, flagged must-change: until
//! it is changed, every admin interface refuses everything but the change.

use crate::{Error, Result, invalid, not_found};
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use pbxguard_shield::PasswordPolicy;
use pbxguard_store::{Admin, Store};
use std::net::IpAddr;

pub fn hash(secret: &str) -> Result<String> {
    let salt =
        SaltString::encode_b64(&crate::random::random_bytes::<16>()).map_err(|e| Error::Io(format!("salt: {e}")))?;
    Ok(Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| Error::Io(format!("hashing: {e}")))?
        .to_string())
}

pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

pub fn ensure_default(store: &Store) -> Result<()> {
    if store.admins()?.is_empty() {
        store.ensure_admin("admin", &hash("admin")?, true, crate::clock::now_secs())?;
    }
    Ok(())
}

pub fn list(store: &Store) -> Result<Vec<Admin>> {
    Ok(store.admins()?)
}

/// The result of an admin login, as every admin interface sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Login {
    Accepted,
    /// Right password, but the account must change it first: nothing else is allowed until then.
    MustChange,
    Refused,
}

/// Verifies an admin login and records it as a security event (`admin-login` or
/// `admin-login-failed`, with the source when known). An unknown account costs the same hash as a wrong
/// password, and reads the same to the caller.
pub fn login(store: &mut Store, name: &str, password: &str, from: Option<IpAddr>) -> Result<Login> {
    ensure_default(store)?;
    let account = store.admin(name)?;
    // A fixed decoy keeps the timing of an unknown name equal to a wrong password.
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = DECOY.get_or_init(|| hash("decoy password").unwrap_or_default());
    let ok = verify(password, account.as_ref().map_or(decoy.as_str(), |a| a.hash.as_str())) && account.is_some();
    let outcome = match &account {
        Some(a) if ok && a.must_change => Login::MustChange,
        Some(_) if ok => Login::Accepted,
        _ => Login::Refused,
    };
    let (kind, detail) = match (outcome, account.is_some()) {
        (Login::Accepted, _) => ("admin-login", "accepted".to_owned()),
        (Login::MustChange, _) => {
            ("admin-login", "accepted; the password must be changed before anything else".to_owned())
        }
        (Login::Refused, true) => ("admin-login-failed", "wrong password".to_owned()),
        (Login::Refused, false) => ("admin-login-failed", "unknown account".to_owned()),
    };
    let row = pbxguard_store::EventRow {
        id: 0,
        at_ms: crate::clock::now_ms() as i64,
        kind: kind.into(),
        source: from.map(|ip| ip.to_string()),
        user: Some(name.to_owned()),
        detail,
    };
    crate::log_events(store, &[row])?;
    Ok(outcome)
}

/// A new password for an admin account: given, or generated (then returned, to be shown once).
pub enum NewPassword {
    Given(String),
    Generate,
}

/// Changes an account's password under the policy (not containing the account name, not the current
/// one). Returns the generated password when one was asked for.
pub fn set_password(store: &Store, name: &str, new: NewPassword) -> Result<Option<String>> {
    let account =
        store.admin(name)?.ok_or_else(|| not_found!("no admin account {name:?} (see `pbxguard admin list`)"))?;
    let policy = PasswordPolicy::default();
    let identity = [(name, "the account name")];
    let (password, generated) = match new {
        NewPassword::Given(p) => (p, false),
        NewPassword::Generate => (crate::policy::generate_for(&policy, &identity), true),
    };
    let v = policy.check(&password, &identity);
    if !v.is_empty() {
        return Err(invalid!(
            "the password for {name} does not meet the password policy:\n{}\nnothing was changed",
            crate::policy::reasons(&v)
        ));
    }
    if verify(&password, &account.hash) {
        return Err(invalid!("the new password must differ from the current one; nothing was changed"));
    }
    store.set_admin_password(name, &hash(&password)?, crate::clock::now_secs())?;
    Ok(generated.then_some(password))
}
