//! The call-routing proxy through the sans-IO service, on a virtual clock: forking, CANCEL, the UDP
//! timers, hop-by-hop ACK, in-dialog relaying restricted to the dialog's parties, trunks and DIDs,
//! transfers towards trunks and country allow-lists.

use pbxguard_pbx::{
    Binding, DialPlan, Directory, Event, ExtensionAuth, Locals, RegistrarConfig, Route, Service, Transmit, Transport,
    Trunk,
};
use pbxguard_shield::{CallLimits, Categories, ClassOfService, CountryCode, Pattern, Shield, ShieldConfig, Threshold};
use pbxguard_sip::{Algorithm, HeaderName, Limits, Message, StartLine, Via, ha1};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

const REALM: &str = "proxy.test";
const T0: u64 = 1_800_000_000_000;
const PW: &str = "Caller!2026";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const US: &str = "192.0.2.1:5060";
const CALLER: &str = "192.0.2.10:5062";
const PHONE_A: &str = "192.0.2.20:5070";
const PHONE_B: &str = "192.0.2.21:5070";
const TRUNK: &str = "198.51.100.1:5060";

struct Rig {
    svc: Service,
    shield: Shield,
    now: u64,
}

/// The carrier every rig routes to: UDP at TRUNK, no digest, no registration, no transfers.
fn carrier() -> Trunk {
    Trunk {
        name: "carrier".into(),
        host: "198.51.100.1".into(),
        addr: addr(TRUNK),
        transport: Transport::Udp,
        auth: None,
        register: None,
        allow_refer: false,
    }
}

impl Rig {
    fn new(contacts: &[&str]) -> Self {
        let mut m = HashMap::new();
        for n in ["1001", "1002"] {
            m.insert(
                n.to_owned(),
                ExtensionAuth { ha1: Algorithm::ALL.map(|a| ha1(a, n, REALM, PW)), ..Default::default() },
            );
        }
        let cfg = RegistrarConfig { realm: REALM.into(), ..Default::default() };
        let mut svc = Service::new(cfg, Arc::new(Directory::new(m)), [7; 32], 3);
        svc.set_locals(Locals { udp: Some(addr(US)), tcp: None, tls: None });
        let plan = DialPlan {
            trunks: vec![Arc::new(carrier())],
            routes: vec![Route {
                pattern: Pattern::parse("_X.").unwrap(),
                trunk: "carrier".into(),
                strip: 0,
                prepend: String::new(),
            }],
            dids: [("5551000".to_owned(), "1002".to_owned())].into(),
            ..DialPlan::default()
        };
        svc.set_dialplan(Arc::new(plan));
        let bindings = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| Binding {
                uri: format!("sip:1002-{i}@{c}"),
                contact: format!("<sip:1002-{i}@{c}>"),
                expires_at: T0 / 1000 + 3600,
                call_id: format!("reg{i}"),
                cseq: 1,
                q: None,
                source: addr(c),
                transport: "udp",
                user_agent: None,
                updated_at: T0 / 1000,
            })
            .collect();
        if !contacts.is_empty() {
            svc.registrar_mut().restore("1002".into(), bindings);
        }
        let shield =
            Shield::new(ShieldConfig { flood: Threshold { max: u32::MAX, window_ms: 1 }, ..Default::default() });
        Self { svc, shield, now: T0 }
    }

    fn send(&mut self, from: &str, msg: &str) -> Option<String> {
        self.svc
            .handle(&mut self.shield, self.now, msg.as_bytes(), addr(from), Transport::Udp)
            .map(|r| String::from_utf8(r).unwrap())
    }

    fn out(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.svc.poll_transmit()).collect()
    }

    fn tick(&mut self, ms: u64) -> Vec<Transmit> {
        self.now += ms;
        self.svc.handle_timer(self.now);
        self.out()
    }

    /// Jumps the clock to the service's next wake-up, as the daemon sleeps until it, and runs what is
    /// due; `None` when nothing is pending before `limit`.
    fn wake(&mut self, limit: u64) -> Option<Vec<Transmit>> {
        let at = self.svc.poll_timeout().filter(|&t| t < limit)?;
        assert!(at >= self.now, "a wake-up in the past after handle_timeout ran: {at} < {}", self.now);
        self.now = at;
        self.svc.handle_timeout(self.now);
        Some(self.out())
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.svc.poll_event()).collect()
    }

    /// An authenticated INVITE from 1001 at CALLER; returns the 100 Trying.
    fn call(&mut self, number: &str, call_id: &str) -> String {
        self.call_with_body(number, call_id, "v=0\n")
    }

    fn call_with_body(&mut self, number: &str, call_id: &str, body: &str) -> String {
        self.call_full(number, call_id, body, "")
    }

    /// An authenticated INVITE with `headers` added.
    fn call_with_headers(&mut self, number: &str, call_id: &str, headers: &str) -> String {
        self.call_full(number, call_id, "v=0\n", headers)
    }

    fn call_full(&mut self, number: &str, call_id: &str, body: &str, headers: &str) -> String {
        let first = invite(number, call_id, 1, &format!("b1{call_id}"), headers);
        let ch = self.send(CALLER, &first).unwrap();
        assert_eq!(code(&ch), 407, "{ch}");
        let nonce = ch.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let uri = format!("sip:{number}@{US}");
        let h1 = ha1(Algorithm::Md5, "1001", REALM, PW);
        let ha2 = Algorithm::Md5.hash(&[b"INVITE", uri.as_bytes()]);
        let resp = Algorithm::Md5.hash(&[h1.as_bytes(), nonce.as_bytes(), b"00000001", b"c", b"auth", ha2.as_bytes()]);
        let auth = format!(
            "Proxy-Authorization: Digest username=\"1001\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\n"
        );
        let authed = invite(number, call_id, 2, &format!("b2{call_id}"), &format!("{headers}{auth}"))
            .replace("Content-Length: 4\r\n\r\nv=0\n", &format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.send(CALLER, &authed).unwrap()
    }
}

fn invite(number: &str, call_id: &str, cseq: u32, branch: &str, auth: &str) -> String {
    format!(
        "INVITE sip:{number}@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:{number}@{US}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
         Contact: <sip:1001@{CALLER}>\r\n{auth}Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
    )
}

fn code(raw: &str) -> u16 {
    match Message::parse(raw.as_bytes(), &Limits::default()).unwrap().start {
        StartLine::Response { code, .. } => code,
        StartLine::Request { .. } => 0,
    }
}

fn text(t: &Transmit) -> String {
    String::from_utf8(t.data.clone()).unwrap()
}

fn first_line(t: &Transmit) -> String {
    text(t).lines().next().unwrap().to_owned()
}

