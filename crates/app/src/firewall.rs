//! The host firewall's operations: the wizard's plan of services, the ruleset built from it and from
//! what pbxguard and sshd actually listen on, the lockout check, and the apply requests a running
//! daemon carries out and rolls back unless confirmed. Running `nft` is the caller's business (the
//! binary); everything here is validation and the store.

use crate::{Result, conflict, invalid, not_found};
use pbxguard_firewall::model::{Admission, Cidr, Policy, PortRange, Proto, Ruleset, Service, Sources, acl_networks};
use pbxguard_shield::acl::Rule;
use pbxguard_store::{ApplyRow, ApplyState, Backend, FirewallServiceRow};
use std::net::IpAddr;

/// The ports pbxguard and sshd listen on, found by the caller (the daemon's `listen.json` or its
/// configuration, `sshd -T`): built-in services take their ports from here, so the firewall opens what
/// is actually served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPorts {
    pub ssh: Vec<u16>,
    pub gui: Vec<u16>,
    pub sip_udp: Vec<u16>,
    pub sip_tcp: Vec<u16>,
    pub sip_tls: Vec<u16>,
    pub iax2: Vec<u16>,
}

/// The hardening guide's services, in rule order: name, protocol, and where the ports come from.
const BUILTIN: [(&str, Proto); 6] = [
    ("ssh", Proto::Tcp),
    ("gui", Proto::Tcp),
    ("sip-udp", Proto::Udp),
    ("sip-tcp", Proto::Tcp),
    ("sip-tls", Proto::Tcp),
    ("iax2", Proto::Udp),
];

/// The RTP range the wizard opens unless told otherwise.
pub const RTP_DEFAULT: &str = "10000-20000";
/// MGCP (opened with `--mgcp`).
pub const MGCP_PORT: &str = "2727";

fn host_ports<'a>(ports: &'a HostPorts, name: &str) -> Option<&'a [u16]> {
    Some(match name {
        "ssh" => &ports.ssh,
        "gui" => &ports.gui,
        "sip-udp" => &ports.sip_udp,
        "sip-tcp" => &ports.sip_tcp,
        "sip-tls" => &ports.sip_tls,
        "iax2" => &ports.iax2,
        _ => return None,
    })
}

/// What the wizard was told (flags or answers); empty source lists mean anyone.
#[derive(Debug, Clone, Default)]
pub struct WizardInput {
    pub ssh_from: Vec<String>,
    pub gui_from: Vec<String>,
    /// `LO-HI`; `None`: [`RTP_DEFAULT`].
    pub rtp: Option<String>,
    pub mgcp: bool,
}

