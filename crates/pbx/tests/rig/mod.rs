//! What the proxy tests share: a service on a virtual clock with extensions 1001 and 1002 and a carrier
//! trunk, and helpers to build and read SIP messages.
#![allow(dead_code, unused_imports)]

pub(crate) use pbxguard_pbx::{
    Binding, DialPlan, Directory, Event, ExtensionAuth, Locals, RegistrarConfig, Route, Service, Transmit, Transport,
    Trunk,
};
pub(crate) use pbxguard_shield::{
    CallLimits, Categories, ClassOfService, CountryCode, Pattern, Shield, ShieldConfig, Threshold,
};
pub(crate) use pbxguard_sip::{Algorithm, HeaderName, Limits, Message, StartLine, Via, ha1};
pub(crate) use std::collections::HashMap;
pub(crate) use std::net::SocketAddr;
pub(crate) use std::sync::Arc;

pub(crate) const REALM: &str = "proxy.test";
pub(crate) const T0: u64 = 1_800_000_000_000;
pub(crate) const PW: &str = "Caller!2026";

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(crate) const US: &str = "192.0.2.1:5060";
pub(crate) const CALLER: &str = "192.0.2.10:5062";
pub(crate) const PHONE_A: &str = "192.0.2.20:5070";
pub(crate) const PHONE_B: &str = "192.0.2.21:5070";
pub(crate) const TRUNK: &str = "198.51.100.1:5060";

pub(crate) struct Rig {
    pub(crate) svc: Service,
    pub(crate) shield: Shield,
    pub(crate) now: u64,
}

/// The carrier every rig routes to: UDP at TRUNK, no digest, no registration, no transfers.
pub(crate) fn carrier() -> Trunk {
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

/// Every number to the carrier, as dialled.
pub(crate) fn carrier_route() -> Route {
    Route { pattern: Pattern::parse("_X.").unwrap(), trunk: "carrier".into(), strip: 0, prepend: String::new() }
}

/// The rig's dial plan: the carrier for every number, DID 5551000 to 1002.
pub(crate) fn carrier_plan() -> DialPlan {
    DialPlan {
        trunks: vec![Arc::new(carrier())],
        routes: vec![carrier_route()],
        dids: [("5551000".to_owned(), "1002".to_owned())].into(),
        ..DialPlan::default()
    }
}

/// Extensions 1001 and 1002 (password PW), 1001 with its own longest trunk call if given.
pub(crate) fn directory(own_limit_1001: Option<u64>) -> Directory {
    let mut m = HashMap::new();
    for n in ["1001", "1002"] {
        let auth = ExtensionAuth {
            ha1: Algorithm::ALL.map(|a| ha1(a, n, REALM, PW)),
            max_trunk_call_ms: if n == "1001" { own_limit_1001 } else { None },
            ..Default::default()
        };
        m.insert(n.to_owned(), auth);
    }
    Directory::new(m)
}

impl Rig {
    pub(crate) fn new(contacts: &[&str]) -> Self {
        let cfg = RegistrarConfig { realm: REALM.into(), ..Default::default() };
        let mut svc = Service::new(cfg, Arc::new(directory(None)), [7; 32], 3);
        svc.set_locals(Locals { udp: Some(addr(US)), tcp: None, tls: None });
        svc.set_dialplan(Arc::new(carrier_plan()));
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

    pub(crate) fn send(&mut self, from: &str, msg: &str) -> Option<String> {
        self.svc
            .handle(&mut self.shield, self.now, msg.as_bytes(), addr(from), Transport::Udp)
            .map(|r| String::from_utf8(r).unwrap())
    }

    pub(crate) fn out(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.svc.poll_transmit()).collect()
    }

    pub(crate) fn tick(&mut self, ms: u64) -> Vec<Transmit> {
        self.now += ms;
        self.svc.handle_timer(self.now);
        self.out()
    }

    /// Jumps the clock to the service's next wake-up, as the daemon sleeps until it, and runs what is
    /// due; `None` when nothing is pending before `limit`.
    pub(crate) fn wake(&mut self, limit: u64) -> Option<Vec<Transmit>> {
        let at = self.svc.poll_timeout().filter(|&t| t < limit)?;
        assert!(at >= self.now, "a wake-up in the past after handle_timeout ran: {at} < {}", self.now);
        self.now = at;
        self.svc.handle_timeout(self.now);
        Some(self.out())
    }

    pub(crate) fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.svc.poll_event()).collect()
    }

    /// An authenticated INVITE from 1001 at CALLER; returns the 100 Trying.
    pub(crate) fn call(&mut self, number: &str, call_id: &str) -> String {
        self.call_with_body(number, call_id, "v=0\n")
    }

    pub(crate) fn call_with_body(&mut self, number: &str, call_id: &str, body: &str) -> String {
        self.call_full(number, call_id, body, "")
    }

    /// An authenticated INVITE with `headers` added.
    pub(crate) fn call_with_headers(&mut self, number: &str, call_id: &str, headers: &str) -> String {
        self.call_full(number, call_id, "v=0\n", headers)
    }

    pub(crate) fn call_full(&mut self, number: &str, call_id: &str, body: &str, headers: &str) -> String {
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

pub(crate) fn invite(number: &str, call_id: &str, cseq: u32, branch: &str, auth: &str) -> String {
    format!(
        "INVITE sip:{number}@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:{number}@{US}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
         Contact: <sip:1001@{CALLER}>\r\n{auth}Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
    )
}

pub(crate) fn code(raw: &str) -> u16 {
    match Message::parse(raw.as_bytes(), &Limits::default()).unwrap().start {
        StartLine::Response { code, .. } => code,
        StartLine::Request { .. } => 0,
    }
}

pub(crate) fn text(t: &Transmit) -> String {
    String::from_utf8(t.data.clone()).unwrap()
}

pub(crate) fn first_line(t: &Transmit) -> String {
    text(t).lines().next().unwrap().to_owned()
}

/// The callee's response to a forwarded request: its Vias, From, To (with `tag`), Call-ID, CSeq.
pub(crate) fn answer(req: &Transmit, code: u16, tag: &str) -> String {
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

pub(crate) fn top_branch(raw: &str) -> String {
    let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
    Via::parse(m.header_values(HeaderName::Via).next().unwrap()).unwrap().branch().unwrap().to_owned()
}

/// The carrier's 401 or 407 (realm "carrier", MD5, qop=auth) to a request it received.
pub(crate) fn challenged(req: &Transmit, code: u16, nonce: &str) -> String {
    let header = if code == 401 { "WWW-Authenticate" } else { "Proxy-Authenticate" };
    answer(req, code, "t").replace(
        "Content-Length: 0",
        &format!(
            "{header}: Digest realm=\"carrier\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0"
        ),
    )
}

pub(crate) fn cseq_of(raw: &str) -> String {
    header(raw, HeaderName::CSeq)
}

/// A request inside dialog `call_id`, from `from` with its tag to the other party's tag.
pub(crate) fn in_dialog(
    method: &str,
    from: &str,
    from_tag: &str,
    to_tag: &str,
    call_id: &str,
    cseq: u32,
    extra: &str,
) -> String {
    format!(
        "{method} sip:x@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{method}{call_id}{cseq}\r\n\
         Max-Forwards: 70\r\nRoute: <sip:{US};lr>\r\nFrom: <sip:a@x>;tag={from_tag}\r\nTo: <sip:b@x>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

pub(crate) fn header(raw: &str, name: HeaderName<'_>) -> String {
    let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
    m.header(name).unwrap_or("").to_owned()
}
