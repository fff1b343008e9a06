//! The longest trunk call (`calls.max_trunk_duration`): a hijacked phone must not keep a premium-rate
//! call running all weekend. When a call with a limit is answered, its dialog keeps what a BYE towards
//! each party needs (RFC 3261 §12.2.1.1: the remote target from Contact, the route set from
//! Record-Route, From and To of the party it speaks for, the next CSeq of that party). At the deadline
//! the proxy sends both BYEs itself, retransmits them over UDP (Timers E and F, §17.1.2.2) and absorbs
//! their answers: neither party ever sees the 200 or 481 meant for us.

use super::state::{ByeTx, CallInfo, Dialog, DialogEnd, Hangup, Kind, LINGER, Party, Proxy, T1, T2, TIMER_B, arm};
use crate::dialplan::Trunk;
use crate::transport::{Locals, Target, Transport};
use pbxguard_sip::{HeaderName, Message, NameAddr};
use std::sync::Arc;

impl ByeTx {
    fn new(target: Target, request: Vec<u8>, now: u64, auth: Option<Arc<Trunk>>) -> Self {
        let interval = if target.transport == Transport::Udp { T1 } else { 0 };
        Self {
            target,
            request,
            next_retx: now + interval,
            interval,
            timeout_at: now + TIMER_B,
            scheduled: u64::MAX,
            auth,
        }
    }

    fn next_deadline(&self) -> u64 {
        if self.interval > 0 { self.next_retx.min(self.timeout_at) } else { self.timeout_at }
    }
}

/// A header value as it may be written on one line of ours (folding undone).
fn one_line(v: &str) -> String {
    v.replace(['\r', '\n'], " ")
}

/// The remote target a party gave in `msg`'s Contact; without a usable one, its transport address: a
/// phone must not escape the limit by leaving Contact out.
fn contact_uri(msg: &Message<'_>, party: Target) -> String {
    let given = msg.header_values(HeaderName::Contact).next().and_then(NameAddr::parse).map(|n| n.uri.raw);
    match given {
        Some(uri) if !uri.is_empty() => one_line(uri),
        _ => match party.transport {
            Transport::Udp => format!("sip:{}", party.addr),
            t => format!("sip:{};transport={}", party.addr, t.as_str()),
        },
    }
}

impl Hangup {
    /// From the INVITE as the caller sent it (from `caller`) and the 2xx as the callee sent it (from
    /// `callee`), answered at `now` and limited to `limit_ms`.
    pub(super) fn new(
        invite: &Message<'_>,
        ok: &Message<'_>,
        locals: &Locals,
        (caller, callee): (Target, Target),
        now: u64,
        limit_ms: u64,
    ) -> Self {
        // From and To are there: the INVITE passed the sanity checks, and a 2xx without To never
        // matched a transaction.
        let caller_id = one_line(invite.header(HeaderName::From).unwrap_or_default());
        let callee_id = one_line(ok.header(HeaderName::To).unwrap_or_default());
        // The Record-Route of the 2xx runs from the callee's side to the caller's, our own entries (one,
        // or two between transports) in between (§16.6 step 4, RFC 5658).
        let entries: Vec<&str> =
            ok.header_values(HeaderName::RecordRoute).flat_map(pbxguard_sip::split_commas).collect();
        let ours = |e: &&str| NameAddr::parse(e).is_some_and(|n| locals.is_us(n.uri.host, n.uri.port));
        let first = entries.iter().position(ours).unwrap_or(entries.len());
        let last = entries.iter().rposition(ours).map_or(entries.len(), |i| i + 1);
        Self {
            answered_at: now,
            deadline: now.saturating_add(limit_ms),
            caller_id,
            callee_id,
            caller_contact: contact_uri(invite, caller),
            callee_contact: contact_uri(ok, callee),
            route_to_caller: entries[last.min(entries.len())..].iter().map(|e| one_line(e)).collect(),
            route_to_callee: entries[..first].iter().rev().map(|e| one_line(e)).collect(),
        }
    }
}

/// A BYE from us in the name of the other party (§15.1.1): its From and To swapped per direction,
/// `cseq` one past that party's last.
fn bye(h: &Hangup, towards: Party, call_id: &str, via: &str, cseq: u32) -> Vec<u8> {
    let (uri, route, from, to) = match towards {
        Party::Caller => (&h.caller_contact, &h.route_to_caller, &h.callee_id, &h.caller_id),
        Party::Callee => (&h.callee_contact, &h.route_to_callee, &h.caller_id, &h.callee_id),
    };
    let mut out = format!("BYE {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n");
    for r in route {
        out.push_str(&format!("Route: {r}\r\n"));
    }
    // Q.850 cause 16: normal call clearing. What limit ended it is the operator's business, not the
    // parties'.
    out.push_str(&format!(
        "From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} BYE\r\nReason: Q.850;cause=16\r\n\
         Content-Length: 0\r\n\r\n"
    ));
    out.into_bytes()
}

