//! Address ranges for the kernel's interval sets. A plain nftables interval set without auto-merge
//! refuses overlapping elements ("conflicting intervals specified") and aborts the whole transaction,
//! so a blacklist of 200,000 possibly overlapping CIDRs is merged here into sorted, disjoint ranges
//! first (one sort and one sweep: well under 100 ms for 200,000 entries).

use std::net::IpAddr;

/// A CIDR with its host bits cleared, in one integer space per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    v6: bool,
    bits: u128,
    len: u8,
}

/// First and last address of a range, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpRange {
    V4 { first: u32, last: u32 },
    V6 { first: u128, last: u128 },
}

impl Cidr {
    /// `None` when `len` is longer than the family allows. An IPv4-mapped IPv6 address is not
    /// canonicalised here: the caller's prefixes already are (`pbxguard_shield::Prefix`).
    pub fn new(ip: IpAddr, len: u8) -> Option<Self> {
        let (v6, bits, max) = match ip {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (true, u128::from(a), 128),
        };
        if len > max {
            return None;
        }
        let host = Self::host_mask(max, len);
        Some(Self { v6, bits: bits & !host, len })
    }

    /// From the integer form ([`IpRange::bounds`]'s first address); host bits are cleared.
    pub fn from_bits(v6: bool, bits: u128, len: u8) -> Option<Self> {
        let max = if v6 { 128 } else { 32 };
        if len > max || (!v6 && bits > u128::from(u32::MAX)) {
            return None;
        }
        Some(Self { v6, bits: bits & !Self::host_mask(max, len), len })
    }

    fn host_mask(max: u8, len: u8) -> u128 {
        let host_bits = u32::from(max - len);
        if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 }
    }

    fn max_len(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn is_host(&self) -> bool {
        self.len == self.max_len()
    }

    pub fn range(&self) -> IpRange {
        let last = self.bits | Self::host_mask(self.max_len(), self.len);
        if self.v6 {
            IpRange::V6 { first: self.bits, last }
        } else {
            IpRange::V4 { first: self.bits as u32, last: last as u32 }
        }
    }

    /// The CIDR of `len` bits that holds this one (`len` no longer than this one's).
    pub fn truncate(&self, len: u8) -> Self {
        let len = len.min(self.len);
        Self { v6: self.v6, bits: self.bits & !Self::host_mask(self.max_len(), len), len }
    }
}

impl IpRange {
    pub fn is_v6(&self) -> bool {
        matches!(self, Self::V6 { .. })
    }

    /// `(first, last)` widened to u128, for code that treats both families alike.
    pub fn bounds(&self) -> (u128, u128) {
        match *self {
            Self::V4 { first, last } => (first.into(), last.into()),
            Self::V6 { first, last } => (first, last),
        }
    }

    pub fn contains(&self, other: &Self) -> bool {
        let ((a, b), (c, d)) = (self.bounds(), other.bounds());
        self.is_v6() == other.is_v6() && a <= c && d <= b
    }
}

/// Merges ranges of both families into sorted, disjoint, non-adjacent ranges (IPv4 first). Adjacent
/// ranges are joined too: one element instead of two, and no end key shared with the next start.
pub fn merge(ranges: impl IntoIterator<Item = IpRange>) -> Vec<IpRange> {
    let mut v4: Vec<(u128, u128)> = Vec::new();
    let mut v6: Vec<(u128, u128)> = Vec::new();
    for r in ranges {
        let (a, b) = r.bounds();
        // Hostile input (a reversed range) is made harmless rather than trusted.
        let (a, b) = (a.min(b), a.max(b));
        if r.is_v6() { v6.push((a, b)) } else { v4.push((a, b)) }
    }
    let mut out = Vec::with_capacity(v4.len() + v6.len());
    out.extend(sweep(v4).into_iter().map(|(a, b)| IpRange::V4 { first: a as u32, last: b as u32 }));
    out.extend(sweep(v6).into_iter().map(|(first, last)| IpRange::V6 { first, last }));
    out
}

/// Merges CIDRs (see [`merge`]).
pub fn merge_cidrs(cidrs: impl IntoIterator<Item = Cidr>) -> Vec<IpRange> {
    merge(cidrs.into_iter().map(|c| c.range()))
}

