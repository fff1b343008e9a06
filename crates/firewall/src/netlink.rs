//! nf_tables set elements over nfnetlink, as bytes: the batches the daemon writes to its
//! `NETLINK_NETFILTER` socket and the kernel's answers it reads back. Hand-rolled (netlink is plain
//! TLV; this is the little of it pbxguard needs): about 5 µs per change and, unlike every spawned `nft`,
//! immune to the seconds nft spends caching large interval sets elsewhere on the host
//! (research/firewall.md §2).
//!
//! Layout (include/uapi/linux/netfilter/nf_tables.h, nfnetlink.h): a transaction is one write of
//! `NFNL_MSG_BATCH_BEGIN`, the messages, `NFNL_MSG_BATCH_END`. The kernel applies all of it or none of
//! it: one failing message (a delete of a missing element: ENOENT) aborts the whole batch, which is why
//! [`Batch::remove`] first adds what it deletes. Netlink headers are in host order, nf_tables
//! attribute values in network order; timeouts are milliseconds.
//!
//! An interval set (`flags interval`, not concatenated: the rbtree backend) holds a range as two
//! elements: its first address, and the address after its last flagged `INTERVAL_END` (none when the
//! range runs to the family's last address). `NFTA_SET_ELEM_KEY_END` is for concatenated sets only.

use crate::ranges::IpRange;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;

const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_HANDLE: u16 = 16;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_GEN_ID: u16 = 1;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

const NLMSG_HDR: usize = 16;
const NFGEN_HDR: usize = 4;
/// An attribute's length is a u16: elements go into messages of at most this many bytes of them.
const ELEMENTS_PER_MESSAGE_BYTES: usize = 60_000;

