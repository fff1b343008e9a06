//! Schema migrations, applied in order and recorded in `PRAGMA user_version`. Never edit a shipped
//! migration: add a new one.

use crate::{Result, StoreError};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: settings, extensions, registrations.
    "CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE extensions (
        number          TEXT PRIMARY KEY,
        realm           TEXT NOT NULL,
        ha1_md5         TEXT NOT NULL,
        ha1_sha256      TEXT NOT NULL,
        ha1_sha512_256  TEXT NOT NULL,
        algorithms      TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE TABLE bindings (
        extension   TEXT NOT NULL REFERENCES extensions(number) ON DELETE CASCADE,
        uri         TEXT NOT NULL,
        contact     TEXT NOT NULL,
        expires_at  INTEGER NOT NULL,
        call_id     TEXT NOT NULL,
        cseq        INTEGER NOT NULL,
        q           REAL,
        source      TEXT NOT NULL,
        transport   TEXT NOT NULL,
        user_agent  TEXT,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (extension, uri)
    );
    CREATE INDEX bindings_expiry ON bindings(expires_at);",
    // 2: a revision counter bumped by every change an operator makes (not by registrations), so the
    // daemon reloads extensions and settings only when they changed.
    "CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
    INSERT INTO revision(id, n) VALUES (1, 0);
    CREATE TRIGGER extensions_ins AFTER INSERT ON extensions BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER extensions_upd AFTER UPDATE ON extensions BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER extensions_del AFTER DELETE ON extensions BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER settings_ins AFTER INSERT ON settings BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER settings_upd AFTER UPDATE ON settings BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER settings_del AFTER DELETE ON settings BEGIN UPDATE revision SET n = n + 1; END;",
    // 3: protection: bans (the daemon's ledger, written back), operator ban intents for a running daemon,
    // trusted networks, ACL groups, and the security event log.
    "CREATE TABLE bans (
        target        TEXT PRIMARY KEY,
        reason        TEXT NOT NULL,
        evidence      TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        created_ms    INTEGER NOT NULL,
        expires_ms    INTEGER,
        offence       INTEGER NOT NULL,
        note          TEXT
    );
    CREATE TABLE ban_ops (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        op          TEXT NOT NULL CHECK (op IN ('ban', 'unban')),
        target      TEXT NOT NULL,
        duration_ms INTEGER,
        note        TEXT,
        created_ms  INTEGER NOT NULL
    );
    CREATE TABLE trusted (
        cidr       TEXT PRIMARY KEY,
        note       TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE acl_groups (
        name       TEXT PRIMARY KEY,
        rules      TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    ALTER TABLE extensions ADD COLUMN acl TEXT REFERENCES acl_groups(name);
    CREATE TABLE events (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms  INTEGER NOT NULL,
        kind   TEXT NOT NULL,
        source TEXT,
        user   TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_at ON events(at_ms);
    CREATE TRIGGER ban_ops_ins AFTER INSERT ON ban_ops BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER trusted_ins AFTER INSERT ON trusted BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER trusted_del AFTER DELETE ON trusted BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER acl_ins AFTER INSERT ON acl_groups BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER acl_upd AFTER UPDATE ON acl_groups BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER acl_del AFTER DELETE ON acl_groups BEGIN UPDATE revision SET n = n + 1; END;",
    // 4: VoIP blacklists (voipbl format), replaced whole on each import or refresh.
    "CREATE TABLE blacklists (
        name          TEXT PRIMARY KEY,
        source        TEXT NOT NULL,
        entries       INTEGER NOT NULL,
        bad_lines     INTEGER NOT NULL,
        refreshed_at  INTEGER NOT NULL,
        last_error    TEXT
    );
    CREATE TABLE blacklist_entries (
        list  TEXT NOT NULL REFERENCES blacklists(name) ON DELETE CASCADE,
        cidr  TEXT NOT NULL
    );
    CREATE INDEX blacklist_entries_list ON blacklist_entries(list);
    CREATE TRIGGER blacklists_ins AFTER INSERT ON blacklists BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER blacklists_upd AFTER UPDATE OF refreshed_at, entries ON blacklists BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER blacklists_del AFTER DELETE ON blacklists BEGIN UPDATE revision SET n = n + 1; END;",
    // 5: password policy compliance, judged when a secret is set and recorded (codes, comma-separated).
    "ALTER TABLE extensions ADD COLUMN policy_violations TEXT;",
    // 6: voicemail mailboxes (PIN hashed) and admin accounts (argon2id); the first admin is admin/admin,
    // flagged must-change, inserted by the application (it owns the hashing).
    "CREATE TABLE mailboxes (
        extension          TEXT PRIMARY KEY REFERENCES extensions(number) ON DELETE CASCADE,
        pin_hash           TEXT NOT NULL,
        must_initialise    INTEGER NOT NULL,
        force_name         INTEGER NOT NULL,
        force_greeting     INTEGER NOT NULL,
        name_recorded      INTEGER NOT NULL DEFAULT 0,
        greeting_recorded  INTEGER NOT NULL DEFAULT 0,
        updated_at         INTEGER NOT NULL
    );
    CREATE TABLE admins (
        name        TEXT PRIMARY KEY,
        hash        TEXT NOT NULL,
        must_change INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );",
    // 7: calls: Classes of Service, trunks, outbound routes (ordered), inbound DIDs, the calls log, and
    // per-extension CoS and suspension (toll-fraud limits).
    "ALTER TABLE extensions ADD COLUMN cos TEXT;
    ALTER TABLE extensions ADD COLUMN suspended TEXT;
    CREATE TABLE cos (name TEXT PRIMARY KEY, allow TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE trunks (
        name       TEXT PRIMARY KEY,
        host       TEXT NOT NULL,
        port       INTEGER NOT NULL,
        transport  TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE routes (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        pattern  TEXT NOT NULL,
        trunk    TEXT NOT NULL REFERENCES trunks(name),
        strip    INTEGER NOT NULL,
        prepend  TEXT NOT NULL
    );
    CREATE TABLE dids (number TEXT PRIMARY KEY, extension TEXT NOT NULL REFERENCES extensions(number) ON DELETE CASCADE);
    CREATE TABLE calls (
        call_id     TEXT PRIMARY KEY,
        caller      TEXT NOT NULL,
        callee      TEXT NOT NULL,
        category    TEXT NOT NULL,
        trunk       TEXT,
        source      TEXT NOT NULL,
        state       TEXT NOT NULL,
        status      INTEGER,
        started_at  INTEGER NOT NULL,
        answered_at INTEGER,
        ended_at    INTEGER
    );
    CREATE INDEX calls_started ON calls(started_at);
    CREATE TRIGGER cos_ins AFTER INSERT ON cos BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER cos_upd AFTER UPDATE ON cos BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER cos_del AFTER DELETE ON cos BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER trunks_ins AFTER INSERT ON trunks BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER trunks_del AFTER DELETE ON trunks BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER routes_ins AFTER INSERT ON routes BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER routes_del AFTER DELETE ON routes BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER dids_ins AFTER INSERT ON dids BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER dids_del AFTER DELETE ON dids BEGIN UPDATE revision SET n = n + 1; END;",
    // 8: digest credentials towards trunks (HA1 only, bound to the realm given) and outbound registration.
    "ALTER TABLE trunks ADD COLUMN username TEXT;
    ALTER TABLE trunks ADD COLUMN realm TEXT;
    ALTER TABLE trunks ADD COLUMN ha1_md5 TEXT;
    ALTER TABLE trunks ADD COLUMN ha1_sha256 TEXT;
    ALTER TABLE trunks ADD COLUMN register_expires INTEGER;",
    // 9: per-extension toll-fraud limits (NULL: the global setting).
    "ALTER TABLE extensions ADD COLUMN max_calls INTEGER;
    ALTER TABLE extensions ADD COLUMN calls_per_hour INTEGER;",
    // 10: the certificates a TLS trunk is verified against instead of the public roots (PEM).
    "ALTER TABLE trunks ADD COLUMN tls_ca TEXT;",
    // 11: trunks that accept transfers (REFER, INVITE with Replaces) from extensions; off for every
    // trunk that exists, so an upgrade opens nothing.
    "ALTER TABLE trunks ADD COLUMN allow_refer INTEGER NOT NULL DEFAULT 0;",
    // 12: a Class of Service may restrict international calls to some E.164 country codes
    // (comma-separated; NULL: any country).
    "ALTER TABLE cos ADD COLUMN countries TEXT;",
    // 13: the change feed: one row per committed change to what a running daemon applies, with its topic
    // (registrations, calls and events are not changes). Readers follow it by id; the daemon prunes it.
    "CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL);
    CREATE TRIGGER changes_extensions_insert AFTER INSERT ON extensions BEGIN INSERT INTO changes(topic) VALUES ('extensions'); END;
    CREATE TRIGGER changes_extensions_update AFTER UPDATE ON extensions BEGIN INSERT INTO changes(topic) VALUES ('extensions'); END;
    CREATE TRIGGER changes_extensions_delete AFTER DELETE ON extensions BEGIN INSERT INTO changes(topic) VALUES ('extensions'); END;
    CREATE TRIGGER changes_settings_insert AFTER INSERT ON settings BEGIN INSERT INTO changes(topic) VALUES ('settings'); END;
    CREATE TRIGGER changes_settings_update AFTER UPDATE ON settings BEGIN INSERT INTO changes(topic) VALUES ('settings'); END;
    CREATE TRIGGER changes_settings_delete AFTER DELETE ON settings BEGIN INSERT INTO changes(topic) VALUES ('settings'); END;
    CREATE TRIGGER changes_trunks_insert AFTER INSERT ON trunks BEGIN INSERT INTO changes(topic) VALUES ('trunks'); END;
    CREATE TRIGGER changes_trunks_update AFTER UPDATE ON trunks BEGIN INSERT INTO changes(topic) VALUES ('trunks'); END;
    CREATE TRIGGER changes_trunks_delete AFTER DELETE ON trunks BEGIN INSERT INTO changes(topic) VALUES ('trunks'); END;
    CREATE TRIGGER changes_routes_insert AFTER INSERT ON routes BEGIN INSERT INTO changes(topic) VALUES ('routes'); END;
    CREATE TRIGGER changes_routes_update AFTER UPDATE ON routes BEGIN INSERT INTO changes(topic) VALUES ('routes'); END;
    CREATE TRIGGER changes_routes_delete AFTER DELETE ON routes BEGIN INSERT INTO changes(topic) VALUES ('routes'); END;
    CREATE TRIGGER changes_dids_insert AFTER INSERT ON dids BEGIN INSERT INTO changes(topic) VALUES ('dids'); END;
    CREATE TRIGGER changes_dids_update AFTER UPDATE ON dids BEGIN INSERT INTO changes(topic) VALUES ('dids'); END;
    CREATE TRIGGER changes_dids_delete AFTER DELETE ON dids BEGIN INSERT INTO changes(topic) VALUES ('dids'); END;
    CREATE TRIGGER changes_cos_insert AFTER INSERT ON cos BEGIN INSERT INTO changes(topic) VALUES ('cos'); END;
    CREATE TRIGGER changes_cos_update AFTER UPDATE ON cos BEGIN INSERT INTO changes(topic) VALUES ('cos'); END;
    CREATE TRIGGER changes_cos_delete AFTER DELETE ON cos BEGIN INSERT INTO changes(topic) VALUES ('cos'); END;
    CREATE TRIGGER changes_acl_groups_insert AFTER INSERT ON acl_groups BEGIN INSERT INTO changes(topic) VALUES ('acls'); END;
    CREATE TRIGGER changes_acl_groups_update AFTER UPDATE ON acl_groups BEGIN INSERT INTO changes(topic) VALUES ('acls'); END;
    CREATE TRIGGER changes_acl_groups_delete AFTER DELETE ON acl_groups BEGIN INSERT INTO changes(topic) VALUES ('acls'); END;
    CREATE TRIGGER changes_trusted_insert AFTER INSERT ON trusted BEGIN INSERT INTO changes(topic) VALUES ('trusted'); END;
    CREATE TRIGGER changes_trusted_update AFTER UPDATE ON trusted BEGIN INSERT INTO changes(topic) VALUES ('trusted'); END;
    CREATE TRIGGER changes_trusted_delete AFTER DELETE ON trusted BEGIN INSERT INTO changes(topic) VALUES ('trusted'); END;
    CREATE TRIGGER changes_blacklists_insert AFTER INSERT ON blacklists BEGIN INSERT INTO changes(topic) VALUES ('blacklists'); END;
    CREATE TRIGGER changes_blacklists_update AFTER UPDATE ON blacklists BEGIN INSERT INTO changes(topic) VALUES ('blacklists'); END;
    CREATE TRIGGER changes_blacklists_delete AFTER DELETE ON blacklists BEGIN INSERT INTO changes(topic) VALUES ('blacklists'); END;
    CREATE TRIGGER changes_ban_ops_insert AFTER INSERT ON ban_ops BEGIN INSERT INTO changes(topic) VALUES ('bans'); END;",
    // 14: the host firewall: the services it opens (ports NULL: taken from pbxguard's listeners or
    // sshd at render time; sources: space-separated CIDRs and ACL group names, empty for anyone), and
    // the apply requests a running daemon carries out and rolls back unless confirmed (topic firewall).
    "CREATE TABLE firewall_services (
        name       TEXT PRIMARY KEY,
        proto      TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
        ports      TEXT,
        sources    TEXT NOT NULL DEFAULT '',
        position   INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE firewall_applies (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        ruleset      TEXT NOT NULL,
        rollback_ms  INTEGER NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('requested', 'applied', 'confirmed', 'rolled_back', 'failed', 'cancelled')),
        detail       TEXT,
        previous     TEXT,
        requested_ms INTEGER NOT NULL,
        deadline_ms  INTEGER,
        updated_ms   INTEGER NOT NULL
    );
    CREATE TRIGGER changes_firewall_applies_insert AFTER INSERT ON firewall_applies BEGIN INSERT INTO changes(topic) VALUES ('firewall'); END;
    CREATE TRIGGER changes_firewall_applies_update AFTER UPDATE OF state ON firewall_applies BEGIN INSERT INTO changes(topic) VALUES ('firewall'); END;",
    // 15: the longest trunk call: an extension's own limit in seconds (NULL: calls.max_trunk_duration;
    // 0: none), and why a call ended when the proxy ended it. The change feed's triggers on extensions
    // fire on any UPDATE, this column's included.
    "ALTER TABLE extensions ADD COLUMN max_call_secs INTEGER;
    ALTER TABLE calls ADD COLUMN end_reason TEXT;",
    // 16: API tokens for the REST API and /metrics: only the SHA-256 of each token is kept (tokens are
    // 32 random bytes, so a fast hash is enough), with a short prefix to tell them apart. Not in the
    // change feed: the daemon looks a token up when it is used.
    "CREATE TABLE api_tokens (
        name       TEXT PRIMARY KEY,
        hash       TEXT NOT NULL UNIQUE,
        prefix     TEXT NOT NULL,
        scope      TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
        created_at INTEGER NOT NULL,
        last_used  INTEGER
    );",
    // 17: indexes for the admin GUI's pages: the event log filtered by kind, source or user in id order
    // (an index also orders by rowid, so keyset paging within a filter needs no sort), the dashboard's
    // aggregates over a time window read from one covering index (3-6x faster than through events_at
    // on 100,000 rows), calls in progress without scanning the log, and bans newest first.
    "CREATE INDEX events_kind ON events(kind);
    CREATE INDEX events_window ON events(at_ms, kind, source, user);
    CREATE INDEX events_source ON events(source);
    CREATE INDEX events_user ON events(user);
    CREATE INDEX calls_live ON calls(started_at) WHERE state != 'ended';
    CREATE INDEX bans_created ON bans(created_ms);",
];

pub(crate) fn known() -> i64 {
    MIGRATIONS.len() as i64
}

pub(crate) fn run(conn: &mut Connection) -> Result<()> {
    let known = known();
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_idempotent() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::run(&mut conn).unwrap();
        super::run(&mut conn).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, super::MIGRATIONS.len() as i64);
    }
}