/// The callee's response to a forwarded request: its Vias, From, To (with `tag`), Call-ID, CSeq.
fn answer(req: &Transmit, code: u16, tag: &str) -> String {
    let raw = text(req);
    let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
    let mut out = format!("SIP/2.0 {code} X\r\n");
    for v in m.header_values(HeaderName::Via) {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in m.header_all(HeaderName::RecordRoute) {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    let to = m.header(HeaderName::To).unwrap();
    let to = if to.contains("tag=") { to.to_owned() } else { format!("{to};tag={tag}") };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:callee@{}>\r\nContent-Length: 0\r\n\r\n",
        m.header(HeaderName::From).unwrap(),
        m.call_id().unwrap(),
        m.header(HeaderName::CSeq).unwrap(),
        req.target.addr
    ));
    out
}

fn top_branch(raw: &str) -> String {
    let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
    Via::parse(m.header_values(HeaderName::Via).next().unwrap()).unwrap().branch().unwrap().to_owned()
}

#[test]
fn forks_to_every_contact_and_the_first_2xx_wins() {
    let mut r = Rig::new(&[PHONE_A, PHONE_B]);
    assert_eq!(code(&r.call("1002", "fork1")), 100);
    let out = r.out();
    assert_eq!(out.len(), 2);
    let to_a = out.iter().find(|t| t.target.addr == addr(PHONE_A)).unwrap().clone();
    let to_b = out.iter().find(|t| t.target.addr == addr(PHONE_B)).unwrap().clone();
    let a = text(&to_a);
    assert!(
        a.starts_with(&format!("INVITE sip:1002-0@{PHONE_A} SIP/2.0\r\nVia: SIP/2.0/UDP {US};branch=z9hG4bKpg")),
        "{a}"
    );
    assert!(a.contains(&format!("Record-Route: <sip:{US};lr>\r\n")), "{a}");
    assert!(a.contains("Max-Forwards: 69\r\n") && !a.contains("Proxy-Authorization"), "{a}");
    assert_ne!(top_branch(&a), top_branch(&text(&to_b)));
    // A rings: the 180 goes to the caller without our Via.
    assert_eq!(r.send(PHONE_A, &answer(&to_a, 180, "a")), None);
    let up = r.out();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].target.addr, addr(CALLER));
    assert!(first_line(&up[0]).starts_with("SIP/2.0 180"));
    assert!(!text(&up[0]).contains("z9hG4bKpg"), "{}", text(&up[0]));
    // B answers: the 200 goes up, A gets a CANCEL on its branch.
    r.send(PHONE_B, &answer(&to_b, 200, "b"));
    let out = r.out();
    let ok = out.iter().find(|t| t.target.addr == addr(CALLER)).expect("200 upstream");
    assert!(first_line(ok).starts_with("SIP/2.0 200"));
    let cancel = out.iter().find(|t| t.target.addr == addr(PHONE_A)).expect("CANCEL to A");
    assert!(first_line(cancel).starts_with("CANCEL sip:1002-0@"), "{}", text(cancel));
    assert_eq!(top_branch(&text(cancel)), top_branch(&a));
    let ev = r.events();
    assert!(
        matches!(&ev[0], Event::CallStarted { caller, callee, category: "internal", .. } if caller == "1001" && callee == "1002"),
        "{ev:?}"
    );
    assert!(matches!(&ev[1], Event::CallAnswered { call_id } if call_id == "fork1"), "{ev:?}");
    // A's 487 after the CANCEL is acknowledged hop by hop and goes no further.
    r.send(PHONE_A, &answer(&to_a, 487, "a"));
    let out = r.out();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(first_line(&out[0]).starts_with("ACK sip:1002-0@") && out[0].target.addr == addr(PHONE_A));
}

#[test]
fn udp_retransmissions_then_408_then_timer_g_until_ack() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "quiet");
    let sent = r.out();
    assert_eq!(sent.len(), 1);
    // Timer A: 0.5 s, then 1 s, 2 s ... the same bytes again.
    assert!(r.tick(499).is_empty());
    let re = r.tick(1);
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].data, sent[0].data);
    assert!(r.tick(999).is_empty());
    assert_eq!(r.tick(1).len(), 1);
    // Timer B: nothing at all for 32 s ends the branch; the caller gets 408.
    let mut up = Vec::new();
    for _ in 0..40 {
        up.extend(r.tick(1000).into_iter().filter(|t| t.target.addr == addr(CALLER)));
        if !up.is_empty() {
            break;
        }
    }
    assert_eq!(up.len(), 1);
    assert!(first_line(&up[0]).starts_with("SIP/2.0 408"), "{}", text(&up[0]));
    assert!(r.events().iter().any(|e| matches!(e, Event::CallEnded { status: 408, .. })));
    // Timer G: the 408 is repeated until the caller's ACK.
    let again = r.tick(500);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, up[0].data);
    let to_tag = text(&up[0]).split("tag=").nth(2).unwrap().split("\r\n").next().unwrap().to_owned();
    let ack = format!(
        "ACK sip:1002@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKb2quiet\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:1002@{US}>;tag={to_tag}\r\nCall-ID: quiet\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(r.send(CALLER, &ack), None);
    assert!(r.tick(5000).is_empty(), "no retransmission after the ACK");
}

#[test]
fn busy_callee_is_acknowledged_and_the_caller_gets_486() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "busy");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 486, "busy"));
    let out = r.out();
    let ack = out.iter().find(|t| t.target.addr == addr(PHONE_A)).expect("ACK");
    let ack = text(ack);
    assert!(ack.starts_with("ACK sip:1002-0@") && ack.contains(";tag=busy") && ack.contains("CSeq: 2 ACK"), "{ack}");
    assert_eq!(top_branch(&ack), top_branch(&text(&fwd)));
    let up = out.iter().find(|t| t.target.addr == addr(CALLER)).expect("486 upstream");
    assert!(first_line(up).starts_with("SIP/2.0 486"));
    // A response from anyone but the callee is ignored.
    r.send("203.0.113.9:5060", &answer(&fwd, 200, "spoof"));
    assert!(r.out().is_empty());
}

#[test]
fn cancel_from_the_caller_ends_in_487() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "cxl");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 180, "a"));
    r.out();
    let cancel = format!(
        "CANCEL sip:1002@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKb2cxl\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:1002@{US}>\r\nCall-ID: cxl\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(code(&r.send(CALLER, &cancel).unwrap()), 200);
    let out = r.out();
    assert_eq!(out.len(), 1);
    assert!(first_line(&out[0]).starts_with("CANCEL sip:1002-0@"));
    r.send(PHONE_A, &answer(&fwd, 487, "a"));
    let up: Vec<_> = r.out().into_iter().filter(|t| t.target.addr == addr(CALLER)).collect();
    assert!(first_line(&up[0]).starts_with("SIP/2.0 487"));
    // A CANCEL for nothing: 481.
    let stray = cancel.replace("z9hG4bKb2cxl", "z9hG4bKnone");
    assert_eq!(code(&r.send(CALLER, &stray).unwrap()), 481);
}

