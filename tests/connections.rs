//! Connection abuse over TCP and TLS (issue 15): per-source caps that ban, the unfinished-message and
//! authentication timeouts, and what idle connections cost. Attack traffic comes from 127.0.0.66 and the
//! 127.1/16 and 127.2/16 ranges (any 127.x address is usable on loopback by binding before connecting).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Room for every test's sockets in this process (the tests run side by side) and in the daemons it
/// starts (which inherit it). One value for all: a test asking for less must never lower another's.
#[allow(unsafe_code)]
fn raise_nofile() {
    let want: u64 = 16_384;
    // SAFETY: plain system calls on a local struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        if r.rlim_cur >= want {
            return;
        }
        let raised = libc::rlimit { rlim_cur: want, rlim_max: r.rlim_max.max(want) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            r.rlim_cur = r.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
        }
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        assert!(r.rlim_cur >= want, "cannot raise the open-file limit to {want} (hard limit {})", r.rlim_max);
    }
}

/// The `i`th address of the loopback range `127.<range>.0.0/16` (never .0 or .255).
fn source(range: u8, i: usize) -> String {
    format!("127.{range}.{}.{}", i / 250, i % 250 + 1)
}

fn options(from: SocketAddr, branch: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {from};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@example.com>;tag=p{branch}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {branch}@conns\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends OPTIONS and reads the status of the answer.
fn ask(s: &mut TcpStream, branch: &str) -> Option<u16> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let msg = options(s.local_addr().unwrap(), branch);
    s.write_all(msg.as_bytes()).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return None,
            Ok(k) => n += k,
        }
    }
    Some(status(&buf[..n]))
}

