//! A bounded map whose entries leave in the order they came: when they are too old, or when the map
//! is full. The transaction cache, the nonce-counts and the proxy's stateless relays are all this.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, RandomState};

/// Past this many entries a table is taken to be busy and is sized for its cap in one step, so it never
/// grows again under load: rebuilding a table of 100,000 entries stalls the packet path for
/// milliseconds. A quiet server keeps small tables.
const PRESIZE_AT: usize = 1024;

pub(crate) struct FifoMap<K, V> {
    /// Each value with the stamp of its last insertion.
    map: Table<K, (u64, V)>,
    /// Insertion order, oldest first, with each key's hash. A key inserted again is listed again; its
    /// older listing is stale (the stamp no longer matches the map's) and removes nothing.
    order: VecDeque<(u64, u64, K)>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> FifoMap<K, V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self { map: Table::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let i = self.map.find(self.map.hash(k), k)?;
        self.map.get(i).map(|v| &v.1)
    }

    pub(crate) fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let i = self.map.find(self.map.hash(k), k)?;
        self.map.get_mut(i).map(|v| &mut v.1)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len
    }

    /// The stamp `expire` looks at first, while the map holds anything: until `expired` holds for it,
    /// expiring frees nothing.
    pub(crate) fn oldest_stamp(&self) -> Option<u64> {
        if self.map.len == 0 {
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
        if let Some(i) = self.map.find(hash, &k) {
            if let Some(old) = self.map.get_mut(i) {
                *old = (stamp, v);
            }
        } else {
            while self.map.len >= self.cap {
                match self.pop_oldest() {
                    Some(Some(t)) => evicted = Some(evicted.map_or(t, |e: u64| e.max(t))),
                    Some(None) => {}
                    None => break,
                }
            }
            if !self.map.has_room() {
                if self.map.len >= PRESIZE_AT {
                    self.map.resize(Table::<K, (u64, V)>::slots_for(self.cap));
                    self.map.entries.reserve(self.cap.saturating_sub(self.map.entries.len()));
                    self.order.reserve(self.cap.saturating_sub(self.order.len()));
                } else {
                    self.map.resize((self.map.index.len() * 2).max(8));
                }
            }
            self.map.insert_new(hash, k.clone(), (stamp, v));
        }
        if self.order.len() > 2 * self.map.len + PRESIZE_AT {
            let map = &self.map;
            self.order.retain(|(t, h, k)| map.stamp(*h, k) == Some(*t));
        }
        self.order.push_back((stamp, hash, k));
        evicted
    }

    /// Pops the oldest listing: `None` when there is none, `Some(Some(stamp))` when it removed an
    /// entry, `Some(None)` when it was stale.
    fn pop_oldest(&mut self) -> Option<Option<u64>> {
        let (t, hash, k) = self.order.pop_front()?;
        match self.map.find(hash, &k) {
            Some(i) if self.map.get(i).is_some_and(|v| v.0 == t) => {
                self.map.remove_at(i);
                Some(Some(t))
            }
            _ => Some(None),
        }
    }
}

/// An open-addressing hash table with linear probing, at most half full, that removes by shifting the
/// entries after a hole back (Knuth's algorithm R) instead of leaving tombstones. A FIFO map at its cap
/// removes one entry for every one it adds; a table with tombstones (hashbrown's, std's) uses up its
/// growth allowance on them and is then rebuilt at double size: at 76 % full that happened every
/// ~100,000 evictions, a 19 MB allocation and copy under the SIP lock 15 s into a run at 10,000
/// registrations/s. Without tombstones a table holding `cap` entries never changes size. Keys are hashed
/// once per operation with a per-process keyed SipHash, so a source choosing keys (branches) cannot
/// aim them at one run of slots.
///
/// The probed index holds 8 bytes per slot (32 bits of the hash and where the entry is); entries sit in
/// a slab beside it. Nearly every lookup misses (a new transaction, a new nonce), and a miss then reads
/// one cache line of a 2 MB index instead of wandering through 20 MB of entries.
struct Table<K, V> {
    /// A power of two long (or empty), never more than half occupied, so every probe meets a hole.
    /// `EMPTY`, or the hash's low 32 bits above the entry's position in `entries`.
    index: Vec<u64>,
    entries: Vec<Option<Slot<K, V>>>,
    /// Positions in `entries` that are free.
    free: Vec<u32>,
    len: usize,
    hasher: RandomState,
}

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
}

const EMPTY: u64 = u64::MAX;

impl<K: Hash + Eq, V> Table<K, V> {
    fn new() -> Self {
        Self { index: Vec::new(), entries: Vec::new(), free: Vec::new(), len: 0, hasher: RandomState::new() }
    }

    /// The index size that holds `cap` entries at most half full.
    fn slots_for(cap: usize) -> usize {
        (2 * cap).next_power_of_two()
    }

    fn hash<Q: Hash + ?Sized>(&self, k: &Q) -> u64 {
        self.hasher.hash_one(k)
    }

    fn mask(&self) -> usize {
        self.index.len() - 1
    }

