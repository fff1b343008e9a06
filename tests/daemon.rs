//! The daemon over real sockets: persistence across restarts, live reload of CLI changes, the RFC 4475
//! corpus on the wire, stream framing, and hostile bytes.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    s
}

#[test]
fn registrations_survive_restart_and_cli_changes_apply_live() {
    let d = TempDir::new("restart");
    cli_ok(&d.0, &["settings", "set", "sip.realm", "restart.test"]);
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Resta7t!pw"]);
    let mut daemon = Daemon::start(&d.0);
    let sock = udp_client();
    assert_eq!(digest_register(&sock, daemon.udp, "restart.test", "1001", "Resta7t!pw"), 200);
    // Added while the daemon runs: usable within a second.
    cli_ok(&d.0, &["ext", "add", "1002", "--secret", "L1ve!add"]);
    let ok = wait_for(Duration::from_secs(1), || {
        (digest_register(&sock, daemon.udp, "restart.test", "1002", "L1ve!add") == 200).then_some(())
    });
    assert!(ok.is_some(), "extension added by the CLI not usable within a second");
    // A changed secret applies too: the old one stops working.
    cli_ok(&d.0, &["ext", "passwd", "1002", "--secret", "N3w!secret"]);
    assert!(
        wait_for(Duration::from_secs(1), || (digest_register(&sock, daemon.udp, "restart.test", "1002", "N3w!secret")
            == 200)
            .then_some(()))
        .is_some()
    );
    assert_eq!(digest_register(&sock, daemon.udp, "restart.test", "1002", "L1ve!add"), 401);
    wait_for(Duration::from_secs(5), || (registrations(&d.0).len() == 2).then_some(())).expect("both bindings stored");
    daemon.stop();
    let daemon = Daemon::start(&d.0);
    assert!(daemon.log().contains("bindings=2"), "{}", daemon.log());
    assert_eq!(registrations(&d.0).len(), 2);
    // Deleting an extension removes its registration.
    cli_ok(&d.0, &["ext", "del", "1001"]);
    assert_eq!(
        registrations(&d.0).iter().map(|r| r["extension"].as_str().unwrap().to_owned()).collect::<Vec<_>>(),
        ["1002"]
    );
}

#[test]
fn rfc4475_corpus_on_the_wire_and_the_daemon_survives() {
    let d = TempDir::new("corpus");
    let daemon = Daemon::start(&d.0);
    let sock = udp_client();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475");
    let expect = [
        ("badvers", Some(505)),
        ("unkscm", Some(416)),
        ("bext01", Some(420)),
        ("zeromf", Some(483)),
        ("clerr", Some(400)),
        ("ltgtruri", Some(400)),
        ("regaut01", Some(401)),
        ("lwsdisp", Some(200)),
        ("bigcode", None),
        ("bcast", None),
    ];
    for (name, want) in expect {
        // The corpus reuses branch values; a new source per message keeps them separate transactions.
        let sock = udp_client();
        let buf = std::fs::read(format!("{dir}/{name}.dat")).unwrap();
        let got = exchange(&sock, daemon.udp, &buf).map(|r| status(&r));
        assert_eq!(got, want, "{name}");
    }
    // Every file, plus garbage, then the daemon still answers.
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        sock.send_to(&std::fs::read(p).unwrap(), daemon.udp).unwrap();
    }
    for junk in [&b""[..], b"\r\n\r\n", b"\x00\xff\xfe garbage", &[b'A'; 65_000][..]] {
        sock.send_to(junk, daemon.udp).unwrap();
    }
    let mut buf = [0u8; 65_535];
    while sock.recv_from(&mut buf).is_ok() {}
    let opts = std::fs::read(format!("{dir}/lwsdisp.dat")).unwrap();
    assert_eq!(exchange(&udp_client(), daemon.udp, &opts).map(|r| status(&r)), Some(200));
}

#[test]
fn tcp_frames_pipelined_messages_and_answers_keepalives() {
    let d = TempDir::new("tcp");
    let daemon = Daemon::start(&d.0);
    let mut s = TcpStream::connect(daemon.tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let opt = |n: u32| {
        format!(
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKtcp{n}\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:127.0.0.1>\r\nCall-ID: tcp{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // A keep-alive ping, two messages in one write, then one split across writes.
    let mut bytes = b"\r\n\r\n".to_vec();
    bytes.extend(opt(1).into_bytes());
    bytes.extend(opt(2).into_bytes());
    s.write_all(&bytes).unwrap();
    let third = opt(3);
    s.write_all(&third.as_bytes()[..40]).unwrap();
    s.flush().unwrap();
    // Not synchronisation: a pause between the two halves so the daemon most likely reads them apart
    // and must hold a partial message (the assertions below hold either way).
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&third.as_bytes()[40..]).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.windows(11).filter(|w| w == b"SIP/2.0 200").count() < 3 {
        let n = s.read(&mut buf).expect("replies arrive");
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"\r\nSIP/2.0 200 OK\r\n"), "{}", String::from_utf8_lossy(&got));
    // A stream that cannot be framed (no Content-Length) is closed.
    s.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\n\r\n").unwrap();
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "connection should be closed");
}

/// IPv6 listeners next to IPv4 ones on the same port numbers' families: a phone on ::1 registers over
/// UDP and TCP, and its binding shows its IPv6 source.
#[test]
fn ipv6_registration_over_udp_and_tcp() {
    let d = TempDir::new("ipv6");
    cli_ok(&d.0, &["settings", "set", "sip.realm", "v6.test"]);
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "V6!reg#Test9"]);
    let daemon = Daemon::start_with(&d.0, &["--sip-udp", "[::1]:0", "--sip-tcp", "[::1]:0"]);
    let udp6 = *daemon.udp_all.iter().find(|a| a.is_ipv6()).expect("an IPv6 UDP listener");
    let tcp6 = *daemon.tcp_all.iter().find(|a| a.is_ipv6()).expect("an IPv6 TCP listener");
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(digest_register(&sock, udp6, "v6.test", "1001", "V6!reg#Test9"), 200);
    let regs = wait_for(Duration::from_secs(5), || {
        let r = registrations(&d.0);
        (!r.is_empty()).then_some(r)
    })
    .unwrap();
    assert!(regs[0]["source"].as_str().unwrap().starts_with("[::1]:"), "{regs:?}");
    // OPTIONS over TCP on IPv6.
    let mut s = TcpStream::connect(tcp6).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"OPTIONS sip:[::1] SIP/2.0\r\nVia: SIP/2.0/TCP [::1]:1;branch=z9hG4bKv6\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:[::1]>\r\nCall-ID: v6\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"), "{}", String::from_utf8_lossy(&buf[..n]));
    assert!(String::from_utf8_lossy(&buf[..n]).contains("received=::1"));
}