/// Whether the daemon closed the connection (end of stream or reset). Reads, without waiting, and
/// drops whatever arrived.
fn closed(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Connections not yet closed by the daemon; forgets the closed ones.
fn still_open(conns: &mut Vec<TcpStream>) -> usize {
    conns.retain_mut(|s| !closed(s));
    conns.len()
}

fn events(data: &std::path::Path) -> Vec<serde_json::Value> {
    cli_ok(data, &["events", "--json", "--last", "1000"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn bans(data: &std::path::Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&cli_ok(data, &["bans", "list", "--json"])).unwrap()
}

fn metric(data: &std::path::Path, line: &str) -> Option<u64> {
    let text = std::fs::read_to_string(data.join("metrics.prom")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
}

#[test]
fn one_source_opening_200_connections_keeps_at_most_the_cap_and_is_banned_a_trusted_one_is_not() {
    raise_nofile();
    let d = TempDir::new("conns-cap");
    cli_ok(&d.0, &["trust", "add", "127.0.0.99"]);
    let daemon = Daemon::start(&d.0);
    // Heard before: the attacker's first connection is answered.
    let mut first = tcp_from("127.0.0.66", daemon.tcp);
    assert_eq!(ask(&mut first, "cap0"), Some(200), "log:\n{}", daemon.log());
    let mut attack = vec![first];
    attack.extend((1..200).map(|_| tcp_from("127.0.0.66", daemon.tcp)));
    let ban = wait_for(Duration::from_secs(10), || {
        events(&d.0).into_iter().find(|e| e["kind"] == "ban" && e["source"] == "127.0.0.66")
    })
    .unwrap_or_else(|| panic!("no ban for 127.0.0.66; log:\n{}", daemon.log()));
    let detail = ban["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("connections: 9 unauthenticated connections open at once (limit 8), 9 opened within 10s"),
        "{detail}"
    );
    let open = wait_for(Duration::from_secs(10), || Some(still_open(&mut attack)).filter(|&n| n <= 8));
    assert!(open.is_some(), "{} of the attacker's connections still open", still_open(&mut attack));
    let refused = wait_for(Duration::from_secs(5), || {
        metric(&d.0, "pbxguard_connections_ended_total{reason=\"refused_source\"}").filter(|&n| n >= 191)
    });
    assert!(refused.is_some(), "{:?}", std::fs::read_to_string(d.0.join("metrics.prom")));

    // A trusted source holds as many as it likes, and is still answered on the last one.
    let mut trusted: Vec<TcpStream> = (0..200).map(|_| tcp_from("127.0.0.99", daemon.tcp)).collect();
    assert_eq!(ask(trusted.last_mut().unwrap(), "trusted"), Some(200));
    assert_eq!(still_open(&mut trusted), 200);
    let banned: Vec<_> = bans(&d.0).into_iter().map(|b| b["target"].as_str().unwrap().to_owned()).collect();
    assert_eq!(banned, ["127.0.0.66"]);
}

fn baresip_dir(root: &std::path::Path, ip: &str, account: &str) -> std::path::PathBuf {
    let dir = root.join("phone");
    std::fs::create_dir_all(&dir).unwrap();
    let port = loop {
        // baresip also binds TLS on sip_listen+1.
        let s = std::net::UdpSocket::bind((ip, 0)).unwrap();
        let p = s.local_addr().unwrap().port();
        if p < 65_000
            && std::net::TcpListener::bind((ip, p + 1)).is_ok()
            && std::net::TcpListener::bind((ip, p)).is_ok()
        {
            break p;
        }
    };
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method epoll\nsip_listen {ip}:{port}\nnet_interface {ip}\naudio_player alsa,null\n\
             audio_source ausine,440\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule_tmp uuid.so\nmodule_tmp account.so\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    dir
}

/// Established TCP connections from `from` (an IPv4 address) to `to`, as local ports, from /proc.
fn established(from: &str, to: SocketAddr) -> Vec<u16> {
    let hex = |ip: &str| {
        let o: Vec<u8> = ip.split('.').map(|p| p.parse().unwrap()).collect();
        format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0])
    };
    let (src, dst) = (hex(from), format!("{}:{:04X}", hex(&to.ip().to_string()), to.port()));
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, remote, state) = (f.get(1)?, f.get(2)?, f.get(3)?);
            let (ip, port) = local.split_once(':')?;
            (ip == src && *remote == dst && *state == "01").then(|| u16::from_str_radix(port, 16).ok()).flatten()
        })
        .collect()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon listening on 127.0.0.2 only, so that 127.0.0.1 (where baresip's connections come from,
/// whatever address it listens on) is not one of its own addresses, which it trusts. Returns the
/// process, its log file, and its TCP and TLS addresses.
fn daemon_on_127_0_0_2(data: &std::path::Path) -> (Killed, std::path::PathBuf, SocketAddr, SocketAddr) {
    let log = data.with_extension("log");
    let child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args([
            "run",
            "--sip-udp",
            "127.0.0.2:0",
            "--sip-tcp",
            "127.0.0.2:0",
            "--sip-tls",
            "127.0.0.2:0",
            "--gui",
            "off",
        ])
        .env_remove("PBXGUARD_DATA")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let child = Killed(child);
    let listen = wait_for(Duration::from_secs(20), || {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data.join("listen.json")).ok()?).ok()?;
        (v["pid"] == pid).then_some(v)
    })
    .unwrap_or_else(|| panic!("daemon did not start: {}", std::fs::read_to_string(&log).unwrap_or_default()));
    let addr = |k: &str| listen[k][0].as_str().unwrap().parse().unwrap();
    (child, log, addr("tcp"), addr("tls"))
}

