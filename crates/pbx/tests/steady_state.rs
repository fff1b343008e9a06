//! Issue 10: "no allocation growth and no table rebuild in steady state". Registrations are handled
//! through the sans-IO service on a virtual clock until every bounded table (transaction cache,
//! nonce-counts, bindings, shield trackers) holds as much as it ever will; then two equal windows of
//! registrations are counted with a counting allocator: the same number of allocations per message,
//! memory still held not growing, and no large allocation (a table rehashing or being rebuilt).
//! Only the service's own calls are counted, not the test's client.
//!
//! One test in this file: the counters are process-wide.

use pbxguard_pbx::{Directory, ExtensionAuth, RegistrarConfig, Service, Transport};
use pbxguard_shield::{Shield, ShieldConfig, Threshold};
use pbxguard_sip::{Algorithm, Credentials, HeaderName, Limits, Message, ha1};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// Counts allocations (and the bytes still held) while `COUNTING` is on.
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize, delta: i64) {
    if COUNTING.load(Ordering::Relaxed) {
        if delta > 0 {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            LARGEST.fetch_max(size, Ordering::Relaxed);
        }
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; the bookkeeping touches only atomics
// (no allocation inside the allocator).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size(), l.size() as i64);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(0, -(l.size() as i64));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n, n as i64 - l.size() as i64);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

const REALM: &str = "steady";
const USERS: usize = 200;
/// Virtual time between registrations: the transaction cache (32 s) and the nonce-counts (nonce TTL,
/// 300 s) then reach their steady size after 640 and 6,000 registrations.
const STEP_MS: u64 = 50;

fn register(user: usize, call: u64, cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2:5061;rport;branch=z9hG4bK-{call}-{cseq}\r\n\
         From: <sip:u{user:03}@127.0.0.1>;tag={call}\r\nTo: <sip:u{user:03}@127.0.0.1>\r\nCall-ID: {call}@192.0.2.2\r\n\
         CSeq: {cseq} REGISTER\r\nContact: <sip:u{user:03}@192.0.2.2:5061;transport=UDP>\r\nMax-Forwards: 70\r\n\
         {auth}Expires: 3600\r\nUser-Agent: steady-state test\r\nContent-Length: 0\r\n\r\n"
    )
}

struct Client {
    svc: Service,
    shield: Shield,
    src: SocketAddr,
    call: u64,
    now_ms: u64,
}

impl Client {
    /// Handles one message with the counters on.
    fn handle(&mut self, msg: &str) -> Vec<u8> {
        COUNTING.store(true, Ordering::Relaxed);
        let r = self.svc.handle(&mut self.shield, self.now_ms, msg.as_bytes(), self.src, Transport::Udp);
        while self.svc.poll_event().is_some() {}
        while self.shield.poll_decision().is_some() {}
        if self.svc.poll_timeout().is_some_and(|t| t <= self.now_ms) {
            self.svc.handle_timeout(self.now_ms);
        }
        COUNTING.store(false, Ordering::Relaxed);
        let r = r.expect("an answer");
        // The client reads a copy; the service's own buffer is freed with the counters on, as the
        // daemon frees it once sent.
        let copy = r.clone();
        COUNTING.store(true, Ordering::Relaxed);
        drop(r);
        COUNTING.store(false, Ordering::Relaxed);
        copy
    }

    /// REGISTER → 401 → REGISTER with digest → 200.
    fn registration(&mut self) {
        self.call += 1;
        self.now_ms += STEP_MS;
        let user = self.call as usize % USERS;
        let challenge = self.handle(&register(user, self.call, 1, ""));
        let msg = Message::parse(&challenge, &Limits::default()).unwrap();
        let ch = Credentials::parse_challenge(msg.header(HeaderName::classify("WWW-Authenticate")).unwrap()).unwrap();
        let name = format!("u{user:03}");
        let h1 = ha1(Algorithm::Md5, &name, REALM, &format!("pw{user:03}x"));
        let auth = ch.answer(Algorithm::Md5, &name, &h1, "REGISTER", "sip:127.0.0.1:5060", "0a4f113b", 1);
        let ok = self.handle(&register(user, self.call, 2, &format!("Authorization: {auth}\r\n")));
        assert!(ok.starts_with(b"SIP/2.0 200"), "{}", String::from_utf8_lossy(&ok));
    }
}

/// (allocations per registration, bytes still held at the end, largest single allocation) over `n`.
fn window(c: &mut Client, n: u64) -> (f64, i64, usize) {
    let a = ALLOCS.load(Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    for _ in 0..n {
        c.registration();
    }
    (
        (ALLOCS.load(Ordering::Relaxed) - a) as f64 / n as f64,
        LIVE.load(Ordering::Relaxed),
        LARGEST.load(Ordering::Relaxed),
    )
}

#[test]
fn registrations_in_steady_state_allocate_the_same_and_hold_no_more() {
    let dir = (0..USERS)
        .map(|i| {
            let (u, p) = (format!("u{i:03}"), format!("pw{i:03}x"));
            (u.clone(), ExtensionAuth { ha1: Algorithm::ALL.map(|a| ha1(a, &u, REALM, &p)), ..Default::default() })
        })
        .collect::<HashMap<_, _>>();
    let svc = Service::new(
        RegistrarConfig { realm: REALM.into(), ..Default::default() },
        Arc::new(Directory::new(dir)),
        [7; 32],
        1,
    );
    let shield = Shield::new(ShieldConfig { flood: Threshold { max: u32::MAX, window_ms: 1 }, ..Default::default() });
    let mut c = Client { svc, shield, src: "192.0.2.2:5061".parse().unwrap(), call: 0, now_ms: 1_800_000_000_000 };
    // Warm-up: past the nonce TTL, so every table has reached its steady size.
    window(&mut c, 8_000);
    let (per_a, live_a, largest_a) = window(&mut c, 3_000);
    let (per_b, live_b, largest_b) = window(&mut c, 3_000);
    eprintln!(
        "allocations per registration {per_a:.2} / {per_b:.2}; held {live_a} → {live_b} bytes; largest {largest_a} / {largest_b}"
    );
    assert!((per_a - per_b).abs() < 0.05, "allocations per registration changed: {per_a} → {per_b}");
    // Both requests of a registration, the service's answers included (two replies, one cached).
    // 25 before the seventh session, 10 after it.
    assert!(per_b <= 12.0, "{per_b} allocations per registration");
    // What the service holds does not grow: the cache and the nonce-counts replace as many entries as
    // they add. A little slack for the order queue, compacted in steps.
    assert!(live_b - live_a < 64 * 1024, "held memory grew by {} bytes in 3,000 registrations", live_b - live_a);
    // A table rebuilt or rehashed would show as one large allocation.
    assert!(largest_a.max(largest_b) < 16 * 1024, "a {} byte allocation in steady state", largest_a.max(largest_b));
}
