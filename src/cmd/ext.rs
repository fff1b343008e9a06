//! `pbxguard ext | reg | export`: extensions and their registrations.

use super::out::print_json;
use crate::cli::{ExtCommand, SecretArgs};
use crate::outln;
use anyhow::{Result, bail};
use pbxguard_app::extensions::{self, NewExtension, Secret};
use pbxguard_store::Store;

fn secret(args: SecretArgs) -> Result<Secret> {
    Ok(match (args.secret, args.generate) {
        (Some(s), false) => Secret::Given(s),
        (None, true) => Secret::Generate,
        _ => bail!("give exactly one of --secret S or --generate"),
    })
}

/// "none" on the command line: back to no value.
fn none_is_nothing(v: &str) -> Option<&str> {
    (v != "none").then_some(v)
}

pub(super) fn ext(store: &Store, cmd: ExtCommand) -> Result<()> {
    match cmd {
        ExtCommand::Add { number, secret: s, algorithms, acl, cos } => {
            let new = NewExtension { number: number.clone(), secret: secret(s)?, algorithms, acl, cos };
            match extensions::add(store, new)? {
                Some(secret) => outln!("extension {number} added; secret (shown once): {secret}"),
                None => outln!("extension {number} added"),
            }
        }
        ExtCommand::Passwd { number, secret: s } => match extensions::set_secret(store, &number, secret(s)?)? {
            Some(secret) => outln!("extension {number}: new secret (shown once): {secret}"),
            None => outln!("extension {number}: secret changed"),
        },
        ExtCommand::Acl { number, group } => {
            let group = none_is_nothing(&group);
            extensions::set_acl(store, &number, group)?;
            outln!("extension {number}: ACL group {}", group.unwrap_or("none"));
        }
        ExtCommand::Cos { number, cos } => {
            let cos = none_is_nothing(&cos);
            extensions::set_cos(store, &number, cos)?;
            outln!("extension {number}: class of service {}", cos.unwrap_or("default"));
        }
        ExtCommand::Limits { number, concurrent, per_hour, max_duration } => {
            let l = extensions::set_limits(
                store,
                &number,
                concurrent.as_deref(),
                per_hour.as_deref(),
                max_duration.as_deref(),
            )?;
            let show = |v: Option<u32>, key: &str| v.map_or(format!("default ({key})"), |n| n.to_string());
            let longest = match l.max_duration_secs {
                None => "default (calls.max_trunk_duration)".to_owned(),
                Some(0) => "no limit".to_owned(),
                Some(s) => pbxguard_shield::config::format_duration_ms(u64::from(s) * 1000),
            };
            outln!(
                "extension {number}: at most {} concurrent trunk calls, {} per hour, longest trunk call {longest}",
                show(l.concurrent, "fraud.max_concurrent"),
                show(l.per_hour, "fraud.calls_per_hour")
            );
        }
        ExtCommand::Enable { number } => match extensions::enable(store, &number)? {
            Some(why) => outln!("extension {number}: outbound calls re-enabled (was suspended: {why})"),
            None => outln!("extension {number} was not suspended"),
        },
        ExtCommand::Show { number, json } => {
            let e = extensions::show(store, &number)?;
            return if json { print_json(&e) } else { print_table(&[e]) };
        }
        ExtCommand::Del { number } => {
            extensions::delete(store, &number)?;
            outln!("extension {number} deleted");
        }
        ExtCommand::List { json } => {
            let exts = extensions::list(store)?;
            return if json { print_json(&exts) } else { print_table(&exts) };
        }
    }
    Ok(())
}

fn print_table(exts: &[extensions::ExtensionView]) -> Result<()> {
    outln!("{:<12} {:<14} {:<20} {:<12} STATUS", "EXTENSION", "REGISTRATIONS", "ALGORITHMS", "COS");
    for e in exts {
        outln!(
            "{:<12} {:<14} {:<20} {:<12} {}",
            e.number,
            e.registrations,
            e.algorithms.as_deref().unwrap_or("(global)"),
            e.cos.as_deref().unwrap_or("(default)"),
            e.suspended.as_deref().map_or("ok".to_owned(), |w| format!("SUSPENDED: {w}"))
        );
    }
    Ok(())
}

pub(super) fn reg_list(store: &Store, json: bool) -> Result<()> {
    let now = pbxguard_app::clock::now_secs();
    let regs = extensions::registrations(store)?;
    if json {
        let v: Vec<_> = regs
            .iter()
            .map(|b| {
                serde_json::json!({"extension": b.extension, "contact": b.contact, "uri": b.uri, "expires_at": b.expires_at,
                       "expires_in": b.expires_at - now, "source": b.source, "transport": b.transport,
                       "user_agent": b.user_agent, "call_id": b.call_id, "cseq": b.cseq, "q": b.q})
            })
            .collect();
        return print_json(&v);
    }
    outln!("{:<12} {:<6} {:<10} {:<24} CONTACT", "EXTENSION", "VIA", "EXPIRES", "SOURCE");
    for b in &regs {
        let expires = format!("in {}", pbxguard_app::clock::span(b.expires_at - now));
        outln!("{:<12} {:<6} {:<10} {:<24} {}", b.extension, b.transport, expires, b.source, b.contact);
    }
    Ok(())
}

pub(super) fn export_csv(store: &Store) -> Result<()> {
    outln!("number,acl,algorithms,compliant,mailbox,must_initialise");
    for r in extensions::export(store)? {
        outln!(
            "{},{},{},{},{},{}",
            r.number,
            r.acl,
            r.algorithms.replace(',', ";"),
            r.compliant,
            r.mailbox,
            r.must_initialise
        );
    }
    Ok(())
}
