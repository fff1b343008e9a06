//! Registrar behaviour through the sans-IO service, on a virtual clock.

use pbxguard_pbx::{Directory, Event, ExtensionAuth, RegistrarConfig, Service, Transport};
use pbxguard_shield::{Shield, ShieldConfig, Threshold};
use pbxguard_sip::{Algorithm, Credentials, HeaderName, Limits, Message, StartLine, ha1};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

const REALM: &str = "test.realm";
const T0: u64 = 1_800_000_000;

fn service() -> Service {
    let mut m = HashMap::new();
    for (n, pw) in [("1001", "Secr3t!pw"), ("1002", "0ther#Pw9")] {
        m.insert(
            n.to_owned(),
            ExtensionAuth {
                ha1: Algorithm::ALL.map(|a| ha1(a, n, REALM, pw)),
                algorithms: None,
                acl: None,
                ..Default::default()
            },
        );
    }
    let cfg = RegistrarConfig { realm: REALM.into(), ..Default::default() };
    Service::new(cfg, Arc::new(Directory::new(m)), [9; 32], 1)
}

fn src() -> SocketAddr {
    "192.0.2.10:5062".parse().unwrap()
}

struct Reply {
    code: u16,
    raw: String,
}

impl Reply {
    fn header(&self, name: &str) -> Vec<String> {
        let m = Message::parse(self.raw.as_bytes(), &Limits::default()).unwrap();
        m.header_all(HeaderName::classify(name)).map(str::to_owned).collect()
    }
    fn nonce(&self) -> String {
        let c = &self.header("WWW-Authenticate")[0];
        let s = c.split("nonce=\"").nth(1).unwrap();
        s[..s.find('"').unwrap()].to_owned()
    }
}

thread_local! {
    /// These tests are about the registrar: a shield that never floods, and bans only where a test says.
    static SHIELD: RefCell<Shield> = RefCell::new(Shield::new(ShieldConfig {
        flood: Threshold { max: u32::MAX, window_ms: 1 },
        brute_force: Threshold { max: 1000, window_ms: 1 },
        enumeration: Threshold { max: 1000, window_ms: 1 },
        malformed: Threshold { max: 1000, window_ms: 1 },
        ..Default::default()
    }));
}

fn handle(svc: &mut Service, now: u64, data: &[u8]) -> Option<Vec<u8>> {
    SHIELD.with(|s| svc.handle(&mut s.borrow_mut(), now * 1000, data, src(), Transport::Udp))
}

fn send(svc: &mut Service, now: u64, msg: &str) -> Option<Reply> {
    let out = handle(svc, now, msg.as_bytes())?;
    let raw = String::from_utf8(out).unwrap();
    let m = Message::parse(raw.as_bytes(), &Limits::default()).expect("our replies parse");
    let StartLine::Response { code, .. } = m.start else { panic!("not a response") };
    Some(Reply { code, raw })
}

struct Reg<'a> {
    user: &'a str,
    cseq: u32,
    branch: String,
    extra: String,
    contact: &'a str,
}

fn register(r: &Reg<'_>) -> String {
    format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: <sip:{u}@{REALM}>;tag=abc\r\nTo: <sip:{u}@{REALM}>\r\nCall-ID: call-{u}\r\nCSeq: {} REGISTER\r\n\
         Contact: {}\r\n{}Content-Length: 0\r\n\r\n",
        r.branch,
        r.cseq,
        r.contact,
        r.extra,
        u = r.user
    )
}

fn auth_header(user: &str, pw: &str, nonce: &str, nc: u32, alg: Algorithm) -> String {
    let uri = format!("sip:{REALM}");
    let h1 = ha1(alg, user, REALM, pw);
    let ha2 = alg.hash(&[b"REGISTER", uri.as_bytes()]);
    let ncs = format!("{nc:08x}");
    let resp = alg.hash(&[h1.as_bytes(), nonce.as_bytes(), ncs.as_bytes(), b"c0ffee", b"auth", ha2.as_bytes()]);
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}, cnonce=\"c0ffee\", qop=auth, nc={ncs}\r\n",
        alg.name()
    )
}

/// Runs challenge + authenticated REGISTER; returns the final reply.
fn login(svc: &mut Service, now: u64, user: &str, pw: &str, cseq: u32, contact: &str, extra: &str) -> Reply {
    let mut r = Reg { user, cseq, branch: format!("a{cseq}"), extra: extra.to_owned(), contact };
    let ch = send(svc, now, &register(&r)).unwrap();
    assert_eq!(ch.code, 401);
    r.cseq += 1;
    r.branch = format!("b{cseq}");
    r.extra = format!("{}{}", auth_header(user, pw, &ch.nonce(), 1, Algorithm::Md5), extra);
    send(svc, now, &register(&r)).unwrap()
}

