//! A bounded map whose entries leave in the order they came: when they are too old, or when the map
//! is full. The transaction cache, the nonce-counts and the proxy's stateless relays are all this.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Past this many entries a table is taken to be busy and is sized for its cap in one step, so it never
/// rehashes again under load: rehashing a table of 100,000 entries stalls the packet path for
/// milliseconds. A quiet server keeps small tables.
const PRESIZE_AT: usize = 1024;

pub(crate) struct FifoMap<K, V> {
    /// Each value with the stamp of its last insertion.
    map: HashMap<K, (u64, V)>,
    /// Insertion order, oldest first. A key inserted again is listed again; its older listing is stale
    /// (the stamp no longer matches the map's) and removes nothing.
    order: VecDeque<(u64, K)>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> FifoMap<K, V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self { map: HashMap::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(k).map(|(_, v)| v)
    }

    pub(crate) fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.map.get_mut(k).map(|(_, v)| v)
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
        self.order.front().map(|&(t, _)| t)
    }

    /// Forgets entries, oldest first, while `expired(stamp)` holds.
    pub(crate) fn expire(&mut self, expired: impl Fn(u64) -> bool) {
        while let Some(&(t, _)) = self.order.front() {
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
        if !self.map.contains_key(&k) {
            while self.map.len() >= self.cap {
                match self.pop_oldest() {
                    Some(Some(t)) => evicted = Some(evicted.map_or(t, |e: u64| e.max(t))),
                    Some(None) => {}
                    None => break,
                }
            }
            if self.map.len() >= PRESIZE_AT && self.map.len() == self.map.capacity() {
                self.map.reserve(self.cap - self.map.len());
                self.order.reserve(self.cap.saturating_sub(self.order.len()));
            }
        }
        if self.order.len() > 2 * self.map.len() + PRESIZE_AT {
            let map = &self.map;
            self.order.retain(|(t, k)| map.get(k).is_some_and(|(s, _)| s == t));
        }
        self.map.insert(k.clone(), (stamp, v));
        self.order.push_back((stamp, k));
        evicted
    }

    /// Pops the oldest listing: `None` when there is none, `Some(Some(stamp))` when it removed an
    /// entry, `Some(None)` when it was stale.
    fn pop_oldest(&mut self) -> Option<Option<u64>> {
        let (t, k) = self.order.pop_front()?;
        if self.map.get(&k).is_some_and(|(s, _)| *s == t) {
            self.map.remove(&k);
            Some(Some(t))
        } else {
            Some(None)
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
        assert!(m.map.capacity() >= 100_000);
        // The same key refreshed many times: the listings stay within a small factor of the map.
        for i in 0..100_000u64 {
            m.insert(2_000 + i, 7, ());
        }
        assert!(m.order.len() <= 2 * m.len() + super::PRESIZE_AT + 1);
        assert_eq!(m.len(), 2_000);
    }
}
