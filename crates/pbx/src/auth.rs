//! Digest authentication of requests (RFC 3261 §22) with stateless nonces, nonce-count replay
//! protection and anti-enumeration: an unknown user walks exactly the same path as a known user with a
//! wrong password, hashing a per-boot fake HA1, so answers and timing do not tell them apart.

use crate::config::RegistrarConfig;
use crate::directory::{Directory, ExtensionAuth};
use crate::nonce_counts::{NcCheck, NonceCounts};
use pbxguard_shield::canonical;
use pbxguard_sip::{Algorithm, Credentials, HeaderName, Message, NonceKey, NonceStatus};
use std::net::SocketAddr;

/// Set in nonces issued after a failed attempt: failing again with such a nonce ends in 403.
const FLAG_RETRY: u8 = 1;

pub(crate) enum AuthOutcome {
    /// Authenticated as this extension.
    Ok(String),
    /// Answer 401/407 with fresh challenges.
    Challenge { stale: bool, retry: bool, algorithms: Vec<Algorithm> },
    /// The client already retried once: answer 403.
    Forbidden,
}

pub(crate) struct AuthVerdict {
    pub(crate) outcome: AuthOutcome,
    /// For the security log: (user, known, replay).
    pub(crate) failure: Option<(String, bool, bool)>,
}

/// One request to authenticate.
pub(crate) struct Attempt<'m, 'a> {
    pub(crate) msg: &'m Message<'a>,
    /// Authorization (registrar, 401) or Proxy-Authorization (proxy, 407).
    pub(crate) header: HeaderName<'static>,
    /// The user the request claims to be (To for REGISTER, From otherwise), used only to choose which
    /// algorithms to offer before the client names itself.
    pub(crate) hint: Option<&'m str>,
    pub(crate) source: SocketAddr,
    pub(crate) now: u64,
    /// Users this source may not try now (a throttled extension): their answers are never checked.
    pub(crate) blocked: &'m dyn Fn(&str) -> bool,
}

pub(crate) struct Authenticator {
    key: NonceKey,
    fake_secret: String,
    unique: u64,
    counts: NonceCounts,
}

impl Authenticator {
    pub(crate) fn new(key: [u8; 32], seed: u64) -> Self {
        let fake_secret = Algorithm::Sha256.hash(&[&key, b"fake-ha1"]);
        Self { key: NonceKey::new(key), fake_secret, unique: seed, counts: NonceCounts::new(200_000) }
    }

    pub(crate) fn tracked_nonces(&self) -> usize {
        self.counts.len()
    }

    /// A fresh nonce for `source`: one per challenge response, shared by its headers (one per algorithm).
    pub(crate) fn nonce(&mut self, now: u64, retry: bool, source: SocketAddr) -> String {
        self.unique = self.unique.wrapping_add(1);
        self.key.issue(now, if retry { FLAG_RETRY } else { 0 }, self.unique, canonical(source.ip()))
    }

    /// Authenticates a request from the credentials in its Authorization or Proxy-Authorization header.
    pub(crate) fn authenticate(
        &mut self,
        cfg: &RegistrarConfig,
        dir: &Directory,
        attempt: Attempt<'_, '_>,
    ) -> AuthVerdict {
        let Attempt { msg, header, hint, source, now, blocked } = attempt;
        fn offered<'d>(entry: Option<&'d ExtensionAuth>, global: &'d [Algorithm]) -> &'d [Algorithm] {
            entry.and_then(|e| e.algorithms.as_deref()).unwrap_or(global)
        }
        // Credentials for another realm or scheme are ignored, as if absent (RFC 3261 §22.4).
        let creds = msg.header_all(header).filter_map(Credentials::parse).find(|c| c.realm == cfg.realm.as_str());
        let Some(creds) = creds else {
            let algorithms = offered(hint.and_then(|u| dir.get(u)), &cfg.algorithms).to_vec();
            return AuthVerdict {
                outcome: AuthOutcome::Challenge { stale: false, retry: false, algorithms },
                failure: None,
            };
        };
        let user = creds.username.to_string();
        // One directory lookup for both the offer and the HA1.
        let entry = dir.get(&user);
        let algorithms = offered(entry, &cfg.algorithms);
        // The offer is copied only when a challenge is the answer: a success allocates nothing for it.
        let challenge = |stale, retry, algorithms: &[Algorithm]| AuthVerdict {
            outcome: AuthOutcome::Challenge { stale, retry, algorithms: algorithms.to_vec() },
            failure: None,
        };
        let Some(alg) = creds.algorithm().filter(|a| algorithms.contains(a)) else {
            return challenge(false, false, algorithms);
        };
        let ip = canonical(source.ip());
        let status = self.key.check(creds.nonce, now, cfg.nonce_ttl, ip);
        let known = entry.is_some();
        let fake;
        let ha1 = match entry {
            Some(e) => e.ha1(alg),
            None => {
                fake = alg.hash(&[self.fake_secret.as_bytes(), user.as_bytes()]);
                fake.as_str()
            }
        };
        let method = msg.method().map_or("", |m| m.as_str());
        // Always hash, so a blocked or unknown user costs the same as a wrong password.
        let verified = creds.verify(alg, ha1, method) && known && !blocked(&user);
        let (issued, flags) = match status {
            NonceStatus::Invalid => return challenge(false, false, algorithms),
            NonceStatus::Stale { flags } if verified => {
                return challenge(true, flags & FLAG_RETRY != 0, algorithms);
            }
            NonceStatus::Stale { flags } => (None, flags),
            NonceStatus::Valid { issued, flags, id } => (Some((issued, id)), flags),
        };
        if verified && let Some((issued, id)) = issued {
            // qop=auth is always offered; a client answering without it gets no replay protection from
            // nc, so it must not reuse the nonce either: nc 0 is tracked like any other.
            let nc = creds.nc.unwrap_or(0);
            return match self.counts.check(id, issued, nc, now, cfg.nonce_ttl) {
                NcCheck::Fresh => AuthVerdict { outcome: AuthOutcome::Ok(user), failure: None },
                NcCheck::Replay => AuthVerdict {
                    outcome: AuthOutcome::Challenge { stale: false, retry: false, algorithms: algorithms.to_vec() },
                    failure: Some((user, known, true)),
                },
            };
        }
        let outcome = if flags & FLAG_RETRY != 0 {
            AuthOutcome::Forbidden
        } else {
            AuthOutcome::Challenge { stale: false, retry: true, algorithms: algorithms.to_vec() }
        };
        AuthVerdict { outcome, failure: Some((user, known, false)) }
    }
}
