//! Voicemail mailboxes and admin accounts from the CLI. PINs and admin passwords are stored as argon2id
//! hashes only.

use crate::cli::{AdminCommand, VmCommand, YesNo};
use crate::commands::now_secs;
use crate::outln;
use crate::settings;
use anyhow::{Context, Result, anyhow, bail};
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use pbxguard_shield::{PasswordPolicy, PinPolicy};
use pbxguard_store::{Mailbox, Store};
use serde_json::json;

pub(crate) fn hash(secret: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&crate::secret::random_bytes::<16>()).map_err(|e| anyhow!("salt: {e}"))?;
    Ok(Argon2::default().hash_password(secret.as_bytes(), &salt).map_err(|e| anyhow!("hashing: {e}"))?.to_string())
}

pub(crate) fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

/// At first start the account admin/admin exists, flagged must-change: until it is changed, every admin
/// interface refuses everything but the change.
pub(crate) fn ensure_default_admin(store: &Store) -> Result<()> {
    if store.admins()?.is_empty() {
        store.ensure_admin("admin", &hash("admin")?, true, now_secs())?;
    }
    Ok(())
}

/// The result of an admin login, as every admin interface sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    Accepted,
    /// Right password, but the account must change it first: nothing else is allowed until then.
    MustChange,
    Refused,
}

/// Verifies an admin login and records it as a security event (`admin-login` or
/// `admin-login-failed`, with the source when known). An unknown account costs the same hash as a wrong
/// password, and reads the same to the caller.
pub(crate) fn login(store: &mut Store, name: &str, password: &str, from: Option<std::net::IpAddr>) -> Result<Login> {
    ensure_default_admin(store)?;
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
    let now_ms = crate::daemon::now_ms() as i64;
    let row = pbxguard_store::EventRow {
        id: 0,
        at_ms: now_ms,
        kind: kind.into(),
        source: from.map(|ip| ip.to_string()),
        user: Some(name.to_owned()),
        detail,
    };
    store.append_events(&[row], 100_000, 30 * 86_400_000, now_ms)?;
    Ok(outcome)
}

pub(crate) fn admin(store: &mut Store, cmd: AdminCommand) -> Result<()> {
    ensure_default_admin(store)?;
    match cmd {
        AdminCommand::Login { name, from } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            match login(store, &name, password, from)? {
                Login::Accepted => outln!("accepted"),
                Login::MustChange => {
                    outln!("accepted, but the password must be changed first: pbxguard admin passwd {name}");
                    std::process::exit(3);
                }
                Login::Refused => {
                    outln!("refused");
                    std::process::exit(1);
                }
            }
        }
        AdminCommand::Passwd { name, password, generate } => {
            let account =
                store.admin(&name)?.ok_or_else(|| anyhow!("no admin account {name:?} (see `pbxguard admin list`)"))?;
            let policy = PasswordPolicy::default();
            let identity = [(name.as_str(), "the account name")];
            let (password, shown) = match (password, generate) {
                (Some(p), false) => (p, false),
                (None, true) => (crate::policy::generate_for(&policy, &identity), true),
                _ => bail!("give exactly one of --password P or --generate"),
            };
            let v = policy.check(&password, &identity);
            if !v.is_empty() {
                bail!(
                    "the password for {name} does not meet the password policy:\n{}\nnothing was changed",
                    crate::policy::reasons(&v)
                );
            }
            if verify(&password, &account.hash) {
                bail!("the new password must differ from the current one; nothing was changed");
            }
            store.set_admin_password(&name, &hash(&password)?, now_secs())?;
            if shown {
                outln!("admin {name}: new password (shown once): {password}");
            } else {
                outln!("admin {name}: password changed");
            }
        }
        AdminCommand::List { json } => {
            let admins = store.admins()?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&admins)?);
            } else {
                for a in admins {
                    let flag = if a.must_change { "must change its password before anything else works" } else { "" };
                    outln!("{:<16} {flag}", a.name);
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn vm(store: &Store, cmd: VmCommand) -> Result<()> {
    match cmd {
        VmCommand::Set { extension, pin, force_name, force_greeting } => {
            if store.extension(&extension)?.is_none() {
                bail!(
                    "extension {extension} does not exist; add it first with `pbxguard ext add {extension} --generate`"
                );
            }
            let min: usize =
                settings::get(store, "voicemail.pin_min_length")?.parse().context("voicemail.pin_min_length")?;
            // A PIN equal to the extension is the one allowed weak PIN: it forces initialisation.
            let must_initialise = pin == extension;
            if !must_initialise {
                let v = PinPolicy { min_len: min }.check(&pin, &extension);
                if !v.is_empty() {
                    bail!(
                        "the PIN for mailbox {extension} does not meet the PIN policy:\n{}\nnothing was changed. \
                         (Setting the PIN to the extension number is allowed: it forces the owner to choose a new PIN \
                         and record a name and greeting at first login.)",
                        crate::policy::reasons(&v)
                    );
                }
            }
            let old = store.mailbox(&extension)?;
            let keep = |o: Option<YesNo>, current: Option<bool>| o.map_or(current.unwrap_or(true), |y| y == YesNo::Yes);
            let m = Mailbox {
                extension: extension.clone(),
                pin_hash: hash(&pin)?,
                must_initialise,
                force_name: keep(force_name, old.as_ref().map(|m| m.force_name)),
                force_greeting: keep(force_greeting, old.as_ref().map(|m| m.force_greeting)),
                name_recorded: old.as_ref().is_some_and(|m| m.name_recorded),
                greeting_recorded: old.as_ref().is_some_and(|m| m.greeting_recorded),
                updated_at: now_secs(),
            };
            store.put_mailbox(&m)?;
            let note = if must_initialise {
                " (must initialise: new PIN, recorded name and greeting at first login)"
            } else {
                ""
            };
            outln!("mailbox {extension}: PIN set{note}");
        }
        VmCommand::List { json } => {
            let boxes = store.mailboxes()?;
            if json {
                let v: Vec<_> = boxes
                    .iter()
                    .map(|m| {
                        json!({"extension": m.extension, "must_initialise": m.must_initialise, "force_name": m.force_name,
                               "force_greeting": m.force_greeting, "name_recorded": m.name_recorded,
                               "greeting_recorded": m.greeting_recorded, "updated_at": m.updated_at})
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("{:<12} {:<16} {:<11} FORCE GREETING", "MAILBOX", "MUST INITIALISE", "FORCE NAME");
                for m in boxes {
                    outln!("{:<12} {:<16} {:<11} {}", m.extension, m.must_initialise, m.force_name, m.force_greeting);
                }
            }
        }
    }
    Ok(())
}