#[test]
fn in_dialog_requests_pass_only_between_the_parties() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "dlg");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "callee"));
    r.out();
    let req = |method: &str, from: &str, from_tag: &str, to_tag: &str, branch: &str| {
        format!(
            "{method} sip:x@{from} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             Route: <sip:{US};lr>\r\nFrom: <sip:a@x>;tag={from_tag}\r\nTo: <sip:b@x>;tag={to_tag}\r\nCall-ID: dlg\r\n\
             CSeq: 3 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // The caller's ACK goes to the callee, without our Route entry.
    assert_eq!(r.send(CALLER, &req("ACK", CALLER, "caller", "callee", "ack1")), None);
    let out = r.out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.addr, addr(PHONE_A));
    assert!(!text(&out[0]).contains("Route:"), "{}", text(&out[0]));
    // Someone else with the right Call-ID and tags: refused.
    let stranger = "203.0.113.7:5060";
    assert_eq!(code(&r.send(stranger, &req("BYE", stranger, "caller", "callee", "evil")).unwrap()), 403);
    assert!(r.out().is_empty());
    // Unknown dialog: 481.
    let unknown = req("BYE", CALLER, "caller", "callee", "u").replace("Call-ID: dlg", "Call-ID: nope");
    assert_eq!(code(&r.send(CALLER, &unknown).unwrap()), 481);
    // The callee hangs up: BYE to the caller, the caller's 200 back to the callee.
    assert_eq!(r.send(PHONE_A, &req("BYE", PHONE_A, "callee", "caller", "bye1")), None);
    let bye = r.out().remove(0);
    assert_eq!(bye.target.addr, addr(CALLER));
    r.send(CALLER, &answer(&bye, 200, "x"));
    let ok = r.out();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].target.addr, addr(PHONE_A));
    assert!(first_line(&ok[0]).starts_with("SIP/2.0 200"));
    assert!(r.events().iter().any(|e| matches!(e, Event::CallEnded { status: 200, call_id } if call_id == "dlg")));
    // The dialog lingers for retransmitted BYEs, then every table is empty again.
    assert_eq!(r.svc.active_calls(), 1);
    r.tick(32_000);
    assert_eq!(r.svc.active_calls(), 0);
    r.tick(32_000);
    r.svc.handle_timeout(r.now + 64_000);
    assert_eq!(r.svc.table_sizes().0, 0, "transactions and relays are forgotten");
}

