//! The ruleset as `nft -f` text, and the scripts that load it without losing what the daemon put in the
//! sets.
//!
//! Shape (research/firewall.md §3): banned and blacklisted sources are dropped in a `prerouting
//! priority raw` chain, before connection tracking, so a banned live flow stops at once and no banned
//! packet makes a conntrack entry; loopback and trusted sources are accepted there first. The input
//! chain accepts established flows, the ICMP that must pass, trusted sources, then one counted rule per
//! service, and ends in the policy.
//!
//! A whole-table replace would drop the sets' elements, which the daemon fills over netlink; so an
//! apply declares the table and the sets (a no-op when they exist), deletes only our chains and adds
//! them again, all in one `nft -f` transaction. The sets are never deleted here.

use crate::model::{Cidr, Policy, Ruleset, Service, Sources};
use crate::{FAMILY, TABLE, sets};
use std::fmt::Write;

/// The chains pbxguard renders, in the order they appear.
pub const CHAINS: [&str; 2] = ["pre", "input"];

/// Set declarations: bans are prefixes with a timeout each (IPv6 bans are /64 by default), blacklists
/// merged ranges and trusted networks plain intervals. No `auto-merge`: the daemon loads merged
/// elements over netlink, and auto-merge would fold an expiring ban into a neighbour's timeout.
const SET_DECLARATIONS: [(&str, &str, &str); 6] = [
    (sets::TRUSTED4, "ipv4_addr", "interval"),
    (sets::TRUSTED6, "ipv6_addr", "interval"),
    (sets::BANNED4, "ipv4_addr", "interval, timeout"),
    (sets::BANNED6, "ipv6_addr", "interval, timeout"),
    (sets::BLACKLIST4, "ipv4_addr", "interval"),
    (sets::BLACKLIST6, "ipv6_addr", "interval"),
];

/// `table inet pbxguard { set ... }`: creates the table and the six sets where missing, and changes
/// nothing where they exist (their elements stay). The daemon's enforcer may load this before it
/// fills the sets.
pub fn table_and_sets() -> String {
    let mut s = format!("table {FAMILY} {TABLE} {{\n");
    for (i, (name, ty, flags)) in SET_DECLARATIONS.into_iter().enumerate() {
        let sep = if i == 0 { "" } else { "\n" };
        let _ = writeln!(s, "{sep}\tset {name} {{\n\t\ttype {ty}\n\t\tflags {flags}\n\t}}");
    }
    s.push_str("}\n");
    s
}

/// The ruleset, as `firewall render` prints it and as the golden tests keep it: the table with its
/// sets (declared empty) and its chains.
pub fn ruleset(rs: &Ruleset) -> String {
    let mut s = format!(
        "# pbxguard host firewall: `pbxguard firewall render`. Only table {FAMILY} {TABLE} is touched;\n\
         # its sets are filled by the pbxguard daemon and survive every apply.\n"
    );
    s.push_str(&table_and_sets());
    s.push_str(&chains(rs));
    s
}

/// Only the chains, inside their table.
pub fn chains(rs: &Ruleset) -> String {
    let mut s = format!("table {FAMILY} {TABLE} {{\n");
    s.push_str("\t# Before connection tracking: a ban cuts live flows at once and makes no conntrack entry.\n");
    s.push_str("\tchain pre {\n\t\ttype filter hook prerouting priority raw; policy accept;\n");
    s.push_str("\t\tiif \"lo\" accept\n");
    let _ = writeln!(s, "\t\tip saddr @{} accept comment \"trusted\"", sets::TRUSTED4);
    let _ = writeln!(s, "\t\tip6 saddr @{} accept comment \"trusted\"", sets::TRUSTED6);
    let _ = writeln!(s, "\t\tip saddr @{} counter drop comment \"banned\"", sets::BANNED4);
    let _ = writeln!(s, "\t\tip6 saddr @{} counter drop comment \"banned\"", sets::BANNED6);
    let _ = writeln!(s, "\t\tip saddr @{} counter drop comment \"blacklisted\"", sets::BLACKLIST4);
    let _ = writeln!(s, "\t\tip6 saddr @{} counter drop comment \"blacklisted\"", sets::BLACKLIST6);
    s.push_str("\t}\n\n");
    let _ = writeln!(s, "\tchain input {{\n\t\ttype filter hook input priority filter; policy {};", rs.policy.as_str());
    s.push_str("\t\tiif \"lo\" accept\n");
    s.push_str("\t\tct state established,related accept\n");
    // Neighbour discovery must pass or IPv6 stops working; hop limit 255 proves it came from the link
    // (RFC 4861 §6.1). MLD from link-local sources keeps multicast snooping switches forwarding the
    // solicited-node groups ND depends on (RFC 4890 §4.4.1).
    s.push_str(
        "\t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept\n",
    );
    s.push_str(
        "\t\ticmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr fe80::/10 accept\n",
    );
    s.push_str("\t\tct state invalid drop\n");
    // Errors carry path MTU discovery (RFC 8201, RFC 1191); echo is allowed but rate-limited.
    s.push_str(
        "\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept\n",
    );
    s.push_str("\t\ticmpv6 type echo-request limit rate 10/second accept\n");
    s.push_str("\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n");
    s.push_str("\t\ticmp type echo-request limit rate 10/second accept\n");
    let _ = writeln!(s, "\t\tip saddr @{} accept comment \"trusted\"", sets::TRUSTED4);
    let _ = writeln!(s, "\t\tip6 saddr @{} accept comment \"trusted\"", sets::TRUSTED6);
    for svc in &rs.services {
        service_rules(&mut s, svc);
    }
    if rs.policy == Policy::Drop {
        s.push_str("\t\tcounter comment \"policy-drop\"\n");
    }
    s.push_str("\t}\n}\n");
    s
}

