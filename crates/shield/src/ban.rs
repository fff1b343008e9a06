//! The ban ledger: active bans (addresses in a hash map, prefixes in a compiled set), and the offence
//! history that makes repeat offenders' bans longer.

use crate::config::ShieldConfig;
use crate::hash::SeededState;
use crate::net::{Prefix, PrefixSet};
use std::collections::HashMap;
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
    pub fn active(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|e| e > now_ms)
    }
}

pub(crate) struct Ledger {
    hosts: HashMap<IpAddr, Ban, SeededState>,
    /// Expiry per banned address (u64::MAX: until removed): the compact copy the fast path reads.
    expiry: HashMap<IpAddr, u64, SeededState>,
    prefixes: Vec<Ban>,
    compiled: PrefixSet<usize>,
    /// Offences per address: (count, last offence time).
    history: HashMap<IpAddr, (u32, u64)>,
}

impl Ledger {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            hosts: HashMap::with_hasher(SeededState(seed)),
            expiry: HashMap::with_hasher(SeededState(seed)),
            prefixes: Vec::new(),
            compiled: PrefixSet::default(),
            history: HashMap::new(),
        }
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

    pub(crate) fn insert(&mut self, ban: Ban) {
        if ban.target.is_host() {
            self.expiry.insert(ban.target.addr(), ban.expires_ms.unwrap_or(u64::MAX));
            self.hosts.insert(ban.target.addr(), ban);
        } else {
            self.prefixes.retain(|b| b.target != ban.target);
            self.prefixes.push(ban);
            self.recompile();
        }
    }

    pub(crate) fn remove(&mut self, target: Prefix) -> Option<Ban> {
        if target.is_host() {
            self.expiry.remove(&target.addr());
            return self.hosts.remove(&target.addr());
        }
        let i = self.prefixes.iter().position(|b| b.target == target)?;
        let b = self.prefixes.remove(i);
        self.recompile();
        Some(b)
    }

    /// Records an offence and returns (offence number, ban length) under the progressive policy.
    pub(crate) fn offence(&mut self, cfg: &ShieldConfig, now_ms: u64, ip: IpAddr) -> (u32, u64) {
        let e = self.history.entry(ip).or_insert((0, now_ms));
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
        let e = self.history.entry(ip).or_insert((0, at_ms));
        e.0 = e.0.max(count);
        e.1 = e.1.max(at_ms);
    }

    /// Removes bans that ended by `now_ms`, returning them; forgets history older than its window.
    pub(crate) fn expire(&mut self, cfg: &ShieldConfig, now_ms: u64) -> Vec<Ban> {
        let mut ended: Vec<Ban> = Vec::new();
        self.hosts.retain(|_, b| {
            let keep = b.active(now_ms);
            if !keep {
                ended.push(b.clone());
            }
            keep
        });
        self.expiry.retain(|_, e| *e > now_ms);
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
        self.history.retain(|_, (_, last)| now_ms.saturating_sub(*last) <= cfg.history_ms);
        ended
    }

    pub(crate) fn merge_history_from(&mut self, other: Self) {
        for (ip, (n, t)) in other.history {
            self.note_offence(ip, n, t);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Ban> {
        self.hosts.values().chain(self.prefixes.iter())
    }
}
