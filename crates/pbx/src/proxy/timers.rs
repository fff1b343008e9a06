//! The proxy's clock: one heap of deadlines for transactions and dialogs, plus the expiry of stateless
//! relays. `tick` does what is due; `poll_timeout` says when that will next be.

use super::state::{CallOutcome, DialogEnd, Kind, Proxy};
use std::cmp::Reverse;

impl Proxy {
    /// Timers: retransmissions, timeouts, and forgetting what is finished. Calls dropped for silence or
    /// cut at their longest length go to `ended`.
    pub(crate) fn tick(&mut self, now: u64, out: &mut Vec<CallOutcome>, ended: &mut Vec<DialogEnd>) {
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, kind, key))) = self.timers.pop() else { break };
            match kind {
                Kind::Client => self.fire_client(now, at, &key, out),
                Kind::Server => self.fire_server(now, at, &key),
                Kind::Dialog => self.fire_dialog(now, at, &key, ended),
                Kind::Bye => self.fire_bye(now, at, &key),
            }
        }
        self.relays.expire(|t| t <= now);
        self.drop_stale_timers();
    }

    /// The earliest time `tick` has something to do; `None`: nothing at all. Never later than a live
    /// deadline: the top of the heap is at or before every entry's, and a stale one only makes the
    /// answer early.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        let timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
        [timer, self.relays.oldest_stamp()].into_iter().flatten().min()
    }

    /// Pops stale entries off the top of the heap: an entity re-armed earlier, or gone (a call forgotten
    /// at once leaves its four-hour dialog deadline behind). They would be skipped when due anyway;
    /// dropping them now keeps an idle proxy from reporting a wake-up it does not need.
    fn drop_stale_timers(&mut self) {
        while let Some(Reverse((at, kind, key))) = self.timers.peek() {
            let scheduled = match kind {
                Kind::Client => self.clients.get(key).map(|c| c.scheduled),
                Kind::Server => self.servers.get(key).map(|s| s.scheduled),
                Kind::Dialog => self.dialogs.get(key).map(|d| d.scheduled),
                Kind::Bye => self.byes.get(key).map(|b| b.scheduled),
            };
            if scheduled == Some(*at) {
                break;
            }
            self.timers.pop();
        }
    }
}