/// Whether a message type (from the kernel) belongs to nf_tables, and which one.
fn nft_type(msg: u16) -> u16 {
    NFNL_SUBSYS_NFTABLES << 8 | msg
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One kernel element of an interval set: a start, or the end marker after a range.
struct Element {
    key: [u8; 16],
    key_len: usize,
    end: bool,
    timeout_ms: Option<u64>,
}

/// The elements `r` is stored as; the timeout goes on the start only, as nft does (the kernel
/// removes an expired start together with its end).
fn elements(r: &IpRange, timeout_ms: Option<u64>, out: &mut Vec<Element>) {
    let mut key = [0u8; 16];
    match *r {
        IpRange::V4 { first, last } => {
            key[..4].copy_from_slice(&first.to_be_bytes());
            out.push(Element { key, key_len: 4, end: false, timeout_ms });
            if let Some(next) = last.checked_add(1) {
                key[..4].copy_from_slice(&next.to_be_bytes());
                out.push(Element { key, key_len: 4, end: true, timeout_ms: None });
            }
        }
        IpRange::V6 { first, last } => {
            out.push(Element { key: first.to_be_bytes(), key_len: 16, end: false, timeout_ms });
            if let Some(next) = last.checked_add(1) {
                out.push(Element { key: next.to_be_bytes(), key_len: 16, end: true, timeout_ms: None });
            }
        }
    }
}

/// Appends attributes to a growing buffer; nests are closed by patching their length.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len() + align(len) - len, 0);
    }

    fn str(&mut self, kind: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(kind, &v);
    }

    fn begin(&mut self, kind: u16) -> usize {
        let at = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn element(&mut self, e: &Element) {
        let item = self.begin(NFTA_LIST_ELEM);
        let key = self.begin(NFTA_SET_ELEM_KEY);
        self.attr(NFTA_DATA_VALUE, &e.key[..e.key_len]);
        self.end(key);
        if e.end {
            self.attr(NFTA_SET_ELEM_FLAGS, &NFT_SET_ELEM_INTERVAL_END.to_be_bytes());
        }
        if let Some(ms) = e.timeout_ms {
            self.attr(NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
        }
        self.end(item);
    }
}

/// Starts a netlink message (header and nfgenmsg); returns where it starts, to patch its length.
fn message(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[family, 0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
    at
}

fn finish(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

/// One nf_tables transaction on the sets of one table, built in memory: write [`Batch::finish`]'s
/// bytes in a single `send` (the kernel reads a batch from one datagram).
pub struct Batch {
    buf: Vec<u8>,
    table: String,
    first_seq: u32,
    seq: u32,
    scratch: Vec<Element>,
}

impl Batch {
    /// `seq`: the first sequence number used; errors name the message they concern by it.
    pub fn new(table: &str, seq: u32) -> Self {
        let mut buf = Vec::with_capacity(4096);
        let at = message(&mut buf, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
        finish(&mut buf, at);
        Self { buf, table: table.to_owned(), first_seq: seq, seq: seq.wrapping_add(1), scratch: Vec::new() }
    }

    /// Whether anything but the batch markers was added.
    pub fn is_empty(&self) -> bool {
        self.seq == self.first_seq.wrapping_add(1)
    }

    /// Bytes so far (to keep a batch under the socket's send buffer).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    fn elements(&mut self, kind: u16, flags: u16, set: &str, ranges: &mut dyn Iterator<Item = (IpRange, Option<u64>)>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for (r, t) in ranges {
            elements(&r, t, &mut scratch);
        }
        for chunk in scratch.chunks(ELEMENTS_PER_MESSAGE_BYTES / 48) {
            let at = message(&mut self.buf, nft_type(kind), NLM_F_REQUEST | flags, self.seq, NFPROTO_INET, 0);
            self.seq = self.seq.wrapping_add(1);
            let mut w = Writer(&mut self.buf);
            w.str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
            w.str(NFTA_SET_ELEM_LIST_SET, set);
            let list = w.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
            for e in chunk {
                w.element(e);
            }
            w.end(list);
            finish(&mut self.buf, at);
        }
        self.scratch = scratch;
    }

    /// Adds ranges, each with its own timeout (`None`: until removed). Re-adding an identical element
    /// is not an error; an overlapping one is (the caller keeps elements disjoint).
    pub fn add(&mut self, set: &str, ranges: impl IntoIterator<Item = (IpRange, Option<u64>)>) {
        self.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, &mut ranges.into_iter());
    }

    /// Deletes ranges that must exist (a missing one aborts the batch with ENOENT).
    pub fn delete(&mut self, set: &str, ranges: impl IntoIterator<Item = IpRange>) {
        self.elements(NFT_MSG_DELSETELEM, 0, set, &mut ranges.into_iter().map(|r| (r, None)));
    }

    /// Deletes ranges whether or not they are there (or have expired meanwhile): each is added, then
    /// deleted, in this transaction. Works on every kernel, unlike `DESTROYSETELEM` (6.3+).
    pub fn remove(&mut self, set: &str, ranges: &[IpRange]) {
        self.add(set, ranges.iter().map(|&r| (r, None)));
        self.delete(set, ranges.iter().copied());
    }

    /// Puts ranges in with a fresh timeout whether or not they are there: a re-add keeps the old
    /// timeout on kernels before 6.12, so each is removed first, in the same transaction.
    pub fn replace(&mut self, set: &str, ranges: &[(IpRange, Option<u64>)]) {
        let plain: Vec<IpRange> = ranges.iter().map(|&(r, _)| r).collect();
        self.remove(set, &plain);
        self.add(set, ranges.iter().copied());
    }

    /// Empties a set (a delete without elements).
    pub fn flush(&mut self, set: &str) {
        let at = message(&mut self.buf, nft_type(NFT_MSG_DELSETELEM), NLM_F_REQUEST, self.seq, NFPROTO_INET, 0);
        self.seq = self.seq.wrapping_add(1);
        let mut w = Writer(&mut self.buf);
        w.str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
        w.str(NFTA_SET_ELEM_LIST_SET, set);
        finish(&mut self.buf, at);
    }

    /// The bytes to send, and the sequence numbers the batch used (`first..next`).
    pub fn finish(mut self) -> (Vec<u8>, std::ops::Range<u32>) {
        let at =
            message(&mut self.buf, NFNL_MSG_BATCH_END, NLM_F_REQUEST, self.seq, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
        finish(&mut self.buf, at);
        (self.buf, self.first_seq..self.seq.wrapping_add(1))
    }
}

/// Asks for the ruleset's generation, which every committed transaction (anyone's) increments. Its
/// answer also tells that everything sent before it has been processed.
pub fn get_generation(seq: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(20);
    let at = message(&mut buf, nft_type(NFT_MSG_GETGEN), NLM_F_REQUEST, seq, NFPROTO_UNSPEC, 0);
    finish(&mut buf, at);
    buf
}

/// Asks for one set (its handle changes when it is deleted and created again; ENOENT when the
/// table or the set does not exist).
pub fn get_set(table: &str, set: &str, seq: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    let at = message(&mut buf, nft_type(NFT_MSG_GETSET), NLM_F_REQUEST | NLM_F_ACK, seq, NFPROTO_INET, 0);
    let mut w = Writer(&mut buf);
    w.str(NFTA_SET_TABLE, table);
    w.str(NFTA_SET_NAME, set);
    finish(&mut buf, at);
    buf
}

/// A message from the kernel, as far as pbxguard cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An acknowledgement (`errno` 0) or an error (`errno` positive, e.g. 2 for ENOENT) about the
    /// request with this sequence number.
    Status {
        seq: u32,
        errno: i32,
    },
    Generation {
        seq: u32,
        id: u32,
    },
    Set {
        seq: u32,
        name: String,
        handle: Option<u64>,
    },
    Done {
        seq: u32,
    },
    Other {
        seq: u32,
        kind: u16,
    },
}

/// What was wrong with bytes the kernel (or anyone) sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("netlink message truncated at byte {0}")]
    Truncated(usize),
}