#[test]
fn challenge_offers_md5_then_sha256_with_qop() {
    let mut svc = service();
    let r = send(
        &mut svc,
        T0,
        &register(&Reg {
            user: "1001",
            cseq: 1,
            branch: "x".into(),
            extra: String::new(),
            contact: "<sip:1001@192.0.2.10:5062>",
        }),
    )
    .unwrap();
    let ch = r.header("WWW-Authenticate");
    assert_eq!(r.code, 401);
    assert_eq!(ch.len(), 2);
    assert!(
        ch[0].contains("algorithm=MD5")
            && ch[0].contains("qop=\"auth\"")
            && ch[0].contains(&format!("realm=\"{REALM}\""))
    );
    assert!(ch[1].contains("algorithm=SHA-256"));
    assert!(
        r.header("Via")[0].contains("rport=5062;received=192.0.2.10")
            || r.header("Via")[0].contains("received=192.0.2.10")
    );
}

#[test]
fn registers_lists_contacts_and_persists_events() {
    let mut svc = service();
    let ok = login(&mut svc, T0, "1001", "Secr3t!pw", 1, "<sip:1001@192.0.2.10:5062>;expires=120", "");
    assert_eq!(ok.code, 200, "{}", ok.raw);
    assert_eq!(ok.header("Contact"), ["<sip:1001@192.0.2.10:5062>;expires=120"]);
    assert!(ok.header("Date")[0].ends_with("GMT"));
    let mut changed = None;
    while let Some(e) = svc.poll_event() {
        if let Event::BindingsChanged { extension, bindings } = e {
            changed = Some((extension, bindings));
        }
    }
    let (ext, b) = changed.unwrap();
    assert_eq!((ext.as_str(), b.len(), b[0].expires_at), ("1001", 1, T0 + 120));
    // A second contact from the same Call-ID is added; both are listed.
    let ok = login(&mut svc, T0 + 1, "1001", "Secr3t!pw", 10, "<sip:1001@192.0.2.11:5062>", "Expires: 7200\r\n");
    assert_eq!(ok.header("Contact").len(), 2);
    assert!(
        ok.header("Contact").iter().any(|c| c == "<sip:1001@192.0.2.11:5062>;expires=3600"),
        "max_expires caps 7200"
    );
    // Bindings expire on time.
    assert_eq!(svc.registrar().bindings("1001", T0 + 119).count(), 2);
    assert_eq!(svc.registrar().bindings("1001", T0 + 120).count(), 1);
    // "*" with Expires: 0 removes everything.
    let ok = login(&mut svc, T0 + 2, "1001", "Secr3t!pw", 20, "*", "Expires: 0\r\n");
    assert_eq!((ok.code, ok.header("Contact").len()), (200, 0));
    assert_eq!(svc.registrar().bindings("1001", T0 + 2).count(), 0);
    // "*" without Expires: 0 is a bad request.
    assert_eq!(login(&mut svc, T0 + 2, "1001", "Secr3t!pw", 30, "*", "").code, 400);
}

#[test]
fn interval_too_brief_and_out_of_order_cseq() {
    let mut svc = service();
    let r = login(&mut svc, T0, "1001", "Secr3t!pw", 1, "<sip:1001@192.0.2.10>;expires=30", "");
    assert_eq!((r.code, r.header("Min-Expires")), (423, vec!["60".to_owned()]));
    assert_eq!(login(&mut svc, T0, "1001", "Secr3t!pw", 10, "<sip:1001@192.0.2.10>", "").code, 200);
    // Same Call-ID, lower CSeq: refused and the binding is untouched.
    assert_eq!(login(&mut svc, T0, "1001", "Secr3t!pw", 3, "<sip:1001@192.0.2.10>;expires=0", "").code, 500);
    assert_eq!(svc.registrar().bindings("1001", T0).count(), 1);
}

