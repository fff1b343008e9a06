//! The host firewall's ruleset against real `nft`, in network namespaces each test creates: a server
//! namespace (plain listeners, and `pbxguard run` where the rollback timer is under test) joined by a
//! veth pair to a client namespace holding an admin address (.2) and another address (.3), IPv4 and
//! IPv6. Every "dropped" is proved by the same probe getting an answer just before.

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Echo on UDP 5060 and 7000, a TCP listener saying "ok" on 22 and 7000; dual-stack sockets.
const LISTENERS: &str = r#"
import socket, threading
def udp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    while True:
        d, a = s.recvfrom(2048); s.sendto(d, a)
def tcp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(b"ok\n"); c.close()
for p in (5060, 7000):
    threading.Thread(target=udp, args=(p,), daemon=True).start()
threading.Thread(target=tcp, args=(7000,), daemon=True).start()
tcp(22)
"#;

/// `probe udp|tcp SOURCE HOST PORT`: exit 0 when an answer comes within 0.5 s.
const PROBE: &str = r#"
import socket, sys
kind, src, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    s = socket.socket(fam, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(0.5); s.bind((src, 0)); s.connect((host, port))
    if kind == "udp": s.send(b"ping")
    sys.exit(0 if s.recv(16) else 1)
except OSError:
    sys.exit(1)
"#;

/// Two namespaces joined by a veth pair, deleted (with their listeners) on drop, even after a panic.
struct Lab {
    server: String,
    client: String,
    net: u32,
    listeners: Option<Child>,
    daemon: Option<Child>,
}

impl Lab {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        require("nft");
        require("ip");
        require("python3");
        let n = N.fetch_add(1, Ordering::Relaxed);
        let net = (std::process::id() + n * 7) % 200 + 20;
        let tag = format!("{}-{n}", std::process::id() % 100_000);
        let lab = Self {
            server: format!("pbxfw-s{tag}"),
            client: format!("pbxfw-c{tag}"),
            net,
            listeners: None,
            daemon: None,
        };
        let (s, c) = (&lab.server, &lab.client);
        let (vs, vc) = (format!("fws{tag}"), format!("fwc{tag}"));
        let v4 = |h: u32| format!("10.{net}.77.{h}/24");
        let v6 = |h: u32| format!("fd77:{net}::{h}/64");
        for cmd in [
            vec!["netns", "add", s],
            vec!["netns", "add", c],
            vec!["link", "add", &vs, "netns", s, "type", "veth", "peer", "name", &vc, "netns", c],
            vec!["-n", s, "addr", "add", &v4(1), "dev", &vs],
            vec!["-n", s, "addr", "add", &v6(1), "dev", &vs, "nodad"],
            vec!["-n", c, "addr", "add", &v4(2), "dev", &vc],
            vec!["-n", c, "addr", "add", &v4(3), "dev", &vc],
            vec!["-n", c, "addr", "add", &v6(2), "dev", &vc, "nodad"],
            vec!["-n", c, "addr", "add", &v6(3), "dev", &vc, "nodad"],
            vec!["-n", s, "link", "set", "lo", "up"],
            vec!["-n", c, "link", "set", "lo", "up"],
            vec!["-n", s, "link", "set", &vs, "up"],
            vec!["-n", c, "link", "set", &vc, "up"],
        ] {
            let st = Command::new("ip").args(&cmd).status().expect("ip");
            assert!(st.success(), "ip {cmd:?} failed");
        }
        lab
    }

    fn start_listeners(&mut self) {
        self.listeners = Some(
            Command::new("ip")
                .args(["netns", "exec", &self.server, "python3", "-c", LISTENERS])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3"),
        );
        // From the server's own loopback: up once this answers.
        let ok = wait_for(Duration::from_secs(10), || {
            self.probe_from(&self.server, "tcp", "127.0.0.1", "127.0.0.1", 22).then_some(())
        });
        assert!(ok.is_some(), "listeners did not start");
    }

    /// An address of the client namespace: 2 is the admin, 3 anyone else.
    fn client_ip(&self, host: u32, v6: bool) -> String {
        if v6 { format!("fd77:{}::{host}", self.net) } else { format!("10.{}.77.{host}", self.net) }
    }

    fn server_ip(&self, v6: bool) -> String {
        if v6 { format!("fd77:{}::1", self.net) } else { format!("10.{}.77.1", self.net) }
    }

    fn probe_from(&self, ns: &str, kind: &str, src: &str, dst: &str, port: u16) -> bool {
        Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", PROBE, kind, src, dst, &port.to_string()])
            .status()
            .expect("probe")
            .success()
    }

    /// Whether the client's address `host` gets an answer from the server on `kind`/`port`.
    fn reaches(&self, host: u32, v6: bool, kind: &str, port: u16) -> bool {
        self.probe_from(&self.client, kind, &self.client_ip(host, v6), &self.server_ip(v6), port)
    }

    /// Waits (bounded) until the probe's answer is `want`; panics with `what` otherwise.
    fn expect(&self, host: u32, v6: bool, kind: &str, port: u16, want: bool, what: &str) {
        let ok = wait_for(Duration::from_secs(10), || (self.reaches(host, v6, kind, port) == want).then_some(()));
        assert!(
            ok.is_some(),
            "{what}: .{host} (v6 {v6}) {kind}/{port} should {}",
            if want { "pass" } else { "be dropped" }
        );
    }

    /// `pbxguard` in the server namespace, with `env` added.
    fn cli(&self, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(data, args, env).output().expect("pbxguard")
    }

    fn cmd(&self, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.server, BIN, "--data"]).arg(data).args(args);
        c.env_remove("PBXGUARD_DATA")
            .env_remove("SSH_CONNECTION")
            .env("PBXGUARD_SSHD_CONFIG", data.join("sshd_config"));
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    fn cli_ok(&self, data: &Path, args: &[&str]) -> String {
        let o = self.cli(data, args, &[]);
        assert!(
            o.status.success(),
            "pbxguard {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn nft(&self, args: &[&str]) -> String {
        let o = Command::new("ip").args(["netns", "exec", &self.server, "nft"]).args(args).output().expect("nft");
        assert!(o.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    /// `pbxguard run` in the server namespace on the standard SIP ports (the namespace has them to
    /// itself), waiting for its listen.json.
    fn start_daemon(&mut self, data: &Path) {
        let _ = std::fs::remove_file(data.join("listen.json"));
        let log = std::fs::File::create(data.with_extension("log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server, BIN, "--data"])
            .arg(data)
            .args(["run", "--sip-udp", "0.0.0.0:5070", "--sip-tcp", "0.0.0.0:5070", "--sip-tls", "off"])
            .env_remove("PBXGUARD_DATA")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pbxguard run");
        self.daemon = Some(child);
        let up = wait_for(Duration::from_secs(20), || data.join("listen.json").exists().then_some(()));
        assert!(
            up.is_some(),
            "daemon did not start: {}",
            std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
        );
    }
}

impl Lab {
    fn kill_daemon(&mut self) {
        let mut c = self.daemon.take().expect("daemon running");
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in [self.listeners.take(), self.daemon.take()].into_iter().flatten() {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn data_dir(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::fs::write(d.0.join("sshd_config"), "Port 22\n").unwrap();
    d
}

/// A listing with its counters' values left out (probes move them).
fn without_counts(listing: &str) -> String {
    let mut out = Vec::new();
    let mut words = listing.split_whitespace();
    while let Some(w) = words.next() {
        if w == "packets" || w == "bytes" {
            words.next();
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_rendered_ruleset_loads_and_opens_only_the_services_to_their_sources() {
    let mut lab = Lab::new();
    lab.start_listeners();
    let d = data_dir("fw-apply");
    let admin4 = format!("{}/32", lab.client_ip(2, false));
    let admin6 = format!("{}/128", lab.client_ip(2, true));
    // Before: everything answers, from both addresses.
    for v6 in [false, true] {
        lab.expect(3, v6, "tcp", 22, true, "no firewall yet");
        lab.expect(3, v6, "tcp", 7000, true, "no firewall yet");
    }
    let rendered = lab.cli_ok(&d.0, &["firewall", "render"]);
    assert!(rendered.contains("tcp dport 22 counter accept comment \"ssh\""), "{rendered}");
    lab.cli_ok(&d.0, &["firewall", "wizard", "--yes", "--ssh-from", &admin4, &admin6, "--rollback-after", "0"]);
    for v6 in [false, true] {
        // SIP over UDP is open to anyone; SSH to the admin only; 7000 is no service at all.
        lab.expect(3, v6, "udp", 5060, true, "sip-udp is open");
        lab.expect(2, v6, "tcp", 22, true, "ssh from the admin");
        lab.expect(3, v6, "tcp", 22, false, "ssh from another address");
        lab.expect(2, v6, "tcp", 7000, false, "a closed port");
        lab.expect(3, v6, "udp", 7000, false, "a closed port");
    }
    // A blacklisted network is dropped on every port, SIP included; the trusted admin inside it passes,
    // even on a port no service opens.
    let net4 = format!("10.{}.77.0/24", lab.net);
    let net6 = format!("fd77:{}::/64", lab.net);
    lab.nft(&["add", "element", "inet", "pbxguard", "blacklist4", &format!("{{ {net4} }}")]);
    lab.nft(&["add", "element", "inet", "pbxguard", "blacklist6", &format!("{{ {net6} }}")]);
    for v6 in [false, true] {
        lab.expect(3, v6, "udp", 5060, false, "blacklisted");
        lab.expect(2, v6, "tcp", 22, false, "blacklisted, not yet trusted");
    }
    lab.nft(&["add", "element", "inet", "pbxguard", "trusted4", &format!("{{ {} }}", lab.client_ip(2, false))]);
    lab.nft(&["add", "element", "inet", "pbxguard", "trusted6", &format!("{{ {} }}", lab.client_ip(2, true))]);
    for v6 in [false, true] {
        lab.expect(2, v6, "tcp", 7000, true, "trusted beats the blacklist and the policy");
        lab.expect(3, v6, "udp", 5060, false, "still blacklisted");
    }
    // Applying again replaces the chains and keeps what the daemon put in the sets.
    lab.cli_ok(&d.0, &["firewall", "apply", "--rollback-after", "0"]);
    let set = lab.nft(&["list", "set", "inet", "pbxguard", "blacklist4"]);
    assert!(set.contains(&net4), "the blacklist survived the apply: {set}");
    lab.expect(2, false, "tcp", 7000, true, "trusted after a re-apply");
    lab.expect(3, false, "udp", 5060, false, "blacklisted after a re-apply");
    let status: serde_json::Value = serde_json::from_str(&lab.cli_ok(&d.0, &["firewall", "status", "--json"])).unwrap();
    assert_eq!(status["active"], true, "{status}");
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["sets"]["blacklist4"], 1, "{status}");
    assert_eq!(status["sets"]["trusted6"], 1, "{status}");
    let dropped: u64 = status["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule"] == "blacklisted")
        .map(|r| r["packets"].as_u64().unwrap())
        .sum();
    assert!(dropped > 0, "the blacklist rule counted its drops: {status}");
    // Disable removes our table, and only it.
    lab.nft(&["add", "table", "inet", "someone_else"]);
    let out = lab.cli_ok(&d.0, &["firewall", "disable"]);
    assert!(out.contains("deleted"), "{out}");
    lab.expect(3, false, "tcp", 7000, true, "firewall disabled");
    let tables = lab.nft(&["list", "tables"]);
    assert!(tables.contains("someone_else") && !tables.contains("pbxguard"), "{tables}");
    assert_eq!(lab.cli_ok(&d.0, &["settings", "get", "firewall.enabled"]).trim(), "false");
}

#[test]
fn an_unconfirmed_apply_rolls_back_in_the_daemon_even_when_the_cli_is_killed() {
    let mut lab = Lab::new();
    lab.start_listeners();
    let d = data_dir("fw-rollback");
    let admin4 = format!("{}/32", lab.client_ip(2, false));
    // Without a daemon, an apply with a rollback is refused and changes nothing.
    let o = lab.cli(&d.0, &["firewall", "wizard", "--yes", "--ssh-from", &admin4, "--rollback-after", "2s"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("no pbxguard daemon is running"), "{}", stderr(&o));
    lab.expect(3, false, "tcp", 22, true, "refused without a daemon: nothing changed");
    lab.start_daemon(&d.0);
    // Everything open and confirmed first: what the rollback must come back to.
    lab.cli_ok(&d.0, &["firewall", "wizard", "--yes", "--rollback-after", "0"]);
    lab.expect(3, false, "tcp", 22, true, "ssh open to anyone");
    lab.expect(3, false, "tcp", 7000, false, "a closed port");
    // The restrictive apply; its CLI is killed as soon as the rules are in force.
    let mut cli = lab
        .cmd(&d.0, &["firewall", "wizard", "--yes", "--ssh-from", &admin4, "--rollback-after", "3s"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.expect(3, false, "tcp", 22, false, "the new ruleset is in force");
    let _ = cli.kill();
    let _ = cli.wait();
    lab.expect(2, false, "tcp", 22, true, "the admin still gets in");
    let status: serde_json::Value = serde_json::from_str(&lab.cli_ok(&d.0, &["firewall", "status", "--json"])).unwrap();
    assert!(status["pending"]["deadline_ms"].is_i64(), "a rollback is pending: {status}");
    // No confirm: the daemon puts the previous ruleset back.
    lab.expect(3, false, "tcp", 22, true, "rolled back");
    lab.expect(3, false, "tcp", 7000, false, "the previous ruleset, not none");
    let status: serde_json::Value = serde_json::from_str(&lab.cli_ok(&d.0, &["firewall", "status", "--json"])).unwrap();
    assert_eq!(status["last"]["state"], "rolled_back", "{status}");
    let o = lab.cli(&d.0, &["firewall", "confirm"], &[]);
    assert!(!o.status.success() && stderr(&o).contains("rolled back"), "{}", stderr(&o));

    // Confirmed in time: it stays past its deadline.
    let out = lab.cli_ok(&d.0, &["firewall", "wizard", "--yes", "--ssh-from", &admin4, "--rollback-after", "2s"]);
    assert!(out.contains("unless you run `pbxguard firewall confirm`"), "{out}");
    lab.expect(3, false, "tcp", 22, false, "the new ruleset is in force");
    lab.cli_ok(&d.0, &["firewall", "confirm"]);
    let status: serde_json::Value = serde_json::from_str(&lab.cli_ok(&d.0, &["firewall", "status", "--json"])).unwrap();
    assert!(status["pending"].is_null() && status["last"]["state"] == "confirmed", "{status}");
    // Past the deadline (2 s) by a margin the daemon cannot miss.
    std::thread::sleep(Duration::from_millis(3000));
    assert!(!lab.reaches(3, false, "tcp", 22), "a confirmed apply was rolled back");
    assert!(lab.reaches(2, false, "tcp", 22), "the admin lost access");

    // The daemon dies (SIGKILL) with a rollback armed: the one started after it still rolls back.
    let open = lab.cli_ok(&d.0, &["firewall", "wizard", "--yes", "--rollback-after", "0"]);
    assert!(open.contains("applied"), "{open}");
    lab.expect(3, false, "tcp", 22, true, "open again");
    lab.cli_ok(&d.0, &["firewall", "wizard", "--yes", "--ssh-from", &admin4, "--rollback-after", "4s"]);
    lab.expect(3, false, "tcp", 22, false, "the new ruleset is in force");
    lab.kill_daemon();
    lab.start_daemon(&d.0);
    lab.expect(3, false, "tcp", 22, true, "rolled back by the restarted daemon");
    lab.cli_ok(&d.0, &["firewall", "disable"]);
}

#[test]
fn an_apply_that_would_drop_the_ssh_session_is_refused_and_changes_nothing() {
    let mut lab = Lab::new();
    lab.start_listeners();
    let d = data_dir("fw-lockout");
    lab.cli_ok(&d.0, &["firewall", "wizard", "--yes", "--rollback-after", "0"]);
    let before = without_counts(&lab.nft(&["-t", "list", "table", "inet", "pbxguard"]));
    let rendered = lab.cli_ok(&d.0, &["firewall", "render"]);
    lab.expect(3, false, "tcp", 22, true, "ssh open to anyone");
    let me = format!("{} 50022 {} 22", lab.client_ip(3, false), lab.server_ip(false));
    let admin4 = format!("{}/32", lab.client_ip(2, false));
    for args in [
        &["firewall", "wizard", "--yes", "--ssh-from", &admin4, "--rollback-after", "0"][..],
        &[
            "firewall",
            "wizard",
            "--yes",
            "--ssh-from",
            &admin4,
            "--rollback-after",
            "0",
            "--sshd-config",
            "/nonexistent",
        ],
    ] {
        let o = lab.cli(&d.0, args, &[("SSH_CONNECTION", &me)]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(
            e.contains("would drop your SSH connection")
                && e.contains(&format!("rule \"ssh\" admits only {}", lab.client_ip(2, false))),
            "{e}"
        );
        assert!(e.contains("Nothing was changed"), "{e}");
    }
    // The same from IPv6, through an IPv4-mapped address as sshd shows it on a dual-stack socket.
    let mapped = format!("::ffff:{} 50022 {} 22", lab.client_ip(3, false), lab.server_ip(false));
    let o = lab.cli(
        &d.0,
        &["firewall", "wizard", "--yes", "--ssh-from", &admin4, "--rollback-after", "0"],
        &[("SSH_CONNECTION", &mapped)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let me6 = format!("{} 50022 {} 22", lab.client_ip(3, true), lab.server_ip(true));
    let admin6 = format!("{}/128", lab.client_ip(2, true));
    let o = lab.cli(
        &d.0,
        &["firewall", "wizard", "--yes", "--ssh-from", &admin6, "--rollback-after", "0"],
        &[("SSH_CONNECTION", &me6)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Nothing changed: not the stored services, not the kernel.
    assert_eq!(lab.cli_ok(&d.0, &["firewall", "render"]), rendered);
    assert_eq!(without_counts(&lab.nft(&["-t", "list", "table", "inet", "pbxguard"])), before);
    lab.expect(3, false, "tcp", 22, true, "still open");
    // From the admin's own address the same change goes through.
    let admin = format!("{} 50022 {} 22", lab.client_ip(2, false), lab.server_ip(false));
    let o = lab.cli(
        &d.0,
        &["firewall", "wizard", "--yes", "--ssh-from", &admin4, "--rollback-after", "0"],
        &[("SSH_CONNECTION", &admin)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    lab.expect(3, false, "tcp", 22, false, "restricted");
    lab.cli_ok(&d.0, &["firewall", "disable"]);
}
