//! `pbxguard trunk | route | cos | did | calls`: call routing configuration and the calls log.

use super::out::print_json;
use crate::cli::{CallsCommand, CosCommand, DidCommand, RouteCommand, TransportArg, TrunkCommand};
use crate::outln;
use anyhow::{Result, anyhow};
use pbxguard_app::calls::{self, Classified, NewTrunk, TrunkTransport};
use pbxguard_shield::{Category, ClassOfService};
use pbxguard_store::Store;

pub(super) fn trunk(store: &Store, cmd: TrunkCommand) -> Result<()> {
    match cmd {
        TrunkCommand::Add { name, host, port, transport, username, secret, realm, register, tls_ca, allow_refer } => {
            let tls_ca = match tls_ca {
                None => None,
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| anyhow!("--tls-ca {}: cannot read it ({e})", path.display()))?,
                ),
            };
            let transport = match transport {
                TransportArg::Udp => TrunkTransport::Udp,
                TransportArg::Tcp => TrunkTransport::Tcp,
                TransportArg::Tls => TrunkTransport::Tls,
            };
            let t = NewTrunk {
                name: name.clone(),
                host,
                port,
                transport,
                username,
                secret,
                realm,
                register,
                tls_ca,
                allow_refer,
            };
            calls::add_trunk(store, t, &crate::resolve::System)?;
            match register {
                Some(e) => {
                    outln!("trunk {name} added; registering every {} s (pbxguard events shows the outcome)", e / 2)
                }
                None => outln!("trunk {name} added"),
            }
            if allow_refer {
                outln!("transfers (REFER) to it are allowed, each checked like a new call from the extension");
            }
        }
        TrunkCommand::List { json } => {
            let rows = calls::trunks(store)?;
            if json {
                return print_json(&rows);
            }
            outln!(
                "{:<16} {:<32} {:<6} {:<14} {:<20} {:<10} TRANSFERS",
                "NAME",
                "HOST",
                "PORT",
                "TRANSPORT",
                "USER@REALM",
                "REGISTER"
            );
            for t in rows {
                let who = match (&t.username, &t.realm) {
                    (Some(u), Some(r)) => format!("{u}@{r}"),
                    _ => "-".into(),
                };
                let reg = t.register_expires.map_or("no".to_owned(), |e| format!("{e} s"));
                let transport = if t.tls_ca.is_some() { format!("{} (own CA)", t.transport) } else { t.transport };
                let transfers = if t.allow_refer { "allowed" } else { "refused" };
                outln!(
                    "{:<16} {:<32} {:<6} {:<14} {:<20} {reg:<10} {transfers}",
                    t.name,
                    t.host,
                    t.port,
                    transport,
                    who
                );
            }
        }
        TrunkCommand::Del { name } => {
            calls::delete_trunk(store, &name)?;
            outln!("trunk {name} deleted");
        }
    }
    Ok(())
}

pub(super) fn route(store: &Store, cmd: RouteCommand) -> Result<()> {
    match cmd {
        RouteCommand::Add { pattern, trunk, strip, prepend } => {
            let id = calls::add_route(store, &pattern, &trunk, strip, &prepend)?;
            outln!("route {id} added: {pattern} -> {trunk}");
        }
        RouteCommand::List { json } => {
            let rows = calls::routes(store)?;
            if json {
                return print_json(&rows);
            }
            outln!("{:<5} {:<24} {:<16} {:<6} PREPEND", "ID", "PATTERN", "TRUNK", "STRIP");
            for r in rows {
                outln!("{:<5} {:<24} {:<16} {:<6} {}", r.id, r.pattern, r.trunk, r.strip, r.prepend);
            }
        }
        RouteCommand::Del { id } => {
            calls::delete_route(store, id)?;
            outln!("route {id} deleted");
        }
    }
    Ok(())
}

