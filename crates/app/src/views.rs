//! The runtime views the daemon hands to the sans-IO services, built from what is stored: the
//! directory of extensions, the dial plan, the trusted networks and the ACL groups. Names are resolved
//! by the caller's [`Resolver`]; nothing here touches the network.

use crate::{Result, invalid};
use pbxguard_pbx::{DialPlan, Directory, ExtensionAuth, Route, Transport, Trunk};
use pbxguard_shield::{AclGroup, Prefix, Rule};
use pbxguard_store::Backend;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Turns a host name and port into an address (the system resolver in the daemon and the CLI; a table
/// in tests). The error says why, for the operator.
pub trait Resolver {
    fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String>;
}

/// Resolves only literal IP addresses: for callers that must never wait for DNS.
pub struct LiteralOnly;

impl Resolver for LiteralOnly {
    fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        host.parse().map(|ip| SocketAddr::new(ip, port)).map_err(|_| "not an IP address".into())
    }
}

pub fn acl_groups(store: &dyn Backend) -> Result<HashMap<String, Arc<AclGroup>>> {
    let mut out = HashMap::new();
    for row in store.acls()? {
        let rules = row
            .rules
            .split_whitespace()
            .map(Rule::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid!("ACL group {}: {e}", row.name))?;
        out.insert(row.name.clone(), Arc::new(AclGroup { name: row.name, rules }));
    }
    Ok(out)
}

pub fn directory(store: &dyn Backend) -> Result<Directory> {
    let acls = acl_groups(store)?;
    let mut m = HashMap::new();
    for e in store.extensions()? {
        let algorithms = match &e.algorithms {
            Some(a) => {
                Some(crate::settings::parse_algorithms(a).map_err(|err| invalid!("extension {}: {err}", e.number))?)
            }
            None => None,
        };
        // An extension whose group vanished fails closed: an empty group admits nobody.
        let acl = e
            .acl
            .as_ref()
            .map(|g| acls.get(g).cloned().unwrap_or_else(|| Arc::new(AclGroup { name: g.clone(), rules: Vec::new() })));
        let c = e.credentials;
        m.insert(
            e.number,
            ExtensionAuth {
                ha1: [c.ha1_md5, c.ha1_sha256, c.ha1_sha512_256],
                algorithms,
                acl,
                cos: e.cos,
                suspended: e.suspended.is_some(),
                limits: pbxguard_shield::ExtensionLimits { max_concurrent: e.max_calls, per_hour: e.calls_per_hour },
                max_trunk_call_ms: e.max_call_secs.map(|s| u64::from(s) * 1000),
            },
        );
    }
    Ok(Directory::new(m))
}

/// Trunks, routes, DIDs, Classes of Service, numbering plan and fraud limits as stored. A trunk whose
/// host does not resolve is left out (and logged), not fatal: the other routes keep working.
pub fn dialplan(store: &dyn Backend, resolver: &dyn Resolver) -> Result<DialPlan> {
    let mut plan = DialPlan {
        plan: pbxguard_shield::NumberingPlan::by_name(&crate::settings::get(store, "calls.numbering_plan")?)
            .map_err(|e| invalid!("calls.numbering_plan: {e}"))?,
        limits: crate::settings::call_limits(store)?,
        max_call_ms: pbxguard_shield::config::parse_duration_ms(&crate::settings::get(store, "calls.max_duration")?)
            .unwrap_or(4 * 3_600_000),
        max_trunk_call_ms: crate::settings::parse_max_trunk_duration(&crate::settings::get(
            store,
            "calls.max_trunk_duration",
        )?)
        .map_err(|e| invalid!("stored calls.max_trunk_duration: {e}"))?,
        ..DialPlan::default()
    };
    for t in store.trunks()? {
        let addr = match resolver.resolve(&t.host, t.port) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(
                    trunk = t.name,
                    host = t.host,
                    error = e,
                    "trunk host does not resolve; its routes are unusable"
                );
                continue;
            }
        };
        let transport = match t.transport.as_str() {
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => Transport::Udp,
        };
        let auth = match (t.username, t.realm, t.ha1) {
            (Some(username), Some(realm), Some((ha1_md5, ha1_sha256))) => {
                Some(pbxguard_pbx::TrunkAuth { username, realm, ha1_md5, ha1_sha256 })
            }
            _ => None,
        };
        let (register, allow_refer) = (t.register_expires, t.allow_refer);
        plan.trunks.push(Arc::new(Trunk { name: t.name, host: t.host, addr, transport, auth, register, allow_refer }));
    }
    for r in store.routes()? {
        match pbxguard_shield::Pattern::parse(&r.pattern) {
            Ok(pattern) => {
                plan.routes.push(Route { pattern, trunk: r.trunk, strip: r.strip as usize, prepend: r.prepend })
            }
            Err(e) => tracing::error!(route = r.id, error = e, "stored route pattern is invalid; skipped"),
        }
    }
    for d in store.dids()? {
        plan.dids.insert(d.number, d.extension);
    }
    for c in store.cos_list()? {
        let allow = pbxguard_shield::Categories::parse(&c.allow).map_err(|e| invalid!("cos {}: {e}", c.name))?;
        let countries = c.countries.as_deref().map(crate::validate::parse_countries).transpose()?;
        plan.cos.insert(c.name.clone(), pbxguard_shield::ClassOfService { name: c.name, allow, countries });
    }
    Ok(plan)
}

/// The addresses of the stored trunks that resolve.
pub fn trunk_addresses(store: &dyn Backend, resolver: &dyn Resolver) -> Result<Vec<SocketAddr>> {
    Ok(store.trunks()?.iter().filter_map(|t| resolver.resolve(&t.host, t.port).ok()).collect())
}

/// Trusted networks: the operator's list, every specific address the daemon listens on, and trunks.
pub fn trusted(store: &dyn Backend, listening: &[SocketAddr], trunks: &[SocketAddr]) -> Result<Vec<Prefix>> {
    let mut out: Vec<Prefix> = Vec::new();
    for (cidr, _) in store.trusted()? {
        out.push(Prefix::parse_lenient(&cidr).map_err(|e| invalid!("trusted network {cidr}: {e}"))?);
    }
    out.extend(listening.iter().map(|a| a.ip()).filter(|ip| !ip.is_unspecified()).map(Prefix::host));
    // A carrier sends every inbound call and answer from its address: flood-limiting or banning it
    // would cut the PBX off. Trunks (as the dial plan resolved them) are trusted like the operator's
    // networks.
    out.extend(trunks.iter().map(|a| Prefix::host(a.ip())));
    Ok(out)
}
