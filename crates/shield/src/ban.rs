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
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Flood, Self::BruteForce, Self::Enumeration, Self::Scanner, Self::Malformed, Self::Manual]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// The note of a ban that rests on unverified evidence (shown by `bans list`, kept in the store).
pub const UNVERIFIED_NOTE: &str = "unverified: from UDP datagrams that could be spoofed; short, not counted as an offence";

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

pub(crate) struct Ledger {
    hosts: HashMap<IpAddr, Ban, SeededState>,
    /// Expiry per banned address (u64::MAX: until removed): the compact copy the fast path reads.
    expiry: HashMap<IpAddr, u64, SeededState>,
    /// Address bans that end, soonest first: expiry without a scan, and the ban to give up first when
    /// the ledger is full.
    ending: BTreeSet<(u64, IpAddr)>,
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
    }

    pub(crate) fn compact(&mut self) {
        self.history.compact();
    }

    /// The fast-path question: is `ip` banned at `now_ms`?
    #[inline]
    pub(crate) fn is_banned(&self, now_ms: u64, ip: IpAddr) -> bool {
        if self.expiry.get(&ip).is_some_and(|&e| e > now_ms) {
            return true;
        }
        !self.prefixes.is_empty() && self.find(now_ms, ip).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.hosts.len() + self.prefixes.len()
    }

    /// The active ban covering `ip`, if any. Expired bans are ignored here and removed by `expire`.
    pub(crate) fn find(&self, now_ms: u64, ip: IpAddr) -> Option<&Ban> {
        if let Some(b) = self.hosts.get(&ip).filter(|b| b.active(now_ms)) {
            return Some(b);
        }
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
        if !ban.target.is_host() {
            self.prefixes.retain(|b| b.target != ban.target);
            self.prefixes.push(ban);
            self.recompile();
            return None;
        }
        let ip = ban.target.addr();
        self.remove_host(ip);
        let mut evicted = None;
        if ban.reason != BanReason::Manual {
            if self.detected >= self.max_bans {
                let victim = self
                    .ending
                    .iter()
                    .map(|&(_, a)| a)
                    .find(|a| self.hosts.get(a).is_some_and(|b| b.reason != BanReason::Manual));
                evicted = victim.and_then(|a| self.remove_host(a)).map(|mut b| {
                    b.expires_ms = Some(now_ms);
                    b
                });
            }
            self.detected += 1;
        }
        if let Some(e) = ban.expires_ms {
            self.ending.insert((e, ip));
        }
        self.expiry.insert(ip, ban.expires_ms.unwrap_or(u64::MAX));
        self.hosts.insert(ip, ban);
        evicted
    }

    fn remove_host(&mut self, ip: IpAddr) -> Option<Ban> {
        let b = self.hosts.remove(&ip)?;
        self.expiry.remove(&ip);
        if let Some(e) = b.expires_ms {
            self.ending.remove(&(e, ip));
        }
        if b.reason != BanReason::Manual {
            self.detected -= 1;
        }
        Some(b)
    }

    pub(crate) fn remove(&mut self, target: Prefix) -> Option<Ban> {
        if target.is_host() {
            return self.remove_host(target.addr());
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
                ended.extend(self.remove_host(ip));
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
