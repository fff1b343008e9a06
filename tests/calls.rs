//! Calls through the proxy: SIPp extensions → pbxguard → SIPp as a trunk (1,000 calls, CANCEL), Class
//! of Service refusals that never reach the trunk (country allow-lists included), transfers (REFER)
//! towards a trunk, and the toll-fraud limits.
//!
//! The trunk lives on 127.0.0.2: trunks are recognised by source address, so it must not share the
//! callers' address.

mod common;
use common::*;
use pbxguard_sip::{Algorithm, Limits, Message, ResponseBuilder, ha1};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// SIPp load tests run one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

const REALM: &str = "calls.test";
const TRUNK_IP: &str = "127.0.0.2";

fn setup(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    cli_ok(&d.0, &["settings", "set", "sip.realm", REALM]);
    d
}

fn add_trunk(data: &std::path::Path, port: u16) {
    cli_ok(data, &["trunk", "add", "carrier", "--host", TRUNK_IP, "--port", &port.to_string()]);
    cli_ok(data, &["route", "add", "_X.", "--trunk", "carrier"]);
}

fn free_udp_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

fn sipp_output_counts(o: &std::process::Output) -> (Option<i32>, Option<String>, Option<String>) {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = |label: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.split('|').nth(2).unwrap_or("").trim().to_owned())
    };
    (o.status.code(), line("Successful call"), line("Failed call"))
}

fn sipp_uas(scenario: &str, port: u16, calls: usize, dir: &std::path::Path) -> Child {
    sipp_uas_on(scenario, port, calls, dir, "u1")
}

fn sipp_uas_on(scenario: &str, port: u16, calls: usize, dir: &std::path::Path, transport: &str) -> Child {
    let sf = format!("{}/tests/sipp/{scenario}", env!("CARGO_MANIFEST_DIR"));
    Command::new("timeout")
        .args(["180", "sipp", "-sf", &sf, "-i", TRUNK_IP, "-p", &port.to_string(), "-m", &calls.to_string()])
        .args(["-t", transport])
        .args(["-nostdin", "-timeout", "150s", "-timeout_error"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipp")
}

/// Waits until the SIPp trunk has bound its port, instead of sleeping. Read from /proc so the probe
/// never holds the port itself (SIPp would fail to bind if it tried at that instant).
fn wait_bound(port: u16, tcp: bool) {
    let ip: std::net::Ipv4Addr = TRUNK_IP.parse().unwrap();
    let local = format!("{:08X}:{port:04X}", u32::from_le_bytes(ip.octets()));
    let table = if tcp { "/proc/net/tcp" } else { "/proc/net/udp" };
    let bound = || {
        std::fs::read_to_string(table).unwrap_or_default().lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // TCP must be listening (state 0A); UDP has no states worth checking.
            f.get(1) == Some(&local.as_str()) && (!tcp || f.get(3) == Some(&"0A"))
        })
    };
    wait_for(Duration::from_secs(10), || bound().then_some(())).expect("SIPp trunk did not bind its port");
}

fn sipp_uac(scenario: &str, csv: &std::path::Path, target: SocketAddr, calls: usize) -> std::process::Output {
    let sf = format!("{}/tests/sipp/{scenario}", env!("CARGO_MANIFEST_DIR"));
    Command::new("timeout")
        .args(["180", "sipp", "-sf", &sf, "-inf"])
        .arg(csv)
        .arg(target.to_string())
        .args(["-i", "127.0.0.1", "-p", "0", "-m", &calls.to_string(), "-r", "100", "-l", "300"])
        .args(["-nostdin", "-timeout", "150s", "-timeout_error"])
        .current_dir(csv.parent().unwrap())
        .output()
        .expect("run sipp")
}

/// Extension 1001 calling through pbxguard to a SIPp trunk on 127.0.0.2.
struct TrunkRig {
    d: TempDir,
    daemon: Daemon,
    csv: std::path::PathBuf,
    port: u16,
    transport: &'static str,
}

const CALLER_CSV: &str = "SEQUENTIAL\n1001;[authentication username=1001 password=Calls!2026xy];2125551234\n";

