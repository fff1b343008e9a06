//! Toll-fraud counters of the calls routed to trunks, and the times at which sweeping them is worth a
//! wake-up.

use pbxguard_shield::fraud::WINDOW_MS;
use pbxguard_shield::{CallLimits, ExtensionLimits, FraudGuard, Refusal};
use std::collections::VecDeque;

/// The shield's [`FraudGuard`] with a schedule for its housekeeping. The guard prunes an extension's
/// counters whenever that extension calls, so a sweep only returns memory; it can free something only
/// once an attempt leaves the window, a counted call ends or a refused attempt left an empty entry, so
/// it runs then and not every second.
pub(crate) struct Fraud {
    guard: FraudGuard,
    /// When the counted attempts still inside the window were made, oldest first.
    attempts: VecDeque<u64>,
    /// Earliest call end or refusal since the last sweep.
    changed_at: Option<u64>,
}

impl Fraud {
    pub(crate) fn new(guard: FraudGuard) -> Self {
        Self { guard, attempts: VecDeque::new(), changed_at: None }
    }

    pub(crate) fn set_limits(&mut self, limits: CallLimits) {
        self.guard.set_limits(limits);
    }

    /// Counts a new outbound call, or says why it may not start (see [`FraudGuard::try_start`]).
    pub(crate) fn try_start(
        &mut self,
        ext: &str,
        own: ExtensionLimits,
        international: bool,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let r = self.guard.try_start(ext, own, international, now_ms);
        match r {
            Ok(()) => self.attempts.push_back(now_ms),
            Err(_) => self.changed(now_ms),
        }
        r
    }

    /// A call counted by [`Self::try_start`] ended (or never got answered).
    pub(crate) fn end(&mut self, ext: &str, now_ms: u64) {
        self.guard.end(ext);
        self.changed(now_ms);
    }

    fn changed(&mut self, now_ms: u64) {
        self.changed_at = Some(self.changed_at.map_or(now_ms, |t| t.min(now_ms)));
    }

    /// When a sweep may next free something; `None`: the counters are as small as they get.
    pub(crate) fn next_sweep(&self) -> Option<u64> {
        let expiry = self.attempts.front().map(|t| t + WINDOW_MS);
        [expiry, self.changed_at].into_iter().flatten().min()
    }

    /// Forgets extensions with nothing active and nothing in the window, if anything may be due.
    pub(crate) fn sweep(&mut self, now_ms: u64) {
        if self.next_sweep().is_none_or(|t| t > now_ms) {
            return;
        }
        self.guard.housekeeping(now_ms);
        while self.attempts.front().is_some_and(|t| t + WINDOW_MS <= now_ms) {
            self.attempts.pop_front();
        }
        self.changed_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_are_due_when_an_attempt_leaves_the_window_or_a_call_ends() {
        let mut f = Fraud::new(FraudGuard::default());
        assert_eq!(f.next_sweep(), None);
        let own = ExtensionLimits::default();
        f.try_start("1001", own, false, 1_000).unwrap();
        f.try_start("1002", own, false, 5_000).unwrap();
        assert_eq!(f.next_sweep(), Some(1_000 + WINDOW_MS));
        f.end("1001", 9_000);
        assert_eq!(f.next_sweep(), Some(9_000));
        // Not yet due: nothing happens.
        f.sweep(8_999);
        assert_eq!(f.next_sweep(), Some(9_000));
        f.sweep(9_000);
        assert_eq!(f.next_sweep(), Some(1_000 + WINDOW_MS));
        f.sweep(1_000 + WINDOW_MS);
        assert_eq!(f.next_sweep(), Some(5_000 + WINDOW_MS));
        f.sweep(5_000 + WINDOW_MS);
        assert_eq!(f.next_sweep(), None);
        // A refusal may leave an empty entry behind: worth a sweep at once.
        let none = ExtensionLimits { max_concurrent: Some(0), per_hour: None };
        assert!(f.try_start("1003", none, false, 20_000).is_err());
        assert_eq!(f.next_sweep(), Some(20_000));
    }
}
