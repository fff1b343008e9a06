use std::collections::{HashMap, VecDeque};

/// Final responses of recent non-INVITE server transactions, so a UDP retransmission gets the same
/// answer instead of being processed again (RFC 3261 §17.2.2: the response is resent for Timer J,
/// 64*T1 = 32 s). Bounded: past `cap` the oldest entry goes, and the retransmission is then handled
/// afresh (which for REGISTER means a new challenge or a CSeq check, never a double effect).
pub(crate) struct TxCache {
    map: HashMap<String, Vec<u8>>,
    order: VecDeque<(u64, String)>,
    cap: usize,
    ttl: u64,
}

impl TxCache {
    pub(crate) fn new(cap: usize, ttl: u64) -> Self {
        Self { map: HashMap::new(), order: VecDeque::new(), cap, ttl }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    pub(crate) fn insert(&mut self, now: u64, key: String, reply: Vec<u8>) {
        self.expire(now);
        while self.order.len() >= self.cap {
            if let Some((_, k)) = self.order.pop_front() {
                self.map.remove(&k);
            }
        }
        if self.map.insert(key.clone(), reply).is_none() {
            self.order.push_back((now, key));
        }
    }

    pub(crate) fn expire(&mut self, now: u64) {
        while let Some((t, _)) = self.order.front() {
            if t + self.ttl > now {
                break;
            }
            if let Some((_, k)) = self.order.pop_front() {
                self.map.remove(&k);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bounded_and_expiring() {
        let mut c = super::TxCache::new(2, 32);
        c.insert(0, "a".into(), vec![1]);
        c.insert(0, "b".into(), vec![2]);
        c.insert(1, "c".into(), vec![3]);
        assert_eq!((c.get("a"), c.len()), (None, 2));
        c.expire(32);
        assert_eq!((c.get("b"), c.get("c")), (None, Some(&[3u8][..])));
        c.expire(33);
        assert_eq!(c.len(), 0);
    }
}