#[test]
fn trunk_calls_reach_dids_and_never_transit() {
    let mut r = Rig::new(&[PHONE_A]);
    let from_trunk = |number: &str, id: &str| {
        format!(
            "INVITE sip:{number}@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
             From: <sip:2125551234@carrier>;tag=t\r\nTo: <sip:{number}@{US}>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    // No challenge for the trunk: it is recognised by its address.
    assert_eq!(code(&r.send(TRUNK, &from_trunk("5551000", "in1")).unwrap()), 100);
    let out = r.out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.addr, addr(PHONE_A));
    // An external number from the trunk would be toll fraud through us: 404.
    assert_eq!(code(&r.send(TRUNK, &from_trunk("01144201234567", "in2")).unwrap()), 404);
    assert!(r.out().is_empty());
    // The same request from anywhere else is challenged.
    let other = from_trunk("5551000", "in3").replace(TRUNK, "198.51.100.2:5060");
    assert_eq!(code(&r.send("198.51.100.2:5060", &other).unwrap()), 407);
}

#[test]
fn loops_and_exhausted_max_forwards_are_refused() {
    let mut r = Rig::new(&[US]);
    // A contact pointing back at us: the forwarded INVITE returns with our Via and is refused.
    r.call("1002", "loop");
    let fwd = r.out().remove(0);
    assert_eq!(fwd.target.addr, addr(US));
    let back = r.send(US, &text(&fwd)).unwrap();
    assert_eq!(code(&back), 482);
    let mf0 = invite("1002", "mf", 1, "mf", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(code(&r.send(CALLER, &mf0).unwrap()), 483);
}

#[test]
fn one_extension_cannot_fill_the_tables_with_unanswered_calls() {
    let mut r = Rig::new(&[PHONE_A]);
    for i in 0..16 {
        assert_eq!(code(&r.call("1002", &format!("p{i}"))), 100);
    }
    assert_eq!(code(&r.call("1002", "p16")), 503, "the 17th pending set-up is refused");
    // One answer frees a slot.
    let fwd = r.out().into_iter().find(|t| text(t).contains("Call-ID: p0\r\n")).unwrap();
    r.send(PHONE_A, &answer(&fwd, 486, "busy"));
    assert_eq!(code(&r.call("1002", "p17")), 100);
    // An oversized INVITE is refused before it is stored.
    let mut r = Rig::new(&[PHONE_A]);
    assert_eq!(code(&r.call_with_body("1002", "big", &"a".repeat(20_000))), 413);
    assert!(r.out().is_empty());
}

/// The carrier's 401 or 407 (realm "carrier", MD5, qop=auth) to a request it received.
fn challenged(req: &Transmit, code: u16, nonce: &str) -> String {
    let header = if code == 401 { "WWW-Authenticate" } else { "Proxy-Authenticate" };
    answer(req, code, "t").replace(
        "Content-Length: 0",
        &format!(
            "{header}: Digest realm=\"carrier\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0"
        ),
    )
}

fn cseq_of(raw: &str) -> String {
    let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
    m.header(HeaderName::CSeq).unwrap().to_owned()
}

#[test]
fn a_trunk_challenge_is_answered_and_the_dialog_translates_cseq() {
    let mut r = Rig::new(&[PHONE_A]);
    let auth = pbxguard_pbx::TrunkAuth {
        username: "acct".into(),
        realm: "carrier".into(),
        ha1_md5: ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"),
        ha1_sha256: ha1(Algorithm::Sha256, "acct", "carrier", "Tr!unk"),
    };
    let trunk = Trunk { auth: Some(auth), ..carrier() };
    r.svc.set_dialplan(Arc::new(DialPlan {
        trunks: vec![Arc::new(trunk)],
        routes: vec![Route {
            pattern: Pattern::parse("_X.").unwrap(),
            trunk: "carrier".into(),
            strip: 0,
            prepend: String::new(),
        }],
        ..DialPlan::default()
    }));
    assert_eq!(code(&r.call("2125551234", "tr1")), 100);
    let first = r.out().remove(0);
    assert_eq!(cseq_of(&text(&first)), "2 INVITE");
    let challenge = challenged(&first, 407, "n1");
    r.send(TRUNK, &challenge);
    let out = r.out();
    assert_eq!(out.len(), 2, "ACK for the 407 and the INVITE with credentials: {out:?}");
    assert!(first_line(&out[0]).starts_with("ACK "));
    let again = text(&out[1]);
    assert_eq!(cseq_of(&again), "3 INVITE");
    assert_ne!(top_branch(&again), top_branch(&text(&first)));
    let m = Message::parse(again.as_bytes(), &Limits::default()).unwrap();
    let creds = pbxguard_sip::Credentials::parse(m.header(HeaderName::ProxyAuthorization).unwrap()).unwrap();
    assert!(creds.verify(Algorithm::Md5, &ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"), "INVITE"));
    // The caller never saw the 407, and sees the 200 with its own CSeq.
    r.send(TRUNK, &answer(&out[1], 200, "t"));
    let up = r.out();
    assert_eq!(up.len(), 1);
    assert_eq!(cseq_of(&text(&up[0])), "2 INVITE");
    // In the dialog, the caller's requests run one ahead towards the trunk, and back again.
    let req = |method: &str, n: u32, branch: &str| {
        format!(
            "{method} sip:x@{TRUNK} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             Route: <sip:{US};lr>\r\nFrom: <sip:1001@x>;tag=caller\r\nTo: <sip:b@x>;tag=t\r\nCall-ID: tr1\r\n\
             CSeq: {n} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    r.send(CALLER, &req("ACK", 2, "ack"));
    let ack = r.out().remove(0);
    assert_eq!(cseq_of(&text(&ack)), "3 ACK");
    r.send(CALLER, &req("BYE", 3, "bye"));
    let bye = r.out().remove(0);
    assert_eq!(cseq_of(&text(&bye)), "4 BYE");
    // The trunk challenges the BYE too: answered once with credentials, one CSeq further; the caller
    // sees only the final answer, with its own CSeq.
    let challenge = challenged(&bye, 401, "n2");
    r.send(TRUNK, &challenge);
    let out = r.out();
    assert_eq!(out.len(), 1, "only the BYE with credentials: {out:?}");
    let bye2 = text(&out[0]);
    assert_eq!((out[0].target.addr, cseq_of(&bye2)), (addr(TRUNK), "5 BYE".to_owned()));
    let m = Message::parse(bye2.as_bytes(), &Limits::default()).unwrap();
    let creds = pbxguard_sip::Credentials::parse(m.header(HeaderName::Authorization).unwrap()).unwrap();
    assert!(creds.verify(Algorithm::Md5, &ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"), "BYE"));
    // A second challenge is not answered again: the caller gets it.
    r.send(TRUNK, &challenge.replace(&top_branch(&text(&bye)), &top_branch(&bye2)));
    let up = r.out();
    assert_eq!((up.len(), up[0].target.addr), (1, addr(CALLER)));
    assert_eq!(code(&text(&up[0])), 401);
    r.send(TRUNK, &answer(&out[0], 200, "t"));
    let ok = r.out().remove(0);
    assert_eq!((ok.target.addr, cseq_of(&text(&ok))), (addr(CALLER), "3 BYE".to_owned()));
}

#[test]
fn an_unreachable_callee_fails_the_call_at_once_with_503() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "gone");
    let fwd = r.out().remove(0);
    // Another target's failure changes nothing.
    r.svc.unreachable(r.now, pbxguard_pbx::Target { addr: addr("192.0.2.200:5060"), transport: fwd.target.transport });
    assert!(r.out().is_empty());
    r.svc.unreachable(r.now, fwd.target);
    let up = r.out();
    assert_eq!(up.len(), 1);
    assert!(first_line(&up[0]).starts_with("SIP/2.0 503"), "{}", text(&up[0]));
    assert!(r.events().iter().any(|e| matches!(e, Event::CallEnded { status: 503, .. })));
    // The branch is over: no INVITE retransmission follows.
    assert!(r.tick(1000).iter().all(|t| t.target.addr == addr(CALLER)));
}

/// When the contacts' bindings expire, in ms: the one wake-up of a service with nothing else to do.
const BINDINGS_EXPIRE: u64 = (T0 / 1000 + 3600) * 1000;

#[test]
fn an_idle_service_asks_for_no_wake_up_and_housekeeping_has_its_deadlines() {
    let mut r = Rig::new(&[]);
    assert_eq!(r.svc.poll_timeout(), None);
    // A cached final response (OPTIONS over UDP) is forgotten 32 s on, in whole seconds.
    let options = format!(
        "OPTIONS sip:{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKopt\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=o\r\nTo: <sip:{US}>\r\nCall-ID: opt\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(code(&r.send(CALLER, &options).unwrap()), 200);
    assert_eq!(r.svc.poll_timeout(), Some((T0 / 1000 + 32) * 1000));
    // A throttle is lifted when it ends.
    r.svc.throttle_user("1001".into(), T0 + 5_000);
    assert_eq!(r.svc.poll_timeout(), Some(T0 + 5_000));
    assert_eq!(r.wake(u64::MAX), Some(vec![]));
    assert_eq!(r.now, T0 + 5_000);
    assert_eq!(r.wake(u64::MAX), Some(vec![]));
    assert_eq!(r.now, (T0 / 1000 + 32) * 1000);
    assert_eq!(r.svc.poll_timeout(), None);
    // Registered contacts: nothing to do until the first binding expires, then nothing at all.
    let mut r = Rig::new(&[PHONE_A]);
    assert_eq!(r.svc.poll_timeout(), Some(BINDINGS_EXPIRE));
    r.wake(u64::MAX);
    assert_eq!((r.svc.registrar().binding_count(), r.svc.poll_timeout()), (0, None));
}

#[test]
fn poll_timeout_follows_an_invite_over_udp_until_the_transaction_is_gone() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "pt");
    let sent = r.out();
    assert_eq!(sent.len(), 1);
    // Timer A: the forwarded INVITE is due again T1 after it was sent.
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 500));
    let re = r.wake(u64::MAX).unwrap();
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].data, sent[0].data);
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 1000));
    // The callee is busy: its 486 is acknowledged, goes upstream, and Timer G runs until the ACK.
    r.now += 200;
    r.send(PHONE_A, &answer(&sent[0], 486, "busy"));
    let out = r.out();
    let up = out.iter().find(|t| t.target.addr == addr(CALLER)).expect("486 upstream");
    assert!(first_line(up).starts_with("SIP/2.0 486"));
    let final_at = r.now;
    assert_eq!(r.svc.poll_timeout(), Some(final_at + 500));
    let to_tag = text(up).split("tag=").nth(2).unwrap().split("\r\n").next().unwrap().to_owned();
    let ack = format!(
        "ACK sip:1002@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKb2pt\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:1002@{US}>;tag={to_tag}\r\nCall-ID: pt\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(r.send(CALLER, &ack), None);
    // From here only forgetting is left: the server transaction lingers 32 s, the client one 32 s more
    // for late responses; nothing is sent, and then the service is idle again.
    let mut wakes = 0;
    while let Some(out) = r.wake(BINDINGS_EXPIRE) {
        assert!(out.is_empty(), "{out:?}");
        wakes += 1;
    }
    assert!(wakes <= 4, "{wakes} wake-ups");
    assert_eq!(r.now, final_at + 64_000);
    assert_eq!((r.svc.table_sizes().0, r.svc.active_calls()), (0, 0));
    assert_eq!(r.svc.poll_timeout(), Some(BINDINGS_EXPIRE));
}

