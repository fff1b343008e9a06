//! The protection engine of pbxguard: one policy for every attack signal, whatever protocol it came
//! from (SIP now; IAX2, SSH and GUI logins later).
//!
//! Pure and clock-free: [`Shield::admit`] runs on the fast path before any parsing and answers whether a
//! source may be heard at all; [`Shield::observe`] takes security observations (failed logins, unknown
//! users, scanner fingerprints...) and turns them into [`Decision`]s, drained with
//! [`Shield::poll_decision`]. The daemon carries decisions out (drop table, nftables, store, reporter).
//! Detection never looks at anything but the transport source address for what to ban.

pub mod acl;
pub mod anomaly;
mod ban;
pub mod config;
pub mod countries;
pub mod dialing;
pub mod fingerprint;
pub mod fraud;
mod hash;
pub mod net;
pub mod password;
pub mod ssh;
pub mod table;
mod tracker;

pub use acl::{AclGroup, Rule};
pub use ban::{Ban, BanReason, UNVERIFIED_NOTE};
pub use config::{ShieldConfig, Threshold};
pub use countries::{CountryCode, CountryCodeError};
pub use dialing::{Categories, Category, ClassOfService, NumberingPlan, Pattern};
pub use fingerprint::Fingerprints;
pub use fraud::{CallLimits, ExtensionLimits, FraudGuard, Refusal};
pub use net::{Prefix, PrefixError, PrefixSet, canonical, parse_list};
pub use password::{PasswordPolicy, PinPolicy, Violation};

use ban::Ledger;
use std::collections::VecDeque;
use std::hash::BuildHasher as _;
use std::net::IpAddr;
use std::sync::Arc;
use tracker::{Capped, Distinct, Window};

/// Whether a source may be heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Drop silently: no reply of any kind.
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Banned,
    Blacklisted,
    /// A known-good address over the flood limit: the excess is dropped, the address is not banned
    /// (the flood may come from someone forging it).
    RateLimited,
}

/// How far an observation proves that its source address is the sender's own. Over UDP anyone can
/// forge a source address, so what a single datagram shows (a User-Agent, a malformed message, a
/// flood count, an unknown user without our nonce) is unverified; an answer carrying a nonce we issued
/// to that address, anything over an established TCP/TLS connection, an IAX2 call token, a GUI login
/// after the TLS handshake are verified: only someone receiving our packets there could send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Evidence {
    #[default]
    Verified,
    Unverified,
}

/// The front door an observation came through. Per-user trackers are kept per service: user "root"
/// failing over SSH and extension "root" failing over SIP are different accounts, while the source
/// address is one attacker whatever door it knocks on (one ban covers every service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Service {
    #[default]
    Sip,
    Iax2,
    Ssh,
    Gui,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sip => "sip",
            Self::Iax2 => "iax2",
            Self::Ssh => "ssh",
            Self::Gui => "gui",
        }
    }
}

/// A security-relevant fact reported by a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation<'a> {
    AuthFailed {
        ip: IpAddr,
        user: &'a str,
    },
    AuthSucceeded {
        ip: IpAddr,
        user: &'a str,
    },
    /// A request named a user that does not exist.
    UnknownUser {
        ip: IpAddr,
        user: &'a str,
    },
    Scanner {
        ip: IpAddr,
        evidence: &'a str,
    },
    Malformed {
        ip: IpAddr,
        reason: &'a str,
    },
    /// A connection that ended before anyone tried to log in, the way scanners end them (SSH: dropped
    /// at the banner, no common key exchange, timed out). Counted, never a ban on its own: over SSH
    /// with the failed logins ([`ShieldConfig::ssh`]), elsewhere with malformed messages.
    Probe {
        ip: IpAddr,
        evidence: &'a str,
    },
    /// A connection (TCP, TLS; IAX2 and HTTPS later) was opened from `ip`, which now holds
    /// `unauthenticated` connections to this service that have not authenticated, this one included.
    /// The daemon counts them (it sees them close); the shield decides. `true` from the observe call:
    /// refuse the connection.
    ConnectionOpened {
        ip: IpAddr,
        unauthenticated: u32,
    },
}

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Ban(Ban),
    /// A ban ended; `ban` is as it was (an evicted one ends now).
    Unban {
        ban: Ban,
        why: Lifted,
    },
    /// Report an attacker to the shared blacklist (if reporting is enabled).
    Report {
        ip: IpAddr,
        reason: BanReason,
        evidence: String,
    },
    Alert {
        message: String,
    },
    /// Only addresses that authenticated as `user` before may try until `until_ms`.
    ThrottleUser {
        user: String,
        until_ms: u64,
    },
    /// Unverified evidence against a known-good address: its messages were dropped, it was not banned.
    /// Said once per address per minute however many datagrams arrive.
    SuspectedSpoof {
        ip: IpAddr,
        evidence: String,
    },
}

