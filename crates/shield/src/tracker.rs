//! Per-key detector state in a table with a hard cap. Eviction is first-in-first-out: O(1) per insert,
//! so a flood of spoofed sources costs a constant amount of work and memory per packet. The price: a
//! source can lose its counters when millions of others arrive, which only delays its detection.

use crate::config::Threshold;
use crate::hash::SeededState;
use crate::table::Table;
use std::collections::VecDeque;
use std::hash::Hash;

/// A fixed-window counter (see [`Threshold`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    start_ms: u64,
    count: u32,
}

impl Window {
    /// Counts one event; returns the count within the current window.
    pub(crate) fn hit(&mut self, now_ms: u64, t: Threshold) -> u32 {
        if self.count == 0 || now_ms.saturating_sub(self.start_ms) >= t.window_ms {
            self.start_ms = now_ms;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count
    }

    pub(crate) fn reset(&mut self) {
        self.count = 0;
    }
}

/// A small set of distinct 64-bit keys (user-name hashes, addresses) within a window, bounded by the
/// threshold it serves (so at most `max` entries).
#[derive(Debug, Clone, Default)]
pub(crate) struct Distinct {
    start_ms: u64,
    keys: Vec<u64>,
}

impl Distinct {
    pub(crate) fn add(&mut self, now_ms: u64, key: u64, t: Threshold) -> u32 {
        if self.keys.is_empty() || now_ms.saturating_sub(self.start_ms) >= t.window_ms {
            self.start_ms = now_ms;
            self.keys.clear();
        }
        if !self.keys.contains(&key) && self.keys.len() < t.max as usize {
            self.keys.push(key);
        }
        self.keys.len() as u32
    }

    pub(crate) fn reset(&mut self) {
        self.keys.clear();
    }
}

/// Capped by `cap`; the table is [`Table`], which never grows once sized for the cap, so a spoofed-source
/// flood churning a full tracker costs constant work per packet and never a rebuild under the lock.
pub(crate) struct Capped<K, V> {
    map: Table<K, V, SeededState>,
    pub(crate) order: VecDeque<K>,
    cap: usize,
    evicted: u64,
}

impl<K: Hash + Eq + Clone, V: Default> Capped<K, V> {
    pub(crate) fn new(cap: usize, seed: u64) -> Self {
        Self { map: Table::with_hasher(SeededState(seed)), order: VecDeque::new(), cap: cap.max(1), evicted: 0 }
    }

    pub(crate) fn entry(&mut self, key: &K) -> &mut V {
        let hash = self.map.hash(key);
        // One lookup on the hot path (the key is usually tracked already).
        let at = match self.map.find(hash, key) {
            Some(at) => at,
            None => {
                while self.map.len() >= self.cap {
                    match self.order.pop_front() {
                        Some(old) => {
                            if self.map.remove(&old) {
                                self.evicted += 1;
                            }
                        }
                        None => break,
                    }
                }
                self.order.push_back(key.clone());
                self.map.insert_new(hash, key.clone(), V::default(), self.cap)
            }
        };
        self.map.at_mut(at).expect("found or inserted above")
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    pub(crate) fn remove(&mut self, key: &K) {
        // The key stays in `order` until it reaches the front; removing it there is a no-op.
        self.map.remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// Drops `order` entries whose key is gone, so that the queue stays within a small factor of the map.
    pub(crate) fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|k| map.get(k).is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_caps() {
        let t = Threshold { max: 3, window_ms: 1000 };
        let mut w = Window::default();
        assert_eq!((w.hit(0, t), w.hit(999, t), w.hit(1000, t)), (1, 2, 1));
        let mut d = Distinct::default();
        assert_eq!((d.add(0, 1, t), d.add(1, 1, t), d.add(2, 2, t), d.add(3, 3, t), d.add(4, 4, t)), (1, 1, 2, 3, 3));
        assert_eq!(d.add(1000, 9, t), 1);
        let mut c: Capped<u32, u32> = Capped::new(2, 7);
        *c.entry(&1) += 1;
        *c.entry(&2) += 1;
        *c.entry(&3) += 1;
        assert_eq!((c.len(), c.get(&1), c.evicted()), (2, None, 1));
        for i in 0..100_000 {
            *c.entry(&i) += 1;
        }
        assert_eq!(c.len(), 2);
        c.compact();
        assert!(c.order.len() <= 2 * 2 + 1024);
    }
}