/// 2,000 sources each hold half a REGISTER (headers never finished) and 2,000 more each send a complete
/// OPTIONS and then nothing, at the default timeouts: the first are all closed within 15 s, the others
/// are still open then and all closed within 35 s of opening; a phone registered over TLS (from
/// 127.0.0.1, not trusted here) keeps its one connection throughout.
#[test]
fn unfinished_messages_close_within_15s_unauthenticated_connections_within_35s_and_a_tls_phone_stays() {
    require("baresip");
    const N: usize = 2_000;
    raise_nofile();
    let d = TempDir::new("conns-timeouts");
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Bare!sip9pw", "--algorithms", "MD5"]);
    let (_daemon, log, tcp, tls) = daemon_on_127_0_0_2(&d.0);
    let log = || std::fs::read_to_string(&log).unwrap_or_default();
    let account = format!("<sip:1001@{tls};transport=tls>;auth_pass=Bare!sip9pw;regint=600");
    let dir = baresip_dir(&d.0, "127.0.0.1", &account);
    let _phone = Killed(
        Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .args(["-t", "120"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let binding = wait_for(Duration::from_secs(15), || {
        registrations(&d.0).into_iter().find(|r| r["extension"] == "1001" && r["transport"] == "tls")
    })
    .unwrap_or_else(|| panic!("baresip did not register over TLS; log:\n{}", log()));
    assert!(binding["source"].as_str().unwrap().starts_with("127.0.0.1:"), "{binding}");
    let phone_conn = wait_for(Duration::from_secs(5), || Some(established("127.0.0.1", tls)).filter(|c| c.len() == 1))
        .unwrap_or_else(|| {
            panic!("not one TLS connection from the phone to {tls}: {:?}", established("127.0.0.1", tls))
        });

    let half = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.1.0.1:5060;branch=z9hG4bKhalf\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=h\r\n";
    let start = Instant::now();
    let mut slow: Vec<TcpStream> = (0..N)
        .map(|i| {
            let mut s = tcp_from(&source(1, i), tcp);
            s.write_all(half.as_bytes()).unwrap();
            s
        })
        .collect();
    let sent_half = Instant::now();
    let mut silent: Vec<TcpStream> = (0..N)
        .map(|i| {
            let mut s = tcp_from(&source(2, i), tcp);
            assert_eq!(ask(&mut s, &format!("opt{i}")), Some(200), "OPTIONS from {}", source(2, i));
            s
        })
        .collect();
    let opened_silent = start;
    // The half messages are not answered and their connections are closed, 10 s after their last byte.
    let left = wait_for(Duration::from_secs(15).saturating_sub(sent_half.elapsed()), || {
        Some(still_open(&mut slow)).filter(|&n| n == 0)
    });
    assert!(left.is_some(), "{} of {N} half-message connections still open after 15 s", still_open(&mut slow));
    assert!(sent_half.elapsed() >= Duration::from_secs(9), "closed before the timeout: {:?}", sent_half.elapsed());
    // Finished messages hold no such timer: only the authentication timeout applies to these.
    assert_eq!(still_open(&mut silent), N, "complete messages are not unfinished ones");
    let left = wait_for(Duration::from_secs(35).saturating_sub(opened_silent.elapsed()), || {
        Some(still_open(&mut silent)).filter(|&n| n == 0)
    });
    assert!(left.is_some(), "{} of {N} unauthenticated connections open after 35 s", still_open(&mut silent));
    let counted = |reason: &str| metric(&d.0, &format!("pbxguard_connections_ended_total{{reason=\"{reason}\"}}"));
    let both = wait_for(Duration::from_secs(5), || {
        (counted("incomplete_timeout")? >= N as u64 && counted("auth_timeout")? >= N as u64).then_some(())
    });
    assert!(both.is_some(), "{:?}", std::fs::read_to_string(d.0.join("metrics.prom")));
    // The phone's connection is the one it registered over, and it still serves it.
    assert_eq!(established("127.0.0.1", tls), phone_conn, "the phone's TLS connection was closed; log:\n{}", log());
    assert!(registrations(&d.0).iter().any(|r| r["extension"] == "1001" && r["transport"] == "tls"));
    assert!(bans(&d.0).is_empty(), "one connection per source is no abuse: {:?}", bans(&d.0));
}

/// Documented in docs/benchmarks.md ("Connections"): an idle TCP connection costs the daemon at most
/// this much resident memory, kernel socket buffers aside.
const IDLE_BYTES_MAX: u64 = 16 * 1024;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// 5,000 connections that each exchanged a message and went idle (from a trusted address, so no timeout
/// closes them while they are measured) cost at most [`IDLE_BYTES_MAX`] each.
#[test]
fn rss_after_5000_idle_connections_is_within_the_documented_bound() {
    const N: usize = 5_000;
    raise_nofile();
    let d = TempDir::new("conns-rss");
    let daemon = Daemon::start(&d.0);
    // Warm up what every connection path touches once, then take the baseline.
    let mut warm = tcp_from("127.0.0.1", daemon.tcp);
    assert_eq!(ask(&mut warm, "warm"), Some(200));
    drop(warm);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_bytes(daemon.pid());
    let mut idle: Vec<TcpStream> = (0..N)
        .map(|i| {
            let mut s = tcp_from("127.0.0.1", daemon.tcp);
            assert_eq!(ask(&mut s, &format!("idle{i}")), Some(200));
            s
        })
        .collect();
    assert_eq!(still_open(&mut idle), N);
    let per = rss_bytes(daemon.pid()).saturating_sub(before) / N as u64;
    eprintln!("RSS per idle connection: {per} bytes ({} KB before)", before / 1024);
    assert!(per <= IDLE_BYTES_MAX, "{per} bytes per idle connection, over the documented {IDLE_BYTES_MAX}");
    let open =
        wait_for(Duration::from_secs(5), || metric(&d.0, "pbxguard_connections_open").filter(|&n| n == N as u64));
    assert!(open.is_some(), "{:?}", std::fs::read_to_string(d.0.join("metrics.prom")));
}
