//! Per-source connection accounting for every connection-oriented front door (SIP over TCP and TLS
//! now; IAX2 and HTTPS reuse it): how many connections each source holds to a service, and how many of
//! them have not authenticated. The gate decides what a count means (`Observation::ConnectionOpened`,
//! detector `connections`); this module only counts, so the shield stays pure.
//!
//! Bounded: an entry exists only while its source holds a connection, and connections are capped
//! (`sip.max_connections`), so the table never holds more entries than open connections.

use pbxguard_shield::{Service, canonical};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Clone, Copy)]
struct Held {
    unauthenticated: u32,
    authenticated: u32,
}

/// Why a connection ended or never started, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// Refused at accept: the global cap (`sip.max_connections`) was reached.
    RefusedFull,
    /// Refused at accept: the source is banned or blacklisted, or the `connections` detector refused it.
    RefusedSource,
    /// Closed: an unfinished message sat longer than `sip.tcp_incomplete_timeout` after its last byte.
    Incomplete,
    /// Closed: nothing authenticated within `sip.tcp_auth_timeout` of opening.
    Unauthenticated,
    /// Closed: silent for `sip.idle_timeout`.
    Idle,
}

const OUTCOMES: [Outcome; 5] =
    [Outcome::RefusedFull, Outcome::RefusedSource, Outcome::Incomplete, Outcome::Unauthenticated, Outcome::Idle];

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::RefusedFull => "refused_full",
            Self::RefusedSource => "refused_source",
            Self::Incomplete => "incomplete_timeout",
            Self::Unauthenticated => "auth_timeout",
            Self::Idle => "idle_timeout",
        }
    }
}

pub(crate) struct Conns {
    held: Mutex<HashMap<(IpAddr, Service), Held>>,
    auth_timeout_ms: AtomicU64,
    incomplete_timeout_ms: AtomicU64,
    opened: AtomicU64,
    open: AtomicU64,
    outcomes: [AtomicU64; OUTCOMES.len()],
}

/// What the metrics show.
pub(crate) struct Stats {
    pub(crate) opened: u64,
    pub(crate) open: u64,
    pub(crate) sources: usize,
    pub(crate) outcomes: Vec<(Outcome, u64)>,
}

impl Conns {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            held: Mutex::new(HashMap::new()),
            auth_timeout_ms: AtomicU64::new(30_000),
            incomplete_timeout_ms: AtomicU64::new(10_000),
            opened: AtomicU64::new(0),
            open: AtomicU64::new(0),
            outcomes: Default::default(),
        })
    }

    pub(crate) fn set_timeouts(&self, t: pbxguard_app::settings::StreamTimeouts) {
        self.auth_timeout_ms.store(t.auth_s.saturating_mul(1000), Ordering::Relaxed);
        self.incomplete_timeout_ms.store(t.incomplete_s.saturating_mul(1000), Ordering::Relaxed);
    }

    pub(crate) fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn incomplete_timeout(&self) -> Duration {
        Duration::from_millis(self.incomplete_timeout_ms.load(Ordering::Relaxed))
    }

    /// Counts a new unauthenticated connection from `ip` to `service`; returns its guard and how many
    /// unauthenticated connections the source now holds there, this one included.
    pub(crate) fn open(self: &Arc<Self>, ip: IpAddr, service: Service) -> (Conn, u32) {
        let key = (canonical(ip), service);
        let n = {
            let mut m = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let h = m.entry(key).or_default();
            h.unauthenticated += 1;
            h.unauthenticated
        };
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        (Conn { conns: self.clone(), key, authenticated: false }, n)
    }

    pub(crate) fn count(&self, o: Outcome) {
        if let Some(i) = OUTCOMES.iter().position(|&x| x == o) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            opened: self.opened.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            sources: self.held.lock().unwrap_or_else(|p| p.into_inner()).len(),
            outcomes: OUTCOMES.iter().zip(&self.outcomes).map(|(&o, n)| (o, n.load(Ordering::Relaxed))).collect(),
        }
    }

    fn update(&self, key: (IpAddr, Service), f: impl FnOnce(&mut Held)) {
        let mut m = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = m.get_mut(&key) {
            f(h);
            if h.unauthenticated == 0 && h.authenticated == 0 {
                m.remove(&key);
            }
        }
    }
}

/// One counted connection: moves to "authenticated" once, and is uncounted when dropped, however the
/// connection ends.
pub(crate) struct Conn {
    conns: Arc<Conns>,
    key: (IpAddr, Service),
    authenticated: bool,
}

impl Conn {
    pub(crate) fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    pub(crate) fn authenticate(&mut self) {
        if !self.authenticated {
            self.authenticated = true;
            self.conns.update(self.key, |h| {
                h.unauthenticated = h.unauthenticated.saturating_sub(1);
                h.authenticated += 1;
            });
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let authenticated = self.authenticated;
        self.conns.update(self.key, |h| {
            if authenticated {
                h.authenticated = h.authenticated.saturating_sub(1);
            } else {
                h.unauthenticated = h.unauthenticated.saturating_sub(1);
            }
        });
        self.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_source_and_service_and_forgets_a_source_with_nothing_open() {
        let c = Conns::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let (mut first, n1) = c.open(a, Service::Sip);
        let (second, n2) = c.open(mapped, Service::Sip);
        let (_iax, n_iax) = c.open(a, Service::Iax2);
        assert_eq!((n1, n2, n_iax), (1, 2, 1), "a mapped address is the same source; services count apart");
        first.authenticate();
        first.authenticate();
        let (third, n3) = c.open(a, Service::Sip);
        assert_eq!(n3, 2, "an authenticated connection no longer counts");
        drop((first, second, third));
        let s = c.stats();
        assert_eq!((s.opened, s.open, s.sources), (4, 1, 1));
    }
}