/// Why a ban ended before an operator or its expiry said so, or because they did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifted {
    Expired,
    /// Removed by an operator.
    Operator,
    /// Pushed out by a newer ban when the ledger was full (`max_bans`): the one closest to its end goes.
    Evicted,
}

impl Lifted {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Operator => "removed by an operator",
            Self::Evicted => "ban table full: lifted early for a newer ban",
        }
    }
}

/// Where a blacklist entry came from: the list's name.
pub type ListName = Arc<str>;

#[derive(Default)]
struct SourceState {
    flood: Window,
    failures: Window,
    unknown: Distinct,
    malformed: Window,
    connections: Window,
    /// SSH failed logins, invalid users and probes together (one threshold, like sshguard's score).
    ssh: Window,
}

#[derive(Default)]
struct UserState {
    failures: Window,
    sources: Distinct,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub dropped_banned: u64,
    pub dropped_blacklisted: u64,
    pub bans: u64,
    /// Detector bans lifted early because the ledger was full.
    pub evicted_bans: u64,
    /// Messages from known-good addresses dropped as probable spoofs (over the flood limit, or
    /// unverified evidence of an attack), without a ban.
    pub spoofs_dropped: u64,
}

pub struct Shield {
    seed: u64,
    cfg: ShieldConfig,
    trusted: PrefixSet<()>,
    blacklist: Arc<PrefixSet<ListName>>,
    ledger: Ledger,
    sources: Capped<IpAddr, SourceState>,
    users: Capped<(Service, String), UserState>,
    /// (user, address) pairs that authenticated successfully: never throttled. The user is kept as a
    /// keyed hash (`user_keys`), so a success, nearly every REGISTER, neither allocates nor copies it;
    /// two names colliding in 64 bits of a per-process keyed SipHash would only share an exemption.
    known_good: Capped<(Service, u64, IpAddr), ()>,
    user_keys: std::hash::RandomState,
    /// When each address last authenticated (any service): known-good for `known_good_ms`.
    good_sources: Capped<IpAddr, u64>,
    /// Suspected spoofs per address, to say so once a minute.
    spoofs: Capped<IpAddr, Window>,
    decisions: VecDeque<Decision>,
    counters: Counters,
}

fn hash64(s: &str) -> u64 {
    // FNV-1a: only used to tell names apart inside one small per-source set.
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

const HOUR: u64 = config::HOUR_MS;

/// What an observation shows, for the operator.
fn describe(obs: &Observation<'_>) -> String {
    match obs {
        Observation::AuthFailed { user, .. } => format!("failed authentication as {user:?}"),
        Observation::AuthSucceeded { user, .. } => format!("authenticated as {user:?}"),
        Observation::UnknownUser { user, .. } => format!("unknown user {user:?}"),
        Observation::Scanner { evidence, .. } => format!("scanner: {evidence}"),
        Observation::Malformed { reason, .. } => format!("malformed: {reason}"),
        Observation::Probe { evidence, .. } => format!("probe: {evidence}"),
        Observation::ConnectionOpened { unauthenticated, .. } => {
            format!("connection opened ({unauthenticated} unauthenticated)")
        }
    }
}

/// Why SSH evidence bans, in the operator's words: `ssh: ` first, as a ban has no service of its own.
fn ssh_ban(obs: &Observation<'_>, n: u32, t: Threshold) -> (BanReason, String) {
    let reason = if matches!(obs, Observation::Probe { .. }) { BanReason::Scanner } else { BanReason::BruteForce };
    let what = format!(
        "ssh: {n} failed logins, invalid users or scanner probes within {}s, last: {}",
        t.window_ms / 1000,
        describe(obs)
    );
    (reason, what)
}

fn ip_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v >> 64) as u64 ^ v as u64
        }
    }
}

