//! Toll-fraud limits on calls that leave through a trunk: concurrent calls and calls per hour per
//! extension, and a global cap on international calls per hour. Stolen credentials are used at night,
//! in bursts and to expensive destinations; these limits bound what one night can cost.

use std::collections::{HashMap, VecDeque};

/// How long a call attempt counts towards the hourly limits.
pub const WINDOW_MS: u64 = 3_600_000;
const HOUR_MS: u64 = WINDOW_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Concurrent outbound (trunk) calls per extension.
    pub max_concurrent: u32,
    /// Outbound call attempts per extension in any 60 minutes.
    pub per_hour: u32,
    /// International call attempts, all extensions together, in any 60 minutes.
    pub international_per_hour: u32,
    /// Suspend an extension that goes over its hourly limit (or the international cap) until an
    /// operator re-enables it.
    pub suspend: bool,
    /// Trunk calls outside these hours are unusual (see [`crate::anomaly`]); `None`: off.
    pub business_hours: Option<crate::anomaly::BusinessHours>,
    /// Suspend an extension (and refuse the call) on an unusual call, as the hourly limits do.
    pub suspend_on_anomaly: bool,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            per_hour: 20,
            international_per_hour: 10,
            suspend: true,
            business_hours: None,
            suspend_on_anomaly: false,
        }
    }
}

/// An extension's own limits, where the operator set them; `None` follows [`CallLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtensionLimits {
    pub max_concurrent: Option<u32>,
    pub per_hour: Option<u32>,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Concurrent { limit: u32 },
    PerHour { limit: u32 },
    International { limit: u32 },
}

impl Refusal {
    pub fn rule(&self) -> String {
        match self {
            Self::Concurrent { limit } => format!("at most {limit} concurrent outbound calls"),
            Self::PerHour { limit } => format!("at most {limit} outbound calls per hour"),
            Self::International { limit } => format!("at most {limit} international calls per hour (all extensions)"),
        }
    }

    /// Whether the extension is suspended for it (with `suspend` on): a burst over an hourly limit is a
    /// fraud pattern, a third simultaneous call usually is not.
    pub fn suspends(&self) -> bool {
        !matches!(self, Self::Concurrent { .. })
    }
}

#[derive(Default)]
struct PerExtension {
    active: u32,
    recent: VecDeque<u64>,
}

/// Counters for [`CallLimits`]. Keys are authenticated extensions only, so the table is bounded by the
/// directory.
#[derive(Default)]
pub struct FraudGuard {
    limits: CallLimits,
    per_ext: HashMap<String, PerExtension>,
    international: VecDeque<u64>,
}

fn prune(q: &mut VecDeque<u64>, now_ms: u64) {
    while q.front().is_some_and(|&t| t + HOUR_MS <= now_ms) {
        q.pop_front();
    }
}

impl FraudGuard {
    pub fn new(limits: CallLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    pub fn set_limits(&mut self, limits: CallLimits) {
        self.limits = limits;
    }

    /// Counts a new outbound call, or says why it may not start. A refused attempt does not count.
    pub fn try_start(
        &mut self,
        ext: &str,
        own: ExtensionLimits,
        international: bool,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let mut l = self.limits;
        l.max_concurrent = own.max_concurrent.unwrap_or(l.max_concurrent);
        l.per_hour = own.per_hour.unwrap_or(l.per_hour);
        let e = self.per_ext.entry(ext.to_owned()).or_default();
        prune(&mut e.recent, now_ms);
        prune(&mut self.international, now_ms);
        if e.active >= l.max_concurrent {
            return Err(Refusal::Concurrent { limit: l.max_concurrent });
        }
        if e.recent.len() >= l.per_hour as usize {
            return Err(Refusal::PerHour { limit: l.per_hour });
        }
        if international && self.international.len() >= l.international_per_hour as usize {
            return Err(Refusal::International { limit: l.international_per_hour });
        }
        e.active += 1;
        e.recent.push_back(now_ms);
        if international {
            self.international.push_back(now_ms);
        }
        Ok(())
    }

    /// A call counted by [`Self::try_start`] ended (or never got answered).
    pub fn end(&mut self, ext: &str) {
        if let Some(e) = self.per_ext.get_mut(ext) {
            e.active = e.active.saturating_sub(1);
        }
    }

    pub fn active(&self, ext: &str) -> u32 {
        self.per_ext.get(ext).map_or(0, |e| e.active)
    }

    /// Forgets extensions with nothing active and nothing in the last hour.
    pub fn housekeeping(&mut self, now_ms: u64) {
        self.per_ext.retain(|_, e| {
            prune(&mut e.recent, now_ms);
            e.active > 0 || !e.recent.is_empty()
        });
        prune(&mut self.international, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: ExtensionLimits = ExtensionLimits { max_concurrent: None, per_hour: None };

    #[test]
    fn an_extension_can_have_its_own_limits() {
        let mut g = FraudGuard::new(CallLimits::default());
        let own = ExtensionLimits { max_concurrent: Some(1), per_hour: Some(50) };
        g.try_start("1001", own, false, 0).unwrap();
        assert_eq!(g.try_start("1001", own, false, 1), Err(Refusal::Concurrent { limit: 1 }));
        let roomy = ExtensionLimits { max_concurrent: Some(5), per_hour: None };
        for t in 0..5 {
            g.try_start("1002", roomy, false, t).unwrap();
        }
        assert_eq!(g.try_start("1002", roomy, false, 9), Err(Refusal::Concurrent { limit: 5 }));
    }

    #[test]
    fn concurrent_limit_and_release() {
        let mut g = FraudGuard::new(CallLimits::default());
        assert!(g.try_start("1001", D, false, 0).is_ok());
        assert!(g.try_start("1001", D, false, 1).is_ok());
        assert_eq!(g.try_start("1001", D, false, 2), Err(Refusal::Concurrent { limit: 2 }));
        assert!(g.try_start("1002", D, false, 2).is_ok());
        g.end("1001");
        assert!(g.try_start("1001", D, false, 3).is_ok());
        assert!(!Refusal::Concurrent { limit: 2 }.suspends());
    }

    #[test]
    fn hourly_limit_slides() {
        let mut g = FraudGuard::new(CallLimits { max_concurrent: 100, per_hour: 3, ..CallLimits::default() });
        for t in 0..3 {
            g.try_start("1001", D, false, t).unwrap();
            g.end("1001");
        }
        assert_eq!(g.try_start("1001", D, false, 10), Err(Refusal::PerHour { limit: 3 }));
        assert!(g.try_start("1001", D, false, HOUR_MS).is_ok());
        assert!(Refusal::PerHour { limit: 3 }.suspends());
    }

    #[test]
    fn international_cap_is_global() {
        let limits =
            CallLimits { max_concurrent: 100, per_hour: 100, international_per_hour: 2, ..CallLimits::default() };
        let mut g = FraudGuard::new(limits);
        g.try_start("1001", D, true, 0).unwrap();
        g.try_start("1002", D, true, 0).unwrap();
        assert_eq!(g.try_start("1003", D, true, 0), Err(Refusal::International { limit: 2 }));
        assert!(g.try_start("1003", D, false, 0).is_ok());
        g.housekeeping(2 * HOUR_MS);
        assert!(g.try_start("1003", D, true, 2 * HOUR_MS).is_ok());
    }
}
