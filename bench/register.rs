//! One authenticated registration through the sans-IO service, as the daemon runs it minus the
//! sockets: REGISTER → 401 (nonce issued), REGISTER with an MD5 digest (qop=auth) → 200, for 10,000
//! extensions in turn, the shield on (the source is not trusted). Only the two `Service::handle` calls
//! are timed; the client's digest answer is computed outside. This is the user-space share of the
//! `bench/regbench.py` figure, without the kernel's noise. Results: docs/benchmarks.md.

use criterion::{Criterion, criterion_group, criterion_main};
use pbxguard_pbx::{Directory, ExtensionAuth, RegistrarConfig, Service, Transport};
use pbxguard_shield::{Shield, ShieldConfig, Threshold};
use pbxguard_sip::{Algorithm, Credentials, HeaderName, Limits, Message, ha1};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts heap allocations, to report how many one registration makes.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
// SAFETY: forwards to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

const REALM: &str = "bench";
const USERS: usize = 10_000;

fn service() -> Service {
    let m = (0..USERS)
        .map(|i| {
            let (u, p) = (format!("u{i:05}"), format!("pw{i:05}x"));
            let auth = ExtensionAuth { ha1: Algorithm::ALL.map(|a| ha1(a, &u, REALM, &p)), ..Default::default() };
            (u, auth)
        })
        .collect::<HashMap<_, _>>();
    Service::new(RegistrarConfig { realm: REALM.into(), ..Default::default() }, Arc::new(Directory::new(m)), [7; 32], 1)
}

fn register(user: usize, call: u64, cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-{call}-{cseq}\r\n\
         From: <sip:u{user:05}@127.0.0.1>;tag={call}\r\nTo: <sip:u{user:05}@127.0.0.1>\r\nCall-ID: {call}-1@127.0.0.2\r\n\
         CSeq: {cseq} REGISTER\r\nContact: <sip:u{user:05}@127.0.0.2:5061;transport=UDP>\r\nMax-Forwards: 70\r\n\
         {auth}Expires: 3600\r\nUser-Agent: SIPp bench\r\nContent-Length: 0\r\n\r\n"
    )
}

fn bench(c: &mut Criterion) {
    let mut svc = service();
    let mut shield =
        Shield::new(ShieldConfig { flood: Threshold { max: u32::MAX, window_ms: 1 }, ..Default::default() });
    let src: SocketAddr = "127.0.0.2:5061".parse().unwrap();
    let limits = Limits::default();
    let mut call = 0u64;
    let mut now_ms = 1_800_000_000_000u64;
    let (mut server_allocs, mut registrations) = (0u64, 0u64);
    c.bench_function("registration (401 + authenticated 200)", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                call += 1;
                now_ms += 1;
                let user = (call as usize) % USERS;
                let first = register(user, call, 1, "");
                let (t, a) = (Instant::now(), ALLOCS.load(Ordering::Relaxed));
                let challenge = svc.handle(&mut shield, now_ms, first.as_bytes(), src, Transport::Udp).unwrap();
                spent += t.elapsed();
                server_allocs += ALLOCS.load(Ordering::Relaxed) - a;
                let msg = Message::parse(&challenge, &limits).unwrap();
                let ch = Credentials::parse_challenge(msg.header(HeaderName::classify("WWW-Authenticate")).unwrap())
                    .unwrap();
                let ha1 = ha1(Algorithm::Md5, &format!("u{user:05}"), REALM, &format!("pw{user:05}x"));
                let uri = "sip:127.0.0.1:5060";
                let auth = ch.answer(Algorithm::Md5, &format!("u{user:05}"), &ha1, "REGISTER", uri, "0a4f113b", 1);
                let second = register(user, call, 2, &format!("Authorization: {auth}\r\n"));
                let (t, a) = (Instant::now(), ALLOCS.load(Ordering::Relaxed));
                let ok = svc.handle(&mut shield, now_ms, second.as_bytes(), src, Transport::Udp).unwrap();
                spent += t.elapsed();
                server_allocs += ALLOCS.load(Ordering::Relaxed) - a;
                registrations += 1;
                assert!(ok.starts_with(b"SIP/2.0 200"), "{}", String::from_utf8_lossy(&ok));
                while svc.poll_event().is_some() {}
                while shield.poll_decision().is_some() {}
            }
            spent
        })
    });
    println!("heap allocations per registration (both requests): {:.1}", server_allocs as f64 / registrations as f64);
}

criterion_group! { name = benches; config = Criterion::default().measurement_time(Duration::from_secs(5)); targets = bench }
criterion_main!(benches);
