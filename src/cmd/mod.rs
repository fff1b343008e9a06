//! Operator commands. Each opens the same database as the daemon; a running daemon notices the commit
//! and applies it within a second.

use crate::cli::{Cli, Command, ExtCommand, RegCommand, SecretArgs, SettingsCommand};
use crate::security_cmd;
use crate::settings::{self, open_store, parse_algorithms};
use anyhow::{Result, anyhow, bail};
use pbxguard_store::{Extension, Store};
use serde_json::json;

/// Prints a line to stdout; a closed pipe (`pbxguard reg list | head`) ends the command quietly instead
/// of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    }};
}

pub(crate) const DEFAULT_DATA: &str = "pbxguard-data";

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn run(cli: Cli) -> Result<()> {
    let data = || cli.data.clone().unwrap_or_else(|| DEFAULT_DATA.into());
    match cli.command {
        Command::Run(args) => crate::daemon::run(cli.data, args),
        Command::Ext(c) => ext(&open_store(&data())?, c),
        Command::Reg(RegCommand::List { json }) => reg_list(&open_store(&data())?, json),
        Command::Settings(c) => settings_cmd(&mut open_store(&data())?, c),
        Command::Bans(c) => security_cmd::bans(&open_store(&data())?, c),
        Command::Trust(c) => security_cmd::trust(&open_store(&data())?, c),
        Command::Acl(c) => security_cmd::acl(&open_store(&data())?, c),
        Command::Blacklist(c) => security_cmd::blacklist(&mut open_store(&data())?, c),
        Command::Import(crate::cli::ImportCommand::Asterisk { dir, dry_run }) => {
            crate::import::asterisk(&mut open_store(&data())?, &dir, dry_run)
        }
        Command::Import(crate::cli::ImportCommand::Csv { file, dry_run }) => {
            crate::import::csv(&mut open_store(&data())?, &file, dry_run)
        }
        Command::Export(crate::cli::ExportCommand::Csv) => export_csv(&open_store(&data())?),
        Command::Vm(c) => crate::accounts_cmd::vm(&open_store(&data())?, c),
        Command::Admin(c) => crate::accounts_cmd::admin(&mut open_store(&data())?, c),
        Command::Trunk(c) => crate::calls_cmd::trunk(&open_store(&data())?, c),
        Command::Route(c) => crate::calls_cmd::route(&open_store(&data())?, c),
        Command::Cos(c) => crate::calls_cmd::cos(&open_store(&data())?, c),
        Command::Did(c) => crate::calls_cmd::did(&open_store(&data())?, c),
        Command::Calls(c) => crate::calls_cmd::calls(&open_store(&data())?, c),
        Command::Events { follow, json, last } => security_cmd::events(&open_store(&data())?, follow, json, last),
    }
}

