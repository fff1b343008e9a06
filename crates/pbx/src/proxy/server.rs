//! INVITE server transactions towards the caller (RFC 3261 §17.2.1, §16.7): a call set-up forked to
//! its branches, the 100 Trying and the best final response upstream, CANCEL, and Timer G until the
//! caller's ACK.

use super::state::{
    Branch, CallInfo, CallOutcome, ClientState, ClientTx, Dialog, Kind, LINGER, Proxy, ServerTx, T1, T2, TIMER_B, arm,
    reparse, server_key,
};
use crate::transport::{Target, Transport};
use pbxguard_sip::ResponseBuilder;
use std::net::SocketAddr;

impl ServerTx {
    pub(super) fn next_deadline(&self) -> u64 {
        match self.final_code {
            None => u64::MAX,
            Some(_) if self.next_retx > 0 => self.next_retx.min(self.final_at + LINGER),
            Some(_) => self.final_at + LINGER,
        }
    }
}

pub(super) fn best_of(a: Option<(u16, Vec<u8>)>, code: u16, data: Vec<u8>) -> Option<(u16, Vec<u8>)> {
    // RFC 3261 §16.7 step 6: a 6xx wins, otherwise the lowest class.
    let rank = |c: u16| (if c >= 600 { 0 } else { 1 }, c / 100, c);
    match a {
        Some((c, d)) if rank(c) <= rank(code) => Some((c, d)),
        _ => Some((code, data)),
    }
}

impl Proxy {
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
            caller_cseq: 0,
            callee_cseq: None,
            hangup: None,
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

    /// Sends the best final response upstream once every branch has one.
    pub(super) fn maybe_finish(&mut self, now: u64, key: &str, out: &mut Vec<CallOutcome>) {
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

    pub(super) fn fire_server(&mut self, now: u64, at: u64, key: &str) {
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
}
