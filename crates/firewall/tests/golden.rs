//! Golden tests of the rendered ruleset: the exact text `nft -f` loads, kept in `tests/golden/`. A
//! change to the rendering shows up as a diff in review. Regenerate with `PBXGUARD_BLESS=1 cargo test
//! --release -p pbxguard-firewall --test golden` and read the diff before committing it.

use pbxguard_firewall::model::{Cidr, Policy, PortRange, Proto, Ruleset, Service, Sources, acl_networks};
use pbxguard_firewall::render;
use std::path::PathBuf;

fn check(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("PBXGUARD_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with PBXGUARD_BLESS=1)", path.display()));
    assert!(
        want == text,
        "{name} differs from the golden file {} (PBXGUARD_BLESS=1 to accept):\n--- got\n{text}",
        path.display()
    );
}

fn c(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn svc(name: &str, proto: Proto, ports: &[&str], sources: Sources) -> Service {
    Service::new(name, proto, ports.iter().map(|p| PortRange::parse(p).unwrap()).collect(), sources).unwrap()
}

/// What the wizard opens on a default install, SSH and the GUI restricted to an admin network.
fn pbx() -> Ruleset {
    let admin = Sources::Only(vec![c("203.0.113.0/24"), c("2001:db8:a::/48")]);
    Ruleset {
        policy: Policy::Drop,
        services: vec![
            svc("ssh", Proto::Tcp, &["22"], admin.clone()),
            svc("gui", Proto::Tcp, &["5555"], admin),
            svc("sip-udp", Proto::Udp, &["5060"], Sources::Anyone),
            svc("sip-tcp", Proto::Tcp, &["5060"], Sources::Anyone),
            svc("sip-tls", Proto::Tcp, &["5061"], Sources::Anyone),
            svc("iax2", Proto::Udp, &["4569"], Sources::Anyone),
            svc("rtp", Proto::Udp, &["10000-20000"], Sources::Anyone),
            svc("mgcp", Proto::Udp, &["2727"], Sources::Anyone),
        ],
    }
}

#[test]
fn default_pbx_ruleset() {
    check("pbx.nft", &render::ruleset(&pbx()));
}

#[test]
fn policy_accept_several_ports_acl_group_and_a_closed_service() {
    let office = acl_networks(&[(c("10.0.0.0/8"), false), (c("10.1.2.0/24"), true), (c("10.1.2.9"), false)]);
    let rs = Ruleset {
        policy: Policy::Accept,
        services: vec![
            svc("ssh", Proto::Tcp, &["22", "2222"], Sources::Only(office)),
            svc("gui", Proto::Tcp, &["5555"], Sources::Only(vec![])),
            svc("custom_1", Proto::Udp, &["7000-7010", "7100"], Sources::Only(vec![c("2001:db8::/32")])),
        ],
    };
    check("accept-acl.nft", &render::ruleset(&rs));
}

#[test]
fn apply_and_rollback_scripts_keep_the_sets() {
    let chains = render::chains(&pbx());
    let apply = render::replace_script(&["pre".into(), "input".into()], &chains);
    check("apply.nft", &apply);
    assert!(!apply.contains("delete table") && !apply.contains("delete set") && !apply.contains("flush"));
    // What `nft -t list table inet pbxguard` prints comes back as the same chains.
    let listing = "table inet pbxguard {\n\tset banned4 {\n\t\ttype ipv4_addr\n\t\tflags interval,timeout\n\t}\n\n\tchain pre {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\t\tiif \"lo\" accept\n\t}\n\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 counter packets 3 bytes 180 accept comment \"ssh\"\n\t}\n}\n";
    assert_eq!(render::chain_names(listing), ["pre", "input"]);
    let saved = render::saved_chains(listing).unwrap();
    check("rollback.nft", &render::replace_script(&["pre".into(), "input".into(), "extra".into()], &saved));
    assert_eq!(render::saved_chains("table inet pbxguard {\n\tset banned4 {\n\t}\n}\n"), None);
    // A listing cut short is never half-restored.
    assert_eq!(render::saved_chains("table inet pbxguard {\n\tchain pre {\n\t\tiif \"lo\" accept\n"), None);
}
