//! `pbxguard trunk | route | cos | did | calls`: call routing configuration and the calls log.

use crate::cli::{CallsCommand, CosCommand, DidCommand, RouteCommand, TransportArg, TrunkCommand};
use crate::commands::now_secs;
use crate::outln;
use anyhow::{Result, anyhow, bail};
use pbxguard_shield::{Categories, Category, ClassOfService, NumberingPlan, Pattern};
use pbxguard_store::{Store, TrunkRow};

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        bail!("{what} name {name:?}: use 1-64 letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

pub(crate) fn require_cos(store: &Store, name: &str) -> Result<()> {
    if !store.cos_exists(name)? {
        bail!(
            "class of service {name:?} does not exist; create it first with `pbxguard cos add {name} --allow internal,local,...`"
        );
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) fn trunk(store: &Store, cmd: TrunkCommand) -> Result<()> {
    match cmd {
        TrunkCommand::Add { name, host, port, transport, username, secret, realm, register, tls_ca } => {
            check_name("trunk", &name)?;
            if port == 0 {
                bail!("--port 0 is not a port; the usual SIP port is 5060 (5061 for TLS)");
            }
            // Resolve now, so a typo is reported here and not as calls that fail later.
            std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)).map_err(|e| {
                anyhow!("trunk host {host:?} does not resolve ({e}); give an IP address or a resolvable name")
            })?;
            let transport = match transport {
                TransportArg::Udp => "udp",
                TransportArg::Tcp => "tcp",
                TransportArg::Tls => "tls",
            };
            let tls_ca = match tls_ca {
                None => None,
                Some(_) if transport != "tls" => {
                    bail!("--tls-ca only applies to --transport tls (TLS trunks are verified against it)")
                }
                Some(path) => {
                    let pem = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow!("--tls-ca {}: cannot read it ({e})", path.display()))?;
                    crate::daemon::tls_ca_certificates(&pem)
                        .map_err(|e| anyhow!("--tls-ca {}: {e}", path.display()))?;
                    Some(pem)
                }
            };
            if let Some(e) = register
                && !(60..=86_400).contains(&e)
            {
                bail!("--register {e}: give the registration length in seconds, from 60 to 86400 (default 600)");
            }
            let ha1 = match (&username, &secret, &realm) {
                (Some(u), Some(s), Some(r)) => Some((
                    pbxguard_sip::ha1(pbxguard_sip::Algorithm::Md5, u, r, s),
                    pbxguard_sip::ha1(pbxguard_sip::Algorithm::Sha256, u, r, s),
                )),
                _ => None,
            };
            let row = TrunkRow {
                name: name.clone(),
                host,
                port,
                transport: transport.into(),
                username,
                realm,
                ha1,
                register_expires: register,
                tls_ca,
            };
            store.add_trunk(&row, now_secs())?;
            match register {
                Some(e) => {
                    outln!("trunk {name} added; registering every {} s (pbxguard events shows the outcome)", e / 2)
                }
                None => outln!("trunk {name} added"),
            }
        }
        TrunkCommand::List { json } => {
            let rows = store.trunks()?;
            if json {
                return print_json(&rows);
            }
            outln!("{:<16} {:<32} {:<6} {:<14} {:<20} REGISTER", "NAME", "HOST", "PORT", "TRANSPORT", "USER@REALM");
            for t in rows {
                let who = match (&t.username, &t.realm) {
                    (Some(u), Some(r)) => format!("{u}@{r}"),
                    _ => "-".into(),
                };
                let reg = t.register_expires.map_or("no".to_owned(), |e| format!("{e} s"));
                let transport = if t.tls_ca.is_some() { format!("{} (own CA)", t.transport) } else { t.transport };
                outln!("{:<16} {:<32} {:<6} {:<14} {:<20} {reg}", t.name, t.host, t.port, transport, who);
            }
        }
        TrunkCommand::Del { name } => {
            if !store.delete_trunk(&name)? {
                bail!("trunk {name} does not exist");
            }
            outln!("trunk {name} deleted");
        }
    }
    Ok(())
}

