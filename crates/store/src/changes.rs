//! The change feed: what another process (or node) changed, by topic, in commit order. Triggers write
//! it (migration 13), so no writer can forget to; a running daemon follows it by id and reloads only what
//! a change touches. PostgreSQL will carry the same topics over LISTEN/NOTIFY.

use crate::{Result, Store};
use std::path::Path;
use std::time::{Duration, Instant};

/// What a change touched, as a running daemon must apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Extensions,
    Settings,
    Trunks,
    Routes,
    Dids,
    Cos,
    Acls,
    Trusted,
    Blacklists,
    /// An operator's ban or unban (the `ban_ops` queue).
    Bans,
    /// A firewall apply requested, confirmed or cancelled (the `firewall_applies` queue).
    Firewall,
}

impl Topic {
    pub const ALL: [Self; 11] = [
        Self::Extensions,
        Self::Settings,
        Self::Trunks,
        Self::Routes,
        Self::Dids,
        Self::Cos,
        Self::Acls,
        Self::Trusted,
        Self::Blacklists,
        Self::Bans,
        Self::Firewall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extensions => "extensions",
            Self::Settings => "settings",
            Self::Trunks => "trunks",
            Self::Routes => "routes",
            Self::Dids => "dids",
            Self::Cos => "cos",
            Self::Acls => "acls",
            Self::Trusted => "trusted",
            Self::Blacklists => "blacklists",
            Self::Bans => "bans",
            Self::Firewall => "firewall",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub topic: Topic,
}

/// The log of what operators changed, read by the change feed.
pub trait ChangesRepo {
    /// Changes after `id`, oldest first, at most `limit` (an unknown topic, from a newer pbxguard, is
    /// skipped).
    fn changes_after(&self, id: i64, limit: i64) -> Result<Vec<Change>>;

    /// The newest change's id (0: none yet): where a reader starts.
    fn last_change(&self) -> Result<i64>;

    /// Keeps the newest `keep` changes (readers that fell further behind reload everything).
    fn prune_changes(&self, keep: i64) -> Result<usize>;
}

impl ChangesRepo for Store {
    fn changes_after(&self, id: i64, limit: i64) -> Result<Vec<Change>> {
        let mut st = self.conn.prepare_cached("SELECT id, topic FROM changes WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let rows = st.query_map((id, limit), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, topic) = row?;
            if let Some(topic) = Topic::parse(&topic) {
                out.push(Change { id, topic });
            }
        }
        Ok(out)
    }

    fn last_change(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM changes", [], |r| r.get(0))?)
    }

    fn prune_changes(&self, keep: i64) -> Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM changes WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM changes) - ?1", [keep])?)
    }
}

/// How a reader learns what other writers committed, whatever the backend: the one place a daemon
/// asks. SQLite ([`SqliteFeed`]) looks at `PRAGMA data_version` and then the `changes` table; a
/// PostgreSQL backend will wait on LISTEN/NOTIFY for the same topics.
pub trait ChangeFeed: Send {
    /// The newest change now (0: none yet): where a reader starts.
    fn last_change(&mut self) -> Result<i64>;

    /// Changes committed after `after`, oldest first, at most `limit`; waits up to `timeout` for the
    /// first one and returns empty if none came.
    fn next_changes(&mut self, after: i64, limit: i64, timeout: Duration) -> Result<Vec<Change>>;
}

/// The change feed of a SQLite store, on a connection of its own.
pub struct SqliteFeed {
    store: Store,
    version: i64,
    /// The last answer was cut at its limit: the rest is there without a new commit.
    more: bool,
    wake: Box<dyn Wake>,
}

/// How the feed sleeps between two looks at `PRAGMA data_version`. Every commit writes the database's
/// files ([`SqliteFeed::files`]), so a caller that can wait for a file to change (inotify) makes an
/// idle feed cost nothing; without one the feed looks every [`SQLITE_POLL`].
pub trait Wake: Send {
    /// Returns when one of the files changed (true), or after `timeout` at the latest (false).
    fn wait(&mut self, timeout: Duration) -> bool;
}

/// Between two looks at `PRAGMA data_version` with no [`Wake`]: a change typed at the CLI applies at
/// once to the person typing, and an idle look is one cheap call.
const SQLITE_POLL: Duration = Duration::from_millis(250);

struct Poll;

impl Wake for Poll {
    fn wait(&mut self, timeout: Duration) -> bool {
        std::thread::sleep(timeout.min(SQLITE_POLL));
        false
    }
}

/// A commit's last write to the WAL can wake the feed a moment before the commit is visible (SQLite
/// updates the WAL index in shared memory afterwards, and no file event says so): after a wake that
/// showed nothing new, the feed looks again this many times, this often.
const RECHECKS: u32 = 4;
const RECHECK: Duration = Duration::from_millis(25);