/// Splits a received datagram into replies. Never panics, whatever the bytes.
pub fn replies(buf: &[u8]) -> impl Iterator<Item = Result<Reply, DecodeError>> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= buf.len() {
            return None;
        }
        let Some(hdr) = buf.get(at..at + NLMSG_HDR) else {
            let e = DecodeError::Truncated(at);
            at = buf.len();
            return Some(Err(e));
        };
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let kind = u16::from_ne_bytes([hdr[4], hdr[5]]);
        let seq = u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
        let Some(body) = (len >= NLMSG_HDR).then(|| buf.get(at + NLMSG_HDR..at + len)).flatten() else {
            let e = DecodeError::Truncated(at);
            at = buf.len();
            return Some(Err(e));
        };
        at += align(len).max(NLMSG_HDR);
        Some(Ok(decode(kind, seq, body)))
    })
}

fn decode(kind: u16, seq: u32, body: &[u8]) -> Reply {
    match kind {
        NLMSG_ERROR => {
            let errno = body.get(..4).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            Reply::Status { seq, errno: errno.saturating_neg() }
        }
        NLMSG_DONE => Reply::Done { seq },
        k if k == nft_type(NFT_MSG_NEWGEN) => {
            let id = attrs(body.get(NFGEN_HDR..).unwrap_or_default())
                .find(|(t, _)| *t == NFTA_GEN_ID)
                .and_then(|(_, v)| Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?)));
            match id {
                Some(id) => Reply::Generation { seq, id },
                None => Reply::Other { seq, kind },
            }
        }
        k if k == nft_type(NFT_MSG_NEWSET) => {
            let mut name = String::new();
            let mut handle = None;
            for (t, v) in attrs(body.get(NFGEN_HDR..).unwrap_or_default()) {
                match t {
                    NFTA_SET_NAME => {
                        name = String::from_utf8_lossy(v.split(|&b| b == 0).next().unwrap_or_default()).into_owned()
                    }
                    NFTA_SET_HANDLE => handle = v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes),
                    _ => {}
                }
            }
            Reply::Set { seq, name, handle }
        }
        _ => Reply::Other { seq, kind },
    }
}

/// Top-level attributes of a message body: (type, value). Stops at the first malformed one.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes(b.get(..2)?.try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(b.get(2..4)?.try_into().ok()?) & NLA_TYPE_MASK;
        let value = b.get(4..len)?;
        b = b.get(align(len)..).unwrap_or_default();
        Some((kind, value))
    })
}

/// One element of a batch, read back: (message type, set, start or end key, interval end, timeout).
pub type DecodedElement = (u16, String, Vec<u8>, bool, Option<u64>);

