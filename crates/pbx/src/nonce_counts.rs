use crate::fifo::FifoMap;

/// Highest nonce-count seen per nonce, so a captured request cannot be replayed (RFC 7616 §3.4).
///
/// Bounded: entries die with their nonce's TTL, and past `cap` the oldest is evicted. Eviction fails
/// closed: a nonce we no longer track is refused and the client gets a fresh challenge.
pub(crate) struct NonceCounts {
    /// Highest nonce-count, keyed by the nonce's id (unique per nonce issued; nonces are authenticated,
    /// so ids are ours), stamped with the nonce's issue time.
    seen: FifoMap<u64, u32>,
    /// Latest issue time among nonces evicted while still valid: any untracked nonce issued at or before
    /// it may have been used already, so it is refused.
    evicted_upto: Option<u64>,
}

pub(crate) enum NcCheck {
    Fresh,
    Replay,
}

impl NonceCounts {
    pub(crate) fn new(cap: usize) -> Self {
        Self { seen: FifoMap::new(cap), evicted_upto: None }
    }

    /// Records `nc` for a valid nonce issued at `issued`; `Replay` if it is not above the last one seen.
    pub(crate) fn check(&mut self, nonce: u64, issued: u64, nc: u32, now: u64, ttl: u64) -> NcCheck {
        self.seen.expire(|t| t + ttl < now);
        match self.seen.get_mut(&nonce) {
            Some(last) if nc <= *last => NcCheck::Replay,
            Some(last) => {
                *last = nc;
                NcCheck::Fresh
            }
            None if self.evicted_upto.is_some_and(|e| issued <= e) => NcCheck::Replay,
            None => {
                if let Some(t) = self.seen.insert(issued, nonce, nc) {
                    self.evicted_upto = Some(self.evicted_upto.map_or(t, |e| e.max(t)));
                }
                NcCheck::Fresh
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_and_bounds() {
        let mut n = NonceCounts::new(2);
        assert!(matches!(n.check(1, 0, 1, 0, 300), NcCheck::Fresh));
        assert!(matches!(n.check(1, 0, 1, 0, 300), NcCheck::Replay));
        assert!(matches!(n.check(1, 0, 2, 1, 300), NcCheck::Fresh));
        assert!(matches!(n.check(2, 1, 1, 1, 300), NcCheck::Fresh));
        assert!(matches!(n.check(3, 2, 1, 2, 300), NcCheck::Fresh));
        assert!(n.len() <= 2);
        // "a" was evicted by the cap while valid: it is refused rather than accepted as new.
        assert!(matches!(n.check(1, 0, 3, 1, 300), NcCheck::Replay));
        assert!(matches!(n.check(4, 5, 1, 5, 300), NcCheck::Fresh));
        assert!(n.len() <= 2);
    }
}