impl TrunkRig {
    /// `trunk_args`: extra `trunk add` arguments (transport, credentials). One caller places every call,
    /// so the fraud limits are raised.
    fn new(tag: &str, trunk_args: &[&str]) -> Self {
        Self::with(tag, trunk_args, &[])
    }

    /// As [`Self::new`], with more CLI commands run before the daemon starts.
    fn with(tag: &str, trunk_args: &[&str], before_start: &[&[&str]]) -> Self {
        let d = setup(tag);
        cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Calls!2026xy"]);
        cli_ok(&d.0, &["settings", "set", "fraud.max_concurrent", "1000"]);
        cli_ok(&d.0, &["settings", "set", "fraud.calls_per_hour", "100000"]);
        let tcp = trunk_args.contains(&"tcp");
        let port = if tcp {
            std::net::TcpListener::bind((TRUNK_IP, 0)).unwrap().local_addr().unwrap().port()
        } else {
            free_udp_port(TRUNK_IP)
        };
        let p = port.to_string();
        let mut args = vec!["trunk", "add", "carrier", "--host", TRUNK_IP, "--port", &p];
        args.extend_from_slice(trunk_args);
        cli_ok(&d.0, &args);
        cli_ok(&d.0, &["route", "add", "_X.", "--trunk", "carrier"]);
        for args in before_start {
            cli_ok(&d.0, args);
        }
        let csv = d.0.join("caller.csv");
        std::fs::write(&csv, CALLER_CSV).unwrap();
        let daemon = Daemon::start(&d.0);
        Self { d, daemon, csv, port, transport: if tcp { "t1" } else { "u1" } }
    }

    /// Runs `n` calls (caller and trunk scenarios) and asserts both sides completed every one.
    fn calls(&self, uac: &str, uas: &str, n: usize) {
        let trunk = sipp_uas_on(uas, self.port, n, &self.d.0, self.transport);
        wait_bound(self.port, self.transport == "t1");
        let caller = sipp_uac(uac, &self.csv, self.daemon.udp, n);
        let trunk = trunk.wait_with_output().unwrap();
        assert_eq!(
            sipp_output_counts(&caller),
            (Some(0), Some(n.to_string()), Some("0".into())),
            "caller side: {}\n{}\ndaemon: {}",
            String::from_utf8_lossy(&caller.stdout),
            String::from_utf8_lossy(&caller.stderr),
            self.daemon.log()
        );
        assert_eq!(trunk.status.code(), Some(0), "trunk side: {}", String::from_utf8_lossy(&trunk.stdout));
    }
}

#[test]
fn sipp_1000_calls_through_a_trunk_and_a_cancel() {
    require("sipp");
    let _g = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let rig = TrunkRig::new("sipp-calls", &[]);
    rig.calls("uac_auth.xml", "uas_rr.xml", 1000);
    // Every call is logged as answered and ended by BYE.
    let ended = wait_for(Duration::from_secs(5), || {
        let c = calls(&rig.d.0);
        let n = c.iter().filter(|c| c["state"] == "ended" && c["status"] == 200 && c["answered_at"].is_i64()).count();
        (n == 1000).then_some(c)
    });
    assert!(ended.is_some(), "calls log: {:?}", calls(&rig.d.0).iter().take(3).collect::<Vec<_>>());
    // CANCEL while the trunk rings: 200 for the CANCEL, 487 for the INVITE, on both sides.
    rig.calls("uac_cancel.xml", "uas_cancel.xml", 1);
    let cancelled = wait_for(Duration::from_secs(5), || {
        calls(&rig.d.0).into_iter().find(|c| c["status"] == 487 && c["answered_at"].is_null())
    });
    assert!(cancelled.is_some(), "no cancelled call in the log");
}

#[test]
fn udp_callers_reach_a_tcp_trunk() {
    require("sipp");
    let _g = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    // pbxguard opens the TCP connection to the trunk itself and record-routes twice (UDP side, TCP side).
    TrunkRig::new("tcp-trunk", &["--transport", "tcp"]).calls("uac_auth.xml", "uas_rr.xml", 20);
}

