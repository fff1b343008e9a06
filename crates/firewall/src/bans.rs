//! Bans as the kernel's `banned4`/`banned6` sets can hold them. These are interval sets without
//! auto-merge: the kernel refuses an element that overlaps another ("a /24 ban and an address inside
//! it"), and one refusal aborts the whole transaction. Bans are CIDRs, so two of them are either
//! disjoint or one holds the other: only the widest live bans go into the kernel; a narrower one
//! waits here and goes in when the wider one ends (with what is left of its own time), so no ban is
//! lost whatever order they come and go in.

use crate::ranges::{Cidr, IpRange};
use std::collections::BTreeMap;

/// A change to send to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// In, with this timeout in ms (`None`: until removed), replacing any element already there.
    Put(IpRange, Option<u64>),
    /// Out, whether or not the kernel still has it (it may have expired it already).
    Remove(IpRange),
}

/// Every ban in force (`wanted`) and the ones the kernel holds (`installed`, disjoint).
#[derive(Debug)]
pub struct BanSets {
    /// Ban → end (ms since the epoch; `None`: until an operator lifts it), by (family, first
    /// address, length): the bans inside a network are one range query away.
    wanted: BTreeMap<(bool, u128, u8), Option<u64>>,
    /// How many wanted bans there are of each (family, length): a ban is covered when one of the
    /// lengths present holds it, so at most 33 or 129 lookups, usually two.
    lengths: [[u32; 129]; 2],
    /// What the kernel holds, by (family, first address).
    installed: BTreeMap<(bool, u128), Cidr>,
}

fn fam(c: &Cidr) -> usize {
    usize::from(c.is_v6())
}

impl Default for BanSets {
    fn default() -> Self {
        Self::new()
    }
}

impl BanSets {
    pub fn new() -> Self {
        Self { wanted: BTreeMap::new(), lengths: [[0; 129]; 2], installed: BTreeMap::new() }
    }

    pub fn len(&self) -> usize {
        self.wanted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// What the kernel should hold: the widest bans, each once.
    pub fn installed(&self) -> impl Iterator<Item = (Cidr, Option<u64>)> + '_ {
        self.installed.values().map(|c| (*c, self.wanted.get(&Self::wkey(c)).copied().flatten()))
    }

    fn key(c: &Cidr) -> (bool, u128) {
        (c.is_v6(), c.range().bounds().0)
    }

    fn wkey(c: &Cidr) -> (bool, u128, u8) {
        (c.is_v6(), c.range().bounds().0, c.prefix_len())
    }

    fn wanted_inside(&self, c: &Cidr) -> Vec<Cidr> {
        let (lo, hi) = c.range().bounds();
        self.wanted
            .range((c.is_v6(), lo, 0)..=(c.is_v6(), hi, 128))
            .filter(|(k, _)| k.2 > c.prefix_len())
            .filter_map(|(k, _)| Cidr::from_bits(k.0, k.1, k.2))
            .collect()
    }

    /// The widest other wanted ban holding `c`, if any.
    fn cover(&self, c: &Cidr) -> Option<Cidr> {
        (0..c.prefix_len())
            .filter(|&l| self.lengths[fam(c)][usize::from(l)] > 0)
            .map(|l| c.truncate(l))
            .find(|p| self.wanted.contains_key(&Self::wkey(p)))
    }

    fn timeout(end: Option<u64>, now_ms: u64) -> Option<Option<u64>> {
        match end {
            None => Some(None),
            // An end already reached: its Unban is on its way; the kernel would not keep it anyway.
            Some(e) if e <= now_ms => None,
            Some(e) => Some(Some(e - now_ms)),
        }
    }