/// The services the wizard would store, validated (sources are CIDRs, `any`, or ACL group names that
/// exist). Nothing is stored.
pub fn plan(store: &dyn Backend, input: &WizardInput) -> Result<Vec<FirewallServiceRow>> {
    // One source of truth for who may reach SSH: without --ssh-from, the networks sshd itself admits
    // (AllowUsers USER@CIDR, as `pbxguard ssh set --allow` writes it), so the firewall never opens
    // SSH wider, nor narrower, than sshd does.
    let sshd_allowed: Vec<String> = crate::settings::ssh_paths(store)
        .and_then(|p| crate::ssh::effective(&p))
        .ok()
        .and_then(|f| f.allowed)
        .map(|nets| nets.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let ssh_from = if input.ssh_from.is_empty() { &sshd_allowed } else { &input.ssh_from };
    let ssh = sources_text(store, ssh_from, "--ssh-from")?;
    let gui = sources_text(store, &input.gui_from, "--gui-from")?;
    let rtp = input.rtp.as_deref().unwrap_or(RTP_DEFAULT);
    let r = PortRange::parse(rtp).map_err(|e| invalid!("--rtp: {e}"))?;
    if r.lo < 1024 {
        return Err(invalid!("--rtp {rtp}: RTP ports start at 1024 or above (the usual range is {RTP_DEFAULT})"));
    }
    let mut rows: Vec<FirewallServiceRow> = BUILTIN
        .iter()
        .map(|(name, proto)| FirewallServiceRow {
            name: (*name).into(),
            proto: proto.as_str().into(),
            ports: None,
            sources: match *name {
                "ssh" => ssh.clone(),
                "gui" => gui.clone(),
                _ => String::new(),
            },
        })
        .collect();
    rows.push(FirewallServiceRow {
        name: "rtp".into(),
        proto: "udp".into(),
        ports: Some(r.to_string()),
        sources: String::new(),
    });
    if input.mgcp {
        rows.push(FirewallServiceRow {
            name: "mgcp".into(),
            proto: "udp".into(),
            ports: Some(MGCP_PORT.into()),
            sources: String::new(),
        });
    }
    Ok(rows)
}

/// Checks each source and joins them as stored: CIDRs in canonical form, ACL group names as given.
fn sources_text(store: &dyn Backend, given: &[String], flag: &str) -> Result<String> {
    let mut out = Vec::new();
    for s in given.iter().flat_map(|s| s.split([',', ' '])).map(str::trim).filter(|s| !s.is_empty()) {
        if s == "any" || s == "anyone" {
            if given.len() > 1 {
                return Err(invalid!("{flag}: \"any\" cannot be combined with networks"));
            }
            return Ok(String::new());
        }
        match s.parse::<Cidr>() {
            Ok(c) => out.push(c.to_string()),
            Err(e) if s.contains(['.', ':', '/']) => return Err(invalid!("{flag}: {e}")),
            Err(_) => {
                if store.acl(s)?.is_none() {
                    return Err(not_found!(
                        "{flag} {s}: not a network and no ACL group has that name; give a CIDR such as 203.0.113.0/24, or create the group with `pbxguard acl add {s} CIDR...`"
                    ));
                }
                out.push(s.to_owned());
            }
        }
    }
    Ok(out.join(" "))
}

/// Stores the wizard's plan in place of the current services.
pub fn save(store: &mut dyn Backend, rows: &[FirewallServiceRow]) -> Result<()> {
    store.replace_firewall_services(rows, crate::clock::now_secs())?;
    Ok(())
}

/// The stored services; before the wizard has run, its defaults (everything open to anyone, as the
/// hardening guide's wizard does).
pub fn services(store: &dyn Backend) -> Result<Vec<FirewallServiceRow>> {
    let rows = store.firewall_services()?;
    if rows.is_empty() { plan(store, &WizardInput::default()) } else { Ok(rows) }
}

/// The ruleset: the stored services with their ports resolved against `ports`, their ACL groups
/// resolved to networks, and the input policy setting. A built-in service with nothing listening
/// (TLS turned off) gets no rule.
pub fn ruleset(store: &dyn Backend, ports: &HostPorts) -> Result<Ruleset> {
    ruleset_of(store, &services(store)?, ports)
}

/// The ruleset `rows` would make (the wizard's plan before it is stored).
pub fn ruleset_of(store: &dyn Backend, rows: &[FirewallServiceRow], ports: &HostPorts) -> Result<Ruleset> {
    let acls = crate::views::acl_groups(store)?;
    let mut out = Vec::new();
    for row in rows {
        let proto = Proto::parse(&row.proto)
            .ok_or_else(|| invalid!("firewall service {}: unknown protocol {:?}", row.name, row.proto))?;
        let ports: Vec<PortRange> = match &row.ports {
            Some(p) => p
                .split(',')
                .map(PortRange::parse)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| invalid!("firewall service {}: {e}", row.name))?,
            None => {
                let mut p: Vec<u16> = host_ports(ports, &row.name).unwrap_or_default().to_vec();
                p.sort_unstable();
                p.dedup();
                p.into_iter().map(PortRange::one).collect()
            }
        };
        if ports.is_empty() {
            continue;
        }
        let sources = if row.sources.trim().is_empty() {
            Sources::Anyone
        } else {
            let mut nets = Vec::new();
            for s in row.sources.split_whitespace() {
                if let Ok(c) = s.parse::<Cidr>() {
                    nets.push(c);
                    continue;
                }
                let group = acls.get(s).ok_or_else(|| {
                    not_found!(
                        "firewall service {} allows ACL group {s}, which no longer exists; run `pbxguard firewall wizard` again or recreate the group",
                        row.name
                    )
                })?;
                let rules: Vec<(Cidr, bool)> = group
                    .rules
                    .iter()
                    .filter_map(|r| {
                        let p = r.prefix();
                        Cidr::new(p.addr(), p.prefix_len()).ok().map(|c| (c, matches!(r, Rule::Allow(_))))
                    })
                    .collect();
                nets.extend(acl_networks(&rules));
            }
            nets.sort();
            nets.dedup();
            Sources::Only(nets)
        };
        out.push(Service::new(&row.name, proto, ports, sources).map_err(|e| invalid!("{e}"))?);
    }
    let policy = match crate::settings::get(store, "firewall.policy")?.as_str() {
        "accept" => Policy::Accept,
        _ => Policy::Drop,
    };
    Ok(Ruleset { policy, services: out })
}

