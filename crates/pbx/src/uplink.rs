//! Outbound registration at trunks (RFC 3261 §10.2 as a client): a REGISTER per trunk that asks for it,
//! answered challenges from the stored HA1, refreshed at half the granted time, retried a minute after
//! a failure. Every change of state is an event, so the operator sees a carrier refusing the account.

use crate::dialplan::Trunk;
use crate::dialplan::TrunkAnswer;
use crate::event::Event;
use crate::transport::{Locals, Target, Transmit, Transport};
use pbxguard_sip::{CSeq, HeaderName, Message, Method, StartLine, Via};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

const RETRY_MS: u64 = 60_000;
const TIMEOUT_MS: u64 = 32_000;
const RETRANSMIT_MS: u64 = 2_000;

struct Reg {
    trunk: Arc<Trunk>,
    call_id: String,
    cseq: u32,
    branch: String,
    request: Vec<u8>,
    next_at: u64,
    /// When the outstanding REGISTER was first sent (`None`: none outstanding).
    sent_at: Option<u64>,
    retx_at: u64,
    answered_nonce: Option<String>,
    registered: bool,
}

#[derive(Default)]
pub(crate) struct Uplinks {
    regs: HashMap<String, Reg>,
    counter: u64,
    seed: u64,
}

impl Uplinks {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed, ..Self::default() }
    }

    /// Follows the trunk list: new or changed trunks register at the next tick, removed ones stop.
    pub(crate) fn sync(&mut self, trunks: &[Arc<Trunk>]) {
        self.regs.retain(|name, _| trunks.iter().any(|t| &t.name == name && t.register.is_some() && t.auth.is_some()));
        for t in trunks.iter().filter(|t| t.register.is_some() && t.auth.is_some()) {
            match self.regs.get_mut(&t.name) {
                Some(r) if r.trunk == *t => {}
                Some(r) => {
                    r.trunk = t.clone();
                    r.next_at = 0;
                    r.sent_at = None;
                }
                None => {
                    let call_id = format!("pgreg-{:x}-{}", self.seed, t.name);
                    let reg = Reg {
                        trunk: t.clone(),
                        call_id,
                        cseq: 0,
                        branch: String::new(),
                        request: Vec::new(),
                        next_at: 0,
                        sent_at: None,
                        retx_at: 0,
                        answered_nonce: None,
                        registered: false,
                    };
                    self.regs.insert(t.name.clone(), reg);
                }
            }
        }
    }

    fn send(
        &mut self,
        name: &str,
        now: u64,
        locals: &Locals,
        auth: Option<(&str, String)>,
        out: &mut VecDeque<Transmit>,
    ) {
        self.counter += 1;
        let branch = format!("z9hG4bKpgr{:x}x{:x}", self.seed, self.counter);
        let Some(r) = self.regs.get_mut(name) else { return };
        let t = &r.trunk;
        let (Some(local), Some(creds), Some(expires)) = (locals.get(t.transport), t.auth.as_ref(), t.register) else {
            return;
        };
        r.cseq += 1;
        let tp = match t.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        let (user, host, port) = (&creds.username, &t.host, t.addr.port());
        let mut msg = format!(
            "REGISTER sip:{host}:{port}{tp} SIP/2.0\r\nVia: SIP/2.0/{} {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{host}>;tag=pg{:x}\r\nTo: <sip:{user}@{host}>\r\n\
             Call-ID: {}\r\nCSeq: {} REGISTER\r\nContact: <sip:{user}@{local}{tp}>\r\nExpires: {expires}\r\n\
             User-Agent: pbxguard\r\n",
            t.transport.as_str().to_ascii_uppercase(),
            self.seed,
            r.call_id,
            r.cseq
        );
        if let Some((header, value)) = auth {
            msg.push_str(&format!("{header}: {value}\r\n"));
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        r.branch = branch;
        r.request = msg.into_bytes();
        r.sent_at = Some(now);
        r.retx_at = now + RETRANSMIT_MS;
        out.push_back(Transmit { target: Target { addr: t.addr, transport: t.transport }, data: r.request.clone() });
    }

    fn fail(r: &mut Reg, now: u64, detail: String, events: &mut Vec<Event>) {
        r.sent_at = None;
        r.next_at = now + RETRY_MS;
        r.answered_nonce = None;
        r.registered = false;
        events.push(Event::TrunkRegistration { trunk: r.trunk.name.clone(), registered: false, detail });
    }

    pub(crate) fn tick(&mut self, now: u64, locals: &Locals, out: &mut VecDeque<Transmit>, events: &mut Vec<Event>) {
        let mut due = Vec::new();
        for (name, r) in &mut self.regs {
            match r.sent_at {
                Some(at) if now >= at + TIMEOUT_MS => Self::fail(r, now, "no answer within 32 s".into(), events),
                Some(_) if r.trunk.transport == Transport::Udp && now >= r.retx_at => {
                    r.retx_at = now + RETRANSMIT_MS;
                    let t = Target { addr: r.trunk.addr, transport: r.trunk.transport };
                    out.push_back(Transmit { target: t, data: r.request.clone() });
                }
                Some(_) => {}
                None if now >= r.next_at => due.push(name.clone()),
                None => {}
            }
        }
        for name in due {
            self.send(&name, now, locals, None, out);
        }
    }

    /// When `tick` next has something to do for a trunk: a refresh or retry, a UDP retransmission, or
    /// giving up on an unanswered REGISTER. A trunk whose transport has no local address is left out:
    /// `tick` cannot send for it, and counting it would keep the daemon awake for nothing.
    pub(crate) fn poll_timeout(&self, locals: &Locals) -> Option<u64> {
        self.regs
            .values()
            .filter_map(|r| match r.sent_at {
                Some(at) if r.trunk.transport == Transport::Udp => Some(r.retx_at.min(at + TIMEOUT_MS)),
                Some(at) => Some(at + TIMEOUT_MS),
                None => locals.get(r.trunk.transport).map(|_| r.next_at),
            })
            .min()
    }

    /// A response to one of our REGISTERs; false when it is not one.
    pub(crate) fn on_response(
        &mut self,
        now: u64,
        msg: &Message<'_>,
        source: SocketAddr,
        locals: &Locals,
        out: &mut VecDeque<Transmit>,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some(branch) = msg.header_values(HeaderName::Via).next().and_then(Via::parse).and_then(|v| v.branch())
        else {
            return false;
        };
        if !branch.starts_with("z9hG4bKpgr") {
            return false;
        }
        let Some((name, r)) = self.regs.iter_mut().find(|(_, r)| r.branch == branch && r.sent_at.is_some()) else {
            return true;
        };
        let is_register =
            msg.header(HeaderName::CSeq).and_then(CSeq::parse).is_some_and(|c| c.method == Method::Register);
        if !is_register || pbxguard_shield::canonical(source.ip()) != pbxguard_shield::canonical(r.trunk.addr.ip()) {
            return true;
        }
        let StartLine::Response { code, .. } = msg.start else { return true };
        let name = name.clone();
        match code {
            100..=199 => {}
            200..=299 => {
                let requested = r.trunk.register.unwrap_or(600);
                let granted = msg
                    .header(HeaderName::Expires)
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .or_else(|| {
                        msg.header_values(HeaderName::Contact)
                            .filter_map(pbxguard_sip::NameAddr::parse)
                            .find_map(|c| c.params.get("expires").flatten().and_then(|e| e.parse().ok()))
                    })
                    .unwrap_or(requested)
                    .clamp(30, requested.max(30));
                r.sent_at = None;
                r.answered_nonce = None;
                r.next_at = now + u64::from(granted) * 500;
                if !r.registered {
                    r.registered = true;
                    events.push(Event::TrunkRegistration {
                        trunk: name,
                        registered: true,
                        detail: format!("registered for {granted} s"),
                    });
                }
            }
            401 | 407 => {
                let Some(creds) = r.trunk.auth.clone() else { return true };
                let uri = format!("sip:{}:{}", r.trunk.host, r.trunk.addr.port());
                let cnonce = format!("{:x}{:x}", self.seed, r.cseq);
                let (header, value, nonce) = match creds.answer(msg, code, "REGISTER", &uri, &cnonce) {
                    TrunkAnswer::Answer(h, v, n) => (h, v, n),
                    TrunkAnswer::OtherRealm(realms) => {
                        let detail = format!(
                            "challenged for realm {realms:?} but the credentials are for realm {:?} (trunk add --realm)",
                            creds.realm
                        );
                        Self::fail(r, now, detail, events);
                        return true;
                    }
                };
                let stale = msg.headers.iter().any(|h| h.value.contains("stale=true"));
                if r.answered_nonce.is_some() && !stale {
                    let detail = format!("credentials refused ({code}); check trunk username and secret");
                    Self::fail(r, now, detail, events);
                    return true;
                }
                r.answered_nonce = Some(nonce);
                self.send(&name, now, locals, Some((header, value)), out);
            }
            _ => Self::fail(r, now, format!("refused with {code}"), events),
        }
        true
    }

    /// (trunk, registered) for every trunk that registers.
    pub(crate) fn status(&self) -> Vec<(String, bool)> {
        self.regs.iter().map(|(n, r)| (n.clone(), r.registered)).collect()
    }
}