impl Shield {
    /// A shield with a fixed hash seed (tests, benchmarks). The daemon uses [`Shield::with_seed`].
    pub fn new(cfg: ShieldConfig) -> Self {
        Self::with_seed(cfg, 0x243f_6a88_85a3_08d3)
    }

    /// `seed` keys the per-address hash tables; give each process a random one.
    pub fn with_seed(cfg: ShieldConfig, seed: u64) -> Self {
        let cap = cfg.tracker_cap;
        let ledger = Ledger::new(seed, &cfg);
        Self {
            seed,
            cfg,
            trusted: PrefixSet::default(),
            blacklist: Arc::new(PrefixSet::default()),
            ledger,
            sources: Capped::new(cap, seed),
            users: Capped::new(cap, seed ^ 1),
            known_good: Capped::new(cap, seed ^ 2),
            user_keys: std::hash::RandomState::new(),
            good_sources: Capped::new(cap, seed ^ 3),
            spoofs: Capped::new(cap, seed ^ 4),
            decisions: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &ShieldConfig {
        &self.cfg
    }

    pub fn set_config(&mut self, cfg: ShieldConfig) {
        self.sources.set_cap(cfg.tracker_cap);
        self.users.set_cap(cfg.tracker_cap);
        self.known_good.set_cap(cfg.tracker_cap);
        self.good_sources.set_cap(cfg.tracker_cap);
        self.spoofs.set_cap(cfg.tracker_cap);
        self.ledger.set_caps(&cfg);
        self.cfg = cfg;
    }

    /// Trusted networks are never banned and skip the flood gate. Trusting an address also lifts
    /// detector bans on it (operator bans stay until removed).
    pub fn set_trusted(&mut self, nets: Vec<Prefix>) {
        self.trusted = PrefixSet::new(nets.into_iter().map(|p| (p, ())).collect());
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(ip)
    }

    /// The trusted networks as set (the host firewall mirrors them).
    pub fn trusted(&self) -> &PrefixSet<()> {
        &self.trusted
    }

    /// Swaps the compiled blacklist (built off the hot path).
    pub fn set_blacklist(&mut self, list: Arc<PrefixSet<ListName>>) {
        self.blacklist = list;
    }

    pub fn blacklist(&self) -> &Arc<PrefixSet<ListName>> {
        &self.blacklist
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Tracked sources and users, and how many trackers were evicted by the cap.
    pub fn tracker_stats(&self) -> (usize, usize, u64) {
        (self.sources.len(), self.users.len(), self.sources.evicted() + self.users.evicted())
    }

    /// The fast path, before parsing: trusted → allow; banned or blacklisted → drop; otherwise the
    /// message counts towards the flood threshold and may itself trigger the ban.
    pub fn admit(&mut self, now_ms: u64, ip: IpAddr) -> Verdict {
        let ip = canonical(ip);
        if self.trusted.contains(ip) {
            return Verdict::Allow;
        }
        if self.banned(now_ms, ip) {
            self.counters.dropped_banned += 1;
            return Verdict::Drop(DropReason::Banned);
        }
        if self.blacklist.contains(ip) {
            self.counters.dropped_blacklisted += 1;
            return Verdict::Drop(DropReason::Blacklisted);
        }
        let t = self.cfg.flood;
        let src = self.cfg.source_of(ip);
        let n = self.sources.entry(&src.addr()).flood.hit(now_ms, t);
        if n > t.max {
            let secs = t.window_ms as f64 / 1000.0;
            let evidence = format!("{n} messages within {secs}s");
            // A count of datagrams proves nothing about who sent them: a known-good address is only
            // held to the limit, an unknown one gets a short unverified ban.
            if self.is_known_good(now_ms, ip) {
                self.spoof_dropped(now_ms, ip, || format!("flood: {evidence}"));
                return Verdict::Drop(DropReason::RateLimited);
            }
            self.ban_detected(now_ms, ip, src, BanReason::Flood, evidence, Evidence::Unverified);
            self.counters.dropped_banned += 1;
            return Verdict::Drop(DropReason::Banned);
        }
        Verdict::Allow
    }

    /// Read-only fast check: would `admit` drop this source (banned or blacklisted, and not trusted)?
    /// Used where nothing should be counted, such as accepting a TCP connection.
    pub fn is_blocked(&self, now_ms: u64, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !self.trusted.contains(ip) && (self.banned(now_ms, ip) || self.blacklist.contains(ip))
    }

    /// Banned, as the gate sees it: an address known to be good is spared a ban on the prefix it was
    /// aggregated into (its neighbour in the /64 is the attacker), never one on itself or an operator's.
    fn banned(&self, now_ms: u64, ip: IpAddr) -> bool {
        match self.ledger.cover(now_ms, ip) {
            None => false,
            Some(ban::Cover::Exact) => true,
            Some(ban::Cover::Aggregate) => !self.is_known_good(now_ms, ip),
        }
    }

    /// Whether `ip` has authenticated as SIP `user` before: such addresses are never throttled.
    pub fn authenticated_before(&self, ip: IpAddr, user: &str) -> bool {
        self.authenticated_before_on(Service::Sip, ip, user)
    }

    pub fn authenticated_before_on(&self, service: Service, ip: IpAddr, user: &str) -> bool {
        self.known_good.get(&(service, self.user_keys.hash_one(user), canonical(ip))).is_some()
    }

    /// An address that authenticated (any service) within `known_good_ms`: evidence anyone could forge
    /// never bans it.
    pub fn is_known_good(&self, now_ms: u64, ip: IpAddr) -> bool {
        self.good_sources.get(&canonical(ip)).is_some_and(|&at| now_ms.saturating_sub(at) <= self.cfg.known_good_ms)
    }

    /// Marks an address known-good as of `at_ms` (a registration restored at start-up).
    pub fn mark_good(&mut self, at_ms: u64, ip: IpAddr) {
        let e = self.good_sources.entry(&canonical(ip));
        *e = (*e).max(at_ms);
    }

    fn spoof_dropped(&mut self, now_ms: u64, ip: IpAddr, evidence: impl FnOnce() -> String) {
        self.counters.spoofs_dropped += 1;
        if self.spoofs.entry(&ip).hit(now_ms, Threshold { max: u32::MAX, window_ms: 60_000 }) == 1 {
            self.decisions.push_back(Decision::SuspectedSpoof { ip, evidence: evidence() });
        }
    }

    /// Learns from one SIP observation (see [`Shield::observe_on`]).
    pub fn observe(&mut self, now_ms: u64, obs: Observation<'_>) -> bool {
        self.observe_on(now_ms, Service::Sip, obs)
    }

    /// Learns from one observation made by `service`, on verified evidence.
    pub fn observe_on(&mut self, now_ms: u64, service: Service, obs: Observation<'_>) -> bool {
        self.observe_with(now_ms, service, Evidence::Verified, obs)
    }

    /// Learns from one observation. Returns true when the caller must withhold its reply to the very
    /// message: the source is banned as a result, or the observation is unverified evidence against a
    /// known-good address (dropped as a probable spoof, and said so, but never a ban).
    pub fn observe_with(&mut self, now_ms: u64, service: Service, evidence: Evidence, obs: Observation<'_>) -> bool {
        let ip = match obs {
            Observation::AuthFailed { ip, .. }
            | Observation::AuthSucceeded { ip, .. }
            | Observation::UnknownUser { ip, .. }
            | Observation::Scanner { ip, .. }
            | Observation::Malformed { ip, .. }
            | Observation::Probe { ip, .. }
            | Observation::ConnectionOpened { ip, .. } => canonical(ip),
        };
        if let Observation::AuthSucceeded { user, .. } = obs {
            self.known_good.entry(&(service, self.user_keys.hash_one(user), ip));
            *self.good_sources.entry(&ip) = now_ms;
            let src = self.cfg.source_of(ip).addr();
            if self.sources.get(&src).is_some() {
                let s = self.sources.entry(&src);
                s.failures.reset();
                s.unknown.reset();
                s.ssh.reset();
            }
            return false;
        }
        if let Observation::AuthFailed { user, .. } | Observation::UnknownUser { user, .. } = obs {
            self.user_attack(now_ms, service, ip, user);
        }
        if self.trusted.contains(ip) {
            return false;
        }
        if self.banned(now_ms, ip) {
            return true;
        }
        if evidence == Evidence::Unverified && self.is_known_good(now_ms, ip) {
            self.spoof_dropped(now_ms, ip, || describe(&obs));
            return true;
        }
        let cfg = &self.cfg;
        let src = cfg.source_of(ip);
        let s = self.sources.entry(&src.addr());
        let trigger = match obs {
            Observation::AuthFailed { .. } | Observation::UnknownUser { .. } | Observation::Probe { .. }
                if service == Service::Ssh =>
            {
                let n = s.ssh.hit(now_ms, cfg.ssh);
                (n >= cfg.ssh.max).then(|| ssh_ban(&obs, n, cfg.ssh))
            }
            Observation::AuthFailed { user, .. } => {
                let n = s.failures.hit(now_ms, cfg.brute_force);
                (n >= cfg.brute_force.max).then(|| {
                    (
                        BanReason::BruteForce,
                        format!(
                            "{n} failed authentications within {}s, last as {user:?}",
                            cfg.brute_force.window_ms / 1000
                        ),
                    )
                })
            }
            Observation::UnknownUser { user, .. } => {
                let n = s.unknown.add(now_ms, hash64(user), cfg.enumeration);
                (n >= cfg.enumeration.max).then(|| {
                    (
                        BanReason::Enumeration,
                        format!("{n} unknown users within {}s, last {user:?}", cfg.enumeration.window_ms / 1000),
                    )
                })
            }
            Observation::Scanner { evidence, .. } => Some((BanReason::Scanner, evidence.to_owned())),
            Observation::Malformed { reason, .. } | Observation::Probe { evidence: reason, .. } => {
                let n = s.malformed.hit(now_ms, cfg.malformed);
                (n >= cfg.malformed.max).then(|| {
                    (
                        BanReason::Malformed,
                        format!("{n} malformed messages within {}s, last: {reason}", cfg.malformed.window_ms / 1000),
                    )
                })
            }
            Observation::ConnectionOpened { unauthenticated, .. } => {
                let (cap, rate) = (cfg.max_unauthenticated, cfg.connection_rate);
                let n = s.connections.hit(now_ms, rate);
                (unauthenticated > cap || n > rate.max).then(|| {
                    (
                        BanReason::Connections,
                        format!(
                            "{unauthenticated} unauthenticated connections open at once (limit {cap}), {n} opened within {}s (limit {})",
                            rate.window_ms / 1000,
                            rate.max
                        ),
                    )
                })
            }
            Observation::AuthSucceeded { .. } => None,
        };
        // Phones behind one NAT that all reconnect at once (the PBX restarted) look like a connection
        // flood: an address that authenticated lately is held to the limits, never banned for them.
        if let Some((BanReason::Connections, _)) = trigger
            && self.is_known_good(now_ms, ip)
        {
            return true;
        }
        match trigger {
            Some((reason, what)) => {
                self.ban_detected(now_ms, ip, src, reason, what, evidence);
                true
            }
            None => false,
        }
    }

    fn user_attack(&mut self, now_ms: u64, service: Service, ip: IpAddr, user: &str) {
        let t = self.cfg.user_failures;
        let min_sources = self.cfg.user_min_sources;
        let st = self.users.entry(&(service, user.to_owned()));
        let n = st.failures.hit(now_ms, t);
        let sources = st.sources.add(now_ms, ip_key(ip), Threshold { max: min_sources.max(1), window_ms: t.window_ms });
        if n == t.max && sources >= min_sources {
            let until_ms = now_ms + self.cfg.user_throttle_ms;
            let who = match service {
                Service::Sip => "extension".to_owned(),
                s => format!("{} user", s.as_str()),
            };
            self.decisions.push_back(Decision::Alert {
                message: format!(
                    "{who} {user:?}: {n} failed authentications from {sources}+ addresses within {}s; throttled for {}s (addresses that authenticated before are not affected)",
                    t.window_ms / 1000,
                    self.cfg.user_throttle_ms / 1000
                ),
            });
            // Only the SIP service can hold back one account's attempts so far; elsewhere the alert
            // stands alone.
            if service == Service::Sip {
                self.decisions.push_back(Decision::ThrottleUser { user: user.to_owned(), until_ms });
            }
        }
    }

    /// Bans `src` (the prefix `ip` is aggregated into; `ip` itself is what gets reported).
    fn ban_detected(
        &mut self,
        now_ms: u64,
        ip: IpAddr,
        src: Prefix,
        reason: BanReason,
        evidence: String,
        class: Evidence,
    ) {
        // Unverified evidence may have been forged to get someone else banned: its bans are the first
        // step only, never escalate, and are not reported to shared blacklists.
        let (offence, duration, note) = match class {
            Evidence::Verified => {
                let (o, d) = self.ledger.offence(&self.cfg, now_ms, src.addr());
                (o, d, None)
            }
            Evidence::Unverified => {
                (1, self.cfg.ban_durations_ms.first().copied().unwrap_or(HOUR), Some(UNVERIFIED_NOTE.to_owned()))
            }
        };
        let ban = Ban {
            target: src,
            reason,
            evidence: evidence.clone(),
            first_seen_ms: now_ms,
            created_ms: now_ms,
            expires_ms: Some(now_ms + duration),
            offence,
            note,
        };
        self.sources.remove(&src.addr());
        let evicted = self.ledger.insert(now_ms, ban.clone());
        self.counters.bans += 1;
        if let Some(old) = evicted {
            self.counters.evicted_bans += 1;
            self.decisions.push_back(Decision::Unban { ban: old, why: Lifted::Evicted });
        }
        self.decisions.push_back(Decision::Ban(ban));
        if class == Evidence::Verified {
            self.decisions.push_back(Decision::Report { ip, reason, evidence });
        }
    }

    /// An operator's ban. Refused for trusted addresses (the caller says so to the operator).
    pub fn ban(
        &mut self,
        now_ms: u64,
        target: Prefix,
        duration_ms: Option<u64>,
        note: Option<String>,
    ) -> Result<Ban, String> {
        if self.trusted.contains(target.addr()) {
            return Err(format!("{target} is in a trusted network; remove it from the trusted networks first"));
        }
        let ban = Ban {
            target,
            reason: BanReason::Manual,
            evidence: "added by an operator".into(),
            first_seen_ms: now_ms,
            created_ms: now_ms,
            expires_ms: duration_ms.map(|d| now_ms + d),
            offence: 1,
            note,
        };
        // An operator's ban never evicts another.
        self.ledger.insert(now_ms, ban.clone());
        self.decisions.push_back(Decision::Ban(ban.clone()));
        Ok(ban)
    }

    /// Lifts a ban; `false` if there was none for exactly this target.
    pub fn unban(&mut self, target: Prefix) -> bool {
        let Some(ban) = self.ledger.remove(target) else { return false };
        self.sources.remove(&target.addr());
        self.decisions.push_back(Decision::Unban { ban, why: Lifted::Operator });
        true
    }

    /// Restores bans from storage at start-up (and after another process changed them); their offence
    /// counts seed the progressive policy.
    pub fn restore(&mut self, now_ms: u64, bans: impl IntoIterator<Item = Ban>) {
        let mut fresh = Ledger::new(self.seed, &self.cfg);
        let mut active = Vec::new();
        for b in bans {
            if (b.target.is_host() || b.target == self.cfg.source_of(b.target.addr())) && b.verified() {
                fresh.note_offence(b.target.addr(), b.offence, b.created_ms);
            }
            if b.active(now_ms) {
                active.push(b);
            }
        }
        // Soonest end first, so that over the cap (lowered since) those are the ones lifted, and said to
        // be, so the store stops listing them as in force.
        active.sort_by_key(|b| b.expires_ms.unwrap_or(u64::MAX));
        for b in active {
            if let Some(ban) = fresh.insert(now_ms, b) {
                self.counters.evicted_bans += 1;
                self.decisions.push_back(Decision::Unban { ban, why: Lifted::Evicted });
            }
        }
        // Keep the in-memory offence history of addresses whose bans already ended.
        std::mem::swap(&mut self.ledger, &mut fresh);
        self.ledger.merge_history_from(fresh);
    }

    pub fn bans(&self) -> impl Iterator<Item = &Ban> {
        self.ledger.iter()
    }

    pub fn ban_count(&self) -> usize {
        self.ledger.len()
    }

    /// Housekeeping: expires bans (reporting each as an Unban) and compacts trackers.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        for ban in self.ledger.expire(now_ms) {
            self.decisions.push_back(Decision::Unban { ban, why: Lifted::Expired });
        }
        self.ledger.compact();
        self.sources.compact();
        self.users.compact();
        self.known_good.compact();
        self.good_sources.compact();
        self.spoofs.compact();
    }

    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.decisions.pop_front()
    }
}

#[cfg(test)]
mod tests;