/// A live session an apply must not cut: the operator's SSH connection, or a GUI session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub what: &'static str,
    pub client: IpAddr,
    pub proto: Proto,
    pub port: u16,
}

/// `SSH_CONNECTION` ("client_ip client_port server_ip server_port") as the caller of an apply.
pub fn ssh_caller(ssh_connection: &str) -> Option<Caller> {
    let mut f = ssh_connection.split_whitespace();
    let client = f.next()?.parse().ok()?;
    let _client_port = f.next()?;
    let _server = f.next()?;
    let port = f.next()?.parse().ok()?;
    Some(Caller { what: "your SSH connection", client, proto: Proto::Tcp, port })
}

/// Refuses a ruleset that would drop a new connection like one of `callers`, naming the rule. The
/// running connection itself would survive (established flows pass), which proves nothing: the next
/// login is what must work.
pub fn check_lockout(rs: &Ruleset, callers: &[Caller]) -> Result<()> {
    for c in callers {
        if let Admission::Dropped { near } = rs.admission(c.client, c.proto, c.port) {
            let rules = if near.is_empty() {
                format!("no rule opens {} port {}", c.proto.as_str(), c.port)
            } else {
                let shown: Vec<String> = rs
                    .services
                    .iter()
                    .filter(|s| near.iter().any(|n| n == s.name()))
                    .map(|s| match &s.sources {
                        Sources::Only(nets) if nets.is_empty() => {
                            format!("rule \"{}\" admits trusted networks only", s.name())
                        }
                        Sources::Only(nets) => format!(
                            "rule \"{}\" admits only {}",
                            s.name(),
                            nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        ),
                        Sources::Anyone => format!("rule \"{}\"", s.name()),
                    })
                    .collect();
                shown.join("; ")
            };
            return Err(conflict!(
                "refused: the new ruleset would drop {} (from {} to {} port {}): {rules}, and the input policy \"policy-drop\" drops the rest. \
                 Nothing was changed. Allow your address (for SSH: `pbxguard firewall wizard --ssh-from {}`), then apply again",
                c.what,
                c.client,
                c.proto.as_str(),
                c.port,
                Cidr::host(c.client)
            ));
        }
    }
    Ok(())
}

/// `--rollback-after`: `60s`, `2m`, `1500ms`; `0` turns the rollback off. At most an hour: a forgotten
/// confirm should not hold a ruleset in limbo for days.
pub fn parse_rollback(s: &str) -> Result<u64> {
    if s.trim() == "0" || s.trim() == "0s" {
        return Ok(0);
    }
    match pbxguard_shield::config::parse_duration_ms(s) {
        Some(ms) if (1000..=3_600_000).contains(&ms) => Ok(ms),
        _ => Err(invalid!(
            "--rollback-after {s:?}: expected a duration from 1s to 1h such as 60s or 5m, or 0 for no rollback"
        )),
    }
}

/// Queues an apply of `chains` (rendered text) for the running daemon, which rolls it back after
/// `rollback_ms` unless confirmed; turns kernel enforcement on.
pub fn request_apply(store: &dyn Backend, chains: &str, rollback_ms: u64) -> Result<i64> {
    refuse_if_pending(store)?;
    let id = store.request_firewall_apply(chains, rollback_ms as i64, crate::clock::now_ms() as i64)?;
    crate::settings::set(store, "firewall.enabled", "true")?;
    Ok(id)
}

/// Records an apply the caller carried out itself (no rollback); turns kernel enforcement on.
pub fn record_apply(store: &dyn Backend, chains: &str) -> Result<()> {
    refuse_if_pending(store)?;
    store.record_firewall_apply(chains, crate::clock::now_ms() as i64)?;
    crate::settings::set(store, "firewall.enabled", "true")?;
    Ok(())
}

/// One apply at a time: a second one would make the first one's rollback restore the wrong ruleset.
pub fn refuse_if_pending(store: &dyn Backend) -> Result<()> {
    if let Some(p) = pending(store)? {
        return Err(conflict!(
            "apply {} is waiting for a confirm{}: run `pbxguard firewall confirm`, or let it roll back, then apply again",
            p.id,
            p.deadline_ms.map(|d| format!(" (rollback at {})", crate::clock::utc(d))).unwrap_or_default()
        ));
    }
    Ok(())
}

