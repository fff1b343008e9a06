//! The protection engine against real attack tools and traffic on loopback. Attackers send from their
//! own loopback addresses (127.0.0.66...), legitimate traffic from others, so bans hit only attackers.

mod common;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// The load-generating tests run one at a time, so one's traffic never starves another's timing.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

fn options(from: &str, to: SocketAddr, tag: &str) -> Option<u16> {
    options_as(from, to, tag, "pbxguard-test")
}

/// The status of the answer to an OPTIONS from `from` with this User-Agent; `None`: silence.
fn options_as(from: &str, to: SocketAddr, tag: &str, ua: &str) -> Option<u16> {
    let s = UdpSocket::bind((from, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let local = s.local_addr().unwrap();
    let host = if from.contains(':') { format!("[{from}]") } else { from.to_owned() };
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bK{tag}\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@{host}>;tag={tag}\r\nTo: <sip:{to}>\r\nCall-ID: {tag}@{from}\r\nCSeq: 1 OPTIONS\r\n\
         User-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
    );
    s.send_to(msg.as_bytes(), to).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.get(8..11)?.parse().ok()
}

fn ban_of(data: &std::path::Path, ip: &str) -> Option<serde_json::Value> {
    let bans: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(data, &["bans", "list", "--json"])).unwrap();
    bans.into_iter().find(|b| b["target"] == ip)
}

