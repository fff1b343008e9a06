//! SSH protection end to end, with a real OpenSSH sshd (`-E` log file) and `pbxguard run` in a server
//! namespace this test creates; an attacker namespace and an admin namespace reach it over their own
//! veth pairs. The SSH guard follows sshd's log file (ssh.guard.logs); `pbxguard ssh set` manages the
//! same sshd through its drop-in. Kernel drops come from the firewall's nftables sets: the table is
//! loaded here as a fixture of the same shape (tests/kernel_bans.rs), and every "dropped" is proved by
//! the same probe getting through just before.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// `probe FROM HOST`: exit 0 when an OPTIONS from FROM gets an answer within 1 s.
const SIP_PROBE: &str = r#"
import socket, sys, os
src, host = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.bind((src, 0)); s.connect((host, 5060))
tag = os.urandom(6).hex(); port = s.getsockname()[1]
m = ("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"
     "From: <sip:probe@%s>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
     "User-Agent: admin-probe\r\nContent-Length: 0\r\n\r\n") % (host, src, port, tag, host, tag, host, tag)
s.send(m.encode())
try:
    s.recv(4096); sys.exit(0)
except OSError:
    sys.exit(1)
"#;

const SRV: &str = "10.211.0.1";
const ATK: &str = "10.211.0.2";
/// A second attacker address on the same link (the rotation test's).
const ATK2: &str = "10.211.0.3";
const ADM_SRV: &str = "10.212.0.1";
const ADM_NET: &str = "10.212.0.0/24";