#[test]
fn sleeping_until_poll_timeout_keeps_every_timer_on_time() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "asleep");
    let sent = r.out().remove(0);
    let t0 = r.now;
    let mut invites = Vec::new();
    let mut upstream = Vec::new();
    while let Some(out) = r.wake(BINDINGS_EXPIRE) {
        for t in out {
            if t.target.addr == addr(CALLER) {
                upstream.push((r.now - t0, first_line(&t)));
            } else {
                assert_eq!(t.data, sent.data);
                invites.push(r.now - t0);
            }
        }
    }
    // Timer A doubles from T1 until Timer B (64*T1) ends the branch with 408; Timer G then repeats the
    // 408 from T1, doubling up to T2, for 32 s (no ACK ever comes).
    assert_eq!(invites, [500, 1_500, 3_500, 7_500, 15_500, 31_500]);
    let at: Vec<u64> = upstream.iter().map(|(t, _)| *t).collect();
    assert_eq!(at, [32_000, 32_500, 33_500, 35_500, 39_500, 43_500, 47_500, 51_500, 55_500, 59_500, 63_500]);
    assert!(upstream.iter().all(|(_, l)| l.starts_with("SIP/2.0 408")), "{upstream:?}");
    assert_eq!(r.svc.table_sizes().0, 0);
}

#[test]
fn trunk_registration_is_a_deadline_too() {
    let mut r = Rig::new(&[PHONE_A]);
    let trunk = |transport| Trunk {
        transport,
        auth: Some(pbxguard_pbx::TrunkAuth {
            username: "acct".into(),
            realm: "carrier".into(),
            ha1_md5: ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"),
            ha1_sha256: ha1(Algorithm::Sha256, "acct", "carrier", "Tr!unk"),
        }),
        register: Some(600),
        ..carrier()
    };
    // Over TCP, on which this proxy does not listen: nothing can be sent, so nothing to wake up for.
    r.svc.set_dialplan(Arc::new(DialPlan { trunks: vec![Arc::new(trunk(Transport::Tcp))], ..DialPlan::default() }));
    assert_eq!(r.svc.poll_timeout(), Some(BINDINGS_EXPIRE));
    // Over UDP: due at once, then the retransmission 2 s on, then the refresh at half the granted time.
    r.svc.set_dialplan(Arc::new(DialPlan { trunks: vec![Arc::new(trunk(Transport::Udp))], ..DialPlan::default() }));
    assert!(r.svc.poll_timeout().is_some_and(|t| t <= r.now));
    r.svc.handle_timeout(r.now);
    let reg = r.out().remove(0);
    assert!(first_line(&reg).starts_with("REGISTER sip:198.51.100.1:5060 "), "{}", text(&reg));
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 2_000));
    r.now += 100;
    r.send(TRUNK, &answer(&reg, 200, "t"));
    assert_eq!(r.svc.trunk_registrations(), [("carrier".to_owned(), true)]);
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 300_000));
}

/// The carrier trunk of [`Rig`] with transfers allowed or not, a default Class of Service allowing
/// national and international calls to `countries` only (premium-rate not at all), and `limits`.
fn transfer_plan(allow_refer: bool, countries: &[&str], limits: CallLimits) -> Arc<DialPlan> {
    let cos = ClassOfService {
        name: "default".into(),
        allow: Categories::parse("internal,local,national,international").unwrap(),
        countries: Some(countries.iter().map(|c| CountryCode::try_from(*c).unwrap()).collect()),
    };
    Arc::new(DialPlan {
        trunks: vec![Arc::new(Trunk { allow_refer, ..carrier() })],
        routes: vec![Route {
            pattern: Pattern::parse("_X.").unwrap(),
            trunk: "carrier".into(),
            strip: 0,
            prepend: String::new(),
        }],
        cos: [("default".to_owned(), cos)].into(),
        limits,
        ..DialPlan::default()
    })
}

/// A request inside dialog `call_id`, from `from` with its tag to the other party's tag.
fn in_dialog(method: &str, from: &str, from_tag: &str, to_tag: &str, call_id: &str, cseq: u32, extra: &str) -> String {
    format!(
        "{method} sip:x@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{method}{call_id}{cseq}\r\n\
         Max-Forwards: 70\r\nRoute: <sip:{US};lr>\r\nFrom: <sip:a@x>;tag={from_tag}\r\nTo: <sip:b@x>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn refer_to(number: &str) -> String {
    format!("Refer-To: <sip:{number}@198.51.100.1>\r\n")
}

/// 1001 in an answered call to a national number through the carrier trunk.
fn trunk_call(r: &mut Rig, call_id: &str) {
    assert_eq!(code(&r.call("2125551234", call_id)), 100);
    let fwd = r.out().remove(0);
    assert_eq!(fwd.target.addr, addr(TRUNK));
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    r.events();
}

fn refused(events: &[Event]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CallRefused { extension, number, status: 403, rule, .. } => {
                Some((extension.clone(), number.clone(), rule.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_refer_towards_a_trunk_is_refused_unless_the_trunk_accepts_transfers() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(transfer_plan(false, &["44"], CallLimits::default()));
    trunk_call(&mut r, "x1");
    // Blind transfer of the carrier call to an international number: 403, nothing reaches the trunk.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "x1", 3, &refer_to("011441632960000"));
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    assert!(r.out().is_empty());
    let ev = refused(&r.events());
    assert_eq!(ev.len(), 1, "{ev:?}");
    let (ext, number, rule) = &ev[0];
    assert_eq!((ext.as_str(), number.as_str()), ("1001", "011441632960000"));
    assert!(rule.contains("trunk carrier does not accept transfers (REFER)"), "{rule}");
    // The retransmitted REFER gets the same answer, and still goes nowhere.
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    assert!(r.out().is_empty());
    // Attended transfer (INVITE with Replaces) inside the call: refused the same way.
    let replaces = in_dialog("INVITE", CALLER, "caller", "t", "x1", 4, "Replaces: other;to-tag=a;from-tag=b\r\n");
    assert_eq!(code(&r.send(CALLER, &replaces).unwrap()), 403);
    assert!(r.out().is_empty());
    assert!(refused(&r.events())[0].2.contains("(INVITE with Replaces)"));
    // The rest of the dialog is untouched: a re-INVITE and the BYE still pass.
    r.send(CALLER, &in_dialog("INVITE", CALLER, "caller", "t", "x1", 5, ""));
    assert_eq!(r.out()[0].target.addr, addr(TRUNK));
    // The carrier may transfer the phone: its REFER reaches the extension.
    let from_trunk = in_dialog("REFER", TRUNK, "t", "caller", "x1", 9, &refer_to("011441632960000"));
    assert_eq!(r.send(TRUNK, &from_trunk), None);
    let out = r.out();
    assert_eq!((out.len(), out[0].target.addr), (1, addr(CALLER)));
    assert!(first_line(&out[0]).starts_with("REFER "));
    assert!(refused(&r.events()).is_empty());
}

#[test]
fn with_allow_refer_the_refer_target_is_checked_like_a_new_call() {
    let mut r = Rig::new(&[PHONE_A]);
    let limits = CallLimits { per_hour: 3, ..CallLimits::default() };
    r.svc.set_dialplan(transfer_plan(true, &["44"], limits));
    trunk_call(&mut r, "y1");
    // A country the Class of Service allows: the REFER goes to the trunk as it came.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 3, &refer_to("011441632960000"));
    assert_eq!(r.send(CALLER, &refer), None);
    let out = r.out();
    assert_eq!((out.len(), out[0].target.addr), (1, addr(TRUNK)));
    assert!(text(&out[0]).contains("Refer-To: <sip:011441632960000@198.51.100.1>"), "{}", text(&out[0]));
    assert!(refused(&r.events()).is_empty());
    // Its answer comes back to the phone.
    r.send(TRUNK, &answer(&out[0], 202, "t"));
    let up = r.out();
    assert_eq!((up.len(), up[0].target.addr, code(&text(&up[0]))), (1, addr(CALLER), 202));
    // Another country, premium-rate, a number in no category: refused like new calls would be, naming
    // the rule; none reaches the trunk.
    let cases = [
        ("01149301234567", "class of service default does not allow country 49 (Germany) (_011.)"),
        ("19005551234", "class of service default does not allow premium-rate"),
        ("0119991234567", "a number with no known country code"),
        ("12", "number matches no category"),
    ];
    for (i, (number, why)) in cases.into_iter().enumerate() {
        let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 10 + i as u32, &refer_to(number));
        assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403, "{number}");
        assert!(r.out().is_empty(), "{number}");
        let ev = refused(&r.events());
        assert_eq!((ev[0].0.as_str(), ev[0].1.as_str()), ("1001", number));
        assert!(ev[0].2.starts_with("transfer: ") && ev[0].2.contains(why), "{number}: {}", ev[0].2);
    }
    // An INVITE with Replaces inside the call passes on a trunk that accepts transfers.
    r.send(CALLER, &in_dialog("INVITE", CALLER, "caller", "t", "y1", 20, "Replaces: z;to-tag=a;from-tag=b\r\n"));
    assert_eq!(r.out()[0].target.addr, addr(TRUNK));
    // The hourly limit counts transfers: the call and one transfer so far; a third attempt is the
    // last one allowed, the fourth is refused and suspends the extension.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 30, &refer_to("2125550001"));
    assert_eq!(r.send(CALLER, &refer), None);
    assert_eq!(r.out().len(), 1);
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 31, &refer_to("2125550002"));
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    let ev = r.events();
    assert!(refused(&ev)[0].2.contains("transfer: at most 3 outbound calls per hour"), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(e, Event::ExtensionSuspended { extension, .. } if extension == "1001")));
    // Suspended now: even a national transfer is refused.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 32, &refer_to("2125550003"));
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    assert!(refused(&r.events())[0].2.contains("extension suspended"));
}

