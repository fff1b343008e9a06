//! Admin accounts: argon2id hashes only. At first start admin/admin exists, flagged must-change: until
//! it is changed, every admin interface refuses everything but the change.

use crate::{Error, Result, invalid, not_found};
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use pbxguard_shield::PasswordPolicy;
use pbxguard_store::{Admin, Backend};
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

pub fn ensure_default(store: &dyn Backend) -> Result<()> {
    if store.admins()?.is_empty() {
        store.ensure_admin("admin", &hash("admin")?, true, crate::clock::now_secs())?;
    }
    Ok(())
}

pub fn list(store: &dyn Backend) -> Result<Vec<Admin>> {
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
pub fn login(store: &mut dyn Backend, name: &str, password: &str, from: Option<IpAddr>) -> Result<Login> {
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

/// The password `new` stands for, checked under the policy (not containing the account name);
/// whether it was generated.
fn chosen(name: &str, new: NewPassword) -> Result<(String, bool)> {
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
    Ok((password, generated))
}

/// Changes an account's password under the policy (not containing the account name, not the current
/// one). Returns the generated password when one was asked for.
pub fn set_password(store: &dyn Backend, name: &str, new: NewPassword) -> Result<Option<String>> {
    let account =
        store.admin(name)?.ok_or_else(|| not_found!("no admin account {name:?} (see `pbxguard admin list`)"))?;
    let (password, generated) = chosen(name, new)?;
    if verify(&password, &account.hash) {
        return Err(invalid!("the new password must differ from the current one; nothing was changed"));
    }
    store.set_admin_password(name, &hash(&password)?, crate::clock::now_secs())?;
    Ok(generated.then_some(password))
}

/// An admin account as the admin pages list it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdminView {
    pub name: String,
    pub must_change: bool,
    /// When the password was last set (seconds).
    pub updated_at: i64,
    /// The newest accepted login still in the event log (milliseconds), if any.
    pub last_login_ms: Option<i64>,
    /// Where that login came from.
    pub last_login_from: Option<String>,
}

/// Every account with its last login, read from the event log (so bounded by its retention).
pub fn overview(store: &dyn Backend) -> Result<Vec<AdminView>> {
    let mut out = Vec::new();
    for a in store.admins()? {
        let q = pbxguard_store::EventQuery {
            kind: Some("admin-login".into()),
            user: Some(a.name.clone()),
            limit: 1,
            ..Default::default()
        };
        let last = store.events_page(&q)?.pop();
        out.push(AdminView {
            name: a.name,
            must_change: a.must_change,
            updated_at: a.updated_at,
            last_login_ms: last.as_ref().map(|e| e.at_ms),
            last_login_from: last.and_then(|e| e.source),
        });
    }
    Ok(out)
}

/// Account names: what a login form and a log line can carry without surprises.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid!(
            "admin name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-' (for example jane.doe); nothing was added"
        ))
    }
}

/// Adds an admin account under the password policy. The account must change its password at its first
/// login, as the first-run admin does: whoever chose this password is not its owner. Returns the
/// generated password when one was asked for.
pub fn add(store: &dyn Backend, name: &str, new: NewPassword) -> Result<Option<String>> {
    check_name(name)?;
    if store.admin(name)?.is_some() {
        return Err(crate::conflict!("admin {name} already exists; nothing was added (change its password instead)"));
    }
    let (password, generated) = chosen(name, new)?;
    if !store.ensure_admin(name, &hash(&password)?, true, crate::clock::now_secs())? {
        return Err(crate::conflict!("admin {name} already exists; nothing was added"));
    }
    Ok(generated.then_some(password))
}

/// Deletes an admin account: never the last one (nobody could log in again), never `acting`, the
/// admin asking (they would lose the session they are using; another admin can do it).
pub fn delete(store: &dyn Backend, name: &str, acting: Option<&str>) -> Result<()> {
    if store.admin(name)?.is_none() {
        return Err(not_found!("no admin account {name:?} (see `pbxguard admin list`)"));
    }
    if acting == Some(name) {
        return Err(crate::conflict!(
            "you are logged in as {name}: an admin cannot delete their own account; log in as another admin to delete it"
        ));
    }
    if !store.delete_admin(name)? {
        return Err(crate::conflict!(
            "{name} is the last admin account: nobody could log in any more. Add another admin first"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbxguard_store::Store;
    use pbxguard_store::prelude::*;

    fn store() -> Store {
        let s = Store::open_in_memory().unwrap();
        ensure_default(&s).unwrap();
        s
    }

    #[test]
    fn an_added_admin_follows_the_policy_and_must_change_its_password() {
        let s = store();
        let e = add(&s, "jane", NewPassword::Given("jane".into())).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)) && e.to_string().contains("account name"), "{e}");
        assert!(matches!(add(&s, "ja ne", NewPassword::Given("Str0ng-Enough-Pass!".into())), Err(Error::Invalid(_))));
        assert!(matches!(add(&s, "", NewPassword::Generate), Err(Error::Invalid(_))));
        assert_eq!(s.admins().unwrap().len(), 1, "a refused admin was stored");
        assert_eq!(add(&s, "jane", NewPassword::Given("Str0ng-Enough-Pass!".into())).unwrap(), None);
        assert!(s.admin("jane").unwrap().unwrap().must_change);
        assert!(matches!(add(&s, "jane", NewPassword::Generate), Err(Error::Conflict(_))));
        let generated = add(&s, "bob", NewPassword::Generate).unwrap().unwrap();
        assert!(verify(&generated, &s.admin("bob").unwrap().unwrap().hash));
    }

    #[test]
    fn never_the_last_admin_and_never_yourself() {
        let s = store();
        assert!(matches!(delete(&s, "admin", None), Err(Error::Conflict(_))), "the last admin went");
        assert!(matches!(delete(&s, "nobody", None), Err(Error::NotFound(_))));
        add(&s, "jane", NewPassword::Generate).unwrap();
        let e = delete(&s, "jane", Some("jane")).unwrap_err();
        assert!(e.to_string().contains("logged in as jane"), "{e}");
        delete(&s, "jane", Some("admin")).unwrap();
        assert_eq!(s.admins().unwrap().len(), 1);
    }

    #[test]
    fn the_overview_shows_the_last_accepted_login() {
        let mut s = store();
        assert_eq!(overview(&s).unwrap()[0].last_login_ms, None);
        login(&mut s, "admin", "admin", Some("192.0.2.7".parse().unwrap())).unwrap();
        login(&mut s, "admin", "wrong", Some("198.51.100.1".parse().unwrap())).unwrap();
        let v = &overview(&s).unwrap()[0];
        assert!(v.last_login_ms.is_some());
        assert_eq!(v.last_login_from.as_deref(), Some("192.0.2.7"), "a failed login is no login");
    }
}
