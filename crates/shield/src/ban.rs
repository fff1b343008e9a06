//! The ban ledger: active bans (addresses in a hash map, prefixes in a compiled set), and the offence
//! history that makes repeat offenders' bans longer.

use crate::config::ShieldConfig;
use crate::hash::SeededState;
use crate::net::{Prefix, PrefixSet};
use crate::tracker::Capped;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// Why an address is banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BanReason {
    Flood,
    BruteForce,
    Enumeration,
    Scanner,
    Malformed,
    /// Too many connections at once, or opened too fast, from one source.
    Connections,
    /// Added by an operator.
    Manual,
}

impl BanReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Flood => "flood",
            Self::BruteForce => "brute-force",
            Self::Enumeration => "enumeration",
            Self::Scanner => "scanner",
            Self::Malformed => "malformed",
            Self::Connections => "connections",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Flood,
            Self::BruteForce,
            Self::Enumeration,
            Self::Scanner,
            Self::Malformed,
            Self::Connections,
            Self::Manual,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The note of a ban that rests on unverified evidence (shown by `bans list`, kept in the store).
pub const UNVERIFIED_NOTE: &str =
    "unverified: from UDP datagrams that could be spoofed; short, not counted as an offence";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub target: Prefix,
    pub reason: BanReason,
    /// What triggered it, for the operator ("31 requests in 2s", "User-Agent friendly-scanner"...).
    pub evidence: String,
    pub first_seen_ms: u64,
    pub created_ms: u64,
    /// `None`: until an operator removes it.
    pub expires_ms: Option<u64>,
    /// 1 for a first offence, 2 for the second within the history window...
    pub offence: u32,
    /// Free text from the operator (manual bans).
    pub note: Option<String>,
}

impl Ban {
    /// Whether the ban rests on evidence only the banned address could have produced (an answer to
    /// our nonce, anything over a connection) rather than on a datagram anyone could have forged.
    pub fn verified(&self) -> bool {
        self.note.as_deref() != Some(UNVERIFIED_NOTE)
    }

    pub fn active(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|e| e > now_ms)
    }
}

/// How a source is banned, as the gate needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cover {
    /// The address itself, or a network an operator named.
    Exact,
    /// The prefix the detectors aggregate it into (its /64): an address known to be good inside it
    /// is spared.
    Aggregate,
}

/// Bans in force. Bans on single addresses and on the detectors' aggregation prefix (e.g. a /64) are
/// kept in hash maps, so the fast path costs one or two lookups however many there are; other networks
/// (an operator's CIDR) in a compiled prefix set.
pub(crate) struct Ledger {
    hosts: HashMap<Prefix, Ban, SeededState>,
    /// Expiry per banned key (u64::MAX: until removed): the compact copy the fast path reads.
    expiry: HashMap<Prefix, u64, SeededState>,
    /// Keyed bans that end, soonest first: expiry without a scan, and the ban to give up first when
    /// the ledger is full.
    ending: BTreeSet<(u64, Prefix)>,
    /// The aggregation lengths (IPv4, IPv6) whose bans are keyed.
    agg: (u8, u8),
    /// Address bans placed by the detectors (operators' bans do not count towards `max_bans`).
    detected: usize,
    max_bans: usize,
    prefixes: Vec<Ban>,
    compiled: PrefixSet<usize>,
    /// Offences per address: (count, last offence time). Bounded like the trackers: a spoofed-source
    /// storm forgets the oldest offenders' history, not the process's memory.
    history: Capped<IpAddr, (u32, u64)>,
}

impl Ledger {
    pub(crate) fn new(seed: u64, cfg: &ShieldConfig) -> Self {
        Self {
            hosts: HashMap::with_hasher(SeededState(seed)),
            expiry: HashMap::with_hasher(SeededState(seed)),
            ending: BTreeSet::new(),
            agg: (cfg.ipv4_prefix.min(32), cfg.ipv6_prefix.min(128)),
            detected: 0,
            max_bans: cfg.max_bans.max(1),
            prefixes: Vec::new(),
            compiled: PrefixSet::default(),
            history: Capped::new(cfg.tracker_cap, seed ^ 3),
        }
    }

    pub(crate) fn set_caps(&mut self, cfg: &ShieldConfig) {
        self.max_bans = cfg.max_bans.max(1);
        self.history.set_cap(cfg.tracker_cap);
        let agg = (cfg.ipv4_prefix.min(32), cfg.ipv6_prefix.min(128));
        if agg != self.agg {
            // Bans keyed under the old lengths are networks like any other now: still enforced.
            let moved: Vec<Prefix> = self.hosts.keys().filter(|p| !p.is_host()).copied().collect();
            self.agg = agg;
            for p in moved {
                if let Some(b) = self.remove_keyed(p) {
                    self.insert(0, b);
                }
            }
        }
    }

    fn keyed(&self, p: &Prefix) -> bool {
        p.is_host() || p.prefix_len() == if p.addr().is_ipv4() { self.agg.0 } else { self.agg.1 }
    }

    fn aggregate(&self, ip: IpAddr) -> Option<Prefix> {
        let len = if ip.is_ipv4() { self.agg.0 } else { self.agg.1 };
        let full = if ip.is_ipv4() { 32 } else { 128 };
        (len < full).then(|| Prefix::new(ip, len).ok()).flatten()
    }