#[test]
fn calls_to_a_trunk_that_wants_digest_credentials() {
    require("sipp");
    let _g = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    // The trunk challenges every INVITE (401) and checks the digest itself; pbxguard answers with the
    // trunk's credentials and keeps the caller's CSeq numbers consistent (ACK and BYE included).
    let creds = ["--username", "pbx-trunk", "--secret", "Tr!unk2026x", "--realm", "carrier.test"];
    TrunkRig::new("trunk-auth", &creds).calls("uac_auth.xml", "uas_auth_rr.xml", 20);
}

#[test]
fn pbxguard_registers_at_a_trunk_with_digest() {
    require("sipp");
    let _g = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let d = setup("trunk-reg");
    let port = free_udp_port(TRUNK_IP);
    // The carrier's SIPp checks the digest itself and answers 403 to a wrong one.
    let uas = sipp_uas("trunk_registrar.xml", port, 1, &d.0);
    wait_bound(port, false);
    let p = port.to_string();
    cli_ok(
        &d.0,
        &["trunk", "add", "carrier", "--host", TRUNK_IP, "--port", &p, "--username", "pbx-trunk"]
            .into_iter()
            .chain(["--secret", "Tr!unk2026x", "--realm", "carrier.test", "--register", "600"])
            .collect::<Vec<_>>(),
    );
    let listed = cli_ok(&d.0, &["trunk", "list"]);
    assert!(listed.contains("pbx-trunk@carrier.test") && listed.contains("600 s"), "{listed}");
    assert!(
        !std::fs::read(d.0.join("pbxguard.db")).unwrap().windows(11).any(|w| w == b"Tr!unk2026x"),
        "secret stored in clear"
    );
    // A second carrier account with a wrong secret: refused, and the operator sees why.
    let bad_port = free_udp_port(TRUNK_IP);
    let bad_uas = sipp_uas("trunk_registrar.xml", bad_port, 1, &d.0);
    wait_bound(bad_port, false);
    let bp = bad_port.to_string();
    cli_ok(
        &d.0,
        &["trunk", "add", "wrong", "--host", TRUNK_IP, "--port", &bp, "--username", "pbx-trunk"]
            .into_iter()
            .chain(["--secret", "not-the-one", "--realm", "carrier.test", "--register"])
            .collect::<Vec<_>>(),
    );
    let daemon = Daemon::start(&d.0);
    let uas = uas.wait_with_output().unwrap();
    assert_eq!(uas.status.code(), Some(0), "carrier side: {}\n{}", String::from_utf8_lossy(&uas.stdout), daemon.log());
    let _ = bad_uas.wait_with_output();
    let failed = wait_for(Duration::from_secs(5), || {
        events(&d.0).into_iter().find(|e| e["kind"] == "trunk-registration-failed")
    })
    .expect("a failed registration event for the wrong secret");
    assert_eq!(failed["user"], "wrong");
    assert!(failed["detail"].as_str().unwrap().contains("403"), "{failed}");
    let ev = wait_for(Duration::from_secs(5), || events(&d.0).into_iter().find(|e| e["kind"] == "trunk-registered"))
        .expect("a trunk registration event");
    assert_eq!((ev["kind"].as_str(), ev["user"].as_str()), (Some("trunk-registered"), Some("carrier")), "{ev}");
    assert!(ev["detail"].as_str().unwrap().contains("120 s"), "the granted expiry is used: {ev}");
}

/// Extension 1001 with a Class of Service that allows international calls to the UK (44) only.
const UK_ONLY: [&[&str]; 2] = [
    &["cos", "add", "uk", "--allow", "internal,local,national,international", "--countries", "44"],
    &["ext", "cos", "1001", "uk"],
];

impl TrunkRig {
    /// 1001 in a national call through the SIPp trunk transfers it with a REFER to `target`: `uac`
    /// says what the phone must get back, `uas` what the trunk must receive (its scenario fails on
    /// any message it does not expect, such as a REFER it was not meant to see).
    fn transfer(&self, target: &str, uac: &str, uas: &str) {
        let line = format!("1001;[authentication username=1001 password=Calls!2026xy];2125551234;{target}");
        std::fs::write(&self.csv, format!("SEQUENTIAL\n{line}\n")).unwrap();
        self.calls(uac, uas, 1);
    }

