//! Authenticated-registration load with microsecond timestamps, for the latency half of the daemon
//! benchmark: SIPp's response-time trace counts whole milliseconds and its own scheduling adds several
//! of them here (the cost floor, which answers at once, shows a p99 of 4 ms through SIPp).
//!
//! Paced by the clock (open loop on the first request of each registration): call n starts at n/RATE s,
//! sends REGISTER, answers the 401 with an MD5 digest (qop=auth) and ends at the 200. The latency of a
//! registration is from its first send to the 200, both requests and both answers included, taken
//! with `Instant` in this one thread. No retransmissions: over loopback with large buffers a lost
//! message is a failure to count, not to hide. Loopback only; bounded by RATE*SECONDS calls and by
//! SECONDS + 5 s.
//!
//! Usage: reg_latency TARGET RATE SECONDS [USERS] [SOURCE_IP]
//! → prints `ok=N failed=N p50_us=N p90_us=N p99_us=N p999_us=N max_us=N worst_second=S:N`
//!
//! Users are u00000... with secret pw00000x..., as `bench/common.py` provisions them.

use pbxguard_sip::{Algorithm, Credentials, HeaderName, Limits, Message, StartLine, ha1};
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum State {
    Idle,
    Challenged,
    Done,
    Failed,
}

fn request(out: &mut String, local: SocketAddr, target: SocketAddr, user: u64, call: u64, cseq: u32, auth: &str) {
    out.clear();
    let _ = write!(
        out,
        "REGISTER sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bK-lat{call}-{cseq}\r\n\
         From: <sip:u{user:05}@{host}>;tag=lat{call}\r\nTo: <sip:u{user:05}@{host}>\r\nCall-ID: {call}-lat@{local}\r\n\
         CSeq: {cseq} REGISTER\r\nContact: <sip:u{user:05}@{local}>\r\nMax-Forwards: 70\r\n\
         {auth}Expires: 3600\r\nUser-Agent: reg_latency\r\nContent-Length: 0\r\n\r\n",
        host = target.ip(),
    );
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || std::io::Error::other("usage: reg_latency TARGET RATE SECONDS [USERS] [SOURCE_IP]");
    let target: SocketAddr = args.get(1).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let rate: u64 = args.get(2).and_then(|a| a.parse().ok()).filter(|&r| r > 0).ok_or_else(usage)?;
    let secs: u64 = args.get(3).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let users: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10_000).max(1);
    let source: std::net::IpAddr = args.get(5).and_then(|a| a.parse().ok()).unwrap_or([127, 0, 0, 1].into());
    if !target.ip().is_loopback() || !source.is_loopback() {
        return Err(std::io::Error::other("reg_latency sends between loopback addresses only"));
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    let _ = sock.set_recv_buffer_size(8 << 20);
    let _ = sock.set_send_buffer_size(8 << 20);
    sock.bind(&SocketAddr::new(source, 0).into())?;
    let sock: UdpSocket = sock.into();
    let local = sock.local_addr()?;
    // Blocks at most this long, so sends go out on time without spinning a core the server needs.
    sock.set_read_timeout(Some(Duration::from_micros(200)))?;

    let total = (rate * secs) as usize;
    let mut started: Vec<Option<Instant>> = vec![None; total];
    let mut state = vec![State::Idle; total];
    let mut latencies: Vec<u32> = Vec::with_capacity(total);
    let mut per_second_max = vec![0u32; secs as usize + 6];
    let (mut failed, mut next) = (0usize, 0usize);
    let limits = Limits::default();
    let mut buf = vec![0u8; 65_536];
    let mut out = String::with_capacity(1024);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs + 5);
    while Instant::now() < deadline && latencies.len() + failed < total {
        // Whatever should have started by now starts now.
        let due = ((start.elapsed().as_micros() as u64 * rate) / 1_000_000).min(total as u64) as usize;
        while next < due {
            request(&mut out, local, target, next as u64 % users, next as u64, 1, "");
            started[next] = Some(Instant::now());
            if sock.send_to(out.as_bytes(), target).is_err() {
                state[next] = State::Failed;
                failed += 1;
            }
            next += 1;
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        };
        let at = Instant::now();
        let Ok(msg) = Message::parse(&buf[..n], &limits) else { continue };
        let Some(call) = msg
            .header(HeaderName::CallId)
            .and_then(|c| c.split_once('-'))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .filter(|&c| c < total)
        else {
            continue;
        };
        let StartLine::Response { code, .. } = msg.start else { continue };
        match (state[call], code) {
            (State::Idle, 401) => {
                let Some(ch) =
                    msg.header(HeaderName::classify("WWW-Authenticate")).and_then(Credentials::parse_challenge)
                else {
                    state[call] = State::Failed;
                    failed += 1;
                    continue;
                };
                let user = format!("u{:05}", call as u64 % users);
                let secret = format!("pw{:05}x", call as u64 % users);
                let ha1 = ha1(Algorithm::Md5, &user, &ch.realm, &secret);
                let uri = format!("sip:{target}");
                let auth = ch.answer(Algorithm::Md5, &user, &ha1, "REGISTER", &uri, "0a4f113b", 1);
                let auth = format!("Authorization: {auth}\r\n");
                request(&mut out, local, target, call as u64 % users, call as u64, 2, &auth);
                state[call] = State::Challenged;
                if sock.send_to(out.as_bytes(), target).is_err() {
                    state[call] = State::Failed;
                    failed += 1;
                }
            }
            (State::Challenged, 200) => {
                state[call] = State::Done;
                if let Some(t0) = started[call] {
                    let us = at.duration_since(t0).as_micros().min(u32::MAX as u128) as u32;
                    latencies.push(us);
                    let second = t0.duration_since(start).as_secs() as usize;
                    if let Some(m) = per_second_max.get_mut(second) {
                        *m = (*m).max(us);
                    }
                }
            }
            (State::Idle | State::Challenged, _) => {
                state[call] = State::Failed;
                failed += 1;
            }
            (State::Done | State::Failed, _) => {}
        }
    }
    // Calls that never finished count as failed.
    failed += state[..next].iter().filter(|s| matches!(s, State::Idle | State::Challenged)).count();
    latencies.sort_unstable();
    let q =
        |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1))).copied();
    let (worst, worst_us) =
        per_second_max.iter().enumerate().max_by_key(|&(_, m)| *m).map(|(s, m)| (s, *m)).unwrap_or((0, 0));
    println!(
        "ok={} failed={} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} worst_second={worst}:{worst_us}",
        latencies.len(),
        failed,
        q(0.5).unwrap_or(0),
        q(0.9).unwrap_or(0),
        q(0.99).unwrap_or(0),
        q(0.999).unwrap_or(0),
        latencies.last().copied().unwrap_or(0),
    );
    Ok(())
}
