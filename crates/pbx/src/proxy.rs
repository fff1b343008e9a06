//! The call-routing proxy (RFC 3261 §16-17): INVITE server transactions towards the caller, one INVITE
//! client transaction per fork branch, CANCEL, the timers that UDP needs, and the dialog table that
//! lets in-dialog requests (ACK, BYE, re-INVITE, UPDATE, INFO, REFER...) through, and nothing else.
//!
//! In-dialog requests are relayed transaction-statelessly to the other party of a dialog this proxy set
//! up; their responses find their way back through a bounded table keyed by our Via branch. A request
//! that names no known dialog is refused: a forged To tag must not turn the proxy into an open relay to
//! the trunks.

use crate::dialplan::{Trunk, TrunkAnswer};
use crate::event::Event;
use crate::fifo::FifoMap;
use crate::service::Transport;
use pbxguard_shield::FraudGuard;
use pbxguard_sip::{HeaderName, Limits, Message, NameAddr, ResponseBuilder, Via};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// RFC 3261 T1 and the derived timers, ms.
const T1: u64 = 500;
const T2: u64 = 4_000;
const TIMER_B: u64 = 64 * T1;
/// Timer C (§16.6 step 11): more than three minutes with only provisional responses ends the branch.
const TIMER_C: u64 = 180_000;
/// How long finished transactions and stateless relays are remembered, for retransmissions.
const LINGER: u64 = 64 * T1;
/// Caps on every table; past them new calls get 503 and relays evict the oldest.
pub(crate) const MAX_CALLS: usize = 50_000;
/// Call set-ups one extension may have ringing at once (internal calls included): with stolen
/// credentials, unanswered INVITEs must not fill the tables.
pub(crate) const MAX_PENDING_PER_CALLER: u32 = 16;
/// Largest INVITE the proxy forwards; real SDP offers are a few kilobytes. Bounds what each pending
/// call keeps in memory.
pub(crate) const MAX_INVITE: usize = 16 * 1024;
const MAX_RELAYS: usize = 100_000;

/// Where a message goes: an address and the transport to use. For TCP and TLS the daemon sends on the
/// connection to that address, opening one for TCP when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// A message the service wants sent somewhere other than back to the request's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub target: Target,
    pub data: Vec<u8>,
}

/// The addresses this proxy puts in Via and Record-Route, per transport; `None` for a transport it
/// does not listen on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Locals {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

impl Locals {
    pub fn get(&self, t: Transport) -> Option<SocketAddr> {
        match t {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls,
        }
    }

    /// Whether `host:port` names this proxy (a Route entry or Via sent-by).
    pub fn is_us(&self, host: &str, port: Option<u16>) -> bool {
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return false;
        };
        [self.udp, self.tcp, self.tls]
            .into_iter()
            .flatten()
            .any(|a| a.ip() == ip && port.map_or(a.port() == 5060 || a.port() == 5061, |p| p == a.port()))
    }

    fn uri(&self, t: Transport) -> Option<String> {
        let a = self.get(t)?;
        Some(match t {
            Transport::Udp => format!("<sip:{a};lr>"),
            Transport::Tcp => format!("<sip:{a};transport=tcp;lr>"),
            Transport::Tls => format!("<sip:{a};transport=tls;lr>"),
        })
    }

    /// Record-Route for a call entering on `inbound` and leaving on `outbound`: one entry, or two
    /// when the transports differ (RFC 5658), the one facing the callee on top.
    pub(crate) fn record_route(&self, inbound: Transport, outbound: Transport) -> Vec<String> {
        let mut v: Vec<String> = self.uri(outbound).into_iter().collect();
        if inbound != outbound {
            v.extend(self.uri(inbound));
        }
        v
    }

    pub(crate) fn via(&self, t: Transport, branch: &str) -> Option<String> {
        let a = self.get(t)?;
        Some(format!("SIP/2.0/{} {a};branch={branch};rport", t.as_str().to_ascii_uppercase()))
    }
}

/// Builds the forwarded request for one branch, given its Via branch.
pub(crate) type BuildRequest<'a> = Box<dyn Fn(&str) -> Option<Vec<u8>> + 'a>;

/// One fork branch: where to, how to build the request, and the trunk's credentials if it has any.
pub(crate) type Branch<'a> = (Target, BuildRequest<'a>, Option<Arc<Trunk>>);

