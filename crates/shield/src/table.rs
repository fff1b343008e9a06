//! A hash table for the bounded per-packet tables (the shield's trackers, the SIP service's transaction
//! cache, nonce-counts and relays): they sit at their cap under load and remove one entry for every one
//! they add.
//!
//! A table with tombstones (hashbrown's, std's) marks a removed entry as deleted when it sits inside a
//! long run of occupied slots; the marks use up its growth allowance, and when that runs out the table
//! is rebuilt at double size. At 76 % full that happened every ~100,000 evictions: a 19 MB allocation
//! and copy under the SIP lock 15 s into a run at 10,000 registrations/s (and under the gate's lock in
//! a spoofed-source flood). This one probes linearly, stays at most half full, and removes by shifting
//! the entries after the hole back (Knuth's algorithm R): no tombstones, so a table holding `cap`
//! entries never changes size.
//!
//! The probed index holds 8 bytes per slot (32 bits of the hash and where the entry is); entries sit in
//! a slab beside it. Nearly every lookup misses (a new transaction, a new source), and a miss then reads
//! one cache line of the index instead of wandering through the entries. Callers hash a key once per
//! operation with [`Table::hash`] and pass the hash along.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// Past this many entries a table is taken to be busy and is sized for its cap in one step, so it never
/// grows again under load. A quiet server keeps small tables.
pub const PRESIZE_AT: usize = 1024;

const EMPTY: u64 = u64::MAX;
const LOW: u64 = 0xffff_ffff;

pub struct Table<K, V, S> {
    /// A power of two long (or empty), never more than half occupied, so every probe meets a hole.
    /// `EMPTY`, or the hash's low 32 bits above the entry's position in `entries`.
    index: Vec<u64>,
    entries: Vec<Option<Slot<K, V>>>,
    /// Positions in `entries` that are free.
    free: Vec<u32>,
    len: usize,
    hasher: S,
}

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
}