#[test]
fn a_refer_between_extensions_is_unchanged() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(transfer_plan(false, &["44"], CallLimits::default()));
    r.call("1002", "e1");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "callee"));
    r.out();
    r.events();
    // Whatever it names: the phone that gets it calls through this proxy, and is checked then.
    for (i, number) in ["01149301234567", "19005551234"].into_iter().enumerate() {
        let refer = in_dialog("REFER", CALLER, "caller", "callee", "e1", 3 + i as u32, &refer_to(number));
        assert_eq!(r.send(CALLER, &refer), None);
        let out = r.out();
        assert_eq!((out.len(), out[0].target.addr), (1, addr(PHONE_A)), "{number}");
    }
    assert!(refused(&r.events()).is_empty());
    // A REFER from a third address with the dialog's tags is the relay's to refuse, not a transfer.
    let stranger = "203.0.113.7:5060";
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(transfer_plan(false, &["44"], CallLimits::default()));
    trunk_call(&mut r, "e2");
    let refer = in_dialog("REFER", stranger, "caller", "t", "e2", 3, &refer_to("011441632960000"));
    assert_eq!(code(&r.send(stranger, &refer).unwrap()), 403);
    let ev = r.events();
    assert!(refused(&ev).is_empty() && ev.iter().any(|e| matches!(e, Event::Malformed { .. })), "{ev:?}");
}

#[test]
fn a_new_invite_with_replaces_to_a_trunk_needs_allow_refer() {
    for (allow, want) in [(false, 403), (true, 100)] {
        let mut r = Rig::new(&[PHONE_A]);
        r.svc.set_dialplan(transfer_plan(allow, &["44"], CallLimits::default()));
        let id = format!("nr{allow}");
        let replaces = "Replaces: other;to-tag=a;from-tag=b\r\n";
        let got = r.call_with_headers("2125551234", &id, replaces);
        assert_eq!(code(&got), want, "allow_refer {allow}: {got}");
        let to_trunk = r.out().into_iter().filter(|t| t.target.addr == addr(TRUNK)).count();
        assert_eq!(to_trunk, usize::from(allow));
        let ev = refused(&r.events());
        if !allow {
            assert!(ev[0].2.contains("(INVITE with Replaces)"), "{ev:?}");
            // Emergency calls go through whatever they carry.
            assert_eq!(code(&r.call_with_headers("911", "nr911", replaces)), 100);
        }
    }
}

#[test]
fn a_country_list_lets_only_its_countries_through() {
    let mut r = Rig::new(&[PHONE_A]);
    let roomy = CallLimits {
        max_concurrent: 100,
        per_hour: 100,
        international_per_hour: 100,
        suspend: false,
        ..CallLimits::default()
    };
    r.svc.set_dialplan(transfer_plan(false, &["44", "353"], roomy));
    for (i, (number, want)) in [
        ("01144201234567", 100),
        ("011353123456789", 100),
        ("004930123456", 403),
        ("0111212555123", 403),
        ("0119991234567", 403),
        ("2125551234", 100),
    ]
    .into_iter()
    .enumerate()
    {
        let got = r.call(number, &format!("c{i}"));
        assert_eq!(code(&got), want, "{number}");
        let to_trunk = r.out().into_iter().filter(|t| t.target.addr == addr(TRUNK)).count();
        assert_eq!(to_trunk, usize::from(want == 100), "{number}");
    }
    let rules: Vec<String> = refused(&r.events()).into_iter().map(|e| e.2).collect();
    assert_eq!(
        rules,
        [
            "class of service default does not allow country 49 (Germany) (_00.)",
            "class of service default does not allow country 1 (North American Numbering Plan) (_011.)",
            "class of service default does not allow a number with no known country code (_011.)",
        ]
    );
}

/// Monday 2027-01-18 00:00 UTC, plus `day` days and `hour` hours.
fn monday(day: u64, hour: u64) -> u64 {
    1_800_230_400_000 + day * 86_400_000 + hour * 3_600_000
}

