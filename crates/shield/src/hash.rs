//! A fast keyed hasher for the per-packet tables (bans, trackers), keyed by address. SipHash (std's
//! default) costs more than the rest of `admit`; this multiply-mix hasher is several times cheaper.
//! The seed comes from the daemon's random source, so an attacker choosing spoofed addresses cannot
//! precompute collisions.

use std::hash::{BuildHasher, Hasher};

#[derive(Clone, Copy, Debug)]
pub(crate) struct SeededState(pub(crate) u64);

pub(crate) struct MixHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl Hasher for MixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix(self.0 ^ u64::from_le_bytes(b), K);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = mix(self.0 ^ i, K);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        mix(self.0, K ^ 0x5851_f42d_4c95_7f2d)
    }
}

impl BuildHasher for SeededState {
    type Hasher = MixHasher;

    #[inline]
    fn build_hasher(&self) -> MixHasher {
        MixHasher(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::IpAddr;

    #[test]
    fn spreads_sequential_addresses() {
        let s = SeededState(42);
        let mut buckets = HashSet::new();
        for i in 0..10_000u32 {
            buckets.insert(s.hash_one(IpAddr::from(i.to_be_bytes())) >> 50);
        }
        // 10,000 keys in 16,384 buckets: a random function fills about 7,500.
        assert!(buckets.len() > 7_200, "{}", buckets.len());
        assert_ne!(SeededState(1).hash_one(7u32), SeededState(2).hash_one(7u32));
    }
}