impl<K: Hash + Eq, V, S: BuildHasher> Table<K, V, S> {
    /// `hasher` must be keyed per process (SipHash with random keys, or a seeded mixer for fixed-size
    /// keys): sources choose the keys.
    pub fn with_hasher(hasher: S) -> Self {
        Self { index: Vec::new(), entries: Vec::new(), free: Vec::new(), len: 0, hasher }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index slots: what the table occupies, for tests and metrics.
    pub fn slots(&self) -> usize {
        self.index.len()
    }

    pub fn hash<Q: Hash + ?Sized>(&self, k: &Q) -> u64 {
        self.hasher.hash_one(k)
    }

    fn mask(&self) -> usize {
        self.index.len() - 1
    }

    fn tag(hash: u64) -> u64 {
        (hash & LOW) << 32
    }

    fn entry(&self, at: usize) -> Option<&Slot<K, V>> {
        self.entries.get((self.index[at] & LOW) as usize)?.as_ref()
    }

    /// Where `k` is, to read, change or remove it there.
    pub fn find<Q: Eq + ?Sized>(&self, hash: u64, k: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        if self.index.is_empty() {
            return None;
        }
        let tag = Self::tag(hash);
        let mut at = hash as usize & self.mask();
        loop {
            let x = self.index[at];
            if x == EMPTY {
                return None;
            }
            if x & !LOW == tag && self.entry(at).is_some_and(|s| s.hash == hash && s.key.borrow() == k) {
                return Some(at);
            }
            at = (at + 1) & self.mask();
        }
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.at(self.find(self.hash(k), k)?)
    }

    pub fn at(&self, at: usize) -> Option<&V> {
        self.entry(at).map(|s| &s.value)
    }

    pub fn at_mut(&mut self, at: usize) -> Option<&mut V> {
        let e = (self.index[at] & LOW) as usize;
        self.entries.get_mut(e)?.as_mut().map(|s| &mut s.value)
    }

    /// Adds a key the caller found absent (with this `hash`); returns where it went. `cap` is the most
    /// entries the caller will hold: once busy, the table is sized for it in one step.
    pub fn insert_new(&mut self, hash: u64, key: K, value: V, cap: usize) -> usize {
        if 2 * (self.len + 1) > self.index.len() {
            if self.len >= PRESIZE_AT {
                let cap = cap.max(self.len + 1);
                self.resize((2 * cap).next_power_of_two());
                self.entries.reserve(cap.saturating_sub(self.entries.len()));
            } else {
                self.resize((self.index.len() * 2).max(8));
            }
        }
        let slot = Some(Slot { hash, key, value });
        let e = match self.free.pop() {
            Some(e) => {
                self.entries[e as usize] = slot;
                e
            }
            None => {
                self.entries.push(slot);
                (self.entries.len() - 1) as u32
            }
        };
        self.len += 1;
        self.place(hash, e)
    }

    fn place(&mut self, hash: u64, e: u32) -> usize {
        let mut at = hash as usize & self.mask();
        while self.index[at] != EMPTY {
            at = (at + 1) & self.mask();
        }
        self.index[at] = Self::tag(hash) | u64::from(e);
        at
    }

    /// Removes what `find` found at `at`. Positions found before are no longer valid.
    pub fn remove_at(&mut self, mut hole: usize) {
        let e = (self.index[hole] & LOW) as u32;
        self.entries[e as usize] = None;
        self.free.push(e);
        self.len -= 1;
        let mask = self.mask();
        self.index[hole] = EMPTY;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let x = self.index[j];
            if x == EMPTY {
                return;
            }
            let home = (x >> 32) as usize & mask;
            // The entry at j stays unless its home lies cyclically outside (hole, j]: then its probe
            // passes the hole, which must be filled with it.
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.index[hole] = x;
                self.index[j] = EMPTY;
                hole = j;
            }
        }
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        match self.find(self.hash(k), k) {
            Some(at) => {
                self.remove_at(at);
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().flatten().map(|s| (&s.key, &s.value))
    }

    fn resize(&mut self, size: usize) {
        self.index = vec![EMPTY; size];
        for e in 0..self.entries.len() {
            if let Some(h) = self.entries[e].as_ref().map(|s| s.hash) {
                self.place(h, e as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Table;
    use std::collections::{HashMap, VecDeque};
    use std::hash::RandomState;

    fn key(i: u64) -> u64 {
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
    }

    /// Full and evicting (every insertion removes the oldest entry), the table is never rebuilt: its
    /// size after ten caps' worth of churn is the one it was given when it got busy.
    #[test]
    fn a_full_table_churns_without_growing() {
        let cap = 100_000;
        let mut t = Table::with_hasher(RandomState::new());
        let mut order = VecDeque::new();
        for i in 0..11 * cap as u64 {
            if t.len() == cap {
                let old = order.pop_front().unwrap();
                assert!(t.remove(&old));
            }
            let h = t.hash(&key(i));
            t.insert_new(h, key(i), i, cap);
            order.push_back(key(i));
            if i == cap as u64 {
                assert_eq!(t.slots(), 262_144);
            }
        }
        assert_eq!((t.len(), t.slots(), t.entries.len()), (cap, 262_144, cap));
        assert!((10 * cap as u64..11 * cap as u64).all(|i| t.get(&key(i)) == Some(&i)));
        assert_eq!(t.get(&key(10 * cap as u64 - 1)), None);
    }

    /// Against std's map, with keys from a small range so probes wrap around a small table and
    /// removals shift entries across its end.
    #[test]
    fn matches_a_model_under_random_operations() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for keys in [2, 7, 40, 300] {
            let mut t = Table::with_hasher(RandomState::new());
            let mut model = HashMap::new();
            for step in 0..20_000u64 {
                let k = next(keys);
                match t.find(t.hash(&k), &k) {
                    Some(at) if next(2) == 0 => {
                        t.remove_at(at);
                        model.remove(&k);
                    }
                    Some(at) => {
                        *t.at_mut(at).unwrap() = step;
                        model.insert(k, step);
                    }
                    None => {
                        let at = t.insert_new(t.hash(&k), k, step, keys as usize);
                        assert_eq!(t.at(at), Some(&step));
                        model.insert(k, step);
                    }
                }
                assert_eq!(t.len(), model.len(), "keys {keys} step {step}");
                for k in 0..keys {
                    assert_eq!(t.get(&k), model.get(&k), "keys {keys} step {step} key {k}");
                }
            }
            let mut all: Vec<_> = t.iter().map(|(k, v)| (*k, *v)).collect();
            all.sort_unstable();
            let mut want: Vec<_> = model.into_iter().collect();
            want.sort_unstable();
            assert_eq!(all, want);
        }
    }
}