#[test]
fn unusual_calls_raise_an_event_and_with_suspend_on_anomaly_suspend_the_extension() {
    let mut r = Rig::new(&[]);
    let plan = |suspend_on_anomaly| {
        let cos = ClassOfService {
            name: "default".into(),
            allow: Categories::parse("internal,local,national,international,premium-rate").unwrap(),
            countries: None,
        };
        let limits = CallLimits {
            business_hours: pbxguard_shield::anomaly::BusinessHours::parse("mon-fri 08:00-18:00").unwrap(),
            suspend_on_anomaly,
            max_concurrent: 100,
            ..CallLimits::default()
        };
        Arc::new(DialPlan {
            cos: [("default".to_owned(), cos)].into(),
            limits,
            ..(*transfer_plan(false, &[], CallLimits::default())).clone()
        })
    };
    r.svc.set_dialplan(plan(false));
    // The calls log taught it: 1001 has called the United Kingdom before.
    r.svc.learn_call("1001", "011441632960000");
    let unusual = |ev: &[Event]| -> Vec<String> {
        ev.iter()
            .filter_map(|e| match e {
                Event::UnusualCall { extension, detail, .. } if extension == "1001" => Some(detail.clone()),
                _ => None,
            })
            .collect()
    };
    // A week of national calls in office hours: nothing unusual.
    for day in 0..5 {
        r.now = monday(day, 10);
        let reply = r.call("2125551234", &format!("n{day}"));
        assert_eq!(code(&reply), 100, "{reply} {:?}", r.events());
        assert_eq!(r.out()[0].target.addr, addr(TRUNK));
        assert_eq!(unusual(&r.events()), Vec::<String>::new(), "day {day}");
    }
    // Premium-rate at 3 a.m.: an event naming both reasons; without suspend the call goes ahead.
    r.now = monday(7, 3);
    assert_eq!(code(&r.call("19005551234", "p1")), 100);
    assert_eq!(r.out()[0].target.addr, addr(TRUNK));
    assert_eq!(unusual(&r.events()), ["first call to a premium-rate number, trunk call outside business hours"]);
    // The usual call at 10 a.m., and the country the log taught it, raise nothing.
    r.now = monday(7, 10);
    assert_eq!(code(&r.call("2125551234", "n7")), 100);
    r.now = monday(7, 11);
    assert_eq!(code(&r.call("011441632960000", "i1")), 100);
    assert_eq!(unusual(&r.events()), Vec::<String>::new());
    // With suspend on: a first call to Germany is refused, the extension suspended, nothing reaches the
    // trunk, and its national calls are refused too until an operator re-enables it.
    r.svc.set_dialplan(plan(true));
    r.out();
    r.now = monday(8, 10);
    assert_eq!(code(&r.call("01149301234567", "g1")), 403);
    assert!(r.out().is_empty());
    let ev = r.events();
    assert_eq!(unusual(&ev), ["first call to country 49 (Germany)"]);
    assert!(ev.iter().any(|e| matches!(e, Event::ExtensionSuspended { extension, rule } if extension == "1001" && rule.contains("unusual call"))), "{ev:?}");
    assert_eq!(code(&r.call("2125551234", "n8")), 403);
    assert!(refused(&r.events())[0].2.contains("extension suspended"));
}

/// The rig's carrier plan with the longest trunk call at `limit_ms`.
fn limited_plan(limit_ms: u64) -> Arc<DialPlan> {
    Arc::new(DialPlan {
        trunks: vec![Arc::new(carrier())],
        routes: vec![Route {
            pattern: Pattern::parse("_X.").unwrap(),
            trunk: "carrier".into(),
            strip: 0,
            prepend: String::new(),
        }],
        dids: [("5551000".to_owned(), "1002".to_owned())].into(),
        max_trunk_call_ms: limit_ms,
        ..DialPlan::default()
    })
}

/// Sets 1001's own longest trunk call.
fn own_limit(r: &mut Rig, ms: Option<u64>) {
    let mut m = HashMap::new();
    for n in ["1001", "1002"] {
        let max_trunk_call_ms = if n == "1001" { ms } else { None };
        let auth = ExtensionAuth {
            ha1: Algorithm::ALL.map(|a| ha1(a, n, REALM, PW)),
            max_trunk_call_ms,
            ..Default::default()
        };
        m.insert(n.to_owned(), auth);
    }
    r.svc.set_directory(Arc::new(Directory::new(m)));
}

/// Sleeps from wake-up to wake-up until `until`, as the daemon does; the BYEs sent on the way, with
/// when they left.
fn byes_until(r: &mut Rig, until: u64) -> Vec<(u64, Transmit)> {
    let mut byes = Vec::new();
    while let Some(out) = r.wake(until + 1) {
        byes.extend(out.into_iter().filter(|t| first_line(t).starts_with("BYE ")).map(|t| (r.now, t)));
    }
    byes
}

fn header(raw: &str, name: HeaderName<'_>) -> String {
    let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
    m.header(name).unwrap_or("").to_owned()
}

#[test]
fn a_trunk_call_is_cut_at_its_longest_length_with_a_bye_to_each_party() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(10_000));
    assert_eq!(code(&r.call("2125551234", "long1")), 100);
    let fwd = r.out().remove(0);
    r.tick(2_000);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    assert_eq!(r.out().len(), 1, "the 200 goes to the caller");
    let answered = r.now;
    // Both parties use the dialog: our BYEs must go past the CSeq each has used.
    r.send(CALLER, &in_dialog("ACK", CALLER, "caller", "t", "long1", 2, ""));
    r.send(CALLER, &in_dialog("INFO", CALLER, "caller", "t", "long1", 5, ""));
    r.send(TRUNK, &in_dialog("INFO", TRUNK, "t", "caller", "long1", 7, ""));
    assert_eq!(r.out().len(), 3);
    r.events();
    // The deadline is the service's next wake-up, not a tick: nothing before it.
    assert!(r.svc.poll_timeout().unwrap() <= answered + 10_000);
    let byes = byes_until(&mut r, answered + 10_000);
    assert_eq!(byes.len(), 2, "{byes:?}");
    assert!(byes.iter().all(|(at, _)| *at == answered + 10_000));
    let to_trunk = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    let to_caller = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(CALLER)).unwrap();
    // Towards the trunk in the caller's name: Request-URI from the 2xx's Contact, the caller's tags.
    let raw = text(to_trunk);
    assert_eq!(first_line(to_trunk), format!("BYE sip:callee@{TRUNK} SIP/2.0"));
    assert_eq!(header(&raw, HeaderName::From), format!("<sip:1001@{US}>;tag=caller"));
    assert_eq!(header(&raw, HeaderName::To), format!("<sip:2125551234@{US}>;tag=t"));
    assert_eq!((cseq_of(&raw), header(&raw, HeaderName::CallId)), ("6 BYE".to_owned(), "long1".to_owned()));
    assert!(header(&raw, HeaderName::Via).contains(US), "{raw}");
    assert_eq!(header(&raw, HeaderName::Route), "", "we are the only proxy: no Route");
    // Towards the caller in the trunk's name: its Contact from the INVITE, From and To swapped.
    let raw = text(to_caller);
    assert_eq!(first_line(to_caller), format!("BYE sip:1001@{CALLER} SIP/2.0"));
    assert_eq!(header(&raw, HeaderName::From), format!("<sip:2125551234@{US}>;tag=t"));
    assert_eq!(header(&raw, HeaderName::To), format!("<sip:1001@{US}>;tag=caller"));
    assert_eq!(cseq_of(&raw), "8 BYE");
    // One event names the extension, the number, the trunk and how long the call ran.
    let cut: Vec<_> = r.events().into_iter().filter(|e| matches!(e, Event::CallCut { .. })).collect();
    assert_eq!(
        cut,
        vec![Event::CallCut {
            call_id: "long1".into(),
            extension: "1001".into(),
            number: "2125551234".into(),
            trunk: "carrier".into(),
            duration_ms: 10_000,
            limit_ms: 10_000,
        }]
    );
    // Over UDP both BYEs are sent again after T1, until answered.
    let again = byes_until(&mut r, answered + 10_500);
    assert_eq!(again.len(), 2, "{again:?}");
    // Their answers are ours: neither party sees the other's 200 or 481.
    r.send(TRUNK, &answer(to_trunk, 200, "t"));
    r.send(CALLER, &answer(to_caller, 481, "x"));
    assert!(r.out().is_empty(), "answers to our BYEs are absorbed");
    assert!(byes_until(&mut r, answered + 60_000).is_empty(), "no BYE after the answers");
    // A request already on its way still finds the dialog, then everything is forgotten.
    r.wake(u64::MAX);
    while r.wake(u64::MAX).is_some() {}
    assert_eq!((r.svc.active_calls(), r.svc.table_sizes().0), (0, 0));
}