/// Who placed a call and where it goes, for the calls list and the fraud counters.
#[derive(Debug, Clone)]
pub(crate) struct CallInfo {
    pub(crate) call_id: String,
    pub(crate) caller: String,
    pub(crate) callee: String,
    /// The extension whose fraud counters this call uses (outbound trunk calls only).
    pub(crate) counted: Option<String>,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum ClientState {
    Calling,
    Proceeding,
    /// A final response arrived (or the branch timed out); kept for retransmissions.
    Done,
}

struct ClientTx {
    server: String,
    target: Target,
    request: Vec<u8>,
    state: ClientState,
    next_retx: u64,
    interval: u64,
    timeout_at: u64,
    done_at: u64,
    /// The deadline this entry's live timer is armed for (`u64::MAX`: none).
    scheduled: u64,
    /// A trunk with credentials: its 401/407 is answered once, by re-sending with CSeq+1.
    auth: Option<Arc<Trunk>>,
    /// CSeq numbers towards the target run this far ahead of the caller's (1 after a re-send).
    cseq_shift: i64,
}

struct ServerTx {
    invite: Vec<u8>,
    source: Target,
    branches: Vec<String>,
    /// Last response sent upstream, replayed to a retransmitted INVITE.
    last: Option<Vec<u8>>,
    best: Option<(u16, Vec<u8>)>,
    final_code: Option<u16>,
    final_at: u64,
    canceled: bool,
    /// Timer G (non-2xx final over UDP): next retransmission and interval; 0 when not running.
    next_retx: u64,
    interval: u64,
    call_id: String,
    caller: String,
    scheduled: u64,
}

pub(crate) struct Dialog {
    caller: Target,
    callee: Option<Target>,
    caller_tag: String,
    callee_tag: Option<String>,
    pub(crate) info: CallInfo,
    last_activity: u64,
    ended_at: Option<u64>,
    scheduled: u64,
    /// Added to the CSeq of requests from the caller to the callee (and taken off their responses).
    cseq_shift: i64,
    /// The callee is a trunk with credentials: its challenges to in-dialog requests are answered.
    callee_auth: Option<Arc<Trunk>>,
}

struct Relay {
    back: Target,
    /// Added to the CSeq of the response on its way back.
    cseq_shift: i64,
    /// A request towards a trunk with credentials, kept to be sent again once with them if the trunk
    /// challenges it.
    retry: Option<Box<Retry>>,
}

struct Retry {
    request: Vec<u8>,
    dest: Target,
    trunk: Arc<Trunk>,
    call_id: String,
}

pub(crate) struct Proxy {
    servers: HashMap<String, ServerTx>,
    clients: HashMap<String, ClientTx>,
    pub(crate) dialogs: HashMap<String, Dialog>,
    /// Stamped with their expiry.
    relays: FifoMap<String, Relay>,
    pub(crate) fraud: FraudGuard,
    pub(crate) max_call_ms: u64,
    /// Deadlines, earliest first: (when, kind, key). An entry whose deadline is not the entity's
    /// `scheduled` any more is stale and skipped, so each entity has one live timer and a tick costs
    /// only what is due, not a scan of every transaction.
    timers: BinaryHeap<Reverse<(u64, Kind, String)>>,
    /// Set-ups without a final response, per caller.
    pending: HashMap<String, u32>,
    counter: u64,
    seed: u64,
    pub(crate) outbox: VecDeque<Transmit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Client,
    Server,
    Dialog,
}

/// Arms `key`'s timer for `at` unless it is already armed for earlier.
fn arm(timers: &mut BinaryHeap<Reverse<(u64, Kind, String)>>, scheduled: &mut u64, kind: Kind, key: &str, at: u64) {
    if at < *scheduled {
        *scheduled = at;
        timers.push(Reverse((at, kind, key.to_owned())));
    }
}

impl ClientTx {
    /// A new INVITE client transaction, just sent: Timer A armed for UDP, Timer B for every transport.
    fn new(
        server: String,
        target: Target,
        request: Vec<u8>,
        now: u64,
        auth: Option<Arc<Trunk>>,
        cseq_shift: i64,
    ) -> Self {
        let interval = if target.transport == Transport::Udp { T1 } else { 0 };
        Self {
            server,
            target,
            request,
            state: ClientState::Calling,
            next_retx: now + interval,
            interval,
            timeout_at: now + TIMER_B,
            done_at: 0,
            scheduled: u64::MAX,
            auth,
            cseq_shift,
        }
    }