pub fn apply_request(store: &dyn Backend, id: i64) -> Result<ApplyRow> {
    store.firewall_apply(id)?.ok_or_else(|| not_found!("firewall apply {id} does not exist"))
}

/// Gives up on a request no daemon picked up; false if the daemon took it meanwhile.
pub fn abandon(store: &dyn Backend, id: i64, why: &str) -> Result<bool> {
    Ok(store.move_firewall_apply(
        id,
        ApplyState::Requested,
        ApplyState::Failed,
        Some(why),
        crate::clock::now_ms() as i64,
    )?)
}

/// Keeps the applied ruleset: the pending rollback is called off.
pub fn confirm(store: &dyn Backend) -> Result<ApplyRow> {
    let Some(row) = store.last_firewall_apply(&[ApplyState::Applied, ApplyState::Requested])? else {
        let last = store.last_firewall_apply(&[ApplyState::RolledBack, ApplyState::Confirmed])?;
        return Err(match last {
            Some(r) if r.state == ApplyState::RolledBack => conflict!(
                "nothing to confirm: the last apply was rolled back ({}); apply again and confirm within the rollback time",
                r.detail.as_deref().unwrap_or("no confirm in time")
            ),
            _ => not_found!("nothing to confirm: no firewall apply is waiting for a confirm"),
        });
    };
    if row.state == ApplyState::Requested {
        return Err(conflict!("the daemon has not loaded apply {} yet; confirm once it is active", row.id));
    }
    if !store.move_firewall_apply(
        row.id,
        ApplyState::Applied,
        ApplyState::Confirmed,
        None,
        crate::clock::now_ms() as i64,
    )? {
        return Err(conflict!("too late: apply {} was rolled back before the confirm arrived; apply again", row.id));
    }
    apply_request(store, row.id)
}

/// The apply waiting for a confirm, if any.
pub fn pending(store: &dyn Backend) -> Result<Option<ApplyRow>> {
    Ok(store.last_firewall_apply(&[ApplyState::Applied, ApplyState::Requested])?)
}

/// The newest apply in force or last tried (for status).
pub fn last(store: &dyn Backend) -> Result<Option<ApplyRow>> {
    Ok(store.last_firewall_apply(&[
        ApplyState::Applied,
        ApplyState::Requested,
        ApplyState::Confirmed,
        ApplyState::RolledBack,
        ApplyState::Failed,
    ])?)
}

/// Turns kernel enforcement off and calls off any pending apply or rollback (the caller deletes the
/// table). Returns how many requests were cancelled.
pub fn disable(store: &dyn Backend) -> Result<usize> {
    crate::settings::set(store, "firewall.enabled", "false")?;
    Ok(store.cancel_firewall_applies(crate::clock::now_ms() as i64)?)
}

/// For the daemon: requests waiting to be applied, oldest first.
pub fn requested(store: &dyn Backend) -> Result<Vec<ApplyRow>> {
    Ok(store.firewall_applies_in(ApplyState::Requested)?)
}

/// For the daemon: applies waiting for a confirm, with their deadlines.
pub fn armed(store: &dyn Backend) -> Result<Vec<ApplyRow>> {
    Ok(store.firewall_applies_in(ApplyState::Applied)?)
}

/// For the daemon: the request is loaded; `previous` is what a rollback restores.
pub fn mark_applied(store: &dyn Backend, id: i64, previous: Option<&str>, deadline_ms: Option<i64>) -> Result<bool> {
    Ok(store.firewall_applied(id, previous, deadline_ms, crate::clock::now_ms() as i64)?)
}

pub fn mark_failed(store: &dyn Backend, id: i64, why: &str) -> Result<bool> {
    Ok(store.move_firewall_apply(
        id,
        ApplyState::Requested,
        ApplyState::Failed,
        Some(why),
        crate::clock::now_ms() as i64,
    )?)
}