    /// A ban placed or renewed (a later end, a new offence).
    pub fn ban(&mut self, now_ms: u64, c: Cidr, end: Option<u64>, out: &mut Vec<Change>) {
        if self.wanted.insert(Self::wkey(&c), end).is_none() {
            self.lengths[fam(&c)][usize::from(c.prefix_len())] += 1;
        }
        if self.cover(&c).is_some() {
            return;
        }
        // Narrower bans inside it leave the kernel: it now holds them all.
        let (lo, hi) = c.range().bounds();
        let inside: Vec<(bool, u128)> =
            self.installed.range((c.is_v6(), lo)..=(c.is_v6(), hi)).map(|(k, _)| *k).filter(|k| k.1 != lo).collect();
        for k in inside {
            if let Some(n) = self.installed.remove(&k) {
                out.push(Change::Remove(n.range()));
            }
        }
        // A narrower one starting at the same address.
        if let Some(old) = self.installed.get(&Self::key(&c)).copied()
            && old != c
        {
            out.push(Change::Remove(old.range()));
        }
        match Self::timeout(end, now_ms) {
            Some(t) => {
                self.installed.insert(Self::key(&c), c);
                out.push(Change::Put(c.range(), t));
            }
            None => {
                if self.installed.remove(&Self::key(&c)).is_some() {
                    out.push(Change::Remove(c.range()));
                }
            }
        }
    }

    /// A ban lifted (expired, removed by an operator, evicted).
    pub fn unban(&mut self, now_ms: u64, c: Cidr, out: &mut Vec<Change>) {
        if self.wanted.remove(&Self::wkey(&c)).is_none() {
            return;
        }
        self.lengths[fam(&c)][usize::from(c.prefix_len())] -= 1;
        if self.cover(&c).is_some() {
            return;
        }
        if self.installed.get(&Self::key(&c)) == Some(&c) {
            self.installed.remove(&Self::key(&c));
            out.push(Change::Remove(c.range()));
        }
        if c.is_host() {
            return;
        }
        // What it held goes back in: the widest wanted bans inside it (sorted by first address, then
        // widest first).
        let mut reach: Option<u128> = None;
        for w in self.wanted_inside(&c) {
            let (a, b) = w.range().bounds();
            if reach.is_some_and(|r| a <= r) {
                continue;
            }
            reach = Some(b);
            if self.installed.get(&Self::key(&w)) == Some(&w) {
                continue;
            }
            if let Some(t) = Self::timeout(self.wanted.get(&Self::wkey(&w)).copied().flatten(), now_ms) {
                self.installed.insert(Self::key(&w), w);
                out.push(Change::Put(w.range(), t));
            }
        }
    }