pub(crate) fn route(store: &Store, cmd: RouteCommand) -> Result<()> {
    match cmd {
        RouteCommand::Add { pattern, trunk, strip, prepend } => {
            Pattern::parse(&pattern).map_err(|e| anyhow!(e))?;
            if !prepend.chars().all(|c| c.is_ascii_digit() || "+*#".contains(c)) {
                bail!("--prepend {prepend:?}: digits, + * # only");
            }
            if !store.trunks()?.iter().any(|t| t.name == trunk) {
                bail!("trunk {trunk} does not exist; add it first with `pbxguard trunk add {trunk} --host H`");
            }
            let id = store.add_route(&pattern, &trunk, strip, &prepend)?;
            outln!("route {id} added: {pattern} -> {trunk}");
        }
        RouteCommand::List { json } => {
            let rows = store.routes()?;
            if json {
                return print_json(&rows);
            }
            outln!("{:<5} {:<24} {:<16} {:<6} PREPEND", "ID", "PATTERN", "TRUNK", "STRIP");
            for r in rows {
                outln!("{:<5} {:<24} {:<16} {:<6} {}", r.id, r.pattern, r.trunk, r.strip, r.prepend);
            }
        }
        RouteCommand::Del { id } => {
            if !store.delete_route(id)? {
                bail!("route {id} does not exist (pbxguard route list)");
            }
            outln!("route {id} deleted");
        }
    }
    Ok(())
}

pub(crate) fn cos(store: &Store, cmd: CosCommand) -> Result<()> {
    match cmd {
        CosCommand::Add { name, allow } => {
            check_name("class of service", &name)?;
            let cats = Categories::parse(&allow).map_err(|e| anyhow!("--allow: {e}"))?;
            store.add_cos(&name, &cats.to_string(), now_secs())?;
            outln!("class of service {name} added: {cats} (emergency is always allowed)");
        }
        CosCommand::List { json } => {
            let rows = store.cos_list()?;
            if json {
                return print_json(&rows);
            }
            outln!("{:<16} ALLOW", "NAME");
            if !rows.iter().any(|r| r.name == "default") {
                outln!("{:<16} {} (built in)", "(default)", ClassOfService::default_allow());
            }
            for r in rows {
                outln!("{:<16} {}", r.name, r.allow);
            }
        }
        CosCommand::Del { name } => {
            if !store.delete_cos(&name)? {
                bail!("class of service {name} does not exist");
            }
            outln!("class of service {name} deleted");
        }
        CosCommand::Classify { number } => {
            let plan = NumberingPlan::by_name(&crate::settings::get(store, "calls.numbering_plan")?)
                .map_err(|e| anyhow!(e))?;
            if store.extension(&number)?.is_some() {
                outln!("{number}: {} (an extension)", Category::Internal);
            } else {
                match plan.classify(&number) {
                    Some((c, p)) => outln!("{number}: {c} (plan {}, pattern {p})", plan.name),
                    None => outln!("{number}: no category in plan {} (calls to it are refused)", plan.name),
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn did(store: &Store, cmd: DidCommand) -> Result<()> {
    match cmd {
        DidCommand::Add { number, ext } => {
            crate::commands::check_number(&number)?;
            if store.extension(&ext)?.is_none() {
                bail!("extension {ext} does not exist");
            }
            store.add_did(&number, &ext)?;
            outln!("DID {number} -> extension {ext}");
        }
        DidCommand::List { json } => {
            let rows = store.dids()?;
            if json {
                return print_json(&rows);
            }
            outln!("{:<20} EXTENSION", "DID");
            for r in rows {
                outln!("{:<20} {}", r.number, r.extension);
            }
        }
        DidCommand::Del { number } => {
            if !store.delete_did(&number)? {
                bail!("DID {number} does not exist");
            }
            outln!("DID {number} deleted");
        }
    }
    Ok(())
}

pub(crate) fn calls(store: &Store, cmd: CallsCommand) -> Result<()> {
    let CallsCommand::List { json, last } = cmd;
    let rows = store.calls(last)?;
    if json {
        return print_json(&rows);
    }
    outln!(
        "{:<10} {:<16} {:<18} {:<14} {:<10} {:<7} CALL-ID",
        "STATE",
        "CALLER",
        "CALLEE",
        "CATEGORY",
        "TRUNK",
        "STATUS"
    );
    for c in rows {
        outln!(
            "{:<10} {:<16} {:<18} {:<14} {:<10} {:<7} {}",
            c.state,
            c.caller,
            c.callee,
            c.category,
            c.trunk.as_deref().unwrap_or("-"),
            c.status.map_or("-".into(), |s| s.to_string()),
            c.call_id
        );
    }
    Ok(())
}
