//! The dialog table: calls this proxy set up, kept until BYE (and a linger for retransmissions), until
//! a party has been silent for the longest call allowed, or until a trunk call reaches its longest
//! length ([`super::hangup`]); and the events for call outcomes.

use super::state::{CallInfo, CallOutcome, DialogEnd, Kind, LINGER, Party, Proxy, arm};
use crate::event::Event;
use std::net::IpAddr;

impl Proxy {
    pub(super) fn fire_dialog(&mut self, now: u64, at: u64, key: &str, ended: &mut Vec<DialogEnd>) {
        let Some(d) = self.dialogs.get_mut(key).filter(|d| d.scheduled == at) else { return };
        d.scheduled = u64::MAX;
        let next = match d.ended_at {
            Some(t) => t + LINGER,
            None => {
                let silent = d.last_activity + self.max_call_ms;
                d.hangup.as_ref().map_or(silent, |h| silent.min(h.deadline))
            }
        };
        if now < next {
            arm(&mut self.timers, &mut d.scheduled, Kind::Dialog, key, next);
            return;
        }
        // A call due to be cut is cut, with its BYEs, even when it has been silent as long.
        if d.ended_at.is_none() && d.hangup.as_ref().is_some_and(|h| now >= h.deadline) {
            self.cut(now, key, ended);
            return;
        }
        let Some(d) = self.dialogs.remove(key) else { return };
        if d.ended_at.is_none() {
            // A vanished party: the dialog (and its fraud slot) goes after max_call of silence.
            if let Some(e) = &d.info.counted {
                self.fraud.end(e, now);
            }
            ended.push(DialogEnd::Silent(d.info));
        }
    }

    /// A call set-up failed: the dialog goes, and its fraud slot with it.
    pub(crate) fn forget_call(&mut self, now: u64, call_id: &str) -> Option<CallInfo> {
        let d = self.dialogs.remove(call_id)?;
        if let Some(e) = &d.info.counted {
            self.fraud.end(e, now);
        }
        Some(d.info)
    }

    pub(crate) fn dialog_info(&self, call_id: &str) -> Option<&CallInfo> {
        self.dialogs.get(call_id).map(|d| &d.info)
    }

    /// The call an in-dialog request belongs to and the party it is addressed to, when it comes from
    /// the address of the other party. `None` otherwise: [`Proxy::relay_in_dialog`] then refuses it
    /// (481, or 403 for a third address), so nothing is judged on the word of a stranger.
    pub(crate) fn addressed_party(
        &self,
        req: &pbxguard_sip::Request<'_>,
        source: IpAddr,
    ) -> Option<(Party, &CallInfo)> {
        let d = self.dialogs.get(req.call_id)?;
        let to = d.towards(req.from.tag(), req.to.tag())?;
        let from = match to {
            Party::Caller => Party::Callee,
            Party::Callee => Party::Caller,
        };
        let sender = d.address(from)?;
        (pbxguard_shield::canonical(sender.addr.ip()) == pbxguard_shield::canonical(source)).then_some((to, &d.info))
    }
}

/// Events for call outcomes, in the order they happened.
pub(crate) fn outcome_events(proxy: &mut Proxy, now: u64, outcomes: Vec<CallOutcome>, events: &mut Vec<Event>) {
    for o in outcomes {
        match o {
            CallOutcome::Answered(call_id) => events.push(Event::CallAnswered { call_id }),
            CallOutcome::Failed { call_id, status } => {
                if proxy.forget_call(now, &call_id).is_some() {
                    events.push(Event::CallEnded { call_id, status });
                }
            }
        }
    }
}