pub(super) fn cos(store: &Store, cmd: CosCommand) -> Result<()> {
    match cmd {
        CosCommand::Add { name, allow, countries } => {
            let added = calls::add_cos(store, &name, &allow, countries.as_deref())?;
            outln!("class of service {name} added: {} (emergency is always allowed)", added.allow);
            if let Some(list) = &added.countries {
                let named: Vec<String> = list.iter().map(|c| format!("{c} ({})", c.name())).collect();
                outln!("international calls only to {}", named.join(", "));
            }
        }
        CosCommand::List { json } => {
            let rows = calls::cos_list(store)?;
            if json {
                return print_json(&rows);
            }
            outln!("{:<16} {:<56} COUNTRIES", "NAME", "ALLOW");
            if !rows.iter().any(|r| r.name == "default") {
                let built_in = format!("{} (built in)", ClassOfService::default_allow());
                outln!("{:<16} {built_in:<56} -", "(default)");
            }
            for r in rows {
                let countries = match &r.countries {
                    Some(c) => c.as_str(),
                    None if r.allow.split(',').any(|c| c == "international") => "any",
                    None => "-",
                };
                outln!("{:<16} {:<56} {countries}", r.name, r.allow);
            }
        }
        CosCommand::Del { name } => {
            calls::delete_cos(store, &name)?;
            outln!("class of service {name} deleted");
        }
        CosCommand::Classify { number } => match calls::classify(store, &number)? {
            Classified::Extension => outln!("{number}: {} (an extension)", Category::Internal),
            Classified::Category { category, plan, pattern, country } => {
                let country = match (category, country) {
                    (Category::International, Some(c)) => format!(", country {c} ({})", c.name()),
                    (Category::International, None) => ", no known country code".to_owned(),
                    _ => String::new(),
                };
                outln!("{number}: {category} (plan {plan}, pattern {pattern}{country})")
            }
            Classified::Unknown { plan } => outln!("{number}: no category in plan {plan} (calls to it are refused)"),
        },
    }
    Ok(())
}

pub(super) fn did(store: &Store, cmd: DidCommand) -> Result<()> {
    match cmd {
        DidCommand::Add { number, ext } => {
            calls::add_did(store, &number, &ext)?;
            outln!("DID {number} -> extension {ext}");
        }
        DidCommand::List { json } => {
            let rows = calls::dids(store)?;
            if json {
                return print_json(&rows);
            }
            outln!("{:<20} EXTENSION", "DID");
            for r in rows {
                outln!("{:<20} {}", r.number, r.extension);
            }
        }
        DidCommand::Del { number } => {
            calls::delete_did(store, &number)?;
            outln!("DID {number} deleted");
        }
    }
    Ok(())
}

pub(super) fn calls(store: &Store, cmd: CallsCommand) -> Result<()> {
    let CallsCommand::List { json, last } = cmd;
    let rows = calls::calls(store, last)?;
    if json {
        return print_json(&rows);
    }
    let now = pbxguard_app::clock::now_secs();
    outln!(
        "{:<20} {:<9} {:<10} {:<16} {:<18} {:<14} {:<10} {:<7} CALL-ID",
        "STARTED (UTC)",
        "DURATION",
        "STATE",
        "CALLER",
        "CALLEE",
        "CATEGORY",
        "TRUNK",
        "STATUS"
    );
    for c in rows {
        // Talk time once answered; until the end, or now for a call still up.
        let duration = c.answered_at.map_or("-".into(), |a| pbxguard_app::clock::span(c.ended_at.unwrap_or(now) - a));
        let started = pbxguard_app::clock::utc(c.started_at * 1000);
        outln!(
            "{:<20} {:<9} {:<10} {:<16} {:<18} {:<14} {:<10} {:<7} {}",
            started.get(..19).unwrap_or(&started),
            duration,
            c.state,
            c.caller,
            c.callee,
            c.category,
            c.trunk.as_deref().unwrap_or("-"),
            c.status.map_or("-".into(), |s| s.to_string()),
            c.call_id
        );
        if let Some(why) = &c.end_reason {
            outln!("{:<20} ended: {why}", "");
        }
    }
    Ok(())
}