#[test]
fn wrong_password_rechallenges_then_403_and_unknown_user_looks_identical() {
    let run = |user: &str| {
        let mut svc = service();
        let mut codes = Vec::new();
        let mut nonce = send(
            &mut svc,
            T0,
            &register(&Reg { user, cseq: 1, branch: "1".into(), extra: String::new(), contact: "<sip:x@192.0.2.10>" }),
        )
        .unwrap()
        .nonce();
        for i in 2..5 {
            let extra = auth_header(user, "wrong-Pass1!", &nonce, 1, Algorithm::Md5);
            let r = send(
                &mut svc,
                T0,
                &register(&Reg { user, cseq: i, branch: i.to_string(), extra, contact: "<sip:x@192.0.2.10>" }),
            )
            .unwrap();
            codes.push(r.code);
            if r.code == 401 {
                nonce = r.nonce();
            }
            // Same headers apart from the nonce, tags and Call-ID.
            let shape: Vec<String> = r.raw.lines().map(|l| l.split(['=', ':']).next().unwrap().to_owned()).collect();
            codes.push(shape.len() as u16);
        }
        let failures =
            std::iter::from_fn(|| svc.poll_event()).filter(|e| matches!(e, Event::AuthFailed { .. })).count();
        (codes, failures)
    };
    let known = run("1001");
    let unknown = run("9999");
    assert_eq!(known.0[0], 401);
    assert_eq!(known.0[2], 403);
    assert_eq!(known, unknown);
}

/// One REGISTER from 1001's phone: a new transaction (branch from `cseq`) with `extra` headers.
fn reg1001(svc: &mut Service, now: u64, cseq: u32, extra: String) -> Reply {
    let r = Reg { user: "1001", cseq, branch: format!("t{cseq}"), extra, contact: "<sip:1001@192.0.2.10>" };
    send(svc, now, &register(&r)).unwrap()
}

#[test]
fn replayed_nonce_count_and_stale_nonce() {
    let mut svc = service();
    let nonce = reg1001(&mut svc, T0, 1, String::new()).nonce();
    let good = auth_header("1001", "Secr3t!pw", &nonce, 1, Algorithm::Md5);
    assert_eq!(reg1001(&mut svc, T0, 2, good.clone()).code, 200);
    // The same credentials in a new transaction: a replay, refused with a fresh challenge.
    assert_eq!(reg1001(&mut svc, T0, 3, good).code, 401);
    assert!(std::iter::from_fn(|| svc.poll_event()).any(|e| matches!(e, Event::NonceReplay { .. })));
    // A higher nc on the same nonce is fine.
    let next = auth_header("1001", "Secr3t!pw", &nonce, 2, Algorithm::Md5);
    assert_eq!(reg1001(&mut svc, T0 + 10, 4, next).code, 200);
    // After the 300 s TTL the right password gets stale=true, not 403.
    let late = auth_header("1001", "Secr3t!pw", &nonce, 3, Algorithm::Md5);
    let r = reg1001(&mut svc, T0 + 301, 5, late);
    assert_eq!(r.code, 401);
    assert!(r.header("WWW-Authenticate").iter().all(|h| h.contains("stale=true")));
}

#[test]
fn sha256_and_identity_checks() {
    let mut svc = service();
    let nonce = reg1001(&mut svc, T0, 1, String::new()).nonce();
    let h = auth_header("1001", "Secr3t!pw", &nonce, 1, Algorithm::Sha256);
    assert_eq!(reg1001(&mut svc, T0, 2, h).code, 200);
    // 1002 authenticates correctly but registers 1001's AOR.
    let nonce = reg1001(&mut svc, T0, 3, String::new()).nonce();
    let h = auth_header("1002", "0ther#Pw9", &nonce, 1, Algorithm::Md5);
    assert_eq!(reg1001(&mut svc, T0, 4, h).code, 403);
    // Credentials parse check: the one we built is well-formed.
    let header = auth_header("a", "b", "n", 1, Algorithm::Md5);
    assert!(Credentials::parse(header.trim_start_matches("Authorization: ").trim_end()).is_some());
}

#[test]
fn retransmission_gets_the_cached_final_response() {
    let mut svc = service();
    let nonce = reg1001(&mut svc, T0, 1, String::new()).nonce();
    let auth = auth_header("1001", "Secr3t!pw", &nonce, 1, Algorithm::Md5);
    let a = reg1001(&mut svc, T0, 2, auth.clone());
    let b = reg1001(&mut svc, T0 + 1, 2, auth);
    assert_eq!((a.code, a.raw), (200, b.raw));
    assert_eq!(svc.table_sizes().0, 1);
    // Over TCP nothing is retransmitted, so nothing is cached: the same request again is handled anew
    // (here: the nonce-count is a replay, so a fresh challenge).
    let mut svc = service();
    let over_tcp = |svc: &mut Service, cseq: u32, extra: String| {
        let r = Reg { user: "1001", cseq, branch: format!("t{cseq}"), extra, contact: "<sip:1001@192.0.2.10>" };
        let out =
            SHIELD.with(|s| svc.handle(&mut s.borrow_mut(), T0 * 1000, register(&r).as_bytes(), src(), Transport::Tcp));
        String::from_utf8(out.unwrap()).unwrap()
    };
    let challenge = over_tcp(&mut svc, 1, String::new());
    let nonce = challenge.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let auth = auth_header("1001", "Secr3t!pw", &nonce, 1, Algorithm::Md5);
    assert!(over_tcp(&mut svc, 2, auth.clone()).starts_with("SIP/2.0 200"));
    assert!(over_tcp(&mut svc, 2, auth).starts_with("SIP/2.0 401"));
    assert_eq!(svc.table_sizes().0, 0);
}