fn run(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().expect("run");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Three namespaces, an sshd and a daemon; all stopped and removed on drop, panic or not.
struct Lab {
    tag: String,
    children: Vec<Child>,
    sshd: Option<Child>,
    dir: TempDir,
}

impl Lab {
    fn new() -> Self {
        for p in ["sshd", "sshpass", "ssh", "ssh-keygen", "nft", "nc", "ss"] {
            require(p);
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!("sg{}x{}", std::process::id() % 100_000, N.fetch_add(1, Ordering::Relaxed));
        let lab = Self { tag, children: Vec::new(), sshd: None, dir: TempDir::new("ssh") };
        for ns in ["srv", "atk", "adm"] {
            run(&["ip", "netns", "add", &lab.ns(ns)]);
            run(&["ip", "-n", &lab.ns(ns), "link", "set", "lo", "up"]);
        }
        let (srv, atk, adm) = (lab.ns("srv"), lab.ns("atk"), lab.ns("adm"));
        run(&["ip", "link", "add", "s-a", "netns", &srv, "type", "veth", "peer", "name", "a-s", "netns", &atk]);
        run(&["ip", "link", "add", "s-m", "netns", &srv, "type", "veth", "peer", "name", "m-s", "netns", &adm]);
        for (ns, dev, addrs) in [
            (&srv, "s-a", &["10.211.0.1/24"][..]),
            (&atk, "a-s", &["10.211.0.2/24", "10.211.0.3/24"][..]),
            (&srv, "s-m", &["10.212.0.1/24"][..]),
            (&adm, "m-s", &["10.212.0.2/24"][..]),
        ] {
            for a in addrs {
                run(&["ip", "-n", ns, "addr", "add", a, "dev", dev]);
            }
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        let d = &lab.dir.0;
        std::fs::create_dir_all(d.join("sshd_config.d")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        for key in ["hostkey", "admin"] {
            run(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d.join(key).to_str().unwrap()]);
        }
        std::fs::copy(d.join("admin.pub"), d.join("authorized_keys")).unwrap();
        // Root logs in with the admin's key only (no account of the machine is touched); every password
        // fails, which is what an attacker's guesses look like.
        let config = format!(
            "Include {d}/sshd_config.d/*.conf\nListenAddress 0.0.0.0\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nLogLevel INFO\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nMaxStartups 50:30:100\n\
             LoginGraceTime 20\nUseDNS no\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.tag)
    }

    fn cmd(&self, role: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(role)]).args(args).env_remove("SSH_CONNECTION");
        c
    }

    fn path(&self, name: &str) -> String {
        self.dir.0.join(name).to_str().unwrap().to_owned()
    }

    fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    fn start_sshd(&mut self) {
        let out = self.cmd("srv", &["/usr/sbin/sshd", "-t", "-f", &self.path("sshd_config")]).output().unwrap();
        assert!(out.status.success(), "sshd -t: {}", String::from_utf8_lossy(&out.stderr));
        let child = self
            .cmd("srv", &["/usr/sbin/sshd", "-D", "-f", &self.path("sshd_config"), "-E", &self.path("sshd.log")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.sshd = Some(child);
        self.await_listening(22, true);
    }

    fn listening(&self, port: u16) -> bool {
        let o = self.cmd("srv", &["ss", "-Hlnt"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).contains(&format!(":{port} "))
    }

    fn await_listening(&self, port: u16, want: bool) {
        wait_for(Duration::from_secs(10), || (self.listening(port) == want).then_some(()))
            .unwrap_or_else(|| panic!("sshd listening on {port}: expected {want}\n{}", self.sshd_log()));
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("daemon.log")).unwrap_or_default()
    }

    /// `pbxguard run` in the server namespace, SIP on UDP 5060.
    fn start_daemon(&mut self) {
        let data = self.data();
        let log = std::fs::File::create(self.dir.0.join("daemon.log")).unwrap();
        let child = self
            .cmd("srv", &[BIN, "--data", data.to_str().unwrap(), "run"])
            .args(["--sip-udp", "0.0.0.0:5060", "--sip-tcp", "off", "--sip-tls", "off"])
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
        .unwrap_or_else(|| panic!("daemon did not start:\n{}", self.daemon_log()));
    }

    fn await_log(&self, what: &str) {
        wait_for(Duration::from_secs(10), || self.daemon_log().contains(what).then_some(()))
            .unwrap_or_else(|| panic!("the daemon never said {what:?}:\n{}", self.daemon_log()));
    }

    /// The CLI in the server namespace (where `ssh set` reloads sshd and probes ports).
    fn cli(&self, args: &[&str]) -> Output {
        self.cmd("srv", &[&[BIN, "--data", self.data().to_str().unwrap()], args].concat())
            .env_remove("PBXGUARD_DATA")
            .output()
            .unwrap()
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "pbxguard {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Points the daemon's SSH guard and `pbxguard ssh` at this lab's sshd.
    fn configure(&self) {
        for (k, v) in [
            ("ssh.config", self.path("sshd_config")),
            ("ssh.dropin", self.path("sshd_config.d/pbxguard.conf")),
            ("ssh.pid_file", self.path("sshd.pid")),
            ("ssh.guard.logs", self.path("sshd.log")),
        ] {
            self.cli_ok(&["settings", "set", k, &v]);
        }
        self.await_log(&format!("files=[\"{}\"]", self.path("sshd.log")));
    }

    /// One wrong password over SSH (sshpass, one prompt per connection); the ssh exit status.
    fn wrong_password(&self, from: &str, user: &str) -> Option<i32> {
        self.cmd("atk", &["timeout", "10", "sshpass", "-p", "wrong", "ssh", "-b", from, "-p", "22"])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=QUIET"])
            .args(["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"])
            .args(["-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=3", &format!("{user}@{SRV}"), "true"])
            .status()
            .unwrap()
            .code()
    }

    /// The admin logs in with its key and runs `true`.
    fn admin_login(&self, port: u16) -> bool {
        self.cmd("adm", &["timeout", "10", "ssh", "-p", &port.to_string(), "-i", &self.path("admin")])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=QUIET"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=3"])
            .arg(format!("root@{ADM_SRV}"))
            .arg("true")
            .status()
            .unwrap()
            .success()
    }

    /// Does a TCP connection from the attacker namespace to the server's port open (within 2 s)?
    fn connects(&self, from: &str, port: u16) -> bool {
        self.cmd("atk", &["nc", "-z", "-w", "2", "-s", from, SRV, &port.to_string()]).status().unwrap().success()
    }

    /// Does SIP (UDP 5060) answer an OPTIONS from `from` within 1 s?
    fn sip_answers(&self, from: &str) -> bool {
        self.cmd("atk", &["python3", "-c", SIP_PROBE, from, SRV]).status().unwrap().success()
    }

    fn bans(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.cli_ok(&["bans", "list", "--json"])).unwrap()
    }

    fn await_ban(&self, ip: &str) -> serde_json::Value {
        wait_for(Duration::from_secs(10), || self.bans().into_iter().find(|b| b["target"] == ip))
            .unwrap_or_else(|| panic!("{ip} never banned\nsshd:\n{}\ndaemon:\n{}", self.sshd_log(), self.daemon_log()))
    }

    fn events(&self, kind: &str, source: &str) -> usize {
        let out = self.cli_ok(&["events", "--json", "--last", "1000"]);
        out.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["kind"] == kind && e["source"] == source)
            .count()
    }

    fn nft_fixture(&self) {
        let path = self.dir.0.join("ruleset.nft");
        std::fs::write(&path, NFT_FIXTURE).unwrap();
        let o = self.cmd("srv", &["nft", "-f", path.to_str().unwrap()]).output().unwrap();
        assert!(o.status.success(), "nft: {}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- sshd log:\n{}--- daemon log:\n{}--- end", self.sshd_log(), self.daemon_log());
        }
        for c in self.children.iter_mut().chain(self.sshd.as_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in ["srv", "atk", "adm"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(ns)]).status();
        }
    }
}

