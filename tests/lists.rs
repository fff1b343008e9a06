//! VoIP blacklists (voipbl format, file and URL) and attacker reporting, against the real daemon.

mod common;
use common::*;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn options_answered(from: &str, to: std::net::SocketAddr) -> bool {
    let s = UdpSocket::bind((from, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{}\r\nFrom: <sip:a@{from}>;tag=1\r\nTo: <sip:{to}>\r\n\
         Call-ID: {}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        s.local_addr().unwrap(),
        s.local_addr().unwrap().port(),
        s.local_addr().unwrap().port()
    );
    exchange(&s, to, msg.as_bytes()).is_some()
}

/// 200,000 entries: pseudo-random public IPv4 addresses, some networks, IPv6, comments and junk.
fn big_list() -> String {
    let mut text =
        String::from("# VoIPBL test list\n127.0.0.90\n10.99.0.0/16 # a network\n2001:db8:bad::/48\nnot-an-address\n");
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..199_997 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let ip = std::net::Ipv4Addr::from(0x0b00_0000 | (x & 0x7fff_ffff));
        writeln!(text, "{ip}").unwrap();
    }
    text
}

#[test]
fn blacklist_import_check_enforce_and_trust_wins() {
    let d = TempDir::new("blacklist");
    let file = d.0.join("voipbl.txt");
    std::fs::write(&file, big_list()).unwrap();
    let started = Instant::now();
    let out = cli_ok(&d.0, &["blacklist", "import", file.to_str().unwrap()]);
    assert!(out.contains("blacklist voipbl: 200000 entries") && out.contains("1 unreadable lines"), "{out}");
    eprintln!("import of 200,000 entries took {:?}", started.elapsed());
    let check = cli_ok(&d.0, &["blacklist", "check", "10.99.3.4"]);
    assert_eq!(check.trim(), "10.99.3.4 is listed in voipbl (entry 10.99.0.0/16)");
    assert!(cli_ok(&d.0, &["blacklist", "check", "192.0.2.1"]).contains("not in any blacklist"));
    let stats: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["blacklist", "stats", "--json"])).unwrap();
    assert_eq!((stats[0]["entries"].as_i64(), stats[0]["bad_lines"].as_i64()), (Some(200_000), Some(1)));

    let daemon = Daemon::start(&d.0);
    assert!(daemon.log().contains("blacklisted=200000"), "{}", daemon.log());
    assert!(!options_answered("127.0.0.90", daemon.udp), "a listed source gets no reply");
    assert!(options_answered("127.0.0.91", daemon.udp));
    cli_ok(&d.0, &["trust", "add", "127.0.0.90"]);
    assert!(wait_for(Duration::from_secs(5), || options_answered("127.0.0.90", daemon.udp).then_some(())).is_some());
    assert!(cli_ok(&d.0, &["blacklist", "check", "127.0.0.90"]).contains("trusted network 127.0.0.90, which wins"));

    // A new import replaces the list atomically; the daemon picks it up.
    std::fs::write(&file, "127.0.0.92\n").unwrap();
    cli_ok(&d.0, &["blacklist", "import", file.to_str().unwrap()]);
    assert!(wait_for(Duration::from_secs(5), || (!options_answered("127.0.0.92", daemon.udp)).then_some(())).is_some());
    assert!(cli_ok(&d.0, &["blacklist", "check", "10.99.3.4"]).contains("not in any blacklist"));
}

