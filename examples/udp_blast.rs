//! Open-loop load generator for overload benchmarks: sends REGISTERs without credentials (each one a new
//! transaction, so a registrar answers each with a 401) at a fixed rate for a fixed time, never waiting
//! for answers, and counts the answers that come back. SIPp cannot offer more than about 30,000
//! messages/s here; this can, so a server's knee and what happens past it become visible.
//! Loopback only; bounded by count and time. `bench/overload.py` drives it.
//!
//! Usage: udp_blast TARGET RATE SECONDS [USERS]
//! → prints `sent=N answered=N lost_at_generator=N seconds=S`

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || std::io::Error::other("usage: udp_blast TARGET RATE SECONDS [USERS]");
    let target: SocketAddr = args.get(1).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let rate: u64 = args.get(2).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let secs: u64 = args.get(3).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let users: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    if !target.ip().is_loopback() {
        return Err(std::io::Error::other("udp_blast sends to loopback addresses only"));
    }
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let local = sock.local_addr()?;
    let rx = sock.try_clone()?;
    rx.set_read_timeout(Some(Duration::from_millis(200)))?;
    let answered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let counter = {
        let (answered, done) = (answered.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !done.load(Ordering::Relaxed) {
                if let Ok(n) = rx.recv(&mut buf)
                    && buf[..n].starts_with(b"SIP/2.0 ")
                {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let total = rate * secs;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut msg = Vec::with_capacity(512);
    while sent < total {
        // Pace by the clock: whatever should have gone by now goes now.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        if sent >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for i in sent..due.min(total) {
            let user = i % users;
            msg.clear();
            write!(
                msg,
                "REGISTER sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKblast{i}\r\nMax-Forwards: 70\r\n\
                 From: <sip:u{user:05}@{target}>;tag={i}\r\nTo: <sip:u{user:05}@{target}>\r\nCall-ID: blast{i}@{local}\r\n\
                 CSeq: 1 REGISTER\r\nContact: <sip:u{user:05}@{local}>\r\nExpires: 3600\r\nUser-Agent: udp_blast\r\n\
                 Content-Length: 0\r\n\r\n"
            )?;
            // A full socket buffer is part of overload: count it as sent and go on.
            let _ = sock.send_to(&msg, target);
        }
        sent = due.min(total);
    }
    let elapsed = start.elapsed();
    // Answers still in flight.
    std::thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    let _ = counter.join();
    // Answers the kernel dropped at our own socket (its queue full while this process was busy sending)
    // were still sent by the server: count them, or the generator's limit would pass for the server's.
    let lost = own_socket_drops(local.port()).unwrap_or(0);
    println!(
        "sent={sent} answered={} lost_at_generator={lost} seconds={:.3}",
        answered.load(Ordering::Relaxed),
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// The `drops` column of /proc/net/udp for the IPv4 socket bound to `port`.
fn own_socket_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1).is_some_and(|a| a.ends_with(&local)))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}