#[test]
fn wrong_passwords_and_banner_scanners_are_banned_on_every_port_and_the_admin_is_not() {
    let mut lab = Lab::new();
    lab.nft_fixture();
    lab.start_sshd();
    lab.start_daemon();
    lab.configure();
    lab.cli_ok(&["settings", "set", "firewall.enabled", "true"]);
    lab.await_log("nftables sets filled from the gate");

    assert!(lab.admin_login(22), "the admin logs in with its key");
    wait_for(Duration::from_secs(5), || (lab.events("ssh-login", "10.212.0.2") == 1).then_some(()))
        .expect("the admin's login is an event");
    assert!(lab.connects(ATK, 22), "the attacker reaches sshd before any ban");
    assert!(lab.sip_answers(ATK), "and SIP answers it");

    // Wrong passwords for root: with the probe above (a connection closed before authenticating
    // counts 1), the 4th makes 5 within 10 minutes and bans (shield.ssh 5/10m).
    for i in 1..=4 {
        assert_eq!(lab.wrong_password(ATK, "root"), Some(255), "attempt {i} reaches sshd and fails");
        if i < 4 {
            // Each failure is read before the next attempt: the ban is the 5th's, not a race's.
            wait_for(Duration::from_secs(5), || (lab.events("ssh-auth-failed", ATK) == i).then_some(()))
                .unwrap_or_else(|| panic!("failure {i} not seen\n{}", lab.sshd_log()));
            assert!(lab.bans().is_empty(), "banned before the threshold");
        }
    }
    let ban = lab.await_ban(ATK);
    assert_eq!(ban["reason"], "brute-force");
    let evidence = ban["evidence"].as_str().unwrap();
    assert!(evidence.starts_with("ssh: 5 failed logins") && evidence.ends_with("as \"root\""), "{ban}");
    // The kernel drops it on every port: sshd's and SIP's.
    wait_for(Duration::from_secs(5), || (!lab.connects(ATK, 22)).then_some(())).expect("banned source still connects");
    assert!(!lab.sip_answers(ATK), "no SIP answer to a banned source");
    assert!(lab.admin_login(22), "the admin still logs in");
    assert!(lab.bans().iter().all(|b| b["target"] != "10.212.0.2"), "the admin is never banned");

    // A scanner that opens connections and drops them at the banner (nc -z): banned by its 5th.
    assert!(lab.connects(ATK2, 22));
    for i in 2..=5 {
        wait_for(Duration::from_secs(5), || (lab.events("ssh-probe", ATK2) == i - 1).then_some(()))
            .unwrap_or_else(|| panic!("probe {} not seen\n{}", i - 1, lab.sshd_log()));
        assert!(lab.connects(ATK2, 22), "probe {i}");
    }
    let ban = lab.await_ban(ATK2);
    assert_eq!(ban["reason"], "scanner", "{ban}");
    wait_for(Duration::from_secs(5), || (!lab.connects(ATK2, 22)).then_some(())).expect("scanner still connects");
}

