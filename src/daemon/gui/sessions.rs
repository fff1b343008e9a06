//! The table of admin sessions. They live in memory: a restart logs everyone out, which is the safe
//! way round. The cookie holds a random token; the table is keyed by its SHA-256, so a lookup's timing
//! says nothing about tokens.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub(crate) const COOKIE: &str = "__Host-pbxguard";
const IDLE: Duration = Duration::from_secs(30 * 60);
pub(super) const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 10_000;
/// Password hashes computed at once: a login flood waits here (then gets 503), it cannot take every
/// core from SIP.
const HASHING: usize = 2;

struct Session {
    admin: String,
    csrf: String,
    must_change: bool,
    created: Instant,
    seen: Instant,
}

pub(crate) struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
    pub(super) hashing: Semaphore,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_hex() -> String {
    pbxguard_app::random::random_bytes::<32>().iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    pub(crate) fn new() -> Self {
        Self { table: Mutex::new(HashMap::new()), hashing: Semaphore::new(HASHING) }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session; returns the cookie's token.
    pub(super) fn create(&self, admin: &str, must_change: bool) -> String {
        let token = random_hex();
        let now = Instant::now();
        let mut t = self.table();
        t.retain(|_, s| now.duration_since(s.seen) < IDLE && now.duration_since(s.created) < ABSOLUTE);
        if t.len() >= MAX_SESSIONS {
            // Full of live sessions: the least recently used one goes.
            if let Some(k) = t.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| *k) {
                t.remove(&k);
            }
        }
        t.insert(
            key(&token),
            Session { admin: admin.to_owned(), csrf: random_hex(), must_change, created: now, seen: now },
        );
        token
    }

    /// The live session for `token`, touched.
    pub(super) fn get(&self, token: &str) -> Option<(String, String, bool)> {
        let now = Instant::now();
        let mut t = self.table();
        let k = key(token);
        let s = t.get_mut(&k)?;
        if now.duration_since(s.seen) >= IDLE || now.duration_since(s.created) >= ABSOLUTE {
            t.remove(&k);
            return None;
        }
        s.seen = now;
        Some((s.admin.clone(), s.csrf.clone(), s.must_change))
    }

    pub(super) fn remove(&self, token: &str) {
        self.table().remove(&key(token));
    }

    /// Every session of `admin` ends: its account was deleted, or another admin set its password.
    pub(super) fn end_all(&self, admin: &str) {
        self.table().retain(|_, s| s.admin != admin);
    }

    /// After a password change: this session may go on, every other one of that admin ends.
    pub(super) fn changed(&self, token: &str, admin: &str) {
        let k = key(token);
        let mut t = self.table();
        t.retain(|key, s| *key == k || s.admin != admin);
        if let Some(s) = t.get_mut(&k) {
            s.must_change = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_expires_when_idle_and_ends_the_others_of_its_admin_after_a_password_change() {
        let s = Sessions::new();
        let a = s.create("admin", true);
        let b = s.create("admin", false);
        let c = s.create("other", false);
        assert_eq!(s.get(&a).map(|x| x.2), Some(true));
        s.changed(&a, "admin");
        assert_eq!(s.get(&a).map(|x| x.2), Some(false));
        assert!(s.get(&b).is_none(), "the admin's other session ended");
        assert!(s.get(&c).is_some());
        s.table().get_mut(&key(&c)).unwrap().seen -= IDLE;
        assert!(s.get(&c).is_none(), "idle too long");
        assert!(s.get("not a token").is_none());
    }
}
