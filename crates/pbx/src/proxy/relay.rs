//! Stateless relays inside a dialog (RFC 3261 §16.11): a request passes only between the two parties
//! of a dialog this proxy set up, and its responses find their way back through a bounded table keyed
//! by our Via branch.

use super::state::{CallInfo, Kind, LINGER, Party, Proxy, Relay, Retry, arm};
use crate::transport::Target;
use pbxguard_sip::Message;

impl Proxy {
    /// Relays an in-dialog request to the other party. `Err(status)` when it may not pass.
    pub(crate) fn relay_in_dialog(
        &mut self,
        now: u64,
        req: &pbxguard_sip::Request<'_>,
        source: Target,
        build: impl Fn(&str, Target, i64) -> Option<Vec<u8>>,
    ) -> Result<Option<CallInfo>, u16> {
        let Some(d) = self.dialogs.get_mut(req.call_id) else { return Err(481) };
        let towards = d.towards(req.from.tag(), req.to.tag());
        let (dest, sender_ip, shift, auth) = match towards {
            Some(Party::Callee) => {
                let Some(callee) = d.callee else { return Err(481) };
                (callee, d.caller.addr.ip(), d.cseq_shift, d.callee_auth.clone())
            }
            Some(Party::Caller) => (d.caller, d.callee.map_or(d.caller.addr.ip(), |c| c.addr.ip()), 0, None),
            None => return Err(481),
        };
        // Only the parties of the dialog may use it.
        if pbxguard_shield::canonical(sender_ip) != pbxguard_shield::canonical(source.addr.ip()) {
            return Err(403);
        }
        d.last_activity = now;
        d.saw_cseq(if towards == Some(Party::Callee) { Party::Caller } else { Party::Callee }, req.cseq.seq);
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
            self.fraud.end(e, now);
        }
        Ok(ended)
    }

    /// A response to a request relayed statelessly goes back to where the request came from, with the
    /// CSeq as that party knows it. False when `branch` is not a relay's.
    pub(super) fn relay_response(&mut self, now: u64, branch: &str, code: u16, msg: &Message<'_>, data: &[u8]) -> bool {
        let Some(r) = self.relays.get_mut(branch) else { return false };
        // Responses to stateless relays: only from where the request went is not checked (the
        // other party may answer from another port); the branch is unguessable and short-lived.
        let (back, shift) = (r.back, r.cseq_shift);
        if (code == 401 || code == 407)
            && let Some(retry) = r.retry.take()
            && self.answer_in_dialog_challenge(now, back, shift, *retry, msg, code)
        {
            return true;
        }
        self.send(back, pbxguard_sip::strip_top_via(msg, pbxguard_sip::start_line(data), shift));
        true
    }
}