    /// Starts again from a full list (the gate's ledger at start-up or after a lost change); returns
    /// what the kernel should hold, with timeouts.
    pub fn reset(
        &mut self,
        now_ms: u64,
        bans: impl IntoIterator<Item = (Cidr, Option<u64>)>,
    ) -> Vec<(IpRange, Option<u64>)> {
        *self = Self::new();
        let mut all: Vec<(Cidr, Option<u64>)> = bans.into_iter().collect();
        all.sort_by_key(|(c, _)| (c.is_v6(), c.range().bounds().0, c.prefix_len()));
        let mut out = Vec::new();
        let mut reach: Option<(bool, u128)> = None;
        for (c, end) in all {
            if self.wanted.insert(Self::wkey(&c), end).is_none() {
                self.lengths[fam(&c)][usize::from(c.prefix_len())] += 1;
            }
            let (a, b) = c.range().bounds();
            if reach.is_some_and(|(v6, r)| v6 == c.is_v6() && a <= r) {
                continue;
            }
            reach = Some((c.is_v6(), b));
            if let Some(t) = Self::timeout(end, now_ms) {
                self.installed.insert(Self::key(&c), c);
                out.push((c.range(), t));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn v4(s: &str, len: u8) -> Cidr {
        Cidr::new(IpAddr::V4(s.parse::<Ipv4Addr>().unwrap()), len).unwrap()
    }

    #[test]
    fn a_network_ban_takes_over_the_addresses_inside_it_and_gives_them_back() {
        let mut s = BanSets::new();
        let mut out = Vec::new();
        s.ban(0, v4("10.0.0.5", 32), Some(10_000), &mut out);
        assert_eq!(out, vec![Change::Put(v4("10.0.0.5", 32).range(), Some(10_000))]);
        out.clear();
        s.ban(1_000, v4("10.0.0.0", 24), Some(5_000), &mut out);
        assert_eq!(
            out,
            vec![Change::Remove(v4("10.0.0.5", 32).range()), Change::Put(v4("10.0.0.0", 24).range(), Some(4_000))]
        );
        out.clear();
        // Covered: the kernel already drops it.
        s.ban(2_000, v4("10.0.0.9", 32), None, &mut out);
        assert!(out.is_empty());
        s.unban(5_000, v4("10.0.0.0", 24), &mut out);
        assert_eq!(
            out,
            vec![
                Change::Remove(v4("10.0.0.0", 24).range()),
                Change::Put(v4("10.0.0.5", 32).range(), Some(5_000)),
                Change::Put(v4("10.0.0.9", 32).range(), None),
            ]
        );
    }

    #[test]
    fn a_ban_at_the_networks_first_address() {
        let mut s = BanSets::new();
        let mut out = Vec::new();
        s.ban(0, v4("10.0.0.0", 32), None, &mut out);
        s.ban(0, v4("10.0.0.0", 24), None, &mut out);
        assert_eq!(s.installed().map(|(c, _)| c).collect::<Vec<_>>(), vec![v4("10.0.0.0", 24)]);
        assert_eq!(out[1], Change::Remove(v4("10.0.0.0", 32).range()));
    }

    #[test]
    fn unknown_unbans_and_renewals() {
        let mut s = BanSets::new();
        let mut out = Vec::new();
        s.unban(0, v4("192.0.2.1", 32), &mut out);
        assert!(out.is_empty());
        s.ban(0, v4("192.0.2.1", 32), Some(1_000), &mut out);
        s.ban(500, v4("192.0.2.1", 32), Some(9_000), &mut out);
        assert_eq!(out[1], Change::Put(v4("192.0.2.1", 32).range(), Some(8_500)));
        assert_eq!(s.len(), 1);
    }

    fn arb_cidr() -> impl Strategy<Value = Cidr> {
        (0u32..16, prop_oneof![Just(32u8), Just(30u8), Just(28u8), Just(24u8)])
            .prop_map(|(a, len)| Cidr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | a)), len).unwrap())
    }

    proptest! {
        /// Whatever the order of bans and unbans, applying the changes to a model of the kernel leaves
        /// it disjoint (never an overlap the kernel would refuse) and dropping exactly what the wanted
        /// bans cover.
        #[test]
        fn kernel_always_matches(ops in proptest::collection::vec((any::<bool>(), arb_cidr()), 0..60)) {
            let mut s = BanSets::new();
            let mut kernel: Vec<IpRange> = Vec::new();
            let mut wanted: Vec<Cidr> = Vec::new();
            for (ban, c) in ops {
                let mut out = Vec::new();
                if ban { s.ban(0, c, None, &mut out); wanted.retain(|w| *w != c); wanted.push(c); }
                else { s.unban(0, c, &mut out); wanted.retain(|w| *w != c); }
                for ch in out {
                    match ch {
                        Change::Put(r, _) => {
                            kernel.retain(|k| *k != r);
                            prop_assert!(kernel.iter().all(|k| !k.contains(&r) && !r.contains(k)), "overlap {:?} in {:?}", r, kernel);
                            kernel.push(r);
                        }
                        Change::Remove(r) => kernel.retain(|k| *k != r),
                    }
                }
                for a in 0x0a00_0000u32..0x0a00_0020 {
                    let p = IpRange::V4 { first: a, last: a };
                    prop_assert_eq!(kernel.iter().any(|k| k.contains(&p)), wanted.iter().any(|w| w.range().contains(&p)));
                }
            }
            let mut fresh = BanSets::new();
            let mut reset: Vec<IpRange> = fresh.reset(0, wanted.iter().map(|w| (*w, None))).into_iter().map(|(r, _)| r).collect();
            reset.sort();
            kernel.sort();
            prop_assert_eq!(reset, kernel);
        }
    }
}
