//! A bounded map whose entries leave in the order they came: when they are too old, or when the map
//! is full. The transaction cache, the nonce-counts and the proxy's stateless relays are all this.

use pbxguard_shield::table::{PRESIZE_AT, Table};
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{Hash, RandomState};

/// Stale listings the order queue may hold beyond twice the live entries before it is compacted.
const COMPACT_SLACK: usize = 1024;

pub(crate) struct FifoMap<K, V> {
    /// Each value with the stamp of its last insertion.
    map: Table<K, (u64, V), RandomState>,
    /// Insertion order, oldest first, with each key's hash. A key inserted again is listed again; its
    /// older listing is stale (the stamp no longer matches the map's) and removes nothing.
    order: VecDeque<(u64, u64, K)>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> FifoMap<K, V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self { map: Table::with_hasher(RandomState::new()), order: VecDeque::new(), cap: cap.max(1) }
    }

    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(k).map(|v| &v.1)
    }

    pub(crate) fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let at = self.map.find(self.map.hash(k), k)?;
        self.map.at_mut(at).map(|v| &mut v.1)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The stamp `expire` looks at first, while the map holds anything: until `expired` holds for it,
    /// expiring frees nothing.
    pub(crate) fn oldest_stamp(&self) -> Option<u64> {
        if self.map.is_empty() {
            return None;
        }
        self.order.front().map(|&(t, _, _)| t)
    }

    /// Forgets entries, oldest first, while `expired(stamp)` holds.
    pub(crate) fn expire(&mut self, expired: impl Fn(u64) -> bool) {
        while let Some(&(t, _, _)) = self.order.front() {
            if !expired(t) {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Inserts or replaces `k` with `stamp` (stamps should not decrease from one insertion to the next:
    /// expiry stops at the first live one). A new key first evicts the oldest entries while the map is
    /// full; the newest stamp among those evicted is returned, for callers that must distrust them.
    pub(crate) fn insert(&mut self, stamp: u64, k: K, v: V) -> Option<u64> {
        let mut evicted = None;
        let hash = self.map.hash(&k);
        if let Some(at) = self.map.find(hash, &k) {
            if let Some(old) = self.map.at_mut(at) {
                *old = (stamp, v);
            }
        } else {
            while self.map.len() >= self.cap {
                match self.pop_oldest() {
                    Some(Some(t)) => evicted = Some(evicted.map_or(t, |e: u64| e.max(t))),
                    Some(None) => {}
                    None => break,
                }
            }
            // Busy: the order queue is sized for the cap in the same step as the table.
            if self.map.len() == PRESIZE_AT {
                self.order.reserve(self.cap.saturating_sub(self.order.len()));
            }
            self.map.insert_new(hash, k.clone(), (stamp, v), self.cap);
        }
        if self.order.len() > 2 * self.map.len() + COMPACT_SLACK {
            let map = &self.map;
            self.order.retain(|(t, h, k)| map.find(*h, k).and_then(|at| map.at(at)).is_some_and(|v| v.0 == *t));
        }
        self.order.push_back((stamp, hash, k));
        evicted
    }

    /// Pops the oldest listing: `None` when there is none, `Some(Some(stamp))` when it removed an
    /// entry, `Some(None)` when it was stale.
    fn pop_oldest(&mut self) -> Option<Option<u64>> {
        let (t, hash, k) = self.order.pop_front()?;
        match self.map.find(hash, &k) {
            Some(at) if self.map.at(at).is_some_and(|v| v.0 == t) => {
                self.map.remove_at(at);
                Some(Some(t))
            }
            _ => Some(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FifoMap;

    #[test]
    fn bounded_expiring_and_refreshed() {
        let mut m = FifoMap::new(2);
        assert_eq!(m.insert(0, "a", 1), None);
        assert_eq!(m.insert(1, "b", 2), None);
        // Full: the oldest goes, and its stamp is reported.
        assert_eq!(m.insert(2, "c", 3), Some(0));
        assert_eq!((m.get("a"), m.get("b"), m.len()), (None, Some(&2), 2));
        // Replacing does not evict; the refreshed entry outlives its first listing.
        assert_eq!(m.insert(3, "b", 4), None);
        m.expire(|t| t <= 2);
        assert_eq!((m.get("b"), m.get("c"), m.len()), (Some(&4), None, 1));
        *m.get_mut("b").unwrap() += 1;
        assert_eq!(m.oldest_stamp(), Some(3));
        m.expire(|t| t <= 3);
        assert_eq!((m.len(), m.oldest_stamp()), (0, None));
    }

    #[test]
    fn presized_once_busy_and_stale_listings_compacted() {
        let mut m = FifoMap::new(100_000);
        for i in 0..2_000u64 {
            m.insert(i, i, ());
        }
        assert_eq!(m.map.slots(), 262_144);
        // The same key refreshed many times: the listings stay within a small factor of the map.
        for i in 0..100_000u64 {
            m.insert(2_000 + i, 7, ());
        }
        assert!(m.order.len() <= 2 * m.len() + super::COMPACT_SLACK + 1);
        assert_eq!(m.len(), 2_000);
    }

    proptest::proptest! {
        /// Against a plain model (std's map plus an order queue): the same entries, evictions and
        /// expiries, with keys from a small range so the table's probes wrap and removals shift.
        #[test]
        fn matches_a_model(cap in 1usize..40, ops in proptest::collection::vec((0u64..60, 0u64..3, 0u8..10), 1..400)) {
            use std::collections::{HashMap, VecDeque};
            let mut m = FifoMap::new(cap);
            let mut model: HashMap<u64, (u64, u64)> = HashMap::new();
            let mut order: VecDeque<(u64, u64)> = VecDeque::new();
            let mut stamp = 0u64;
            for (step, &(k, delta, kind)) in ops.iter().enumerate() {
                let step = step as u64;
                if kind == 0 {
                    let upto = stamp.saturating_sub(k % 8);
                    m.expire(|t| t < upto);
                    while order.front().is_some_and(|&(t, _)| t < upto) {
                        let (t, k) = order.pop_front().unwrap();
                        if model.get(&k).is_some_and(|&(s, _)| s == t) {
                            model.remove(&k);
                        }
                    }
                } else {
                    stamp += delta;
                    let mut evicted = None;
                    if !model.contains_key(&k) {
                        while model.len() >= cap {
                            let (t, old) = order.pop_front().unwrap();
                            if model.get(&old).is_some_and(|&(s, _)| s == t) {
                                model.remove(&old);
                                evicted = Some(evicted.map_or(t, |e: u64| e.max(t)));
                            }
                        }
                    }
                    model.insert(k, (stamp, step));
                    order.push_back((stamp, k));
                    proptest::prop_assert_eq!(m.insert(stamp, k, step), evicted);
                }
                proptest::prop_assert_eq!(m.len(), model.len());
                for k in 0..60 {
                    proptest::prop_assert_eq!(m.get(&k), model.get(&k).map(|(_, v)| v));
                }
            }
        }
    }
}