/// Extension numbers are what phones put in the user part of a SIP URI; keep them to characters that
/// need no escaping there.
pub(crate) fn check_number(n: &str) -> Result<()> {
    if n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        bail!("invalid extension number {n:?}: use 1-32 letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

/// Returns the secret and whether it was generated (and must be shown once).
fn secret_of(store: &Store, number: &str, args: SecretArgs) -> Result<(String, bool)> {
    match (args.secret, args.generate) {
        (Some(s), false) => {
            if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
                bail!("invalid secret: use 1-128 printable characters (or --generate for a strong random one)");
            }
            Ok((s, false))
        }
        (None, true) => Ok((crate::policy::generate(&crate::policy::policy(store)?, number), true)),
        _ => bail!("give exactly one of --secret S or --generate"),
    }
}

fn ext(store: &Store, cmd: ExtCommand) -> Result<()> {
    let realm = settings::get(store, "sip.realm")?;
    match cmd {
        ExtCommand::Add { number, secret, algorithms, acl, cos } => {
            check_number(&number)?;
            if let Some(c) = &cos {
                crate::calls_cmd::require_cos(store, c)?;
            }
            if let Some(g) = &acl
                && store.acl(g)?.is_none()
            {
                bail!("ACL group {g:?} does not exist; create it first with `pbxguard acl add {g} CIDR...`");
            }
            if let Some(a) = &algorithms {
                parse_algorithms(a).map_err(|e| anyhow!("--algorithms: {e}"))?;
            }
            if store.extension(&number)?.is_some() {
                bail!("extension {number} already exists (change its secret with `pbxguard ext passwd {number}`)");
            }
            let (secret, generated) = secret_of(store, &number, secret)?;
            let violations = crate::policy::require(store, &number, &secret)?;
            let now = now_secs();
            let ext = Extension {
                algorithms,
                acl,
                policy_violations: crate::policy::codes(&violations),
                cos,
                ..Extension::new(number.clone(), crate::policy::credentials(&number, &realm, &secret), now)
            };
            store.add_extension(&ext)?;
            if generated {
                outln!("extension {number} added; secret (shown once): {secret}");
            } else {
                outln!("extension {number} added");
            }
        }
        ExtCommand::Passwd { number, secret } => {
            if store.extension(&number)?.is_none() {
                bail!("extension {number} does not exist");
            }
            let (secret, generated) = secret_of(store, &number, secret)?;
            let violations = crate::policy::require(store, &number, &secret)?;
            let creds = crate::policy::credentials(&number, &realm, &secret);
            store.set_credentials(&number, &creds, crate::policy::codes(&violations).as_deref(), now_secs())?;
            if generated {
                outln!("extension {number}: new secret (shown once): {secret}");
            } else {
                outln!("extension {number}: secret changed");
            }
        }
        ExtCommand::Acl { number, group } => {
            let group = (group != "none").then_some(group);
            if let Some(g) = &group
                && store.acl(g)?.is_none()
            {
                bail!("ACL group {g:?} does not exist; create it first with `pbxguard acl add {g} CIDR...`");
            }
            store.set_extension_acl(&number, group.as_deref())?;
            outln!("extension {number}: ACL group {}", group.as_deref().unwrap_or("none"));
        }
        ExtCommand::Cos { number, cos } => {
            let cos = (cos != "none").then_some(cos);
            if let Some(c) = &cos {
                crate::calls_cmd::require_cos(store, c)?;
            }
            store.set_extension_cos(&number, cos.as_deref())?;
            outln!("extension {number}: class of service {}", cos.as_deref().unwrap_or("default"));
        }
        ExtCommand::Limits { number, concurrent, per_hour } => {
            let Some(e) = store.extension(&number)? else { bail!("extension {number} does not exist") };
            let parse = |flag: &str, v: Option<String>, current: Option<u32>, max: u32| -> Result<Option<u32>> {
                match v.as_deref() {
                    None => Ok(current),
                    Some("default") => Ok(None),
                    Some(x) => match x.parse::<u32>() {
                        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                        _ => bail!("--{flag} {x:?}: give a whole number from 1 to {max}, or \"default\""),
                    },
                }
            };
            let c = parse("concurrent", concurrent, e.max_calls, 1000)?;
            let h = parse("per-hour", per_hour, e.calls_per_hour, 1_000_000)?;
            store.set_call_limits(&number, c, h)?;
            let show = |v: Option<u32>, key: &str| v.map_or(format!("default ({key})"), |n| n.to_string());
            outln!(
                "extension {number}: at most {} concurrent trunk calls, {} per hour",
                show(c, "fraud.max_concurrent"),
                show(h, "fraud.calls_per_hour")
            );
        }
        ExtCommand::Enable { number } => {
            let Some(e) = store.extension(&number)? else { bail!("extension {number} does not exist") };
            store.set_suspended(&number, None)?;
            match e.suspended {
                Some(why) => outln!("extension {number}: outbound calls re-enabled (was suspended: {why})"),
                None => outln!("extension {number} was not suspended"),
            }
        }
        ExtCommand::Del { number } => {
            store.delete_extension(&number)?;
            outln!("extension {number} deleted");
        }
        ExtCommand::List { json } => {
            let exts = store.extensions()?;
            let regs = store.bindings(now_secs())?;
            let count = |n: &str| regs.iter().filter(|b| b.extension == n).count();
            if json {
                let v: Vec<_> = exts
                    .iter()
                    .map(|e| json!({"number": e.number, "algorithms": e.algorithms, "acl": e.acl, "cos": e.cos, "suspended": e.suspended, "max_calls": e.max_calls, "calls_per_hour": e.calls_per_hour,
                        "compliant": e.policy_violations.is_none(), "policy_violations": e.policy_violations, "registrations": count(&e.number), "created_at": e.created_at, "updated_at": e.updated_at}))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("{:<12} {:<14} {:<20} {:<12} STATUS", "EXTENSION", "REGISTRATIONS", "ALGORITHMS", "COS");
                for e in &exts {
                    outln!(
                        "{:<12} {:<14} {:<20} {:<12} {}",
                        e.number,
                        count(&e.number),
                        e.algorithms.as_deref().unwrap_or("(global)"),
                        e.cos.as_deref().unwrap_or("(default)"),
                        e.suspended.as_deref().map_or("ok".to_owned(), |w| format!("SUSPENDED: {w}"))
                    );
                }
            }
        }
    }
    Ok(())
}

fn reg_list(store: &Store, json: bool) -> Result<()> {
    let now = now_secs();
    let regs = store.bindings(now)?;
    if json {
        let v: Vec<_> = regs
            .iter()
            .map(|b| {
                json!({"extension": b.extension, "contact": b.contact, "uri": b.uri, "expires_at": b.expires_at,
                       "expires_in": b.expires_at - now, "source": b.source, "transport": b.transport,
                       "user_agent": b.user_agent, "call_id": b.call_id, "cseq": b.cseq, "q": b.q})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("{:<12} {:<6} {:<8} {:<24} CONTACT", "EXTENSION", "VIA", "EXPIRES", "SOURCE");
        for b in &regs {
            outln!("{:<12} {:<6} {:<8} {:<24} {}", b.extension, b.transport, b.expires_at - now, b.source, b.contact);
        }
    }
    Ok(())
}

fn settings_cmd(store: &mut Store, cmd: SettingsCommand) -> Result<()> {
    match cmd {
        SettingsCommand::List { json } => {
            let rows: Vec<_> = settings::SETTINGS
                .iter()
                .map(|d| Ok((d.key, settings::get(store, d.key)?, d.default.unwrap_or("(computed)"), d.doc)))
                .collect::<Result<_>>()?;
            if json {
                let v: Vec<_> =
                    rows.iter().map(|(k, v, d, doc)| json!({"key": k, "value": v, "default": d, "doc": doc})).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (k, v, d, doc) in rows {
                    outln!("{k} = {v}    (default {d})\n    {doc}");
                }
            }
        }
        SettingsCommand::Get { key } => outln!("{}", settings::get(store, &key)?),
        SettingsCommand::Set { key, value, csv } => {
            settings::set(store, &key, &value)?;
            if csv {
                // stdout is the CSV file for provisioning; the confirmation goes to stderr.
                eprintln!("{key} = {value}");
            } else {
                outln!("{key} = {value}");
            }
            if key.starts_with("password_policy.") && crate::policy::enforced(store)? {
                let fix = settings::get(store, "password_policy.autofix")? == "true";
                let rows = crate::policy::review(store, fix)?;
                if csv {
                    outln!("extension,secret");
                    for (n, _, s) in &rows {
                        outln!("{n},{}", s.as_deref().unwrap_or(""));
                    }
                } else if rows.is_empty() {
                    outln!("every extension's secret meets the password policy");
                } else if fix {
                    outln!("{} non-compliant secret(s) replaced; the new secrets are shown once:", rows.len());
                    outln!("{:<12} {:<22} WAS", "EXTENSION", "NEW SECRET");
                    for (n, r, s) in &rows {
                        outln!("{n:<12} {:<22} {r}", s.as_deref().unwrap_or(""));
                    }
                } else {
                    outln!(
                        "{} extension(s) have a secret that breaks the policy (fix with `ext passwd NUMBER --generate`, or turn on password_policy.autofix):",
                        rows.len()
                    );
                    for (n, r, _) in &rows {
                        outln!("{n:<12} {r}");
                    }
                }
            }
        }
    }
    Ok(())
}

fn export_csv(store: &Store) -> Result<()> {
    let boxes: std::collections::HashMap<String, bool> =
        store.mailboxes()?.into_iter().map(|m| (m.extension, m.must_initialise)).collect();
    outln!("number,acl,algorithms,compliant,mailbox,must_initialise");
    for e in store.extensions()? {
        let mb = boxes.get(&e.number);
        outln!(
            "{},{},{},{},{},{}",
            e.number,
            e.acl.unwrap_or_default(),
            e.algorithms.unwrap_or_default().replace(',', ";"),
            e.policy_violations.is_none(),
            mb.is_some(),
            mb.copied().unwrap_or(false)
        );
    }
    Ok(())
}