impl SqliteFeed {
    pub fn open(path: &Path) -> Result<Self> {
        let store = Store::open(path)?;
        let version = store.data_version()?;
        Ok(Self { store, version, more: false, wake: Box::new(Poll) })
    }

    /// The files a commit writes: the database and its write-ahead log.
    pub fn files(path: &Path) -> [std::path::PathBuf; 2] {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        [path.to_owned(), wal.into()]
    }

    /// Sleeps with `wake` between looks instead of polling.
    pub fn waking_with(mut self, wake: impl Wake + 'static) -> Self {
        self.wake = Box::new(wake);
        self
    }
}

impl ChangeFeed for SqliteFeed {
    fn last_change(&mut self) -> Result<i64> {
        self.store.last_change()
    }

    fn next_changes(&mut self, after: i64, limit: i64, timeout: Duration) -> Result<Vec<Change>> {
        let end = Instant::now() + timeout;
        let (mut woken, mut rechecks) = (false, 0);
        loop {
            // Only commits by other connections move data_version: this connection never writes.
            let v = self.store.data_version()?;
            let moved = v != self.version;
            if moved || self.more {
                self.version = v;
                let changes = self.store.changes_after(after, limit)?;
                self.more = changes.len() as i64 == limit;
                if !changes.is_empty() {
                    return Ok(changes);
                }
            }
            if woken && !moved {
                rechecks = RECHECKS;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            let wait = if rechecks > 0 {
                rechecks -= 1;
                left.min(RECHECK)
            } else {
                left
            };
            woken = self.wake.wait(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn every_change_an_operator_makes_is_in_the_feed_with_its_topic_and_registrations_are_not() {
        let dir = std::env::temp_dir().join(format!("pbxguard-changes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir.join("t.db")).unwrap();
        let start = store.last_change().unwrap();
        store.set_setting("sip.realm", "example").unwrap();
        let creds = crate::Credentials {
            realm: "example".into(),
            ha1_md5: String::new(),
            ha1_sha256: String::new(),
            ha1_sha512_256: String::new(),
        };
        store.add_extension(&crate::Extension::new("1001".into(), creds, 1)).unwrap();
        store.add_trusted("192.0.2.0/24", None, 1).unwrap();
        store.put_acl("office", "192.0.2.0/24", 1).unwrap();
        store.push_ban_op(true, "203.0.113.9", None, None, 1).unwrap();
        let binding = crate::Binding {
            extension: "1001".into(),
            uri: "sip:1001@192.0.2.1".into(),
            contact: "<sip:1001@192.0.2.1>".into(),
            expires_at: 9_999_999_999,
            call_id: "c".into(),
            cseq: 1,
            q: None,
            source: "192.0.2.1:5060".into(),
            transport: "udp".into(),
            user_agent: None,
            updated_at: 1,
        };
        store.replace_bindings_batch(&[("1001", std::slice::from_ref(&binding))]).unwrap();
        let topics: Vec<Topic> = store.changes_after(start, 100).unwrap().into_iter().map(|c| c.topic).collect();
        assert_eq!(topics, [Topic::Settings, Topic::Extensions, Topic::Trusted, Topic::Acls, Topic::Bans]);
        let last = store.last_change().unwrap();
        assert!(store.changes_after(last, 100).unwrap().is_empty());
        assert_eq!(store.prune_changes(1).unwrap(), 4);
        assert_eq!(store.changes_after(0, 100).unwrap().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_sqlite_feed_returns_what_another_connection_committed_and_waits_when_nothing_did() {
        let dir = std::env::temp_dir().join(format!("pbxguard-feed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let writer = Store::open(&path).unwrap();
        let mut feed = SqliteFeed::open(&path).unwrap();
        let start = feed.last_change().unwrap();
        let t = Instant::now();
        assert!(feed.next_changes(start, 100, Duration::from_millis(300)).unwrap().is_empty());
        assert!(t.elapsed() >= Duration::from_millis(300));
        writer.set_setting("sip.realm", "example").unwrap();
        writer.add_trusted("192.0.2.0/24", None, 1).unwrap();
        // Cut at its limit, the rest comes at once, without waiting for another commit.
        let first = feed.next_changes(start, 1, Duration::from_secs(5)).unwrap();
        let second = feed.next_changes(first[0].id, 1, Duration::ZERO).unwrap();
        let got = [first[0], second[0]];
        assert_eq!(got.iter().map(|c| c.topic).collect::<Vec<_>>(), [Topic::Settings, Topic::Trusted]);
        assert!(feed.next_changes(got[1].id, 100, Duration::ZERO).unwrap().is_empty(), "nothing new");
        writer.add_trusted("198.51.100.0/24", None, 1).unwrap();
        let more = feed.next_changes(got[1].id, 100, Duration::from_secs(5)).unwrap();
        assert_eq!(more.iter().map(|c| c.topic).collect::<Vec<_>>(), [Topic::Trusted]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn topics_round_trip() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
    }
}