    fn next_deadline(&self) -> u64 {
        match self.state {
            ClientState::Done => self.done_at + LINGER,
            ClientState::Calling if self.interval > 0 => self.next_retx.min(self.timeout_at),
            _ => self.timeout_at,
        }
    }
}

impl ServerTx {
    fn next_deadline(&self) -> u64 {
        match self.final_code {
            None => u64::MAX,
            Some(_) if self.next_retx > 0 => self.next_retx.min(self.final_at + LINGER),
            Some(_) => self.final_at + LINGER,
        }
    }
}

fn server_key(branch: &str, source: SocketAddr) -> String {
    format!("{branch}\u{0}{source}")
}

fn reparse(data: &[u8]) -> Option<Message<'_>> {
    Message::parse(data, &Limits::default()).ok()
}

fn best_of(a: Option<(u16, Vec<u8>)>, code: u16, data: Vec<u8>) -> Option<(u16, Vec<u8>)> {
    // RFC 3261 §16.7 step 6: a 6xx wins, otherwise the lowest class.
    let rank = |c: u16| (if c >= 600 { 0 } else { 1 }, c / 100, c);
    match a {
        Some((c, d)) if rank(c) <= rank(code) => Some((c, d)),
        _ => Some((code, data)),
    }
}

/// The outcome of a call set-up that the service turns into events.
pub(crate) enum CallOutcome {
    Answered(String),
    Failed { call_id: String, status: u16 },
}

impl Proxy {
    pub(crate) fn new(seed: u64, fraud: FraudGuard) -> Self {
        Self {
            servers: HashMap::new(),
            clients: HashMap::new(),
            dialogs: HashMap::new(),
            relays: FifoMap::new(MAX_RELAYS),
            fraud,
            max_call_ms: 4 * 3_600_000,
            timers: BinaryHeap::new(),
            pending: HashMap::new(),
            counter: 0,
            seed,
            outbox: VecDeque::new(),
        }
    }

    pub(crate) fn pending(&self, caller: &str) -> u32 {
        self.pending.get(caller).copied().unwrap_or(0)
    }

