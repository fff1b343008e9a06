//! Importing extensions and mailboxes from Asterisk/FreePBX configurations and CSV files. Every import
//! runs in one transaction (a failure changes nothing), applies the password policy (reporting weak
//! secrets, or replacing them when auto-fix is on), never stores a clear secret, and can be previewed
//! with `--dry-run`, extension by extension.

mod asterisk;

use crate::policy;
use crate::{Error, Result, invalid};
use asterisk::{Account, MailboxDef};
use pbxguard_shield::PinPolicy;
use pbxguard_store::{Backend, EventRow, Extension, Mailbox};
use std::path::Path;

/// What happened (or would happen) to one extension or mailbox.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    pub number: String,
    /// import, skip or mailbox.
    pub action: String,
    pub detail: String,
    /// A generated secret, shown once.
    pub new_secret: Option<String>,
}

/// The outcome of an import, line by line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub lines: Vec<Line>,
    pub extensions: usize,
    pub mailboxes: usize,
}

pub fn asterisk(store: &mut dyn Backend, dir: &Path, dry_run: bool) -> Result<Report> {
    if !dir.is_dir() {
        return Err(invalid!(
            "{} is not a directory (give the Asterisk configuration directory, e.g. /etc/asterisk)",
            dir.display()
        ));
    }
    let found = asterisk::read_dir(dir)?;
    if found.accounts.is_empty() && found.mailboxes.is_empty() {
        return Err(invalid!("no pjsip.conf, sip.conf, iax.conf or voicemail.conf with accounts in {}", dir.display()));
    }
    run(store, found.accounts, found.mailboxes, dry_run)
}

/// CSV with a header: `number,secret[,pin]` (secret empty: generate one).
pub fn csv(store: &mut dyn Backend, file: &Path, dry_run: bool) -> Result<Report> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::Io(format!("{}: {e}", file.display())))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| invalid!("{}: empty file", file.display()))?;
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let (Some(n_col), s_col, p_col) = (col("number"), col("secret"), col("pin")) else {
        return Err(invalid!(
            "{}:1: the header must name a `number` column (and optionally `secret`, `pin`)",
            file.display()
        ));
    };
    let (mut accounts, mut mailboxes) = (Vec::new(), Vec::new());
    for (i, l) in lines {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let origin = format!("{}:{}", file.display(), i + 1);
        let number = f.get(n_col).filter(|n| !n.is_empty()).ok_or_else(|| invalid!("{origin}: no number"))?.to_string();
        let secret = s_col.and_then(|c| f.get(c)).filter(|s| !s.is_empty()).map(|s| s.to_string());
        if let Some(pin) = p_col.and_then(|c| f.get(c)).filter(|p| !p.is_empty()) {
            mailboxes.push(MailboxDef { number: number.clone(), pin: pin.to_string(), origin: origin.clone() });
        }
        accounts.push(Account { number, secret, origin });
    }
    run(store, accounts, mailboxes, dry_run)
}

fn run(store: &mut dyn Backend, accounts: Vec<Account>, mailboxes: Vec<MailboxDef>, dry_run: bool) -> Result<Report> {
    let p = policy::policy(store)?;
    let autofix = crate::settings::get(store, "password_policy.autofix")? == "true" && policy::enforced(store)?;
    let realm = crate::settings::get(store, "sip.realm")?;
    let pin_min = crate::mailboxes::pin_min_length(store)?;
    let now = crate::clock::now_secs();
    let mut report: Vec<Line> = Vec::new();
    let mut exts = Vec::new();
    let mut events = Vec::new();
    let mut imported = std::collections::HashSet::new();
    for a in accounts {
        let line = |action: &str, detail: String| Line {
            number: a.number.clone(),
            action: action.into(),
            detail,
            new_secret: None,
        };
        if crate::validate::check_number(&a.number).is_err() {
            report.push(line("skip", format!("not a usable extension number ({})", a.origin)));
            continue;
        }
        if store.extension(&a.number)?.is_some() {
            report.push(line("skip", "already exists".into()));
            continue;
        }
        let (secret, mut l) = match a.secret {
            None => {
                let s = policy::generate(&p, &a.number);
                let mut l = line("import", "had no secret: generated one".into());
                l.new_secret = Some(s.clone());
                (s, l)
            }
            Some(s) => {
                let v = policy::check(&p, &a.number, &s);
                if v.is_empty() {
                    (s, line("import", "secret meets the policy".into()))
                } else if autofix {
                    let new = policy::generate(&p, &a.number);
                    let reasons = policy::codes(&v).unwrap_or_default();
                    let mut l = line("import", format!("weak secret ({reasons}) replaced by a generated one"));
                    l.new_secret = Some(new.clone());
                    events.push(EventRow {
                        id: 0,
                        at_ms: now * 1000,
                        kind: "secret-autofix".into(),
                        source: None,
                        user: Some(a.number.clone()),
                        detail: format!("imported with a weak secret ({reasons}); replaced"),
                    });
                    (new, l)
                } else {
                    let reasons = policy::codes(&v).unwrap_or_default();
                    (
                        s,
                        line(
                            "import",
                            format!("WEAK secret kept ({reasons}): turn on password_policy.autofix or run ext passwd"),
                        ),
                    )
                }
            }
        };
        let violations = policy::codes(&policy::check(&p, &a.number, &secret));
        l.detail = format!("{} ({})", l.detail, a.origin);
        exts.push(Extension {
            policy_violations: violations,
            ..Extension::new(a.number.clone(), policy::credentials(&a.number, &realm, &secret), now)
        });
        imported.insert(a.number);
        report.push(l);
    }
    let mut boxes = Vec::new();
    for m in mailboxes {
        if !imported.contains(&m.number) && store.extension(&m.number)?.is_none() {
            report.push(Line {
                number: m.number,
                action: "skip".into(),
                detail: format!("mailbox without an extension ({})", m.origin),
                new_secret: None,
            });
            continue;
        }
        let v = PinPolicy { min_len: pin_min }.check(&m.pin, &m.number);
        // A weak PIN is kept only behind forced initialisation: the owner must choose a new one first.
        let must_initialise = !v.is_empty();
        let detail = if v.is_empty() {
            "mailbox: PIN meets the policy".to_owned()
        } else {
            format!("mailbox: weak PIN ({}): must initialise at first login", policy::codes(&v).unwrap_or_default())
        };
        report.push(Line { number: m.number.clone(), action: "mailbox".into(), detail, new_secret: None });
        boxes.push(Mailbox {
            extension: m.number,
            pin_hash: if dry_run { String::new() } else { crate::admins::hash(&m.pin)? },
            must_initialise,
            force_name: true,
            force_greeting: true,
            name_recorded: false,
            greeting_recorded: false,
            updated_at: now,
        });
    }
    if !dry_run {
        store.begin()?;
        let applied = (|| -> Result<()> {
            for e in &exts {
                store.add_extension(e)?;
            }
            for b in &boxes {
                store.put_mailbox(b)?;
            }
            store.append_events(&events, 100_000, 30 * 86_400_000, now * 1000)?;
            Ok(())
        })();
        match applied {
            Ok(()) => store.commit()?,
            Err(e) => {
                store.rollback()?;
                return Err(Error::Io(format!("the import changed nothing: {e}")));
            }
        }
    }
    Ok(Report { dry_run, extensions: exts.len(), mailboxes: boxes.len(), lines: report })
}