    pub(crate) fn compact(&mut self) {
        self.history.compact();
    }

    /// The fast-path question: is `ip` (canonical) banned at `now_ms`, and how?
    #[inline]
    pub(crate) fn cover(&self, now_ms: u64, ip: IpAddr) -> Option<Cover> {
        let live = |k: &Prefix| self.expiry.get(k).is_some_and(|&e| e > now_ms);
        if live(&Prefix::host(ip)) {
            return Some(Cover::Exact);
        }
        if !self.prefixes.is_empty() && self.find_network(now_ms, ip).is_some() {
            return Some(Cover::Exact);
        }
        self.aggregate(ip).filter(|p| live(p)).map(|_| Cover::Aggregate)
    }

    pub(crate) fn len(&self) -> usize {
        self.hosts.len() + self.prefixes.len()
    }

    fn find_network(&self, now_ms: u64, ip: IpAddr) -> Option<&Ban> {
        if self.prefixes.is_empty() {
            return None;
        }
        let (_, i) = self.compiled.lookup(ip)?;
        self.prefixes.get(*i).filter(|b| b.active(now_ms) && b.target.contains(ip))
    }

    fn recompile(&mut self) {
        self.compiled = PrefixSet::new(self.prefixes.iter().enumerate().map(|(i, b)| (b.target, i)).collect());
    }

    /// Adds or replaces a ban. A detector's ban that finds the ledger full pushes out the detector's
    /// ban closest to its end, which is returned (ended at `now_ms`) so that it is lifted everywhere.
    pub(crate) fn insert(&mut self, now_ms: u64, ban: Ban) -> Option<Ban> {
        if !self.keyed(&ban.target) {
            self.prefixes.retain(|b| b.target != ban.target);
            self.prefixes.push(ban);
            self.recompile();
            return None;
        }
        let key = ban.target;
        self.remove_keyed(key);
        let mut evicted = None;
        if ban.reason != BanReason::Manual {
            if self.detected >= self.max_bans {
                let victim = self
                    .ending
                    .iter()
                    .map(|&(_, a)| a)
                    .find(|a| self.hosts.get(a).is_some_and(|b| b.reason != BanReason::Manual));
                evicted = victim.and_then(|a| self.remove_keyed(a)).map(|mut b| {
                    b.expires_ms = Some(now_ms);
                    b
                });
            }
            self.detected += 1;
        }
        if let Some(e) = ban.expires_ms {
            self.ending.insert((e, key));
        }
        self.expiry.insert(key, ban.expires_ms.unwrap_or(u64::MAX));
        self.hosts.insert(key, ban);
        evicted
    }

    fn remove_keyed(&mut self, key: Prefix) -> Option<Ban> {
        let b = self.hosts.remove(&key)?;
        self.expiry.remove(&key);
        if let Some(e) = b.expires_ms {
            self.ending.remove(&(e, key));
        }
        if b.reason != BanReason::Manual {
            self.detected -= 1;
        }
        Some(b)
    }

    pub(crate) fn remove(&mut self, target: Prefix) -> Option<Ban> {
        if self.keyed(&target) {
            return self.remove_keyed(target);
        }
        let i = self.prefixes.iter().position(|b| b.target == target)?;
        let b = self.prefixes.remove(i);
        self.recompile();
        Some(b)
    }

    /// Records an offence and returns (offence number, ban length) under the progressive policy.
    pub(crate) fn offence(&mut self, cfg: &ShieldConfig, now_ms: u64, ip: IpAddr) -> (u32, u64) {
        let e = self.history.entry(&ip);
        if now_ms.saturating_sub(e.1) > cfg.history_ms {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = now_ms;
        let n = e.0;
        let durations = &cfg.ban_durations_ms;
        let d = durations.get((n as usize).saturating_sub(1)).or(durations.last()).copied().unwrap_or(3_600_000);
        (n, d)
    }

    /// Seeds the offence history (from stored bans at start-up).
    pub(crate) fn note_offence(&mut self, ip: IpAddr, count: u32, at_ms: u64) {
        let e = self.history.entry(&ip);
        e.0 = e.0.max(count);
        e.1 = e.1.max(at_ms);
    }

    /// Removes bans that ended by `now_ms`, returning them. Costs what has ended, not a scan of every
    /// ban (network bans are few and scanned).
    pub(crate) fn expire(&mut self, now_ms: u64) -> Vec<Ban> {
        let mut ended: Vec<Ban> = Vec::new();
        while let Some(&(e, ip)) = self.ending.first() {
            if e > now_ms {
                break;
            }
            self.ending.pop_first();
            if self.hosts.get(&ip).is_some_and(|b| b.expires_ms == Some(e)) {
                ended.extend(self.remove_keyed(ip));
            }
        }
        let before = self.prefixes.len();
        self.prefixes.retain(|b| {
            let keep = b.active(now_ms);
            if !keep {
                ended.push(b.clone());
            }
            keep
        });
        if self.prefixes.len() != before {
            self.recompile();
        }
        ended
    }

    pub(crate) fn merge_history_from(&mut self, other: Self) {
        for (ip, &(n, t)) in other.history.iter() {
            self.note_offence(*ip, n, t);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Ban> {
        self.hosts.values().chain(self.prefixes.iter())
    }
}