fn simple(method: &str, extra: &str) -> String {
    format!(
        "{method} sip:1001@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK{method}{}\r\nMax-Forwards: 70\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:1001@{REALM}>\r\nCall-ID: x\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n",
        extra.len()
    )
}

#[test]
fn other_methods_get_the_right_status() {
    let mut svc = service();
    for (m, extra, code) in [
        ("OPTIONS", "", 200),
        ("INVITE", "", 407),
        ("SUBSCRIBE", "", 405),
        ("FOO", "", 501),
        ("BYE", "", 481),
        ("CANCEL", "", 481),
        ("OPTIONS", "Require: 100rel-ish\r\n", 420),
        ("INVITE", "Max-Forwards: 0\r\n", 400), // two Max-Forwards
    ] {
        assert_eq!(send(&mut svc, T0, &simple(m, extra)).unwrap().code, code, "{m} {extra}");
    }
    assert!(send(&mut svc, T0, &simple("ACK", "")).is_none());
    let zero = simple("INVITE", "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0")
        .replace("branch=z9hG4bKINVITE0", "branch=z9hG4bKzero");
    assert_eq!(send(&mut svc, T0, &zero).unwrap().code, 483);
    let r = send(&mut svc, T0, &simple("SUBSCRIBE", "")).unwrap();
    assert_eq!(r.header("Allow"), ["INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, REFER, PRACK"]);
}