/// For the daemon: takes the rollback of `id` unless a confirm came first.
pub fn claim_rollback(store: &dyn Backend, id: i64, detail: &str) -> Result<bool> {
    Ok(store.move_firewall_apply(
        id,
        ApplyState::Applied,
        ApplyState::RolledBack,
        Some(detail),
        crate::clock::now_ms() as i64,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbxguard_store::Store;

    fn ports() -> HostPorts {
        HostPorts {
            ssh: vec![22],
            gui: vec![5555],
            sip_udp: vec![5060],
            sip_tcp: vec![5060],
            sip_tls: vec![],
            iax2: vec![4569],
        }
    }

    #[test]
    fn the_plan_takes_ports_from_the_listeners_and_checks_sources() {
        let mut s = Store::open_in_memory().unwrap();
        crate::security::put_acl(&s, "office", &["192.0.2.0/24".into(), "!192.0.2.66".into()], false).unwrap();
        let input = WizardInput {
            ssh_from: vec!["203.0.113.0/24".into(), "office".into()],
            rtp: Some("16384-32767".into()),
            mgcp: true,
            ..Default::default()
        };
        let rows = plan(&s, &input).unwrap();
        save(&mut s, &rows).unwrap();
        let rs = ruleset(&s, &ports()).unwrap();
        let names: Vec<&str> = rs.services.iter().map(|s| s.name()).collect();
        // TLS is off, so it gets no rule.
        assert_eq!(names, ["ssh", "gui", "sip-udp", "sip-tcp", "iax2", "rtp", "mgcp"]);
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(rs.admission(ip("192.0.2.7"), Proto::Tcp, 22), Admission::Service("ssh".into()));
        assert!(matches!(rs.admission(ip("192.0.2.66"), Proto::Tcp, 22), Admission::Dropped { .. }));
        for bad in [&["192.0.2.1/24"][..], &["nosuchgroup"], &["any", "10.0.0.0/8"]] {
            let input = WizardInput { ssh_from: bad.iter().map(|s| s.to_string()).collect(), ..Default::default() };
            assert!(plan(&s, &input).is_err(), "{bad:?}");
        }
        assert!(plan(&s, &WizardInput { rtp: Some("80-90".into()), ..Default::default() }).is_err());
    }

    #[test]
    fn an_apply_that_would_drop_the_ssh_session_is_refused_naming_the_rule() {
        let mut s = Store::open_in_memory().unwrap();
        let rows = plan(&s, &WizardInput { ssh_from: vec!["203.0.113.0/24".into()], ..Default::default() }).unwrap();
        save(&mut s, &rows).unwrap();
        let rs = ruleset(&s, &ports()).unwrap();
        let me = ssh_caller("198.51.100.7 51234 192.0.2.1 22").unwrap();
        let e = check_lockout(&rs, &[me]).unwrap_err().to_string();
        assert!(e.contains("rule \"ssh\" admits only 203.0.113.0/24"), "{e}");
        assert!(e.contains("--ssh-from 198.51.100.7"), "{e}");
        let ok = ssh_caller("203.0.113.5 51234 192.0.2.1 22").unwrap();
        check_lockout(&rs, &[ok]).unwrap();
        // sshd on another port than the model knows: the connection's own port is what counts.
        let other = ssh_caller("203.0.113.5 51234 192.0.2.1 2222").unwrap();
        assert!(check_lockout(&rs, &[other]).unwrap_err().to_string().contains("no rule opens tcp port 2222"));
    }

    #[test]
    fn confirm_and_rollback_race_has_one_winner() {
        let s = Store::open_in_memory().unwrap();
        assert!(matches!(confirm(&s), Err(crate::Error::NotFound(_))));
        let id = request_apply(&s, "chains", 2000).unwrap();
        assert_eq!(crate::settings::get(&s, "firewall.enabled").unwrap(), "true");
        assert!(matches!(confirm(&s), Err(crate::Error::Conflict(_))));
        assert!(mark_applied(&s, id, None, Some(1)).unwrap());
        assert!(claim_rollback(&s, id, "no confirm").unwrap());
        let e = confirm(&s).unwrap_err().to_string();
        assert!(e.contains("rolled back"), "{e}");
        let id = request_apply(&s, "chains", 2000).unwrap();
        assert!(mark_applied(&s, id, None, Some(1)).unwrap());
        assert_eq!(confirm(&s).unwrap().state, ApplyState::Confirmed);
        assert!(!claim_rollback(&s, id, "late").unwrap());
        assert_eq!(parse_rollback("0").unwrap(), 0);
        assert_eq!(parse_rollback("2s").unwrap(), 2000);
        assert!(parse_rollback("2d").is_err());
    }
}