fn sweep(mut v: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            // Overlapping or adjacent: extend (no overflow: `last` < a <= u128::MAX).
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: &str, len: u8) -> Cidr {
        Cidr::new(IpAddr::V4(s.parse::<Ipv4Addr>().unwrap()), len).unwrap()
    }

    #[test]
    fn cidr_ranges() {
        assert_eq!(v4("10.0.0.77", 24).range(), IpRange::V4 { first: 0x0a00_0000, last: 0x0a00_00ff });
        assert_eq!(v4("0.0.0.0", 0).range(), IpRange::V4 { first: 0, last: u32::MAX });
        assert_eq!(v4("1.2.3.4", 32).range(), IpRange::V4 { first: 0x0102_0304, last: 0x0102_0304 });
        let all6 = Cidr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).unwrap();
        assert_eq!(all6.range(), IpRange::V6 { first: 0, last: u128::MAX });
        assert!(Cidr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 33).is_none());
        assert_eq!(v4("10.1.2.3", 32).truncate(8), v4("10.0.0.0", 8));
    }

    #[test]
    fn merges_overlaps_and_neighbours() {
        let got = merge_cidrs([v4("10.0.0.0", 24), v4("10.0.0.5", 32), v4("10.0.1.0", 24), v4("8.0.0.0", 8)]);
        assert_eq!(
            got,
            vec![
                IpRange::V4 { first: 0x0800_0000, last: 0x08ff_ffff },
                IpRange::V4 { first: 0x0a00_0000, last: 0x0a00_01ff }
            ]
        );
        assert_eq!(merge_cidrs([v4("255.255.255.255", 32), v4("255.255.255.254", 32)]).len(), 1);
    }

    #[test]
    fn two_hundred_thousand_entries_merge_quickly() {
        let mut x = 0x9e37_79b9_u32;
        let cidrs: Vec<Cidr> = (0..200_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let len = match i % 10 {
                    0 => 16 + (x % 8) as u8,
                    1 | 2 => 24 + (x % 8) as u8,
                    _ => 32,
                };
                Cidr::new(IpAddr::V4(Ipv4Addr::from(x)), len).unwrap()
            })
            .collect();
        let t = std::time::Instant::now();
        let merged = merge_cidrs(cidrs);
        // Generous for a loaded CI machine; about 10 ms on an idle one.
        assert!(t.elapsed() < std::time::Duration::from_millis(500), "{:?}", t.elapsed());
        assert!(merged.len() > 100_000);
    }

    fn arb_cidr() -> impl Strategy<Value = Cidr> {
        prop_oneof![
            // Few distinct high bits so that prefixes nest and touch often.
            (0u32..64, 0u8..=32)
                .prop_map(|(hi, len)| Cidr::new(IpAddr::V4(Ipv4Addr::from(hi << 26 | hi)), len).unwrap()),
            (any::<u32>(), 20u8..=32).prop_map(|(a, len)| Cidr::new(IpAddr::V4(Ipv4Addr::from(a)), len).unwrap()),
            (0u128..64, 0u8..=128)
                .prop_map(|(hi, len)| Cidr::new(IpAddr::V6(Ipv6Addr::from(hi << 122 | hi)), len).unwrap()),
        ]
    }

    proptest! {
        /// Merged ranges are sorted, disjoint and not adjacent, and cover exactly the input addresses.
        #[test]
        fn merge_is_exact(cidrs in proptest::collection::vec(arb_cidr(), 0..40), probes in proptest::collection::vec(any::<u32>(), 0..40)) {
            let merged = merge_cidrs(cidrs.iter().copied());
            for w in merged.windows(2) {
                let ((_, b), (c, _)) = (w[0].bounds(), w[1].bounds());
                if w[0].is_v6() == w[1].is_v6() {
                    prop_assert!(b.saturating_add(1) < c, "{:?}", w);
                } else {
                    prop_assert!(!w[0].is_v6());
                }
            }
            // Probe the bounds of every input range and random points.
            let mut points: Vec<IpRange> = Vec::new();
            for c in &cidrs {
                let (a, b) = c.range().bounds();
                for p in [a, b, a.saturating_sub(1), b.saturating_add(1)] {
                    points.push(if c.is_v6() { IpRange::V6 { first: p, last: p } } else {
                        let p = p.min(u32::MAX.into()) as u32;
                        IpRange::V4 { first: p, last: p }
                    });
                }
            }
            points.extend(probes.iter().map(|&p| IpRange::V4 { first: p, last: p }));
            for p in points {
                let inside = cidrs.iter().any(|c| c.range().contains(&p));
                let merged_inside = merged.iter().any(|r| r.contains(&p));
                prop_assert_eq!(inside, merged_inside, "{:?}", p);
            }
        }
    }
}
