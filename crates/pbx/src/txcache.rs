use crate::fifo::FifoMap;
use pbxguard_sip::Method;
use std::hash::BuildHasher;
use std::net::SocketAddr;

/// A transaction: branch and method (as one keyed hash) and the source address. Fixed-size, so looking
/// up every request costs no allocation and no text formatting. Two transactions of one source colliding
/// in 64 bits of a per-process keyed hash would confuse only that source.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TxKey {
    tx: u64,
    source: SocketAddr,
}

/// Final responses of recent non-INVITE server transactions, so a UDP retransmission gets the same
/// answer instead of being processed again (RFC 3261 §17.2.2: the response is resent for Timer J,
/// 64*T1 = 32 s). Bounded: past `cap` the oldest entry goes, and the retransmission is then handled
/// afresh (which for REGISTER means a new challenge or a CSeq check, never a double effect).
pub(crate) struct TxCache {
    entries: FifoMap<TxKey, Vec<u8>>,
    ttl: u64,
    keys: std::hash::RandomState,
}

impl TxCache {
    pub(crate) fn new(cap: usize, ttl: u64) -> Self {
        Self { entries: FifoMap::new(cap), ttl, keys: std::hash::RandomState::new() }
    }

    pub(crate) fn key(&self, branch: &str, method: Method<'_>, source: SocketAddr) -> TxKey {
        TxKey { tx: self.keys.hash_one((branch, method)), source }
    }

    pub(crate) fn get(&self, key: &TxKey) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    pub(crate) fn insert(&mut self, now: u64, key: TxKey, reply: Vec<u8>) {
        self.expire(now);
        self.entries.insert(now, key, reply);
    }

    pub(crate) fn expire(&mut self, now: u64) {
        let ttl = self.ttl;
        self.entries.expire(|t| t + ttl <= now);
    }

    /// When `expire` may next forget a response (seconds, like `now`); `None` while nothing is cached.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.entries.oldest_stamp().map(|t| t + self.ttl)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bounded_and_expiring() {
        let mut c = super::TxCache::new(2, 32);
        let src = "192.0.2.1:5060".parse().unwrap();
        let reg = pbxguard_sip::Method::Register;
        let [a, b, x] = ["a", "b", "c"].map(|br| c.key(br, reg, src));
        assert!(c.key("a", pbxguard_sip::Method::Options, src) != a);
        assert!(c.key("a", reg, "192.0.2.1:5061".parse().unwrap()) != a);
        c.insert(0, a, vec![1]);
        c.insert(0, b, vec![2]);
        c.insert(1, x, vec![3]);
        assert_eq!((c.get(&a), c.len()), (None, 2));
        assert_eq!(c.next_expiry(), Some(32));
        c.expire(32);
        assert_eq!((c.get(&b), c.get(&x)), (None, Some(&[3u8][..])));
        assert_eq!(c.next_expiry(), Some(33));
        c.expire(33);
        assert_eq!((c.len(), c.next_expiry()), (0, None));
    }
}