impl Proxy {
    /// Notes what cutting the call needs, on its first 2xx, when the call has a limit.
    pub(super) fn arm_hangup(&mut self, now: u64, call_id: &str, invite: &[u8], ok: &Message<'_>) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        let Some(limit) = d.info.max_ms else { return };
        let Some(inv) = super::state::reparse(invite) else { return };
        if let Some(c) = inv.header(HeaderName::CSeq).and_then(pbxguard_sip::CSeq::parse) {
            d.caller_cseq = d.caller_cseq.max(c.seq);
        }
        let Some(callee) = d.callee else { return };
        let h = Hangup::new(&inv, ok, &self.locals, (d.caller, callee), now, limit);
        arm(&mut self.timers, &mut d.scheduled, Kind::Dialog, call_id, h.deadline);
        d.hangup = Some(Box::new(h));
    }

    /// The call reached its longest length: BYE to both parties, and the dialog ends (it lingers for
    /// requests already on their way).
    pub(super) fn cut(&mut self, now: u64, key: &str, ended: &mut Vec<DialogEnd>) {
        let Some(d) = self.dialogs.get_mut(key) else { return };
        let Some(h) = d.hangup.take() else { return };
        d.ended_at = Some(now);
        arm(&mut self.timers, &mut d.scheduled, Kind::Dialog, key, now + LINGER);
        let to_callee = (d.caller_cseq as i64 + d.cseq_shift + 1).clamp(1, i64::from(u32::MAX)) as u32;
        let to_caller = d.callee_cseq.map_or(1, |n| n.saturating_add(1));
        let legs = [
            (Party::Callee, d.callee, to_callee, d.callee_auth.clone()),
            (Party::Caller, Some(d.caller), to_caller, None),
        ];
        let info: CallInfo = d.info.clone();
        for (party, target, cseq, auth) in legs {
            let Some(target) = target else { continue };
            let branch = self.branch(true);
            let Some(via) = self.locals.via(target.transport, &branch) else { continue };
            let request = bye(&h, party, &info.call_id, &via, cseq);
            let mut tx = ByeTx::new(target, request.clone(), now, auth);
            let at = tx.next_deadline();
            arm(&mut self.timers, &mut tx.scheduled, Kind::Bye, &branch, at);
            self.byes.insert(branch, tx);
            self.send(target, request);
        }
        if let Some(e) = &info.counted {
            self.fraud.end(e, now);
        }
        let limit_ms = h.deadline - h.answered_at;
        ended.push(DialogEnd::Cut { info, after_ms: now - h.answered_at, limit_ms });
    }

    /// A response to one of our BYEs: absorbed (true), never forwarded. A trunk's challenge is answered
    /// once with its credentials.
    pub(super) fn bye_response(&mut self, now: u64, branch: &str, code: u16, msg: &Message<'_>) -> bool {
        let Some(b) = self.byes.get_mut(branch) else { return false };
        if code < 200 {
            // Proceeding: retransmit at T2 until the final answer (§17.1.2.2).
            if b.interval > 0 {
                b.interval = T2;
            }
            return true;
        }
        let Some(b) = self.byes.remove(branch) else { return true };
        if (code == 401 || code == 407)
            && let Some(trunk) = &b.auth
            && let Some(sent) = super::state::reparse(&b.request)
        {
            let new_branch = self.branch(true);
            if let Some(request) = self.with_credentials(&sent, trunk, msg, code, &new_branch) {
                let mut tx = ByeTx::new(b.target, request.clone(), now, None);
                let at = tx.next_deadline();
                arm(&mut self.timers, &mut tx.scheduled, Kind::Bye, &new_branch, at);
                self.byes.insert(new_branch, tx);
                self.send(b.target, request);
            }
        }
        true
    }

    /// Timer E (the BYE again, doubling up to T2) and Timer F (64·T1: give up).
    pub(super) fn fire_bye(&mut self, now: u64, at: u64, key: &str) {
        let Some(b) = self.byes.get_mut(key).filter(|b| b.scheduled == at) else { return };
        b.scheduled = u64::MAX;
        if now >= b.timeout_at {
            self.byes.remove(key);
            return;
        }
        let mut resend = None;
        if b.interval > 0 && now >= b.next_retx {
            resend = Some((b.target, b.request.clone()));
            b.interval = (b.interval * 2).min(T2);
            b.next_retx = now + b.interval;
        }
        let at = b.next_deadline();
        arm(&mut self.timers, &mut b.scheduled, Kind::Bye, key, at);
        if let Some((t, data)) = resend {
            self.send(t, data);
        }
    }
}

impl Dialog {
    /// Notes the CSeq of an in-dialog request from `sender`: our BYE in its name must go past it.
    pub(super) fn saw_cseq(&mut self, sender: Party, seq: u32) {
        match sender {
            Party::Caller => self.caller_cseq = self.caller_cseq.max(seq),
            Party::Callee => self.callee_cseq = Some(self.callee_cseq.map_or(seq, |n| n.max(seq))),
        }
    }
}
