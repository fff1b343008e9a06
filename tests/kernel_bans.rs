//! Bans, blacklists and trusted networks enforced by the kernel: real `nft` in network namespaces this
//! test creates. A server namespace runs `pbxguard run` and two plain listeners (UDP echo on 7777, TCP
//! on 2222); an attacker namespace and an admin namespace reach it over their own veth pairs. Every
//! "dropped" is proved by the same probe getting an answer just before.
//!
//! Until `pbxguard firewall apply` loads the ruleset, the test loads a fixture of the same shape
//! (research/firewall.md §3: bans and blacklists dropped in prerouting, before conntrack).

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// UDP echo on 7777 and a TCP listener on 2222 that says "ok", both families.
const LISTENERS: &str = r#"
import socket, threading
def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 7777))
    while True:
        d, a = s.recvfrom(2048); s.sendto(d, a)
def tcp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 2222)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(b"ok\n"); c.close()
threading.Thread(target=udp, args=(socket.AF_INET, "0.0.0.0"), daemon=True).start()
threading.Thread(target=udp, args=(socket.AF_INET6, "::"), daemon=True).start()
tcp()
"#;

/// `probe KIND HOST PORT`: exit 0 when an answer comes within 0.5 s.
const PROBE: &str = r#"
import socket, sys, os
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=0.5); s.settimeout(0.5)
        sys.exit(0 if s.recv(16) else 1)
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(0.5); s.connect((host, port))
    if kind == "sip":
        me = s.getsockname()
        tag = os.urandom(6).hex()
        h = "[%s]" % host if fam == socket.AF_INET6 else host
        m = ("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"
             "From: <sip:probe@%s>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
             "User-Agent: admin-probe\r\nContent-Length: 0\r\n\r\n") % (h, h, me[1], tag, h, tag, h, tag)
        s.send(m.encode())
    else:
        s.send(b"ping")
    s.recv(4096); sys.exit(0)
except OSError:
    sys.exit(1)
"#;

/// Three namespaces and what runs in them; everything is stopped and removed on drop, panic or not.
struct Lab {
    tag: String,
    children: Vec<Child>,
    dir: TempDir,
}

const SRV_V4: &str = "10.201.0.1";
const SRV_V6: &str = "fd00:201::1";
const ATK_V4: &str = "10.201.0.2";
const ATK_V6: &str = "fd00:201::2";
const ADM_SRV_V4: &str = "10.202.0.1";
const ADM_SRV_V6: &str = "fd00:202::1";

