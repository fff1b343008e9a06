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
///
/// The responses' bytes are copied into one ring, in insertion order like the entries: caching one
/// allocates nothing, and forgetting one frees nothing. (A `Vec` per response cost an allocation and a
/// copy per REGISTER, and its free at eviction touched memory untouched for seconds.) An entry whose
/// bytes the ring has written over since is forgotten early, like an evicted one.
pub(crate) struct TxCache {
    entries: FifoMap<TxKey, Span>,
    ttl: u64,
    keys: std::hash::RandomState,
    ring: Box<[u8]>,
    /// Bytes ever written to the ring (with the ends of laps skipped): where the next response goes.
    head: u64,
}

/// Where a response is in the ring: its first byte's position in the ring's history, and its length.
#[derive(Clone, Copy)]
pub(crate) struct Span {
    at: u64,
    len: u32,
}

impl TxCache {
    /// `ring`: bytes for the responses, allocated once (the kernel backs it as it fills).
    pub(crate) fn new(cap: usize, ttl: u64, ring: usize) -> Self {
        Self {
            entries: FifoMap::new(cap),
            ttl,
            keys: std::hash::RandomState::new(),
            ring: vec![0; ring.max(1)].into_boxed_slice(),
            head: 0,
        }
    }

    pub(crate) fn key(&self, branch: &str, method: Method<'_>, source: SocketAddr) -> TxKey {
        TxKey { tx: self.keys.hash_one((branch, method)), source }
    }

    pub(crate) fn get(&self, key: &TxKey) -> Option<&[u8]> {
        let span = self.entries.get(key)?;
        // Written over since: every byte written after it pushed it out of the ring.
        if self.head - span.at > self.ring.len() as u64 {
            return None;
        }
        let pos = (span.at % self.ring.len() as u64) as usize;
        Some(&self.ring[pos..pos + span.len as usize])
    }

    pub(crate) fn insert(&mut self, now: u64, key: TxKey, reply: &[u8]) {
        self.expire(now);
        let size = self.ring.len() as u64;
        // A response larger than a quarter of the ring would push out too many others: not cached.
        if reply.len() as u64 > size / 4 {
            return;
        }
        let mut pos = self.head % size;
        if pos + reply.len() as u64 > size {
            // Not across the ring's end: the next lap starts at its beginning.
            self.head += size - pos;
            pos = 0;
        }
        let pos = pos as usize;
        self.ring[pos..pos + reply.len()].copy_from_slice(reply);
        self.entries.insert(now, key, Span { at: self.head, len: reply.len() as u32 });
        self.head += reply.len() as u64;
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
        let mut c = super::TxCache::new(2, 32, 1024);
        let src = "192.0.2.1:5060".parse().unwrap();
        let reg = pbxguard_sip::Method::Register;
        let [a, b, x] = ["a", "b", "c"].map(|br| c.key(br, reg, src));
        assert!(c.key("a", pbxguard_sip::Method::Options, src) != a);
        assert!(c.key("a", reg, "192.0.2.1:5061".parse().unwrap()) != a);
        c.insert(0, a, &[1]);
        c.insert(0, b, &[2]);
        c.insert(1, x, &[3]);
        assert_eq!((c.get(&a), c.len()), (None, 2));
        assert_eq!(c.next_expiry(), Some(32));
        c.expire(32);
        assert_eq!((c.get(&b), c.get(&x)), (None, Some(&[3u8][..])));
        assert_eq!(c.next_expiry(), Some(33));
        c.expire(33);
        assert_eq!((c.len(), c.next_expiry()), (0, None));
    }

    #[test]
    fn the_ring_returns_each_response_whole_until_written_over() {
        let mut c = super::TxCache::new(1000, 32, 100);
        let src = "192.0.2.1:5060".parse().unwrap();
        let keys: Vec<_> = (0..41).map(|i: usize| c.key(&i.to_string(), pbxguard_sip::Method::Register, src)).collect();
        let body = |i: usize| vec![i as u8; 7 + i % 13];
        let mut written = Vec::new();
        for (i, k) in keys[..40].iter().enumerate() {
            c.insert(0, *k, &body(i));
            written.push(i);
            // Everything still in the ring's last lap is returned exactly; older ones are misses.
            let mut room = 100usize;
            for &j in written.iter().rev() {
                let want = body(j);
                match c.get(&keys[j]) {
                    Some(got) => {
                        assert_eq!(got, &want[..], "response {j} after {i} inserts");
                        room = room.saturating_sub(want.len());
                    }
                    // Forgotten only once the newer ones fill the ring, up to the unused end of a lap
                    // (shorter than a response: under 20 bytes here).
                    None => assert!(room < want.len() + 20, "response {j} forgotten with room {room} left"),
                }
            }
        }
        // Too large for the ring: not cached, and nothing else is disturbed.
        let big = keys[40];
        let last = keys[39];
        c.insert(0, big, &[0; 26]);
        assert_eq!((c.get(&big), c.get(&last)), (None, Some(&body(39)[..])));
    }
}