    /// The `call-refused` event about `number`, once the daemon has logged it.
    fn refusal(&self, number: &str) -> serde_json::Value {
        wait_for(Duration::from_secs(5), || {
            events(&self.d.0)
                .into_iter()
                .find(|e| e["kind"] == "call-refused" && e["detail"].as_str().is_some_and(|d| d.contains(number)))
        })
        .unwrap_or_else(|| panic!("no call-refused event for {number}: {:?}", events(&self.d.0)))
    }
}

#[test]
fn a_refer_towards_a_trunk_is_refused_without_allow_refer() {
    require("sipp");
    let _g = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let rig = TrunkRig::with("refer-refused", &[], &UK_ONLY);
    assert!(cli_ok(&rig.d.0, &["trunk", "list"]).contains("refused"));
    // During a national call, the phone transfers the carrier to an international number: 403 to the
    // phone, and the trunk's scenario (INVITE, ACK, BYE) sees no REFER.
    rig.transfer("011441632960000", "uac_refer_refused.xml", "uas_rr.xml");
    let ev = rig.refusal("011441632960000");
    assert_eq!(ev["user"], "1001", "{ev}");
    assert!(ev["detail"].as_str().unwrap().contains("does not accept transfers (REFER)"), "{ev}");
}

#[test]
fn with_allow_refer_a_refer_is_checked_like_a_call_from_the_extension() {
    require("sipp");
    let _g = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let rig = TrunkRig::with("refer-allowed", &["--allow-refer"], &UK_ONLY);
    assert!(cli_ok(&rig.d.0, &["trunk", "list"]).contains("allowed"));
    // To the UK, which the extension's Class of Service allows: the trunk gets the REFER and accepts it.
    rig.transfer("011441632960000", "uac_refer.xml", "uas_refer.xml");
    // To Germany, which it does not: 403, and the trunk sees no REFER.
    rig.transfer("01149301234567", "uac_refer_refused.xml", "uas_rr.xml");
    let ev = rig.refusal("01149301234567");
    assert_eq!(ev["user"], "1001", "{ev}");
    assert!(ev["detail"].as_str().unwrap().contains("does not allow country 49 (Germany)"), "{ev}");
    assert_eq!(events(&rig.d.0).iter().filter(|e| e["kind"] == "call-refused").count(), 1);
}

/// A caller that speaks just enough SIP: INVITE, answer the 407, report the first final (or 180).
struct Phone {
    sock: UdpSocket,
    user: String,
    pw: String,
    proxy: SocketAddr,
}

impl Phone {
    fn new(user: &str, pw: &str, proxy: SocketAddr) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Self { sock, user: user.into(), pw: pw.into(), proxy }
    }

    fn invite(&self, number: &str, call_id: &str, cseq: u32, branch: &str, auth: &str) -> Vec<u8> {
        let local = self.sock.local_addr().unwrap();
        format!(
            "INVITE sip:{number}@{p} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{u}@{p}>;tag=t{call_id}\r\nTo: <sip:{number}@{p}>\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:{u}@{local}>\r\n{auth}Content-Length: 0\r\n\r\n",
            p = self.proxy,
            u = self.user
        )
        .into_bytes()
    }

    /// Places a call; returns the first status above 100 (180 means it reached the trunk and rings).
    fn call(&self, number: &str, call_id: &str) -> u16 {
        let first = self.invite(number, call_id, 1, &format!("a{call_id}"), "");
        let ch = String::from_utf8(exchange(&self.sock, self.proxy, &first).expect("no answer")).unwrap();
        assert_eq!(status(ch.as_bytes()), 407, "{ch}");
        let nonce = ch.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap();
        let uri = format!("sip:{number}@{}", self.proxy);
        let h1 = ha1(Algorithm::Md5, &self.user, REALM, &self.pw);
        let ha2 = Algorithm::Md5.hash(&[b"INVITE", uri.as_bytes()]);
        let resp = Algorithm::Md5.hash(&[h1.as_bytes(), nonce.as_bytes(), b"00000001", b"c", b"auth", ha2.as_bytes()]);
        let auth = format!(
            "Proxy-Authorization: Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\n",
            self.user
        );
        self.sock.send_to(&self.invite(number, call_id, 2, &format!("b{call_id}"), &auth), self.proxy).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).expect("no final answer");
            let code = status(&buf[..n]);
            if code > 100 {
                return code;
            }
        }
    }
}