/// What the daemon answers to each RFC 4475 message (INDEX.md), through the same entry point. INDEX.md
/// was written for a registrar (405 for INVITE); as a proxy, pbxguard challenges a new INVITE (407)
/// and answers an in-dialog one for an unknown dialog with 481.
#[test]
fn rfc4475_wire_answers() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/rfc4475");
    let table: &[(&str, Option<u16>)] = &[
        ("wsinv", Some(481)),
        ("intmeth", Some(501)),
        ("esc01", Some(407)),
        ("escnull", Some(401)),
        ("esc02", Some(501)),
        ("lwsdisp", Some(200)),
        ("longreq", Some(407)),
        ("dblreq", Some(401)),
        ("semiuri", Some(200)),
        ("transports", Some(200)),
        ("mpart01", Some(405)),
        ("unreason", None),
        ("noreason", None),
        ("badinv01", Some(400)),
        ("clerr", Some(400)),
        ("ncl", Some(400)),
        ("scalar02", Some(400)),
        ("scalarlg", None),
        ("quotbal", Some(400)),
        ("ltgtruri", Some(400)),
        ("lwsruri", Some(400)),
        ("lwsstart", Some(400)),
        ("trws", Some(400)),
        ("escruri", Some(400)),
        ("baddate", Some(400)),
        ("regbadct", Some(400)),
        ("badaspec", Some(400)),
        ("baddn", Some(400)),
        ("badvers", Some(505)),
        ("mismatch01", Some(400)),
        ("mismatch02", Some(400)),
        ("bigcode", None),
        ("badbranch", Some(200)),
        ("insuf", Some(400)),
        ("unkscm", Some(416)),
        ("novelsc", Some(416)),
        ("unksm2", Some(401)),
        ("bext01", Some(420)),
        ("invut", Some(407)),
        ("regaut01", Some(401)),
        ("multi01", Some(400)),
        ("mcl01", Some(400)),
        ("bcast", None),
        ("zeromf", Some(483)),
        ("cparam01", Some(401)),
        ("cparam02", Some(401)),
        ("regescrt", Some(401)),
        ("sdp01", Some(407)),
        ("inv2543", Some(407)),
    ];
    let mut wrong = Vec::new();
    for (name, want) in table {
        let mut svc = service();
        let buf = std::fs::read(format!("{dir}/{name}.dat")).unwrap();
        let got = handle(&mut svc, T0, &buf).map(|r| {
            let m = Message::parse(&r, &Limits::default()).expect("reply parses");
            match m.start {
                StartLine::Response { code, .. } => code,
                _ => 0,
            }
        });
        if got != *want {
            wrong.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Found by the service fuzzer: a request with hundreds of Via entries made a reply too long to parse.
#[test]
fn absurd_via_counts_get_silence_and_replies_stay_parseable() {
    let mut svc = service();
    let many = |n: usize, bad: bool| {
        let vias: Vec<String> = (0..n).map(|i| format!("SIP/2.0/UDP h{i}.example.com;branch=z9hG4bK{i}")).collect();
        let mut v = vias.join(", ");
        if bad {
            v.push_str(", SIP/2.0/UDP ;;");
        }
        simple("OPTIONS", "").replace("Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKOPTIONS0", &format!("Via: {v}"))
    };
    assert!(handle(&mut svc, T0, many(200, true).as_bytes()).is_none());
    assert!(handle(&mut svc, T0, many(71, false).as_bytes()).is_none());
    let v4 = many(200, false).replace(" SIP/2.0\r\n", " SIP/4.0\r\n");
    assert!(handle(&mut svc, T0, v4.as_bytes()).is_none(), "even a 505 would repeat every Via");
    let r = send(&mut svc, T0, &many(69, true)).unwrap();
    assert_eq!((r.code, r.header("Via").len()), (400, 70));
    assert_eq!(send(&mut svc, T0, &many(70, false)).unwrap().code, 200);
}

#[test]
fn refreshes_that_only_move_the_expiry_are_persisted_lazily() {
    let mut svc = service();
    let persisted = |svc: &mut Service| {
        std::iter::from_fn(|| svc.poll_event()).filter(|e| matches!(e, Event::BindingsChanged { .. })).count()
    };
    let contact = "<sip:1001@192.0.2.10:5062>;expires=600";
    assert_eq!(login(&mut svc, T0, "1001", "Secr3t!pw", 1, contact, "").code, 200);
    assert_eq!(persisted(&mut svc), 1);
    // Refreshed a minute later: the stored expiry (T0+600) is still more than half an interval away.
    assert_eq!(login(&mut svc, T0 + 60, "1001", "Secr3t!pw", 2, contact, "").code, 200);
    assert_eq!(persisted(&mut svc), 0, "an expiry-only refresh is not written");
    // Memory has the real expiry all the same.
    assert_eq!(svc.registrar().bindings("1001", T0 + 650).count(), 1);
    // Past half the interval the refresh is written.
    assert_eq!(login(&mut svc, T0 + 320, "1001", "Secr3t!pw", 3, contact, "").code, 200);
    assert_eq!(persisted(&mut svc), 1);
    // Anything else that changes is written at once: a new contact, a removal.
    assert_eq!(login(&mut svc, T0 + 321, "1001", "Secr3t!pw", 4, "<sip:1001@192.0.2.10:5999>", "").code, 200);
    assert_eq!(persisted(&mut svc), 1);
    assert_eq!(login(&mut svc, T0 + 322, "1001", "Secr3t!pw", 5, "*", "Expires: 0\r\n").code, 200);
    assert_eq!(persisted(&mut svc), 1);
}

#[test]
fn bindings_and_cached_answers_are_forgotten_on_the_deadline_poll_timeout_gives() {
    let mut svc = service();
    assert_eq!(svc.poll_timeout(), None);
    let ok = login(&mut svc, T0, "1001", "Secr3t!pw", 1, "<sip:1001@192.0.2.10:5062>;expires=120", "");
    assert_eq!(ok.code, 200);
    // The cached 200 (for a retransmitted REGISTER) goes first, 32 s on; then the binding.
    assert_eq!(svc.poll_timeout(), Some((T0 + 32) * 1000));
    svc.handle_timeout((T0 + 32) * 1000);
    assert_eq!(svc.poll_timeout(), Some((T0 + 120) * 1000));
    // A refresh moves the expiry later: the old deadline comes early, finds nothing, and the next one is
    // the new expiry.
    let ok = login(&mut svc, T0 + 60, "1001", "Secr3t!pw", 10, "<sip:1001@192.0.2.10:5062>;expires=120", "");
    assert_eq!(ok.code, 200);
    svc.handle_timeout((T0 + 92) * 1000);
    assert_eq!(svc.poll_timeout(), Some((T0 + 120) * 1000));
    svc.handle_timeout((T0 + 120) * 1000);
    assert_eq!((svc.registrar().binding_count(), svc.poll_timeout()), (1, Some((T0 + 180) * 1000)));
    svc.handle_timeout((T0 + 180) * 1000);
    assert_eq!((svc.registrar().binding_count(), svc.poll_timeout()), (0, None));
}