fn run(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().expect("run");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

impl Lab {
    fn new() -> Self {
        require("nft");
        require("svmap");
        require("python3");
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!("kb{}x{}", std::process::id() % 100_000, N.fetch_add(1, Ordering::Relaxed));
        let lab = Self { tag, children: Vec::new(), dir: TempDir::new("kernel-bans") };
        for ns in ["srv", "atk", "adm"] {
            run(&["ip", "netns", "add", &lab.ns(ns)]);
            run(&["ip", "-n", &lab.ns(ns), "link", "set", "lo", "up"]);
        }
        let (srv, atk, adm) = (lab.ns("srv"), lab.ns("atk"), lab.ns("adm"));
        run(&["ip", "link", "add", "s-a", "netns", &srv, "type", "veth", "peer", "name", "a-s", "netns", &atk]);
        run(&["ip", "link", "add", "s-m", "netns", &srv, "type", "veth", "peer", "name", "m-s", "netns", &adm]);
        for (ns, dev, v4, v6) in [
            (&srv, "s-a", "10.201.0.1/24", "fd00:201::1/64"),
            (&atk, "a-s", "10.201.0.2/24", "fd00:201::2/64"),
            (&srv, "s-m", "10.202.0.1/24", "fd00:202::1/64"),
            (&adm, "m-s", "10.202.0.2/24", "fd00:202::2/64"),
        ] {
            run(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
            run(&["ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab.nft_script(NFT_FIXTURE);
        let mut lab = lab;
        let listeners = lab.spawn("srv", &["python3", "-c", LISTENERS]);
        lab.children.push(listeners);
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.tag)
    }

    fn cmd(&self, role: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(role)]).args(args);
        c
    }

    fn spawn(&self, role: &str, args: &[&str]) -> Child {
        self.cmd(role, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn in namespace")
    }

    fn nft(&self, args: &[&str]) -> String {
        let o = self.cmd("srv", &[&["nft"], args].concat()).output().expect("nft");
        assert!(o.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn nft_script(&self, text: &str) {
        let path = self.dir.0.join("ruleset.nft");
        std::fs::write(&path, text).unwrap();
        self.nft(&["-f", path.to_str().unwrap()]);
    }

    /// The set's elements as nft writes them ("10.0.0.1", "10.0.0.0/24", "a-b").
    fn elements(&self, set: &str) -> BTreeSet<String> {
        let v: serde_json::Value =
            serde_json::from_str(&self.nft(&["-j", "list", "set", "inet", "pbxguard", set])).unwrap();
        let elems = v["nftables"].as_array().unwrap().iter().find_map(|o| o["set"]["elem"].as_array().cloned());
        fn one(e: &serde_json::Value) -> String {
            if let Some(s) = e.as_str() {
                return s.to_owned();
            }
            if let Some(p) = e.get("prefix") {
                return format!("{}/{}", p["addr"].as_str().unwrap(), p["len"]);
            }
            if let Some(r) = e.get("range") {
                return format!("{}-{}", r[0].as_str().unwrap(), r[1].as_str().unwrap());
            }
            one(&e["elem"]["val"])
        }
        elems.unwrap_or_default().iter().map(one).collect()
    }

    /// Packets the pre chain's rule with this comment dropped, both families together.
    fn dropped(&self, comment: &str) -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&self.nft(&["-j", "list", "chain", "inet", "pbxguard", "pre"])).unwrap();
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["rule"]["comment"] == comment)
            .flat_map(|o| o["rule"]["expr"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["counter"]["packets"].as_u64())
            .sum()
    }

    /// Does `role` get an answer (`kind`: udp echo on 7777, tcp on 2222, sip on 5060)?
    fn answers(&self, role: &str, kind: &str, host: &str) -> bool {
        let port = match kind {
            "udp" => "7777",
            "tcp" => "2222",
            _ => "5060",
        };
        self.cmd(role, &["python3", "-c", PROBE, kind, host, port]).status().expect("probe").success()
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    /// `pbxguard run` in the server namespace, SIP on UDP 5060 of every address.
    fn start_daemon(&mut self) -> u32 {
        let data = self.data();
        let _ = std::fs::remove_file(data.join("listen.json"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.0.join("daemon.log")).unwrap();
        let child = self
            .cmd("srv", &[BIN, "--data", data.to_str().unwrap(), "run"])
            .args(["--sip-udp", "0.0.0.0:5060", "--sip-udp", "[::]:5060", "--sip-tcp", "off", "--sip-tls", "off"])
            .env_remove("PBXGUARD_DATA")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pbxguard");
        let pid = child.id();
        self.children.push(child);
        wait_for(Duration::from_secs(20), || {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(data.join("listen.json")).ok()?).ok()?;
            (v["pid"] == pid).then_some(())
        })
        .unwrap_or_else(|| panic!("daemon did not start:\n{}", self.log()));
        pid
    }

    fn signal(&mut self, pid: u32, sig: &str) {
        run(&["kill", sig, &pid.to_string()]);
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut c = self.children.remove(i);
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("daemon.log")).unwrap_or_default()
    }

    /// Waits until the daemon has said `what` `n` times.
    fn await_log(&self, what: &str, n: usize) {
        wait_for(Duration::from_secs(10), || (self.log().matches(what).count() >= n).then_some(()))
            .unwrap_or_else(|| panic!("the daemon never said {what:?} {n} time(s):\n{}", self.log()));
    }

    fn cli(&self, args: &[&str]) -> String {
        cli_ok(&self.data(), args)
    }

    fn await_elements(&self, set: &str, want: &[&str]) {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        wait_for(Duration::from_secs(5), || (self.elements(set) == want).then_some(()))
            .unwrap_or_else(|| panic!("{set} holds {:?}, not {want:?}\n{}", self.elements(set), self.log()));
    }

    /// In-process drops of banned sources (metrics.prom, rewritten within a second of a change).
    fn in_process_drops(&self) -> u64 {
        self.metric("pbxguard_dropped_total{reason=\"banned\"}").unwrap_or(0)
    }

    fn metric(&self, name: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.data().join("metrics.prom")).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- daemon log:\n{}--- end", self.log());
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in ["srv", "atk", "adm"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(ns)]).status();
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn bans_are_enforced_by_the_kernel_and_survive_the_daemon() {
    let mut lab = Lab::new();
    let pid = lab.start_daemon();
    lab.cli(&["settings", "set", "firewall.enabled", "true"]);
    lab.await_log("nftables sets filled from the gate", 1);
    for (role, host) in [("atk", SRV_V4), ("adm", ADM_SRV_V4)] {
        for kind in ["udp", "tcp", "sip"] {
            assert!(lab.answers(role, kind, host), "{role} gets no {kind} answer before any ban");
        }
    }

    // sipvicious from the attacker: banned by the daemon, then dropped by the kernel on every port.
    let home = lab.dir.0.join("svhome");
    std::fs::create_dir_all(&home).unwrap();
    let svmap =
        lab.cmd("atk", &["timeout", "60", "svmap", SRV_V4, "-p", "5060"]).env("HOME", &home).output().expect("svmap");
    wait_for(Duration::from_secs(5), || lab.elements("banned4").contains(ATK_V4).then_some(())).unwrap_or_else(|| {
        panic!(
            "{ATK_V4} not in banned4 {:?}; svmap said {}",
            lab.elements("banned4"),
            String::from_utf8_lossy(&svmap.stdout)
        )
    });
    // The metrics written once the ban was decided (bans_active counts it).
    wait_for(Duration::from_secs(5), || (lab.metric("pbxguard_bans_active") >= Some(1)).then_some(()))
        .expect("metrics show the ban");
    let (kernel0, inproc0) = (lab.dropped("banned"), lab.in_process_drops());
    for kind in ["udp", "tcp", "sip"] {
        assert!(!lab.answers("atk", kind, SRV_V4), "banned attacker still gets a {kind} answer");
    }
    assert!(lab.dropped("banned") > kernel0, "nft's banned counter did not grow");
    for kind in ["udp", "tcp", "sip"] {
        assert!(lab.answers("adm", kind, ADM_SRV_V4), "admin lost {kind} while the attacker is banned");
    }
    // Nothing of the attacker's reached pbxguard: its own drop counter stays. Metrics are rewritten
    // within a second of a change: once they show the operator's unban, they were written after the
    // probes above.
    lab.cli(&["bans", "del", ATK_V4]);
    lab.await_elements("banned4", &[]);
    wait_for(Duration::from_secs(5), || (lab.metric("pbxguard_bans_active") == Some(0)).then_some(()))
        .expect("metrics show the unban");
    assert_eq!(lab.in_process_drops(), inproc0, "the attacker's packets reached pbxguard");

    // Lifted: out of the kernel, and the attacker's probes pass again.
    assert!(wait_for(Duration::from_secs(5), || lab.answers("atk", "udp", SRV_V4).then_some(())).is_some());

    // IPv6, a network ban and an address inside it: the kernel holds the network, then the address.
    assert!(lab.answers("atk", "udp", SRV_V6));
    lab.cli(&["bans", "add", "fd00:201::/64", "--reason", "test"]);
    lab.await_elements("banned6", &["fd00:201::/64"]);
    assert!(!lab.answers("atk", "udp", SRV_V6));
    assert!(!lab.answers("atk", "tcp", SRV_V6));
    assert!(lab.answers("adm", "udp", ADM_SRV_V6));
    lab.cli(&["bans", "add", ATK_V6, "--reason", "inside", "--for", "1h"]);
    lab.cli(&["bans", "del", "fd00:201::/64"]);
    lab.await_elements("banned6", &[ATK_V6]);
    assert!(!lab.answers("atk", "udp", SRV_V6));

    // Restart: the bans stayed in the kernel while it was down; whatever happened to the sets
    // meanwhile, they equal the store's bans once it is back.
    lab.signal(pid, "-TERM");
    assert_eq!(lab.elements("banned6"), BTreeSet::from([ATK_V6.to_owned()]));
    assert!(!lab.answers("atk", "udp", SRV_V6));
    lab.nft(&["flush", "set", "inet", "pbxguard", "banned6"]);
    lab.nft(&["add", "element", "inet", "pbxguard", "banned4", "{ 192.0.2.99 }"]);
    let pid = lab.start_daemon();
    let stored: Vec<serde_json::Value> = serde_json::from_str(&lab.cli(&["bans", "list", "--json"])).unwrap();
    let stored: Vec<&str> = stored.iter().map(|b| b["target"].as_str().unwrap()).collect();
    assert_eq!(stored, vec![ATK_V6]);
    lab.await_elements("banned6", &stored);
    lab.await_elements("banned4", &[]);

    // SIGKILL: nothing cleans up, the kernel keeps dropping.
    lab.signal(pid, "-KILL");
    assert!(!lab.answers("atk", "udp", SRV_V6));
    assert!(!lab.answers("atk", "tcp", SRV_V6));
    assert!(lab.answers("adm", "udp", ADM_SRV_V6));
    assert!(lab.answers("atk", "udp", SRV_V4), "only the IPv6 address is banned");
}

#[test]
fn a_trusted_admin_network_is_never_dropped_even_when_blacklisted() {
    let mut lab = Lab::new();
    lab.start_daemon();
    lab.cli(&["settings", "set", "firewall.enabled", "true"]);
    lab.await_log("nftables sets filled from the gate", 1);
    for (role, host) in [("atk", SRV_V4), ("adm", ADM_SRV_V4), ("atk", SRV_V6), ("adm", ADM_SRV_V6)] {
        assert!(lab.answers(role, "udp", host), "{role} gets no answer from {host} before any list");
    }
    lab.cli(&["trust", "add", "10.202.0.0/24"]);
    lab.cli(&["trust", "add", "fd00:202::/64"]);
    // Overlapping entries, as real lists have them: merged before they reach the kernel.
    let list = lab.dir.0.join("list.txt");
    std::fs::write(&list, "10.201.0.0/24\n10.201.0.2\n10.202.0.0/24\n10.202.0.2\nfd00:201::/64\nfd00:202::/48\n")
        .unwrap();
    lab.cli(&["blacklist", "import", path_str(&list), "--name", "test"]);
    lab.await_elements("blacklist4", &["10.201.0.0/24", "10.202.0.0/24"]);
    lab.await_elements("blacklist6", &["fd00:201::/64", "fd00:202::/48"]);
    wait_for(Duration::from_secs(5), || lab.elements("trusted4").contains("10.202.0.0/24").then_some(()))
        .unwrap_or_else(|| panic!("trusted4 holds {:?}", lab.elements("trusted4")));
    let before = lab.dropped("blacklisted");
    assert!(!lab.answers("atk", "udp", SRV_V4));
    assert!(!lab.answers("atk", "tcp", SRV_V6));
    assert!(lab.dropped("blacklisted") > before);
    for host in [ADM_SRV_V4, ADM_SRV_V6] {
        for kind in ["udp", "tcp", "sip"] {
            assert!(lab.answers("adm", kind, host), "trusted admin lost {kind} to {host}");
        }
    }
    // Turned off at run time, then on again: the sets are refilled with what changed meanwhile.
    lab.cli(&["settings", "set", "firewall.enabled", "false"]);
    lab.await_log("firewall.enabled changed", 2);
    lab.cli(&["blacklist", "del", "test"]);
    lab.await_log("blacklists loaded", 2);
    lab.cli(&["settings", "set", "firewall.enabled", "true"]);
    lab.await_log("nftables sets filled from the gate", 2);
    lab.await_elements("blacklist4", &[]);
    assert!(lab.answers("atk", "udp", SRV_V4));
}