/// A trunk that rings (180) for every INVITE and never answers, recording the Request-URIs.
struct RingingTrunk {
    port: u16,
    invites: std::sync::Arc<Mutex<Vec<String>>>,
}

impl RingingTrunk {
    fn new() -> Self {
        let sock = UdpSocket::bind((TRUNK_IP, 0)).unwrap();
        let port = sock.local_addr().unwrap().port();
        let invites = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = invites.clone();
        // Bounded: the thread ends with the test process; it only answers what the daemon sends.
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let Ok(m) = Message::parse(&buf[..n], &Limits::default()) else { continue };
                if m.method().is_some_and(|x| x.as_str() == "INVITE") {
                    seen.lock().unwrap().push(m.request_uri().unwrap().to_owned());
                    let r = ResponseBuilder::new(&m, 180, "Ringing", from, "trunk").finish(None, b"");
                    sock.send_to(&r, from).unwrap();
                }
            }
        });
        Self { port, invites }
    }

    fn port(&self) -> u16 {
        self.port
    }

    /// The INVITEs received so far (a refused call is answered before anything could be forwarded).
    fn invites(&self) -> Vec<String> {
        self.invites.lock().unwrap().clone()
    }
}

fn events(data: &std::path::Path) -> Vec<serde_json::Value> {
    cli_ok(data, &["events", "--json", "--last", "1000"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn class_of_service_refuses_international_before_the_trunk() {
    let d = setup("cos");
    let trunk = RingingTrunk::new();
    add_trunk(&d.0, trunk.port());
    cli_ok(&d.0, &["cos", "add", "domestic", "--allow", "internal,local,national,toll-free"]);
    cli_ok(&d.0, &["ext", "add", "1002", "--secret", "Cos!test2026", "--cos", "domestic"]);
    let daemon = Daemon::start(&d.0);
    let phone = Phone::new("1002", "Cos!test2026", daemon.udp);
    for (i, number) in ["01144201234567", "0044201234567", "+44201234567", "19005551234"].iter().enumerate() {
        assert_eq!(phone.call(number, &format!("cos{i}")), 403, "{number}");
    }
    assert_eq!(trunk.invites(), Vec::<String>::new(), "refused calls must not reach the trunk");
    // A national number passes, and reaches the trunk with the trunk's address in the Request-URI.
    assert_eq!(phone.call("2125551234", "cos-ok"), 180);
    let uris = trunk.invites();
    assert_eq!(uris.len(), 1, "{uris:?}");
    assert!(uris[0].starts_with(&format!("sip:2125551234@{TRUNK_IP}:")), "{uris:?}");
    // Each refusal is a security event naming the extension, the number and the rule.
    let ev = wait_for(Duration::from_secs(5), || {
        let e: Vec<_> = events(&d.0).into_iter().filter(|e| e["kind"] == "call-refused").collect();
        (e.len() == 4).then_some(e)
    })
    .expect("four call-refused events");
    assert_eq!(ev[0]["user"], "1002");
    let detail = ev[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("01144201234567") && detail.contains("domestic") && detail.contains("international"),
        "{detail}"
    );
    assert!(ev[3]["detail"].as_str().unwrap().contains("premium-rate"), "{ev:?}");
    // Emergency calls pass whatever the CoS says.
    assert_eq!(phone.call("911", "cos-911"), 180);
    assert_eq!(trunk.invites().len(), 2);
    drop(daemon);
}

#[test]
fn a_country_list_lets_only_its_countries_reach_the_trunk() {
    let d = setup("countries");
    let trunk = RingingTrunk::new();
    add_trunk(&d.0, trunk.port());
    // Validation names the mistake and changes nothing.
    let bad = cli(&d.0, &["cos", "add", "uk", "--allow", "international", "--countries", "44,42"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("did you mean 420 (Czech Republic)"), "{err}");
    let added = cli_ok(&d.0, &["cos", "add", "uk", "--allow", "national,international", "--countries", "44"]);
    assert!(added.contains("international calls only to 44 (United Kingdom)"), "{added}");
    let listed = cli_ok(&d.0, &["cos", "list"]);
    assert!(listed.lines().any(|l| l.starts_with("uk ") && l.trim_end().ends_with(" 44")), "{listed}");
    let classified = cli_ok(&d.0, &["cos", "classify", "01149301234567"]);
    assert!(classified.contains("international") && classified.contains("country 49 (Germany)"), "{classified}");
    cli_ok(&d.0, &["ext", "add", "1005", "--secret", "Uk!only2026x", "--cos", "uk"]);
    cli_ok(&d.0, &["settings", "set", "fraud.max_concurrent", "10"]);
    let daemon = Daemon::start(&d.0);
    let phone = Phone::new("1005", "Uk!only2026x", daemon.udp);
    // The UK rings at the trunk; Germany gets 403 and never reaches it.
    assert_eq!(phone.call("011441632960000", "uk1"), 180);
    assert_eq!(phone.call("01149301234567", "de1"), 403);
    let uris = trunk.invites();
    assert_eq!(uris.len(), 1, "{uris:?}");
    assert!(uris[0].starts_with("sip:011441632960000@"), "{uris:?}");
    let ev = wait_for(Duration::from_secs(5), || events(&d.0).into_iter().find(|e| e["kind"] == "call-refused"))
        .expect("a call-refused event");
    assert_eq!(ev["user"], "1005");
    let detail = ev["detail"].as_str().unwrap();
    assert!(detail.contains("01149301234567") && detail.contains("does not allow country 49"), "{detail}");
    drop(daemon);
}

#[test]
fn toll_fraud_limits_refuse_and_suspend() {
    let d = setup("fraud");
    let trunk = RingingTrunk::new();
    add_trunk(&d.0, trunk.port());
    cli_ok(&d.0, &["ext", "add", "1003", "--secret", "Fraud!2026ab"]);
    cli_ok(&d.0, &["settings", "set", "fraud.calls_per_hour", "4"]);
    // An extension with its own limit, one concurrent trunk call, set before the daemon starts: set
    // while it runs, the limit is a second change after the extension's own and may reach the daemon
    // a moment after the extension does.
    cli_ok(&d.0, &["ext", "add", "1004", "--secret", "Fraud!2026cd"]);
    let out = cli_ok(&d.0, &["ext", "limits", "1004", "--concurrent", "1"]);
    assert!(out.contains("at most 1 concurrent"), "{out}");
    let bad = cli(&d.0, &["ext", "limits", "1004", "--per-hour", "0"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("from 1 to"));
    let daemon = Daemon::start(&d.0);
    let phone = Phone::new("1003", "Fraud!2026ab", daemon.udp);
    // The default limit is two concurrent outbound calls: the third is refused, without suspension.
    assert_eq!(phone.call("2125550001", "f1"), 180);
    assert_eq!(phone.call("2125550002", "f2"), 180);
    assert_eq!(phone.call("2125550003", "f3"), 403);
    assert_eq!(trunk.invites().len(), 2, "the third call must not reach the trunk");
    let ext = |d: &std::path::Path| -> serde_json::Value {
        let v: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(d, &["ext", "list", "--json"])).unwrap();
        v.into_iter().find(|e| e["number"] == "1003").unwrap()
    };
    assert!(ext(&d.0)["suspended"].is_null());
    let refused =
        wait_for(Duration::from_secs(5), || events(&d.0).into_iter().find(|e| e["kind"] == "call-refused")).unwrap();
    assert!(refused["detail"].as_str().unwrap().contains("at most 2 concurrent"), "{refused}");
    // Over the hourly limit (4 attempts: two counted already, two more): refused, and suspended.
    // Two calls still ring; lift the concurrent limit to reach the hourly one.
    cli_ok(&d.0, &["settings", "set", "fraud.max_concurrent", "100"]);
    wait_for(Duration::from_secs(5), || (phone.call("2125550004", &format!("f4-{}", rand_id())) == 180).then_some(()))
        .expect("fourth call rings once the limit is raised");
    assert_eq!(phone.call("2125550005", "f5"), 180);
    assert_eq!(phone.call("2125550006", "f6"), 403);
    let suspended = wait_for(Duration::from_secs(5), || ext(&d.0)["suspended"].as_str().map(str::to_owned)).unwrap();
    assert!(suspended.contains("at most 4 outbound calls per hour"), "{suspended}");
    // Suspended: even an allowed national call is refused; emergency still goes through.
    assert_eq!(phone.call("2125550007", "f7"), 403);
    assert_eq!(phone.call("911", "f911"), 180);
    assert_eq!(trunk.invites().len(), 5);
    let out = cli_ok(&d.0, &["ext", "enable", "1003"]);
    assert!(out.contains("re-enabled"), "{out}");
    assert!(ext(&d.0)["suspended"].is_null());
    let other = Phone::new("1004", "Fraud!2026cd", daemon.udp);
    assert_eq!(other.call("2125550008", "g1"), 180);
    assert_eq!(other.call("2125550009", "g2"), 403, "its own limit of one concurrent call");
    let refused = "2125550009";
    let ev = wait_for(Duration::from_secs(5), || {
        events(&d.0)
            .into_iter()
            .find(|e| e["kind"] == "call-refused" && e["detail"].as_str().is_some_and(|x| x.contains(refused)))
    })
    .expect("a call-refused event for the second call");
    let detail = ev["detail"].as_str().unwrap();
    assert!(detail.contains("at most 1 concurrent outbound calls"), "{detail}");
}

fn rand_id() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn a_trunk_call_longer_than_the_longest_allowed_is_ended_on_both_sides() {
    require("sipp");
    let _g = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let bad = cli(&setup("longest-bad").0, &["settings", "set", "calls.max_trunk_duration", "0"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("or off"), "{bad:?}");
    let rig = TrunkRig::with("longest-call", &[], &[&["settings", "set", "calls.max_trunk_duration", "3s"]]);
    // The phone and the trunk both hold the call; each scenario ends only once it got a BYE and
    // answered it.
    let started = std::time::Instant::now();
    rig.calls("uac_held.xml", "uas_rr.xml", 1);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(60), "cut after {took:?}, not 3 s");
    let row = wait_for(Duration::from_secs(5), || {
        calls(&rig.d.0).into_iter().find(|c| c["state"] == "ended" && c["end_reason"].is_string())
    })
    .unwrap_or_else(|| panic!("no call ended with a reason: {:?}", calls(&rig.d.0)));
    assert_eq!(row["end_reason"], "longest trunk call 3s reached", "{row}");
    assert_eq!((row["caller"].as_str(), row["status"].as_u64()), (Some("1001"), Some(200)), "{row}");
    assert!(cli_ok(&rig.d.0, &["calls", "list"]).contains("ended: longest trunk call 3s reached"));
    let ev = wait_for(Duration::from_secs(5), || events(&rig.d.0).into_iter().find(|e| e["kind"] == "call-cut"))
        .expect("a call-cut event");
    assert_eq!(ev["user"], "1001", "{ev}");
    let detail = ev["detail"].as_str().unwrap();
    assert!(detail.contains("2125551234") && detail.contains("carrier") && detail.contains("3s"), "{detail}");
    // Per extension: its own limit, no limit, or the setting again; a mistake changes nothing.
    let out = cli_ok(&rig.d.0, &["ext", "limits", "1001", "--max-duration", "2h"]);
    assert!(out.contains("longest trunk call 2h"), "{out}");
    let bad = cli(&rig.d.0, &["ext", "limits", "1001", "--max-duration", "8d", "--concurrent", "5"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("from 1s to 7d"), "{bad:?}");
    let shown: serde_json::Value = serde_json::from_str(&cli_ok(&rig.d.0, &["ext", "show", "1001", "--json"])).unwrap();
    assert_eq!((shown["max_call_secs"].as_u64(), shown["max_calls"].as_u64()), (Some(7200), None), "{shown}");
    assert!(cli_ok(&rig.d.0, &["ext", "limits", "1001", "--max-duration", "off"]).contains("no limit"));
    let out = cli_ok(&rig.d.0, &["ext", "limits", "1001", "--max-duration", "default"]);
    assert!(out.contains("default (calls.max_trunk_duration)"), "{out}");
}