#[test]
fn invalid_users_count_double_rotation_loses_no_line_and_the_guard_turns_off() {
    let mut lab = Lab::new();
    lab.start_sshd();
    lab.start_daemon();
    lab.configure();
    // An invalid user's attempt counts 2 (its Invalid user line and its failure): 4 after two
    // attempts, and the third attempt's Invalid user line is the 5th.
    for i in 1..=2 {
        assert_eq!(lab.wrong_password(ATK, "nosuchuser"), Some(255));
        wait_for(Duration::from_secs(5), || (lab.events("ssh-invalid-user", ATK) == i).then_some(()))
            .unwrap_or_else(|| panic!("invalid user {i} not seen\n{}", lab.sshd_log()));
    }
    assert!(lab.bans().is_empty(), "two invalid-user attempts do not ban");
    assert_eq!(lab.wrong_password(ATK, "nosuchuser"), Some(255));
    lab.await_ban(ATK);

    // Rotation in the middle of an attack, logrotate's way: rename, a line written to the renamed
    // file, sshd told to reopen (SIGHUP re-executes it, which creates the file again), more lines.
    // The 5th failure, counted across both files, bans.
    let log = lab.path("sshd.log");
    for i in 1..=3 {
        assert_eq!(lab.wrong_password(ATK2, "root"), Some(255));
        wait_for(Duration::from_secs(5), || (lab.events("ssh-auth-failed", ATK2) == i).then_some(()))
            .unwrap_or_else(|| panic!("failure {i} not seen"));
    }
    std::fs::rename(&log, format!("{log}.1")).unwrap();
    assert_eq!(lab.wrong_password(ATK2, "root"), Some(255));
    let pid = std::fs::read_to_string(lab.path("sshd.pid")).unwrap();
    run(&["kill", "-HUP", pid.trim()]);
    wait_for(Duration::from_secs(5), || Path::new(&log).exists().then_some(())).expect("sshd reopened its log");
    lab.await_listening(22, true);
    wait_for(Duration::from_secs(5), || (lab.events("ssh-auth-failed", ATK2) == 4).then_some(()))
        .expect("the line written to the renamed file is read");
    assert!(lab.bans().iter().all(|b| b["target"] != ATK2), "4 failures do not ban");
    assert_eq!(lab.wrong_password(ATK2, "root"), Some(255));
    lab.await_ban(ATK2);
    assert_eq!(lab.events("ssh-auth-failed", ATK2), 5, "every failure was read, across the rotation");
    lab.await_log("SSH log rotated");

    // Off at run time: sshd's lines are no longer read.
    assert!(lab.admin_login(22));
    wait_for(Duration::from_secs(5), || (lab.events("ssh-login", "10.212.0.2") == 1).then_some(()))
        .expect("login seen");
    lab.cli_ok(&["settings", "set", "ssh.guard.enabled", "false"]);
    lab.await_log("SSH guard off");
    assert!(lab.admin_login(22));
    // A negative: the guard reads within 200 ms when on; give it five times that.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.events("ssh-login", "10.212.0.2"), 1, "the guard is off");
}

#[test]
fn ssh_set_moves_the_port_after_confirmation_and_refuses_invalid_changes() {
    let mut lab = Lab::new();
    lab.start_sshd();
    lab.start_daemon();
    lab.configure();
    let dropin = lab.path("sshd_config.d/pbxguard.conf");
    let status =
        |lab: &Lab| -> serde_json::Value { serde_json::from_str(&lab.cli_ok(&["ssh", "status", "--json"])).unwrap() };
    let s = status(&lab);
    assert_eq!((s["ports"].clone(), s["allowed"].clone()), (serde_json::json!([22]), serde_json::Value::Null));
    assert_eq!((s["password_auth"].clone(), s["guard"]["enabled"].clone()), (true.into(), true.into()));

    lab.cli_ok(&["ssh", "set", "--port", "2222", "--allow", ADM_NET, "--password-auth", "no"]);
    lab.await_listening(2222, true);
    assert!(lab.listening(22), "the old port stays until confirmed");
    assert!(lab.admin_login(2222) && lab.admin_login(22));
    let s = status(&lab);
    assert_eq!(s["ports"], serde_json::json!([2222, 22]));
    assert_eq!((s["pending_old_port"].clone(), s["allowed"].clone()), (22.into(), serde_json::json!([ADM_NET])));
    assert_eq!(s["password_auth"], false);

    // Another port while one change waits: refused, nothing changed.
    let before = std::fs::read_to_string(&dropin).unwrap();
    let o = lab.cli(&["ssh", "set", "--port", "2200"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("ssh confirm"), "{o:?}");
    assert_eq!(std::fs::read_to_string(&dropin).unwrap(), before);

    lab.cli_ok(&["ssh", "confirm"]);
    lab.await_listening(22, false);
    // sshd re-executes on reload: its listeners close and open again, 2222 as well as 22.
    lab.await_listening(2222, true);
    assert!(lab.admin_login(2222));
    assert_eq!(status(&lab)["ports"], serde_json::json!([2222]));

    // A port another program holds, a bad CIDR, an option sshd refuses: nothing changes, and why.
    let busy = lab.cmd("srv", &["nc", "-l", "-k", "-p", "2300"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    lab.children.push(busy.unwrap());
    lab.await_listening(2300, true);
    let before = std::fs::read_to_string(&dropin).unwrap();
    for (args, why) in [
        (&["ssh", "set", "--port", "2300"][..], "port 2300 is already in use"),
        (&["ssh", "set", "--allow", "10.212.0.1/24"][..], "did you mean 10.212.0.0/24?"),
        (&["ssh", "set", "--root-login", "yes"][..], "expected no or prohibit-password"),
    ] {
        let o = lab.cli(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(why), "{args:?}: {err}");
        assert_eq!(std::fs::read_to_string(&dropin).unwrap(), before, "{args:?} changed the drop-in");
    }
    assert!(lab.admin_login(2222), "sshd still serves after the refused changes");
}
