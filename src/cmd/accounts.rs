//! `pbxguard vm | admin`: voicemail mailboxes and admin accounts.

use super::out::print_json;
use crate::cli::{AdminCommand, VmCommand, YesNo};
use crate::outln;
use anyhow::{Context, Result, bail};
use pbxguard_app::admins::{self, Login, NewPassword};
use pbxguard_app::mailboxes::{self, SetPin};
use pbxguard_store::Store;

pub(super) fn admin(store: &mut Store, cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Login { name, from } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            match admins::login(store, &name, password, from)? {
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
            let new = match (password, generate) {
                (Some(p), false) => NewPassword::Given(p),
                (None, true) => NewPassword::Generate,
                _ => bail!("give exactly one of --password P or --generate"),
            };
            match admins::set_password(store, &name, new)? {
                Some(p) => outln!("admin {name}: new password (shown once): {p}"),
                None => outln!("admin {name}: password changed"),
            }
        }
        AdminCommand::Add { name, password, generate } => {
            let new = match (password, generate) {
                (Some(p), false) => NewPassword::Given(p),
                (None, true) => NewPassword::Generate,
                _ => bail!("give exactly one of --password P or --generate"),
            };
            match admins::add(store, &name, new)? {
                Some(p) => outln!("admin {name} added; first password (shown once, to be changed at first login): {p}"),
                None => outln!("admin {name} added; it must change its password at first login"),
            }
        }
        AdminCommand::Del { name } => {
            admins::delete(store, &name, None)?;
            outln!("admin {name} deleted");
        }
        AdminCommand::List { json } => {
            let admins = admins::list(store)?;
            if json {
                return print_json(&admins);
            }
            for a in admins {
                let flag = if a.must_change { "must change its password before anything else works" } else { "" };
                outln!("{:<16} {flag}", a.name);
            }
        }
    }
    Ok(())
}

pub(super) fn vm(store: &Store, cmd: VmCommand) -> Result<()> {
    match cmd {
        VmCommand::Set { extension, pin, force_name, force_greeting } => {
            let yes = |o: Option<YesNo>| o.map(|y| y == YesNo::Yes);
            let m = mailboxes::set_pin(
                store,
                SetPin {
                    extension: &extension,
                    pin: &pin,
                    force_name: yes(force_name),
                    force_greeting: yes(force_greeting),
                },
            )?;
            let note = if m.must_initialise {
                " (must initialise: new PIN, recorded name and greeting at first login)"
            } else {
                ""
            };
            outln!("mailbox {extension}: PIN set{note}");
        }
        VmCommand::List { json } => {
            let boxes = mailboxes::list(store)?;
            if json {
                let v: Vec<_> = boxes
                    .iter()
                    .map(|m| {
                        serde_json::json!({"extension": m.extension, "must_initialise": m.must_initialise, "force_name": m.force_name,
                               "force_greeting": m.force_greeting, "name_recorded": m.name_recorded,
                               "greeting_recorded": m.greeting_recorded, "updated_at": m.updated_at})
                    })
                    .collect();
                return print_json(&v);
            }
            outln!("{:<12} {:<16} {:<11} FORCE GREETING", "MAILBOX", "MUST INITIALISE", "FORCE NAME");
            for m in boxes {
                outln!("{:<12} {:<16} {:<11} {}", m.extension, m.must_initialise, m.force_name, m.force_greeting);
            }
        }
    }
    Ok(())
}
