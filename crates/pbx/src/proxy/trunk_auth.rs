//! Answering a trunk's 401/407 with its credentials (RFC 3261 §22.2): once per INVITE branch, and
//! once per request relayed inside a dialog, each time as a new transaction one CSeq ahead.

use super::state::{ClientState, ClientTx, Kind, LINGER, Proxy, Relay, Retry, arm, reparse};
use crate::dialplan::{Trunk, TrunkAnswer};
use crate::transport::Target;
use pbxguard_sip::{HeaderName, Message, Via};

impl Proxy {
    /// Re-sends a branch's INVITE with credentials for the trunk's challenge, as a new client
    /// transaction one CSeq ahead; the dialog then translates CSeq numbers. False when the challenge
    /// cannot be answered (no credentials for its realm).
    pub(super) fn answer_trunk_challenge(&mut self, now: u64, branch: &str, msg: &Message<'_>, code: u16) -> bool {
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
    pub(super) fn answer_in_dialog_challenge(
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
    pub(super) fn with_credentials(
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
}