#[test]
fn an_unanswered_bye_is_retransmitted_up_to_t2_then_given_up_after_timer_f() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    r.call("2125551234", "long2");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let start = r.now;
    let byes = byes_until(&mut r, start + 120_000);
    let to_trunk: Vec<u64> =
        byes.iter().filter(|(_, t)| t.target.addr == addr(TRUNK)).map(|(at, _)| at - start).collect();
    // Timer E: 500 ms doubling up to T2 (4 s); Timer F: 32 s after the first.
    assert_eq!(to_trunk, vec![5_000, 5_500, 6_500, 8_500, 12_500, 16_500, 20_500, 24_500, 28_500, 32_500, 36_500]);
    assert_eq!(byes.len(), 2 * to_trunk.len());
    assert!(r.events().iter().any(|e| matches!(e, Event::CallCut { .. })));
}

#[test]
fn calls_between_extensions_and_emergency_calls_are_never_cut() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    r.call("1002", "internal");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "callee"));
    r.call("911", "emergency");
    let fwd = r.out().into_iter().find(|t| t.target.addr == addr(TRUNK)).unwrap();
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
    assert_eq!(r.svc.active_calls(), 2);
    assert!(!r.events().iter().any(|e| matches!(e, Event::CallCut { .. })));
}

#[test]
fn an_extensions_own_longest_call_wins_over_the_setting() {
    // Shorter than the setting.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(60_000));
    own_limit(&mut r, Some(3_000));
    r.call("2125551234", "own1");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    let byes = byes_until(&mut r, now + 3_000);
    assert_eq!(byes.len(), 2);
    assert_eq!(byes[0].0, now + 3_000);
    // Off for this extension: the setting's limit does not apply to it.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    own_limit(&mut r, Some(0));
    r.call("2125551234", "own2");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
    // The setting off: no limit for anyone without their own.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(0));
    r.call("2125551234", "own3");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
}

#[test]
fn an_inbound_trunk_call_is_cut_too_and_a_hangup_first_leaves_nothing_to_cut() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    let invite = format!(
        "INVITE sip:5551000@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bKin1\r\nMax-Forwards: 70\r\n\
         From: <sip:2125551234@carrier>;tag=t\r\nTo: <sip:5551000@{US}>\r\nCall-ID: in1\r\nCSeq: 10 INVITE\r\n\
         Contact: <sip:2125551234@{TRUNK}>\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(code(&r.send(TRUNK, &invite).unwrap()), 100);
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "phone"));
    r.out();
    let now = r.now;
    let byes = byes_until(&mut r, now + 5_000);
    let to_trunk = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    assert_eq!(first_line(to_trunk), format!("BYE sip:2125551234@{TRUNK} SIP/2.0"));
    assert_eq!(cseq_of(&text(to_trunk)), "1 BYE", "the phone never sent a request in the dialog");
    let to_phone = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(PHONE_A)).unwrap();
    assert_eq!(cseq_of(&text(to_phone)), "11 BYE");
    let cut = r.events().into_iter().find(|e| matches!(e, Event::CallCut { .. })).unwrap();
    assert!(
        matches!(&cut, Event::CallCut { extension, number, .. } if extension == "1002" && number == "trunk:carrier"),
        "{cut:?}"
    );
    // Without a Contact a party does not escape the limit: its BYE goes to its transport address.
    let bare = invite.replace(&format!("Contact: <sip:2125551234@{TRUNK}>\r\n"), "").replace("in1", "in2");
    assert_eq!(code(&r.send(TRUNK, &bare).unwrap()), 100);
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "phone"));
    r.out();
    let now = r.now;
    // (The first call's BYEs are still being sent again meanwhile.)
    let byes: Vec<_> =
        byes_until(&mut r, now + 5_000).into_iter().filter(|(_, t)| text(t).contains("Call-ID: in2")).collect();
    assert_eq!(byes.len(), 2, "{byes:?}");
    let to_trunk = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    assert_eq!(first_line(to_trunk), format!("BYE sip:{TRUNK} SIP/2.0"));
    // A call hung up before its limit is not cut afterwards.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    r.call("2125551234", "short");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.send(CALLER, &in_dialog("BYE", CALLER, "caller", "t", "short", 3, ""));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
}

#[test]
fn a_trunk_that_challenges_our_bye_gets_it_again_with_credentials() {
    let mut r = Rig::new(&[PHONE_A]);
    let auth = pbxguard_pbx::TrunkAuth {
        username: "acct".into(),
        realm: "carrier".into(),
        ha1_md5: ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"),
        ha1_sha256: ha1(Algorithm::Sha256, "acct", "carrier", "Tr!unk"),
    };
    let plan = limited_plan(5_000);
    let mut plan = (*plan).clone();
    plan.trunks = vec![Arc::new(Trunk { auth: Some(auth), ..carrier() })];
    r.svc.set_dialplan(Arc::new(plan));
    r.call("2125551234", "auth1");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    let bye =
        byes_until(&mut r, now + 5_000).into_iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    assert_eq!(cseq_of(&text(&bye)), "3 BYE");
    r.send(TRUNK, &challenged(&bye, 407, "n9"));
    let out = r.out();
    assert_eq!(out.len(), 1, "{out:?}");
    let again = text(&out[0]);
    assert_eq!((out[0].target.addr, cseq_of(&again)), (addr(TRUNK), "4 BYE".to_owned()));
    let m = Message::parse(again.as_bytes(), &Limits::default()).unwrap();
    let creds = pbxguard_sip::Credentials::parse(m.header(HeaderName::ProxyAuthorization).unwrap()).unwrap();
    assert!(creds.verify(Algorithm::Md5, &ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"), "BYE"));
    // Its 200 is absorbed like any answer to our BYEs.
    r.send(TRUNK, &answer(&out[0], 200, "t"));
    assert!(r.out().is_empty());
}