    fn settle(&mut self, caller: &str) {
        if let Some(n) = self.pending.get_mut(caller) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(caller);
            }
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.servers.len() >= MAX_CALLS || self.dialogs.len() >= MAX_CALLS
    }

    pub(crate) fn table_size(&self) -> usize {
        self.servers.len() + self.clients.len() + self.dialogs.len() + self.relays.len()
    }

    fn branch(&mut self, stateless: bool) -> String {
        self.counter += 1;
        format!("z9hG4bKpg{}{:x}x{:x}", if stateless { 's' } else { 'f' }, self.seed, self.counter)
    }

    fn send(&mut self, target: Target, data: Vec<u8>) {
        self.outbox.push_back(Transmit { target, data });
    }

    /// A retransmitted INVITE: the last response sent for it, if any.
    pub(crate) fn retransmission(&self, branch: &str, source: SocketAddr) -> Option<Option<Vec<u8>>> {
        self.servers.get(&server_key(branch, source)).map(|s| s.last.clone())
    }

    /// Starts forwarding an INVITE to `branches` (target, forwarded request built by `build`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        &mut self,
        now: u64,
        invite: &[u8],
        branch: &str,
        source: Target,
        caller_tag: &str,
        info: CallInfo,
        targets: Vec<Branch<'_>>,
        trying: Vec<u8>,
    ) -> usize {
        let key = server_key(branch, source.addr);
        let mut branches = Vec::new();
        for (target, build, auth) in targets {
            let b = self.branch(false);
            let Some(request) = build(&b) else { continue };
            self.send(target, request.clone());
            let mut c = ClientTx::new(key.clone(), target, request, now, auth, 0);
            let at = c.next_deadline();
            arm(&mut self.timers, &mut c.scheduled, Kind::Client, &b, at);
            self.clients.insert(b.clone(), c);
            branches.push(b);
        }
        let n = branches.len();
        let call_id = info.call_id.clone();
        let caller = info.caller.clone();
        *self.pending.entry(caller.clone()).or_default() += 1;
        let mut d = Dialog {
            caller: source,
            callee: None,
            caller_tag: caller_tag.to_owned(),
            callee_tag: None,
            info,
            last_activity: now,
            ended_at: None,
            scheduled: u64::MAX,
            cseq_shift: 0,
            callee_auth: None,
        };
        arm(&mut self.timers, &mut d.scheduled, Kind::Dialog, &call_id, now + self.max_call_ms);
        self.dialogs.insert(call_id.clone(), d);
        self.servers.insert(
            key,
            ServerTx {
                invite: invite.to_vec(),
                source,
                branches,
                last: Some(trying),
                best: None,
                final_code: None,
                final_at: 0,
                canceled: false,
                next_retx: 0,
                interval: 0,
                call_id,
                caller,
                scheduled: u64::MAX,
            },
        );
        n
    }

    /// CANCEL of a pending INVITE (same branch and source). `None`: no such transaction (481).
    pub(crate) fn cancel(&mut self, now: u64, branch: &str, source: SocketAddr) -> Option<()> {
        let key = server_key(branch, source);
        let s = self.servers.get_mut(&key)?;
        if s.final_code.is_some() || s.canceled {
            return Some(());
        }
        s.canceled = true;
        let branches = s.branches.clone();
        for b in branches {
            self.cancel_branch(now, &b);
        }
        Some(())
    }

    fn cancel_branch(&mut self, now: u64, branch: &str) {
        let Some(c) = self.clients.get_mut(branch) else { return };
        if c.state == ClientState::Done {
            return;
        }
        let Some(cancel) = reparse(&c.request).map(|m| pbxguard_sip::hop_request(&m, "CANCEL", None)) else { return };
        // The branch gets 32 s to answer 487; then it is closed as if it had.
        c.timeout_at = c.timeout_at.min(now + TIMER_B);
        let at = c.next_deadline();
        arm(&mut self.timers, &mut c.scheduled, Kind::Client, branch, at);
        let target = c.target;
        self.send(target, cancel);
    }

    /// An ACK for a non-2xx final response we sent: stops Timer G. True when it matched.
    pub(crate) fn absorb_ack(&mut self, branch: &str, source: SocketAddr) -> bool {
        match self.servers.get_mut(&server_key(branch, source)) {
            Some(s) if s.final_code.is_some_and(|c| c >= 300) => {
                s.next_retx = 0;
                true
            }
            _ => false,
        }
    }

    /// A response to one of our client transactions or stateless relays.
    pub(crate) fn on_response(
        &mut self,
        now: u64,
        msg: &Message<'_>,
        data: &[u8],
        source: SocketAddr,
        out: &mut Vec<CallOutcome>,
    ) {
        let Some(via) = msg.header_values(HeaderName::Via).next().and_then(Via::parse) else { return };
        let Some(branch) = via.branch() else { return };
        let pbxguard_sip::StartLine::Response { code, .. } = msg.start else { return };
        let strip = |shift| pbxguard_sip::strip_top_via(msg, pbxguard_sip::start_line(data), shift);
        if let Some(r) = self.relays.get_mut(branch) {
            // Responses to stateless relays: only from where the request went is not checked (the
            // other party may answer from another port); the branch is unguessable and short-lived.
            let (back, shift) = (r.back, r.cseq_shift);
            if (code == 401 || code == 407)
                && let Some(retry) = r.retry.take()
                && self.answer_in_dialog_challenge(now, back, shift, *retry, msg, code)
            {
                return;
            }
            self.send(back, strip(shift));
            return;
        }
        let Some(c) = self.clients.get_mut(branch) else { return };
        let shift = -c.cseq_shift;
        let stripped = || strip(shift);
        if pbxguard_shield::canonical(c.target.addr.ip()) != pbxguard_shield::canonical(source.ip()) {
            return; // a response from someone we did not send to
        }
        let is_cancel = msg
            .header(HeaderName::CSeq)
            .and_then(pbxguard_sip::CSeq::parse)
            .is_some_and(|c| c.method == pbxguard_sip::Method::Cancel);
        if is_cancel {
            return;
        }
        let server_key = c.server.clone();
        let target = c.target;
        let auth = c.auth.clone();
        match code {
            100 => {
                if c.state == ClientState::Calling {
                    c.state = ClientState::Proceeding;
                }
            }
            101..=199 => {
                if c.state == ClientState::Done {
                    return;
                }
                c.state = ClientState::Proceeding;
                c.timeout_at = now + TIMER_C;
                let Some(s) = self.servers.get_mut(&server_key) else { return };
                if s.final_code.is_some() {
                    return;
                }
                let fwd = stripped();
                s.last = Some(fwd.clone());
                let to = s.source;
                self.send(to, fwd);
            }
            200..=299 => {
                let first = c.state != ClientState::Done;
                if first {
                    c.state = ClientState::Done;
                    c.done_at = now;
                    // A 2xx is acknowledged end to end and never cancelled: the request is not needed.
                    c.request = Vec::new();
                    let at = c.next_deadline();
                    arm(&mut self.timers, &mut c.scheduled, Kind::Client, branch, at);
                }
                let fwd = stripped();
                let Some(to) = self.servers.get(&server_key).map(|s| s.source) else { return };
                // Every 2xx goes upstream, retransmissions too: the UAS retransmits until the ACK.
                self.send(to, fwd);
                let Some(s) = self.servers.get_mut(&server_key) else { return };
                if !first || s.final_code.is_some_and(|c| c >= 300) {
                    return;
                }
                if s.final_code.is_none() {
                    s.final_code = Some(code);
                    s.final_at = now;
                    s.last = None;
                    // Nothing is built from the INVITE any more: free it now rather than in 32 s.
                    s.invite = Vec::new();
                    let caller = std::mem::take(&mut s.caller);
                    let at = s.next_deadline();
                    arm(&mut self.timers, &mut s.scheduled, Kind::Server, &server_key, at);
                    let call_id = s.call_id.clone();
                    let others: Vec<String> = s.branches.iter().filter(|b| *b != branch).cloned().collect();
                    for b in others {
                        self.cancel_branch(now, &b);
                    }
                    self.settle(&caller);
                    if let Some(d) = self.dialogs.get_mut(&call_id) {
                        d.callee = Some(target);
                        d.callee_auth = auth;
                        d.callee_tag = msg
                            .header(HeaderName::To)
                            .and_then(NameAddr::parse)
                            .and_then(|n| n.tag())
                            .map(str::to_owned);
                        d.last_activity = now;
                    }
                    out.push(CallOutcome::Answered(call_id));
                }
            }
            _ => {
                // Hop-by-hop ACK for a non-2xx final (§17.1.1.3), again for each retransmission.
                let to_hdr = msg.header(HeaderName::To);
                if let Some(ack) = reparse(&c.request).map(|m| pbxguard_sip::hop_request(&m, "ACK", to_hdr)) {
                    self.outbox.push_back(Transmit { target, data: ack });
                }
                let Some(c) = self.clients.get_mut(branch) else { return };
                if c.state == ClientState::Done {
                    return;
                }
                if (code == 401 || code == 407) && c.cseq_shift == 0 && c.auth.is_some() {
                    let server_open =
                        self.servers.get(&server_key).is_some_and(|s| s.final_code.is_none() && !s.canceled);
                    if server_open && self.answer_trunk_challenge(now, branch, msg, code) {
                        return;
                    }
                }
                let Some(c) = self.clients.get_mut(branch) else { return };
                c.state = ClientState::Done;
                c.done_at = now;
                let at = c.next_deadline();
                arm(&mut self.timers, &mut c.scheduled, Kind::Client, branch, at);
                if let Some(s) = self.servers.get_mut(&server_key) {
                    s.best = best_of(s.best.take(), code, stripped());
                }
                self.maybe_finish(now, &server_key, out);
            }
        }
    }

    /// The transport could not reach `target` (connection refused, TLS certificate rejected): branches
    /// still waiting for their first answer from it end as 503 at once, instead of after Timer B.
    pub(crate) fn unreachable(&mut self, now: u64, target: Target, out: &mut Vec<CallOutcome>) {
        let failed: Vec<(String, String)> = self
            .clients
            .iter()
            .filter(|(_, c)| c.target == target && c.state == ClientState::Calling)
            .map(|(k, c)| (k.clone(), c.server.clone()))
            .collect();
        for (branch, server) in failed {
            let Some(c) = self.clients.get_mut(&branch) else { continue };
            c.state = ClientState::Done;
            c.done_at = now;
            let at = c.next_deadline();
            arm(&mut self.timers, &mut c.scheduled, Kind::Client, &branch, at);
            if let Some(s) = self.servers.get_mut(&server)
                && let Some(m) = reparse(&s.invite)
            {
                let tag = format!("pg{:x}", self.seed);
                let r = ResponseBuilder::new(&m, 503, "Service Unavailable", s.source.addr, &tag).finish(None, b"");
                s.best = best_of(s.best.take(), 503, r);
            }
            self.maybe_finish(now, &server, out);
        }
    }

    /// Re-sends a branch's INVITE with credentials for the trunk's challenge, as a new client
    /// transaction one CSeq ahead; the dialog then translates CSeq numbers. False when the challenge
    /// cannot be answered (no credentials for its realm).
    fn answer_trunk_challenge(&mut self, now: u64, branch: &str, msg: &Message<'_>, code: u16) -> bool {
        let Some(c) = self.clients.get(branch) else { return false };
        let (server, target) = (c.server.clone(), c.target);
        let Some(trunk) = c.auth.clone() else { return false };
        let stored = c.request.clone();
        let Some(sent) = reparse(&stored) else { return false };
        let new_branch = self.branch(false);
        let Some(request) = self.with_credentials(&sent, &trunk, msg, code, &new_branch) else { return false };
        let mut next = ClientTx::new(server.clone(), target, request.clone(), now, Some(trunk), 1);
        let at = next.next_deadline();
        arm(&mut self.timers, &mut next.scheduled, Kind::Client, &new_branch, at);
        self.clients.insert(new_branch.clone(), next);
        if let Some(old) = self.clients.get_mut(branch) {
            old.state = ClientState::Done;
            old.done_at = now;
            let at = old.next_deadline();
            arm(&mut self.timers, &mut old.scheduled, Kind::Client, branch, at);
        }
        if let Some(s) = self.servers.get_mut(&server) {
            for b in &mut s.branches {
                if b == branch {
                    *b = new_branch.clone();
                }
            }
            if let Some(d) = self.dialogs.get_mut(&s.call_id) {
                d.cseq_shift = 1;
            }
        }
        self.send(target, request);
        true
    }

    /// A trunk challenged a request relayed inside a dialog (a BYE, a re-INVITE): it is sent again once
    /// with the trunk's credentials, one CSeq ahead, and from then on the caller's requests in that
    /// dialog go one further ahead. The caller sees only the final answer, with its own CSeq. False when
    /// the challenge cannot be answered (another realm): the caller then gets it as it is.
    fn answer_in_dialog_challenge(
        &mut self,
        now: u64,
        back: Target,
        shift: i64,
        retry: Retry,
        msg: &Message<'_>,
        code: u16,
    ) -> bool {
        let Some(sent) = reparse(&retry.request) else { return false };
        let new_branch = self.branch(true);
        let Some(request) = self.with_credentials(&sent, &retry.trunk, msg, code, &new_branch) else { return false };
        if sent.method() == Some(pbxguard_sip::Method::Invite) {
            // A challenged re-INVITE is a non-2xx final to an INVITE: acknowledged hop by hop.
            let ack = pbxguard_sip::hop_request(&sent, "ACK", msg.header(HeaderName::To));
            self.send(retry.dest, ack);
        }
        self.relays.insert(now + LINGER, new_branch, Relay { back, cseq_shift: shift - 1, retry: None });
        if let Some(d) = self.dialogs.get_mut(&retry.call_id) {
            d.cseq_shift += 1;
        }
        self.send(retry.dest, request);
        true
    }

    /// `sent` again as a new transaction on `branch` with the trunk's answer to the challenge `msg`
    /// (RFC 3261 §22.2); `None` when it cannot be answered (no credentials, another realm).
    fn with_credentials(
        &self,
        sent: &Message<'_>,
        trunk: &Trunk,
        msg: &Message<'_>,
        code: u16,
        branch: &str,
    ) -> Option<Vec<u8>> {
        let creds = trunk.auth.as_ref()?;
        let method = sent.method().map_or("", |m| m.as_str());
        let cnonce = format!("{:x}{:x}", self.seed, self.counter);
        let TrunkAnswer::Answer(header, value, _) =
            creds.answer(msg, code, method, sent.request_uri().unwrap_or(""), &cnonce)
        else {
            return None;
        };
        let via = sent.header_values(HeaderName::Via).next().and_then(Via::parse)?;
        let via_value =
            format!("SIP/2.0/{} {}:{};branch={branch};rport", via.transport, via.host, via.port.unwrap_or(5060));
        Some(pbxguard_sip::reissue(sent, &via_value, (header, &value)))
    }

    /// Sends the best final response upstream once every branch has one.
    fn maybe_finish(&mut self, now: u64, key: &str, out: &mut Vec<CallOutcome>) {
        let Some(s) = self.servers.get(key) else { return };
        if s.final_code.is_some() {
            return;
        }
        let all_done = s.branches.iter().all(|b| self.clients.get(b).is_none_or(|c| c.state == ClientState::Done));
        if !all_done {
            return;
        }
        let (code, data) = match s.best.clone() {
            Some(b) => b,
            None => {
                let code = if s.canceled { 487 } else { 408 };
                let reason = if s.canceled { "Request Terminated" } else { "Request Timeout" };
                let Some(m) = reparse(&s.invite) else { return };
                let tag = format!("pg{:x}", self.seed);
                (code, ResponseBuilder::new(&m, code, reason, s.source.addr, &tag).finish(None, b""))
            }
        };
        let Some(s) = self.servers.get_mut(key) else { return };
        s.final_code = Some(code);
        s.final_at = now;
        s.last = Some(data.clone());
        s.invite = Vec::new();
        let caller = std::mem::take(&mut s.caller);
        if s.source.transport == Transport::Udp {
            s.interval = T1;
            s.next_retx = now + T1;
        }
        let at = s.next_deadline();
        arm(&mut self.timers, &mut s.scheduled, Kind::Server, key, at);
        let (to, call_id) = (s.source, s.call_id.clone());
        self.settle(&caller);
        self.send(to, data);
        out.push(CallOutcome::Failed { call_id, status: code });
    }

    /// Relays an in-dialog request to the other party. `Err(status)` when it may not pass.
    pub(crate) fn relay_in_dialog(
        &mut self,
        now: u64,
        req: &pbxguard_sip::Request<'_>,
        source: Target,
        build: impl Fn(&str, Target, i64) -> Option<Vec<u8>>,
    ) -> Result<Option<CallInfo>, u16> {
        let Some(d) = self.dialogs.get_mut(req.call_id) else { return Err(481) };
        let from_tag = req.from.tag();
        let to_tag = req.to.tag();
        let (dest, sender_ip, shift, auth) = if from_tag == Some(d.caller_tag.as_str()) {
            let Some(callee) = d.callee else { return Err(481) };
            (callee, d.caller.addr.ip(), d.cseq_shift, d.callee_auth.clone())
        } else if to_tag == Some(d.caller_tag.as_str()) && from_tag.is_some() && from_tag == d.callee_tag.as_deref() {
            (d.caller, d.callee.map_or(d.caller.addr.ip(), |c| c.addr.ip()), 0, None)
        } else {
            return Err(481);
        };
        // Only the parties of the dialog may use it.
        if pbxguard_shield::canonical(sender_ip) != pbxguard_shield::canonical(source.addr.ip()) {
            return Err(403);
        }
        d.last_activity = now;
        let method = req.method;
        let ended = if method == pbxguard_sip::Method::Bye && d.ended_at.is_none() {
            d.ended_at = Some(now);
            arm(&mut self.timers, &mut d.scheduled, Kind::Dialog, req.call_id, now + LINGER);
            Some(d.info.clone())
        } else {
            None
        };
        let branch = self.branch(true);
        let Some(data) = build(&branch, dest, shift) else { return Err(503) };
        if method != pbxguard_sip::Method::Ack {
            let retry = auth
                .map(|trunk| Box::new(Retry { request: data.clone(), dest, trunk, call_id: req.call_id.to_owned() }));
            self.relays.insert(now + LINGER, branch, Relay { back: source, cseq_shift: -shift, retry });
        }
        self.send(dest, data);
        if let Some(info) = &ended
            && let Some(e) = &info.counted
        {
            self.fraud.end(e);
        }
        Ok(ended)
    }

    /// Timers: retransmissions, timeouts, and forgetting what is finished. Calls dropped for silence go
    /// to `ended`.
    pub(crate) fn tick(&mut self, now: u64, out: &mut Vec<CallOutcome>, ended: &mut Vec<CallInfo>) {
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, kind, key))) = self.timers.pop() else { break };
            match kind {
                Kind::Client => self.fire_client(now, at, &key, out),
                Kind::Server => self.fire_server(now, at, &key),
                Kind::Dialog => self.fire_dialog(now, at, &key, ended),
            }
        }
        self.relays.expire(|t| t <= now);
    }

    fn fire_client(&mut self, now: u64, at: u64, key: &str, out: &mut Vec<CallOutcome>) {
        let Some(c) = self.clients.get_mut(key).filter(|c| c.scheduled == at) else { return };
        c.scheduled = u64::MAX;
        match c.state {
            ClientState::Done if now >= c.done_at + LINGER => {
                // Kept while its server transaction lives, for late responses.
                if self.servers.contains_key(&c.server) {
                    arm(&mut self.timers, &mut c.scheduled, Kind::Client, key, now + LINGER);
                } else {
                    self.clients.remove(key);
                }
                return;
            }
            ClientState::Done => {}
            _ if now >= c.timeout_at => {
                // Timer B (no answer at all) or C (ringing too long): the branch ends as 408, and a
                // branch that was ringing is cancelled.
                let proceeding = c.state == ClientState::Proceeding;
                c.state = ClientState::Done;
                c.done_at = now;
                let server = c.server.clone();
                let cancel = if proceeding {
                    reparse(&c.request).map(|m| pbxguard_sip::hop_request(&m, "CANCEL", None))
                } else {
                    None
                };
                let target = c.target;
                let at = c.next_deadline();
                arm(&mut self.timers, &mut c.scheduled, Kind::Client, key, at);
                if let Some(cancel) = cancel {
                    self.send(target, cancel);
                }
                self.maybe_finish(now, &server, out);
                return;
            }
            ClientState::Calling if c.interval > 0 && now >= c.next_retx => {
                // Timer A: the INVITE again, at doubling intervals.
                c.interval *= 2;
                c.next_retx = now + c.interval;
                let (target, data) = (c.target, c.request.clone());
                let at = c.next_deadline();
                arm(&mut self.timers, &mut c.scheduled, Kind::Client, key, at);
                self.send(target, data);
                return;
            }
            _ => {}
        }
        let at = c.next_deadline();
        arm(&mut self.timers, &mut c.scheduled, Kind::Client, key, at);
    }

    fn fire_server(&mut self, now: u64, at: u64, key: &str) {
        let Some(s) = self.servers.get_mut(key).filter(|s| s.scheduled == at) else { return };
        s.scheduled = u64::MAX;
        if now >= s.final_at + LINGER {
            self.servers.remove(key);
            return;
        }
        let mut resend = None;
        if s.next_retx > 0 && now >= s.next_retx {
            // Timer G: the non-2xx final again until the ACK, for at most 32 s (Timer H).
            if now >= s.final_at + TIMER_B {
                s.next_retx = 0;
            } else {
                resend = s.last.clone().map(|l| (s.source, l));
                s.interval = (s.interval * 2).min(T2);
                s.next_retx = now + s.interval;
            }
        }
        let at = s.next_deadline();
        arm(&mut self.timers, &mut s.scheduled, Kind::Server, key, at);
        if let Some((t, d)) = resend {
            self.send(t, d);
        }
    }

    fn fire_dialog(&mut self, now: u64, at: u64, key: &str, ended: &mut Vec<CallInfo>) {
        let Some(d) = self.dialogs.get_mut(key).filter(|d| d.scheduled == at) else { return };
        d.scheduled = u64::MAX;
        let next = match d.ended_at {
            Some(t) => t + LINGER,
            None => d.last_activity + self.max_call_ms,
        };
        if now < next {
            arm(&mut self.timers, &mut d.scheduled, Kind::Dialog, key, next);
            return;
        }
        let Some(d) = self.dialogs.remove(key) else { return };
        if d.ended_at.is_none() {
            // A vanished party: the dialog (and its fraud slot) goes after max_call of silence.
            if let Some(e) = &d.info.counted {
                self.fraud.end(e);
            }
            ended.push(d.info);
        }
    }

    /// A call set-up failed: the dialog goes, and its fraud slot with it.
    pub(crate) fn forget_call(&mut self, call_id: &str) -> Option<CallInfo> {
        let d = self.dialogs.remove(call_id)?;
        if let Some(e) = &d.info.counted {
            self.fraud.end(e);
        }
        Some(d.info)
    }

    pub(crate) fn dialog_info(&self, call_id: &str) -> Option<&CallInfo> {
        self.dialogs.get(call_id).map(|d| &d.info)
    }
}

/// Events for call outcomes, in the order they happened.
pub(crate) fn outcome_events(proxy: &mut Proxy, outcomes: Vec<CallOutcome>, events: &mut Vec<Event>) {
    for o in outcomes {
        match o {
            CallOutcome::Answered(call_id) => events.push(Event::CallAnswered { call_id }),
            CallOutcome::Failed { call_id, status } => {
                if proxy.forget_call(&call_id).is_some() {
                    events.push(Event::CallEnded { call_id, status });
                }
            }
        }
    }
}