fn service_rules(s: &mut String, svc: &Service) {
    let ports = if svc.ports.len() == 1 {
        svc.ports[0].to_string()
    } else {
        format!("{{ {} }}", svc.ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
    };
    let tail = format!("{} dport {ports} counter accept comment \"{}\"", svc.proto.as_str(), svc.name());
    match &svc.sources {
        Sources::Anyone => {
            let _ = writeln!(s, "\t\t{tail}");
        }
        Sources::Only(nets) => {
            let (v4, v6): (Vec<&Cidr>, Vec<&Cidr>) = nets.iter().partition(|c| c.is_ipv4());
            for (family, nets) in [("ip", v4), ("ip6", v6)] {
                if nets.is_empty() {
                    continue;
                }
                // One network without braces: nft lists it that way, so a diff against the kernel stays quiet.
                let list = if nets.len() == 1 {
                    nets[0].to_string()
                } else {
                    format!("{{ {} }}", nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
                };
                let _ = writeln!(s, "\t\t{family} saddr {list} {tail}");
            }
            if nets.is_empty() {
                let _ = writeln!(s, "\t\t# {}: no source allowed (trusted networks only)", svc.name());
            }
        }
    }
}

/// One `nft -f` transaction that replaces our chains with `new_chains` (text from [`chains`] or chain
/// blocks saved by [`saved_chains`]): the table and sets are declared (kept if present), the chains now
/// in the kernel (`existing`, from [`chain_names`]) deleted, the new ones added. Any error aborts the
/// whole transaction and leaves the kernel as it was.
pub fn replace_script(existing: &[String], new_chains: &str) -> String {
    let mut s = table_and_sets();
    for name in existing {
        let _ = writeln!(s, "delete chain {FAMILY} {TABLE} {name}");
    }
    s.push_str(new_chains);
    s
}

/// The chain names in an `nft -t list table` listing of our table.
pub fn chain_names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("chain ")?.strip_suffix('{').map(|n| n.trim().to_owned()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// The chains of an `nft -t list table` listing, as a table block [`replace_script`] can load again:
/// what a rollback restores. `None` when the listing holds no chain (nothing to restore but an empty
/// table). nft prints one statement per line and closes a chain with a line holding only `}` at the
/// chain's indentation, which is what this relies on.
pub fn saved_chains(listing: &str) -> Option<String> {
    let mut out = format!("table {FAMILY} {TABLE} {{\n");
    let mut inside: Option<String> = None;
    let mut any = false;
    for line in listing.lines() {
        match &inside {
            None => {
                let t = line.trim_start();
                if t.starts_with("chain ") && t.trim_end().ends_with('{') {
                    inside = Some(line[..line.len() - t.len()].to_owned());
                    out.push_str(line);
                    out.push('\n');
                    any = true;
                }
            }
            Some(indent) => {
                out.push_str(line);
                out.push('\n');
                if line.trim_end() == format!("{indent}}}") {
                    inside = None;
                }
            }
        }
    }
    out.push_str("}\n");
    (any && inside.is_none()).then_some(out)
}

/// Deletes only our table (sets, elements and chains): `firewall disable`.
pub fn delete_table() -> String {
    format!("delete table {FAMILY} {TABLE}\n")
}