#[test]
fn blacklist_from_url_and_clear_errors() {
    let d = TempDir::new("blacklist-url");
    let server = HttpServer::start(vec![(200, "# list\n198.51.100.0/24\n203.0.113.7\n".into()), (404, String::new())]);
    let url = format!("http://{}/voipbl.txt", server.addr);
    let out = cli_ok(&d.0, &["blacklist", "import", &url, "--name", "voipbl"]);
    assert!(out.contains("voipbl: 2 entries"), "{out}");
    assert!(cli_ok(&d.0, &["blacklist", "check", "198.51.100.9"]).contains("listed in voipbl (entry 198.51.100.0/24)"));
    let o = cli(&d.0, &["blacklist", "import", &url, "--name", "voipbl"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("404"));
    // The failed download changed nothing.
    assert!(cli_ok(&d.0, &["blacklist", "check", "203.0.113.7"]).contains("listed in voipbl"));
    let o = cli(&d.0, &["blacklist", "import", "/nonexistent/list.txt"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("opening /nonexistent/list.txt"));
    let o = cli(&d.0, &["settings", "set", "report.url", "ftp://x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected an http:// or https:// URL"));
}

#[test]
fn banned_attackers_are_reported_with_retry() {
    let d = TempDir::new("report");
    // The endpoint fails once, then accepts.
    let server = HttpServer::start(vec![(500, String::new()), (200, "ok".into())]);
    cli_ok(&d.0, &["settings", "set", "report.url", &format!("http://{}/update/", server.addr)]);
    let daemon = Daemon::start(&d.0);
    let scan = |from: &str, branch: &str| {
        format!(
            "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/TCP {from}:5060;branch=z9hG4bK{branch}\r\nFrom: <sip:100@{from}>;tag=1\r\n\
             To: <sip:{0}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n",
            daemon.tcp
        )
    };
    // Over TCP the source address is proven (the connection was established): the ban is reported.
    tcp_send("127.0.0.80", daemon.tcp, &scan("127.0.0.80", "r"));
    let reqs = wait_for(Duration::from_secs(15), || {
        let r = server.requests();
        (r.len() >= 2).then_some(r)
    })
    .unwrap_or_else(|| panic!("expected a failed report and its retry; got {:?}\n{}", server.requests(), daemon.log()));
    for r in &reqs[..2] {
        assert!(r.starts_with("POST /update/ HTTP/1.1"), "{r}");
        assert!(r.contains("ip=127.0.0.80") && r.contains("reason=scanner"), "{r}");
    }
    // Operator bans are never reported, nor bans on evidence a forged UDP datagram could carry (that
    // would let anyone put any address on a shared blacklist). Await a later verified ban's report
    // instead of sleeping: reports leave in order, so had either been reported, it would come first.
    cli_ok(&d.0, &["bans", "add", "127.0.0.81", "--reason", "manual"]);
    wait_for(Duration::from_secs(5), || ban_listed(&d.0, "127.0.0.81")).expect("operator ban applied");
    let udp = UdpSocket::bind("127.0.0.83:0").unwrap();
    udp.send_to(scan("127.0.0.83", "u").as_bytes(), daemon.udp).unwrap();
    wait_for(Duration::from_secs(5), || ban_listed(&d.0, "127.0.0.83"))
        .expect("the UDP scanner is banned all the same");
    tcp_send("127.0.0.82", daemon.tcp, &scan("127.0.0.82", "r2"));
    let reqs = wait_for(Duration::from_secs(15), || {
        let r = server.requests();
        (r.len() >= 3).then_some(r)
    })
    .expect("the second verified ban is reported");
    assert!(reqs[2].contains("ip=127.0.0.82"), "{}", reqs[2]);
    assert!(!reqs.iter().any(|r| r.contains("ip=127.0.0.81") || r.contains("ip=127.0.0.83")), "{reqs:?}");
}

/// Sends one message over a TCP connection from `from`. Closing at once is fine: the daemon reads what
/// was sent before the close, and the caller awaits its effect.
fn tcp_send(from: &str, to: std::net::SocketAddr, msg: &str) {
    use std::io::Write;
    tcp_from(from, to).write_all(msg.as_bytes()).unwrap();
}

/// Whether a ban on `ip` has reached the daemon (it writes the ban back, operator bans included, and
/// logs a `ban` event for it).
fn ban_listed(data: &std::path::Path, ip: &str) -> Option<()> {
    let events = cli_ok(data, &["events", "--json"]);
    events.lines().any(|l| l.contains("\"kind\":\"ban\"") && l.contains(ip)).then_some(())
}