    fn has_room(&self) -> bool {
        2 * (self.len + 1) <= self.index.len()
    }

    fn tag(hash: u64) -> u64 {
        (hash & 0xffff_ffff) << 32
    }

    fn entry(&self, i: usize) -> Option<&Slot<K, V>> {
        self.entries.get((self.index[i] & 0xffff_ffff) as usize)?.as_ref()
    }

    /// The index slot of `k`.
    fn find<Q: Eq + ?Sized>(&self, hash: u64, k: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        if self.index.is_empty() {
            return None;
        }
        let tag = Self::tag(hash);
        let mut i = hash as usize & self.mask();
        loop {
            let x = self.index[i];
            if x == EMPTY {
                return None;
            }
            if x & !0xffff_ffff == tag && self.entry(i).is_some_and(|s| s.hash == hash && s.key.borrow() == k) {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    fn get(&self, i: usize) -> Option<&V> {
        self.entry(i).map(|s| &s.value)
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut V> {
        let e = (self.index[i] & 0xffff_ffff) as usize;
        self.entries.get_mut(e)?.as_mut().map(|s| &mut s.value)
    }

    /// Places a key known to be absent; the caller has made room.
    fn insert_new(&mut self, hash: u64, key: K, value: V) {
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
        self.place(hash, e);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, e: u32) {
        let mut i = hash as usize & self.mask();
        while self.index[i] != EMPTY {
            i = (i + 1) & self.mask();
        }
        self.index[i] = Self::tag(hash) | u64::from(e);
    }

    fn remove_at(&mut self, mut hole: usize) {
        let e = (self.index[hole] & 0xffff_ffff) as u32;
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

    fn resize(&mut self, size: usize) {
        self.index = vec![EMPTY; size];
        for e in 0..self.entries.len() {
            if let Some(h) = self.entries[e].as_ref().map(|s| s.hash) {
                self.place(h, e as u32);
            }
        }
    }
}

impl<K: Hash + Eq, V> Table<K, (u64, V)> {
    fn stamp(&self, hash: u64, k: &K) -> Option<u64> {
        self.find(hash, k).and_then(|i| self.get(i)).map(|v| v.0)
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
        assert_eq!(m.map.index.len(), 262_144);
        // The same key refreshed many times: the listings stay within a small factor of the map.
        for i in 0..100_000u64 {
            m.insert(2_000 + i, 7, ());
        }
        assert!(m.order.len() <= 2 * m.len() + super::PRESIZE_AT + 1);
        assert_eq!(m.len(), 2_000);
    }

    /// Full and evicting (every insertion removes the oldest entry), the table is never rebuilt: its
    /// capacity after ten caps' worth of churn is the one it was given when it got busy.
    #[test]
    fn a_full_map_churns_without_growing() {
        let cap = 100_000;
        let mut m = FifoMap::new(cap);
        // Keys spread like the real ones (keyed hashes), in a deterministic sequence.
        let key = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
        for i in 0..cap as u64 {
            m.insert(i, key(i), ());
        }
        let presized = m.map.index.len();
        for i in cap as u64..11 * cap as u64 {
            m.insert(i, key(i), ());
        }
        assert_eq!((m.len(), m.map.index.len(), m.map.entries.len()), (cap, presized, cap));
        // Every entry still reachable after all the shifting, and only the newest ones.
        assert!((10 * cap as u64..11 * cap as u64).all(|i| m.get(&key(i)) == Some(&())));
        assert_eq!(m.get(&key(10 * cap as u64 - 1)), None);
    }

    /// Against a plain model (std's map plus an order queue), with keys from a small range so probes
    /// wrap around a small table and removals shift entries across its end.
    #[test]
    fn matches_a_model_under_random_operations() {
        use std::collections::{HashMap, VecDeque};
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for cap in [1, 3, 17, 100] {
            let mut m = FifoMap::new(cap);
            let mut model: HashMap<u64, (u64, u64)> = HashMap::new();
            let mut order: VecDeque<(u64, u64)> = VecDeque::new();
            let mut stamp = 0u64;
            for step in 0..20_000u64 {
                let k = next(3 * cap as u64 + 5);
                if next(10) == 0 {
                    let upto = stamp.saturating_sub(next(3 * cap as u64 + 1));
                    m.expire(|t| t < upto);
                    while order.front().is_some_and(|&(t, _)| t < upto) {
                        let (t, k) = order.pop_front().unwrap();
                        if model.get(&k).is_some_and(|&(s, _)| s == t) {
                            model.remove(&k);
                        }
                    }
                } else {
                    stamp += next(2);
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
                    assert_eq!(m.insert(stamp, k, step), evicted, "cap {cap} step {step}");
                }
                assert_eq!(m.len(), model.len(), "cap {cap} step {step}");
                for k in 0..3 * cap as u64 + 5 {
                    assert_eq!(m.get(&k), model.get(&k).map(|(_, v)| v), "cap {cap} step {step} key {k}");
                }
            }
        }
    }
}