/// Runs a sipvicious tool from `bind` (see tests/sv/bindwrap.py); returns its output.
fn sipvicious(home: &std::path::Path, bind: &str, tool: &str, args: &[&str]) -> std::thread::JoinHandle<String> {
    let wrapper = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sv/bindwrap.py");
    let mut cmd = Command::new("timeout");
    cmd.args(["90", "/usr/bin/python3", wrapper, bind, tool]).args(args).env("HOME", home);
    std::thread::spawn(move || {
        let o = cmd.output().expect("run sipvicious");
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

#[test]
fn sipvicious_tools_are_detected_banned_and_never_crack_a_strong_secret() {
    let _serial = heavy();
    require("svmap");
    let d = TempDir::new("sipvicious");
    let home = d.0.join("svhome");
    std::fs::create_dir_all(&home).unwrap();
    let words = d.0.join("words.txt");
    std::fs::write(&words, "password\n123456\n1001\nsecret\nadmin\n1234\nqwerty\nletmein\nabc123\npassw0rd\n1001abc\n")
        .unwrap();
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Str0ng!Secret#2026"]);
    let daemon = Daemon::start(&d.0);
    let (host, port) = (daemon.udp.ip().to_string(), daemon.udp.port().to_string());
    let target = [host.as_str(), "-p", port.as_str()];
    let w = words.to_str().unwrap();

    // Round 1, default fingerprints: every tool is recognised by its User-Agent at its first message.
    let runs = [
        ("127.0.0.66", sipvicious(&home, "127.0.0.66", "svmap", &[&target[..], &["-P", "0"]].concat())),
        (
            "127.0.0.67",
            sipvicious(&home, "127.0.0.67", "svwar", &[&target[..], &["-e", "1000-1010", "--force"]].concat()),
        ),
        ("127.0.0.68", sipvicious(&home, "127.0.0.68", "svcrack", &[&target[..], &["-u", "1001", "-d", w]].concat())),
    ];
    for (ip, run) in runs {
        let out = run.join().unwrap();
        let ban = ban_of(&d.0, ip).unwrap_or_else(|| panic!("{ip} not banned; tool said:\n{out}\n{}", daemon.log()));
        assert_eq!(ban["reason"], "scanner", "{ban}");
        assert!(!out.contains("Str0ng!Secret#2026"), "{out}");
        // Banned: silence, even for an innocent-looking request.
        assert_eq!(options(ip, daemon.udp, &format!("after-{ip}")), None);
    }

    // Round 2, fingerprints switched off: the behaviour detectors catch the same tools.
    cli_ok(&d.0, &["settings", "set", "shield.scanner_user_agents", ""]);
    cli_ok(&d.0, &["settings", "set", "shield.scanner_from", ""]);
    // Await the daemon applying it: a friendly-scanner probe starts getting answers. Each probe comes from
    // a fresh address, since one sent too early is banned (as it should be).
    let probe = |n: u32| {
        let s = UdpSocket::bind(format!("127.0.1.{n}:0")).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let msg = format!(
            "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {1};branch=z9hG4bKp{n}\r\nFrom: <sip:p@{1}>;tag=1\r\nTo: <sip:{0}>\r\n\
             Call-ID: p{n}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n",
            daemon.udp,
            s.local_addr().unwrap()
        );
        exchange(&s, daemon.udp, msg.as_bytes()).is_some()
    };
    let mut n = 0;
    assert!(
        wait_for(Duration::from_secs(5), || {
            n += 1;
            probe(n).then_some(())
        })
        .is_some(),
        "settings not applied"
    );
    let war = sipvicious(&home, "127.0.0.69", "svwar", &[&target[..], &["-e", "1000-1010", "--force"]].concat());
    let crack = sipvicious(&home, "127.0.0.70", "svcrack", &[&target[..], &["-u", "1001", "-d", w]].concat());
    let (war, crack) = (war.join().unwrap(), crack.join().unwrap());
    assert_eq!(ban_of(&d.0, "127.0.0.70").map(|b| b["reason"].clone()), Some("brute-force".into()), "{crack}");
    assert!(!crack.contains("| 1001"), "svcrack found a password:\n{crack}");
    // svwar gives up at once: an unknown extension is answered exactly like a real one.
    assert!(war.contains("found nothing") && !war.contains("| 1001 "), "{war}");
    // An enumerator that carries on anyway is banned at its third unknown extension.
    let sock = UdpSocket::bind("127.0.0.71:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let answers: Vec<bool> = ["7001", "7002", "7003", "1001"]
        .iter()
        .map(|u| !common::register(&sock, daemon.udp, u, "").is_empty())
        .collect();
    assert_eq!(answers, [true, true, false, false]);
    assert_eq!(ban_of(&d.0, "127.0.0.71").map(|b| b["reason"].clone()), Some("enumeration".into()));

    // Legitimate traffic from another address is untouched.
    assert_eq!(options("127.0.0.2", daemon.udp, "legit"), Some(200));
    let events = cli_ok(&d.0, &["events", "--json", "--last", "1000"]);
    assert!(events.lines().any(|l| l.contains("\"kind\":\"ban\"") && l.contains("127.0.0.70")), "{events}");
}

#[test]
fn registrations_keep_succeeding_during_a_flood_from_another_address() {
    let _serial = heavy();
    require("sipp");
    let d = TempDir::new("flood");
    cli_ok(&d.0, &["settings", "set", "password_policy.enforce", "false"]);
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..50 {
        let ext = 3000 + i;
        cli_ok(&d.0, &["ext", "add", &ext.to_string(), "--secret", &format!("Fl00d!{ext}")]);
        csv.push_str(&format!("{ext};[authentication username={ext} password=Fl00d!{ext}]\n"));
    }
    std::fs::write(d.0.join("users.csv"), csv).unwrap();
    let daemon = Daemon::start(&d.0);
    let target = daemon.udp;
    // The flood: REGISTERs with an ordinary User-Agent from 127.0.0.66 at 5,000/s for 12 s (bounded).
    let flood = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.66:0").unwrap();
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(12) && sent < 60_000 {
            for _ in 0..50 {
                let msg = format!(
                    "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.66:5060;branch=z9hG4bKf{sent}\r\n\
                     From: <sip:3000@127.0.0.1>;tag={sent}\r\nTo: <sip:3000@127.0.0.1>\r\nCall-ID: flood{sent}\r\n\
                     CSeq: 1 REGISTER\r\nUser-Agent: Yealink SIP-T46S\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = s.send_to(msg.as_bytes(), target);
                sent += 1;
            }
            let due = Duration::from_micros(sent * 200);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        (sent, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    // Legitimate registrations from 127.0.0.2 at 5/s (10 messages/s, under the 30 per 2 s flood limit).
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/reg_auth.xml");
    let o = Command::new("timeout")
        .args(["60", "sipp", "-sf", scenario, "-inf", "users.csv", &target.to_string(), "-i", "127.0.0.2", "-p", "0"])
        .args(["-m", "50", "-r", "5", "-nostdin", "-timeout", "40s", "-timeout_error"])
        .current_dir(&d.0)
        .output()
        .unwrap();
    let (sent, elapsed) = flood.join().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = |label: &str| {
        out.lines().find(|l| l.trim_start().starts_with(label)).map(|l| l.split('|').nth(2).unwrap().trim().to_owned())
    };
    assert!(sent as f64 / elapsed.as_secs_f64() >= 4_500.0, "flood too slow: {sent} in {elapsed:?}");
    assert_eq!((line("Successful call").as_deref(), line("Failed call").as_deref()), (Some("50"), Some("0")), "{out}");
    let ban = ban_of(&d.0, "127.0.0.66").expect("flooder banned");
    assert_eq!(ban["reason"], "flood");
    assert!(ban_of(&d.0, "127.0.0.2").is_none());
    // The drops are counted in the metrics file (Prometheus text format).
    let dropped = wait_for(Duration::from_secs(3), || {
        let text = std::fs::read_to_string(d.0.join("metrics.prom")).ok()?;
        let line = text.lines().find(|l| l.starts_with("pbxguard_dropped_total{reason=\"banned\"}"))?;
        let n: u64 = line.rsplit(' ').next()?.parse().ok()?;
        (n > sent / 2).then_some(n)
    });
    assert!(dropped.is_some(), "metrics.prom: {:?}", std::fs::read_to_string(d.0.join("metrics.prom")));
}

#[test]
fn bans_and_unbans_survive_restarts() {
    let d = TempDir::new("bans");
    let mut daemon = Daemon::start(&d.0);
    assert_eq!(options("127.0.0.77", daemon.udp, "a1"), Some(200));
    cli_ok(&d.0, &["bans", "add", "127.0.0.77", "--reason", "abuse report #42", "--for", "2h"]);
    // Probe slower than the flood threshold (30 in 2 s), so that what drops the probes is the operator's ban.
    let banned = wait_for(Duration::from_secs(1), || {
        std::thread::sleep(Duration::from_millis(80));
        options("127.0.0.77", daemon.udp, "a2").is_none().then_some(())
    });
    assert!(banned.is_some(), "a ban added with the CLI applies within a second");
    assert_eq!(ban_of(&d.0, "127.0.0.77").unwrap()["reason"], "manual");
    // A detector ban too: a scanner from 127.0.0.78.
    let s = UdpSocket::bind("127.0.0.78:0").unwrap();
    let scan = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {1};branch=z9hG4bKscan\r\nFrom: \"sipvicious\"<sip:100@1.1.1.1>;tag=1\r\n\
         To: <sip:{0}>\r\nCall-ID: scan\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n",
        daemon.udp,
        s.local_addr().unwrap()
    );
    s.send_to(scan.as_bytes(), daemon.udp).unwrap();
    wait_for(Duration::from_secs(5), || ban_of(&d.0, "127.0.0.78")).expect("scanner banned");
    daemon.stop();
    let mut daemon = Daemon::start(&d.0);
    assert_eq!(options("127.0.0.77", daemon.udp, "a3"), None);
    assert_eq!(options("127.0.0.78", daemon.udp, "a4"), None);
    // Over TCP too: the connection of a banned source is closed before it can send anything.
    {
        use std::io::Read;
        let mut tcp = tcp_from("127.0.0.77", daemon.tcp);
        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let closed = match tcp.read(&mut [0u8; 16]) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        };
        assert!(closed, "the daemon kept a banned source's connection open");
    }
    let ban = ban_of(&d.0, "127.0.0.77").unwrap();
    assert_eq!((ban["reason"].as_str(), ban["note"].as_str()), (Some("manual"), Some("abuse report #42")));
    cli_ok(&d.0, &["bans", "del", "127.0.0.78"]);
    assert!(
        wait_for(Duration::from_secs(1), || (options("127.0.0.78", daemon.udp, "a5") == Some(200)).then_some(()))
            .is_some()
    );
    daemon.stop();
    let daemon = Daemon::start(&d.0);
    assert_eq!(options("127.0.0.78", daemon.udp, "a6"), Some(200), "an unban stays an unban");
    assert_eq!(options("127.0.0.77", daemon.udp, "a7"), None);
    // Operator mistakes change nothing and say how to fix them.
    let o = cli(&d.0, &["bans", "add", "10.0.0.1/8", "--reason", "x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean 10.0.0.0/8"));
    cli_ok(&d.0, &["trust", "add", "127.0.0.0/30"]);
    let o = cli(&d.0, &["bans", "add", "127.0.0.2", "--reason", "x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("trusted network 127.0.0.0/30"));
}

#[test]
fn acl_groups_restrict_where_an_extension_registers_from() {
    let d = TempDir::new("acl");
    cli_ok(&d.0, &["settings", "set", "sip.realm", "acl.test"]);
    cli_ok(&d.0, &["acl", "add", "office", "127.0.0.0/29", "!127.0.0.5"]);
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Acl!test99", "--acl", "office"]);
    let o = cli(&d.0, &["ext", "add", "1002", "--secret", "x", "--acl", "nope"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("ACL group \"nope\" does not exist"));
    let daemon = Daemon::start(&d.0);
    let reg = |from: &str| -> u16 {
        let sock = UdpSocket::bind((from, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        common::digest_register(&sock, daemon.udp, "acl.test", "1001", "Acl!test99")
    };
    assert_eq!(reg("127.0.0.3"), 200);
    assert_eq!(reg("127.0.0.5"), 403);
    assert_eq!(reg("127.0.0.9"), 403);
    let denied = wait_for(Duration::from_secs(5), || {
        let events = cli_ok(&d.0, &["events", "--json"]);
        events.lines().find(|l| l.contains("acl-denied") && l.contains("127.0.0.5")).map(str::to_owned)
    });
    assert!(denied.expect("acl-denied event").contains("!127.0.0.5"));
    let o = cli(&d.0, &["acl", "del", "office"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("assigned to extension(s) 1001"));
}

fn metric(data: &std::path::Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(data.join("metrics.prom")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn active_bans(data: &std::path::Path) -> Vec<String> {
    let bans: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(data, &["bans", "list", "--json"])).unwrap();
    let mut v: Vec<String> = bans.iter().map(|b| b["target"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

/// A scanner packet from each of 300 addresses (one packet is enough for a ban, so a spoofing attacker
/// could do this at line rate) with the ban table capped at 100: memory, database and daemon agree on
/// 100 detector bans plus the operator's, the other 200 are lifted early and counted, and the same bans
/// come back after a restart.
#[test]
fn a_storm_of_banned_sources_is_capped_and_stored_as_enforced() {
    let _serial = heavy();
    let d = TempDir::new("bancap");
    cli_ok(&d.0, &["settings", "set", "shield.max_bans", "100"]);
    let err = cli(&d.0, &["settings", "set", "shield.max_bans", "10"]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("from 100 to 10000000"));
    cli_ok(&d.0, &["bans", "add", "127.0.0.77", "--reason", "abuse report #7"]);
    let mut daemon = Daemon::start(&d.0);
    for i in 1..=300u32 {
        let src = std::net::Ipv4Addr::from(0x7f65_0000 + i);
        let s = UdpSocket::bind((src, 0)).unwrap();
        let scan = format!(
            "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {1};branch=z9hG4bKs{i}\r\nFrom: <sip:100@{src}>;tag={i}\r\n\
             To: <sip:{0}>\r\nCall-ID: s{i}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n",
            daemon.udp,
            s.local_addr().unwrap()
        );
        s.send_to(scan.as_bytes(), daemon.udp).unwrap();
    }
    let counted = wait_for(Duration::from_secs(5), || {
        let c = (metric(&d.0, "pbxguard_bans_total")?, metric(&d.0, "pbxguard_bans_evicted_total")?);
        (c == (300, 200)).then_some(c)
    });
    assert!(counted.is_some(), "metrics.prom: {:?}", std::fs::read_to_string(d.0.join("metrics.prom")));
    assert_eq!(metric(&d.0, "pbxguard_bans_active"), Some(101));
    assert_eq!(metric(&d.0, "pbxguard_persist_dropped_total{kind=\"ban\"}"), Some(0));
    // The database converges on what the daemon enforces (written within a quarter of a second).
    let stored = wait_for(Duration::from_secs(3), || Some(active_bans(&d.0)).filter(|b| b.len() == 101));
    let stored = stored.unwrap_or_else(|| panic!("{} bans stored", active_bans(&d.0).len()));
    assert!(stored.contains(&"127.0.0.77".to_owned()), "the operator's ban is never lifted");
    // Probes from all 300 at once (silence is the answer to a banned one: waiting for each in turn
    // would take a timeout per ban).
    let enforced = |daemon: &Daemon| {
        let probes: Vec<_> = (1..=300u32)
            .map(|i| {
                let src = std::net::Ipv4Addr::from(0x7f65_0000 + i).to_string();
                let to = daemon.udp;
                std::thread::spawn(move || options(&src, to, &format!("p{i}")).is_none())
            })
            .collect();
        probes.into_iter().map(|p| p.join().unwrap()).filter(|&silent| silent).count()
    };
    assert_eq!(options("127.0.0.2", daemon.udp, "legit"), Some(200));
    daemon.stop();
    let daemon = Daemon::start(&d.0);
    assert_eq!(active_bans(&d.0), stored);
    assert_eq!(enforced(&daemon), 100, "exactly the stored bans are enforced after a restart");
    assert_eq!(options("127.0.0.77", daemon.udp, "op"), None);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

/// One datagram from each of 1,000,000 distinct source addresses (all of 127.100.0.0/12 is local, so
/// no spoofing privileges are needed): per-source state stays under the tracker cap (100,000), so the
/// daemon's resident memory stays under 256 MiB, and it keeps answering.
#[test]
fn a_million_distinct_sources_leave_memory_under_the_cap() {
    let _serial = heavy();
    let d = TempDir::new("million");
    let daemon = Daemon::start(&d.0);
    let pid = daemon.pid();
    let before = rss_kib(pid);
    let msg = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKm\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: m\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let src = std::net::Ipv4Addr::from(0x7f64_0000 + i);
        let s = UdpSocket::bind((src, 0)).unwrap();
        s.send_to(msg, daemon.udp).unwrap();
    }
    eprintln!("sent from 1,000,000 sources in {:?}", started.elapsed());
    // Let the daemon drain its socket, then measure.
    assert_eq!(options("127.0.0.2", daemon.udp, "after-million"), Some(200));
    let after = rss_kib(pid);
    eprintln!("daemon RSS: {before} KiB before, {after} KiB after");
    assert!(after < 256 * 1024, "RSS {after} KiB");
}

/// A password-guessing campaign against one extension from many addresses, each staying under the
/// brute-force threshold: the extension is throttled, so even the right password from a new address is
/// refused, while a phone that registered before keeps working.
#[test]
fn a_distributed_attack_throttles_the_extension_but_not_its_phones() {
    let d = TempDir::new("throttle");
    cli_ok(&d.0, &["settings", "set", "sip.realm", "thr.test"]);
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Thr0ttle!Pw#1"]);
    let daemon = Daemon::start(&d.0);
    let reg = |from: &str, pw: &str| {
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        common::digest_register(&s, daemon.udp, "thr.test", "1001", pw)
    };
    assert_eq!(reg("127.0.0.2", "Thr0ttle!Pw#1"), 200, "the phone registers first");
    for attacker in 81..86 {
        for _ in 0..4 {
            assert_eq!(reg(&format!("127.0.0.{attacker}"), "guess-Pw!1"), 401);
        }
    }
    assert_ne!(reg("127.0.0.86", "Thr0ttle!Pw#1"), 200, "a new address is refused even with the right password");
    assert_eq!(reg("127.0.0.2", "Thr0ttle!Pw#1"), 200, "the phone that authenticated before is not affected");
    let events = wait_for(Duration::from_secs(5), || {
        let e = cli_ok(&d.0, &["events", "--json", "--last", "1000"]);
        (e.contains("\"kind\":\"alert\"") && e.contains("\"kind\":\"throttle\"")).then_some(e)
    });
    assert!(events.is_some(), "alert and throttle events expected");
    let bans: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["bans", "list", "--json"])).unwrap();
    assert!(bans.is_empty(), "no single attacker crossed the brute-force threshold: {bans:?}");
}

/// Over UDP a source address proves nothing: someone who knows a phone's address must not be able to
/// cut it off with forged datagrams. The phone registers from 127.0.0.20; "spoofed" datagrams then
/// come from the same address (another port, as a forger's would), and the phone keeps registering.
#[test]
fn forged_datagrams_in_a_phones_name_never_ban_it() {
    let _serial = heavy();
    require("sipp");
    let d = TempDir::new("spoof");
    cli_ok(&d.0, &["ext", "add", "5001", "--secret", "Sp00f!ng-Pr00f"]);
    std::fs::write(d.0.join("users.csv"), "SEQUENTIAL\n5001;[authentication username=5001 password=Sp00f!ng-Pr00f]\n")
        .unwrap();
    let daemon = Daemon::start(&d.0);
    std::fs::write(d.0.join("wrong.csv"), "SEQUENTIAL\n5001;[authentication username=5001 password=guess]\n").unwrap();
    let sipp = |users: &str, calls: &str| {
        let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/reg_auth.xml");
        let o = Command::new("timeout")
            .args(["30", "sipp", "-sf", scenario, "-inf", users, &daemon.udp.to_string(), "-i", "127.0.0.20"])
            .args(["-p", "0", "-m", calls, "-r", "10", "-nostdin", "-timeout", "10s", "-timeout_error"])
            .args(["-recv_timeout", "2000", "-default_behaviors", "none"])
            .current_dir(&d.0)
            .output()
            .unwrap();
        o.status.success()
    };
    let register = || sipp("users.csv", "1");
    assert!(register(), "the phone registers");
    let forger = UdpSocket::bind("127.0.0.20:0").unwrap();
    let send = |msg: String| forger.send_to(msg.as_bytes(), daemon.udp).unwrap();
    let options = |i: u32, ua: &str| {
        format!(
            "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.20:9;branch=z9hG4bKs{i}\r\nFrom: <sip:x@127.0.0.20>;tag={i}\r\n\
             To: <sip:{0}>\r\nCall-ID: s{i}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n",
            daemon.udp
        )
    };
    send(options(0, "friendly-scanner"));
    let start = Instant::now();
    for i in 1..=200 {
        send(options(i, "Yealink SIP-T46S"));
    }
    assert!(start.elapsed() < Duration::from_secs(2), "the flood took {:?}", start.elapsed());
    for i in 0..20 {
        send(format!("GARBAGE {i} \u{1}\r\n\r\n"));
    }
    let spoof = wait_for(Duration::from_secs(5), || {
        let ev = cli_ok(&d.0, &["events", "--json"]);
        ev.lines().any(|l| l.contains("suspected-spoof") && l.contains("127.0.0.20")).then_some(())
    });
    assert!(spoof.is_some(), "events:\n{}\nlog:\n{}", cli_ok(&d.0, &["events"]), daemon.log());
    assert!(ban_of(&d.0, "127.0.0.20").is_none(), "{}", cli_ok(&d.0, &["bans", "list"]));
    // The phone's refresh goes through (once the 2-second flood window of the forged datagrams ends:
    // until then it is rate-limited like them, never banned).
    let refreshed = wait_for(Duration::from_secs(10), || register().then_some(()));
    assert!(refreshed.is_some(), "the phone still registers; log:\n{}", daemon.log());
    assert!(ban_of(&d.0, "127.0.0.20").is_none());
    // Its own brute force answers our nonces (bound to its address): verified, and banned as ever.
    assert!(!sipp("wrong.csv", "5"), "wrong passwords fail");
    let ban = wait_for(Duration::from_secs(3), || ban_of(&d.0, "127.0.0.20")).expect("brute force banned");
    assert_eq!((ban["reason"].as_str(), ban["note"].as_str()), (Some("brute-force"), None), "{ban}");
    // An address that never authenticated is still banned by one scanner datagram: briefly, marked as
    // resting on unverified evidence, and not counted as an offence.
    assert_eq!(options_as("127.0.0.67", daemon.udp, "o", "friendly-scanner"), None);
    let ban = wait_for(Duration::from_secs(3), || ban_of(&d.0, "127.0.0.67")).expect("scanner banned");
    assert_eq!((ban["reason"].as_str(), ban["offence"].as_u64()), (Some("scanner"), Some(1)));
    assert!(ban["note"].as_str().is_some_and(|n| n.starts_with("unverified")), "{ban}");
}

/// Addresses added to the loopback interface for one test (IPv6 prefixes of our own, fd00::/8 ULA),
/// removed again when dropped. Needs root, as CI runs.
struct LoopbackAddrs(Vec<String>);

impl LoopbackAddrs {
    fn add(addrs: &[String]) -> Self {
        for a in addrs {
            let o =
                Command::new("ip").args(["-6", "addr", "replace", &format!("{a}/128"), "dev", "lo", "nodad"]).output();
            let o = o.expect("iproute2's ip (Debian: iproute2)");
            assert!(
                o.status.success(),
                "ip -6 addr add {a}: {} (this test needs root)",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Self(addrs.to_vec())
    }
}

impl Drop for LoopbackAddrs {
    fn drop(&mut self) {
        for a in &self.0 {
            let _ = Command::new("ip").args(["-6", "addr", "del", &format!("{a}/128"), "dev", "lo"]).output();
        }
    }
}

#[test]
fn an_ipv6_scanner_rotating_through_its_64_is_banned_as_the_64() {
    let _serial = heavy();
    let attacker = |i: u32| format!("fd00:66:0:1::{i:x}");
    let phone = "fd00:66:0:2::5".to_owned();
    let mut addrs: Vec<String> = (1..=12).map(attacker).collect();
    addrs.push(phone.clone());
    let _lo = LoopbackAddrs::add(&addrs);
    let d = TempDir::new("v6");
    let daemon = Daemon::start_with(&d.0, &["--sip-udp", "[::1]:0"]);
    let to = *daemon.udp_all.iter().find(|a| a.is_ipv6()).expect("an IPv6 listener");
    // The same probe is answered before the ban, so its silence after proves the drop.
    assert_eq!(options(&attacker(1), to, "v0"), Some(200));
    assert_eq!(options_as(&attacker(2), to, "v1", "friendly-scanner"), None);
    let ban = wait_for(Duration::from_secs(3), || ban_of(&d.0, "fd00:66:0:1::/64")).expect("the /64 is banned");
    assert_eq!(ban["reason"], "scanner");
    for i in 3..=12 {
        assert_eq!(options(&attacker(i), to, &format!("v{i}")), None, "{} is inside the banned /64", attacker(i));
    }
    assert_eq!(options(&attacker(1), to, "v0b"), None);
    // A phone in another /64 is unaffected; the whole /64 is one ban.
    assert_eq!(options(&phone, to, "p1"), Some(200));
    assert_eq!(active_bans(&d.0), ["fd00:66:0:1::/64"]);
    cli_ok(&d.0, &["bans", "del", "fd00:66:0:1::/64"]);
    assert_eq!(wait_for(Duration::from_secs(3), || options(&attacker(4), to, "v4b")), Some(200));
}
