//! INVITE client transactions (RFC 3261 §17.1.1), one per fork branch: Timers A, B and C, CANCEL of a
//! branch, the hop-by-hop ACK of a non-2xx final, and the responses that come back.

use super::server::best_of;
use super::state::{CallOutcome, ClientState, ClientTx, Kind, LINGER, Proxy, T1, TIMER_B, TIMER_C, arm, reparse};
use crate::dialplan::Trunk;
use crate::transport::{Target, Transmit, Transport};
use pbxguard_sip::{HeaderName, Message, NameAddr, ResponseBuilder, Via};
use std::net::SocketAddr;
use std::sync::Arc;

impl ClientTx {
    /// A new INVITE client transaction, just sent: Timer A armed for UDP, Timer B for every transport.
    pub(super) fn new(
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

    pub(super) fn next_deadline(&self) -> u64 {
        match self.state {
            ClientState::Done => self.done_at + LINGER,
            ClientState::Calling if self.interval > 0 => self.next_retx.min(self.timeout_at),
            _ => self.timeout_at,
        }
    }
}

impl Proxy {
    pub(super) fn cancel_branch(&mut self, now: u64, branch: &str) {
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
        if self.bye_response(now, branch, code, msg) {
            return;
        }
        if self.relay_response(now, branch, code, msg, data) {
            return;
        }
        let strip = |shift| pbxguard_sip::strip_top_via(msg, pbxguard_sip::start_line(data), shift);
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
                    // Nothing is built from the INVITE any more (but the hangup of a limited call,
                    // just below): free it now rather than in 32 s.
                    let invite = std::mem::take(&mut s.invite);
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
                    self.arm_hangup(now, &call_id, &invite, msg);
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

    pub(super) fn fire_client(&mut self, now: u64, at: u64, key: &str, out: &mut Vec<CallOutcome>) {
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
}