/// Reads the elements of a batch back (what [`Batch`] wrote). For tests and the fuzz target: encode
/// → decode must give back the input.
#[doc(hidden)]
pub fn decode_batch(buf: &[u8]) -> Vec<DecodedElement> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(hdr) = buf.get(at..at + NLMSG_HDR) {
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let kind = u16::from_ne_bytes([hdr[4], hdr[5]]) & 0xff;
        let Some(body) = (len >= NLMSG_HDR).then(|| buf.get(at + NLMSG_HDR..at + len)).flatten() else { break };
        at += align(len);
        let mut set = String::new();
        for (t, v) in attrs(body.get(NFGEN_HDR..).unwrap_or_default()) {
            match t {
                NFTA_SET_ELEM_LIST_SET => set = String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into(),
                NFTA_SET_ELEM_LIST_ELEMENTS => {
                    for (_, e) in attrs(v) {
                        let (mut key, mut end, mut timeout) = (Vec::new(), false, None);
                        for (t, v) in attrs(e) {
                            match t {
                                NFTA_SET_ELEM_KEY => key = attrs(v).next().map(|(_, k)| k.to_vec()).unwrap_or_default(),
                                NFTA_SET_ELEM_FLAGS => end = v == NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
                                NFTA_SET_ELEM_TIMEOUT => timeout = v.try_into().ok().map(u64::from_be_bytes),
                                _ => {}
                            }
                        }
                        out.push((kind, set.clone(), key, end, timeout));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_host_is_a_start_and_an_end() {
        let mut b = Batch::new("pbxguard", 7);
        b.add("banned4", [(IpRange::V4 { first: 0x0a00_0001, last: 0x0a00_0001 }, Some(60_000))]);
        let (bytes, seqs) = b.finish();
        assert_eq!(seqs, 7..10);
        let got = decode_batch(&bytes);
        assert_eq!(
            got,
            vec![
                (NFT_MSG_NEWSETELEM, "banned4".into(), vec![10, 0, 0, 1], false, Some(60_000)),
                (NFT_MSG_NEWSETELEM, "banned4".into(), vec![10, 0, 0, 2], true, None),
            ]
        );
        // The batch markers frame it; the kernel reads them in host order.
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), NFNL_MSG_BATCH_BEGIN);
        assert_eq!(&bytes[18..20], &10u16.to_be_bytes());
    }

    #[test]
    fn a_range_to_the_last_address_has_no_end() {
        let mut b = Batch::new("t", 1);
        b.add("s", [(IpRange::V4 { first: 0xffff_ff00, last: u32::MAX }, None)]);
        assert_eq!(decode_batch(&b.finish().0).len(), 1);
    }

    #[test]
    fn big_batches_are_split_into_messages_the_kernel_accepts() {
        let mut b = Batch::new("t", 1);
        b.add("s", (0..10_000u32).map(|i| (IpRange::V4 { first: i * 4, last: i * 4 + 1 }, None)));
        let (bytes, seqs) = b.finish();
        assert!(seqs.len() > 3);
        assert_eq!(decode_batch(&bytes).len(), 20_000);
        for r in replies(&bytes) {
            assert!(r.is_ok());
        }
    }

    #[test]
    fn kernel_replies() {
        // An error about seq 5: ENOENT, followed by the original header.
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&5u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-2i32).to_ne_bytes());
        m.extend_from_slice(&[0; 16]);
        let g = {
            let mut g = get_generation(9);
            g[4..6].copy_from_slice(&nft_type(NFT_MSG_NEWGEN).to_ne_bytes());
            Writer(&mut g).attr(NFTA_GEN_ID, &77u32.to_be_bytes());
            finish(&mut g, 0);
            g
        };
        m.extend_from_slice(&g);
        let got: Vec<_> = replies(&m).collect();
        assert_eq!(got, vec![Ok(Reply::Status { seq: 5, errno: 2 }), Ok(Reply::Generation { seq: 9, id: 77 })]);
        assert_eq!(replies(&m[..30]).last(), Some(Err(DecodeError::Truncated(0))));
    }

    fn arb_range() -> impl Strategy<Value = (IpRange, Option<u64>)> {
        let r = prop_oneof![
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| IpRange::V4 { first: a.min(b), last: a.max(b) }),
            (any::<u128>(), any::<u128>()).prop_map(|(a, b)| IpRange::V6 { first: a.min(b), last: a.max(b) }),
        ];
        (r, proptest::option::of(any::<u64>()))
    }

    proptest! {
        /// What a batch says is what was put in it.
        #[test]
        fn round_trip(ranges in proptest::collection::vec(arb_range(), 0..50)) {
            let mut b = Batch::new("pbxguard", 1);
            b.add("banned6", ranges.iter().copied());
            let got = decode_batch(&b.finish().0);
            let mut want = Vec::new();
            for (r, t) in &ranges {
                let (first, last) = r.bounds();
                let key = |v: u128| if r.is_v6() { v.to_be_bytes().to_vec() } else { (v as u32).to_be_bytes().to_vec() };
                want.push((NFT_MSG_NEWSETELEM, "banned6".to_string(), key(first), false, *t));
                let max = if r.is_v6() { u128::MAX } else { u32::MAX.into() };
                if last < max {
                    want.push((NFT_MSG_NEWSETELEM, "banned6".to_string(), key(last + 1), true, None));
                }
            }
            prop_assert_eq!(got, want);
        }

        /// Hostile bytes never panic the decoder.
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for r in replies(&bytes) { let _ = r; }
            let _ = decode_batch(&bytes);
        }
    }
}
