//! The change feed: what another process (or node) changed, by topic, in commit order. Triggers write
//! it (migration 13), so no writer can forget to; a running daemon follows it by id and reloads only what
//! a change touches. PostgreSQL will carry the same topics over LISTEN/NOTIFY.

use crate::{Result, Store};

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

impl Store {
    /// Changes after `id`, oldest first, at most `limit` (an unknown topic, from a newer pbxguard, is
    /// skipped).
    pub fn changes_after(&self, id: i64, limit: i64) -> Result<Vec<Change>> {
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

    /// The newest change's id (0: none yet): where a reader starts.
    pub fn last_change(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM changes", [], |r| r.get(0))?)
    }

    /// Keeps the newest `keep` changes (readers that fell further behind reload everything).
    pub fn prune_changes(&self, keep: i64) -> Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM changes WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM changes) - ?1", [keep])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        store.replace_bindings_batch([("1001", std::slice::from_ref(&binding))]).unwrap();
        let topics: Vec<Topic> = store.changes_after(start, 100).unwrap().into_iter().map(|c| c.topic).collect();
        assert_eq!(topics, [Topic::Settings, Topic::Extensions, Topic::Trusted, Topic::Acls, Topic::Bans]);
        let last = store.last_change().unwrap();
        assert!(store.changes_after(last, 100).unwrap().is_empty());
        assert_eq!(store.prune_changes(1).unwrap(), 4);
        assert_eq!(store.changes_after(0, 100).unwrap().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn topics_round_trip() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
    }
}
