//! The whole request path (parse, sanity, dispatch, registrar, authenticator, proxy, response builder)
//! on arbitrary bytes from a few sources, with the clock moving: no panic, every reply and every
//! forwarded message parses. Source 10.0.0.3 is a trunk, so INVITEs from it reach the proxy without a
//! digest, fork to the registered extension 1001 at 10.0.0.1 and 10.0.0.2, and responses from those
//! drive the client transactions; now and then a phone is reported unreachable.
//! (Scanner fingerprints still ban; a banned source is unbanned when the clock passes its ban.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxguard_pbx::{Binding, DialPlan, Directory, ExtensionAuth, Locals, RegistrarConfig, Service, Transport, Trunk};
use pbxguard_shield::{Shield, ShieldConfig, Threshold};
use pbxguard_sip::{Algorithm, Limits, Message, ha1};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn service() -> &'static Mutex<(Service, Shield)> {
    static S: OnceLock<Mutex<(Service, Shield)>> = OnceLock::new();
    S.get_or_init(|| {
        let mut m = HashMap::new();
        m.insert("1001".to_owned(), ExtensionAuth { ha1: Algorithm::ALL.map(|a| ha1(a, "1001", "fuzz", "pw")), algorithms: None, acl: None, ..Default::default() });
        let cfg = RegistrarConfig { realm: "fuzz".into(), ..Default::default() };
        let mut svc = Service::new(cfg, Arc::new(Directory::new(m)), [1; 32], 7);
        svc.set_locals(Locals { udp: Some("10.0.0.9:5060".parse().unwrap()), tcp: Some("10.0.0.9:5060".parse().unwrap()), tls: None });
        let trunk = Trunk { name: "t".into(), host: "10.0.0.3".into(), addr: "10.0.0.3:5060".parse().unwrap(), transport: Transport::Udp, auth: None, register: None, allow_refer: false };
        svc.set_dialplan(Arc::new(DialPlan { trunks: vec![Arc::new(trunk)], ..DialPlan::default() }));
        let binding = |i: u8| Binding {
            uri: format!("sip:1001@10.0.0.{i}:5060"),
            contact: format!("<sip:1001@10.0.0.{i}:5060>"),
            expires_at: u64::MAX / 2,
            call_id: format!("r{i}"),
            cseq: 1,
            q: None,
            source: format!("10.0.0.{i}:5060").parse().unwrap(),
            transport: "udp",
            user_agent: None,
            updated_at: 0,
        };
        svc.registrar_mut().restore("1001".into(), vec![binding(1), binding(2)]);
        Mutex::new((svc, Shield::new(ShieldConfig {
            // Bans would silence the four fuzzing sources for good and stop exploration; the detectors
            // still count every input.
            flood: Threshold { max: u32::MAX, window_ms: 1 },
            brute_force: Threshold { max: u32::MAX, window_ms: 1 },
            enumeration: Threshold { max: 1_000, window_ms: 1 },
            malformed: Threshold { max: u32::MAX, window_ms: 1 },
            ..Default::default()
        })))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let src = format!("10.0.0.{}:{}", sel % 4, 5060 + u16::from(sel >> 4)).parse().unwrap();
    let transport = [Transport::Udp, Transport::Tcp, Transport::Tls][usize::from(sel % 3)];
    let mut guard = service().lock().unwrap();
    let (svc, shield) = &mut *guard;
    // The clock moves 10 s per input, so bans (and nonces) expire as the fuzzer goes on.
    static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = 1_800_000_000 + CLOCK.fetch_add(10, std::sync::atomic::Ordering::Relaxed) + u64::from(sel);
    if let Some(reply) = svc.handle(shield, now * 1000, rest, src, transport) {
        Message::parse(&reply, &Limits::default()).expect("our replies parse");
    }
    svc.handle_timer(now * 1000);
    if sel & 0x0c == 0x0c {
        // A connection to one of the phones failed: its pending branches end as 503.
        let addr = format!("10.0.0.{}:5060", 1 + (sel >> 7)).parse().unwrap();
        svc.unreachable(now * 1000, pbxguard_pbx::Target { addr, transport });
    }
    while let Some(t) = svc.poll_transmit() {
        Message::parse(&t.data, &Limits::default()).expect("what we forward parses");
    }
    while svc.poll_event().is_some() {}
    while shield.poll_decision().is_some() {}
    svc.handle_timeout(now * 1000);
    shield.handle_timeout(now * 1000);
});
