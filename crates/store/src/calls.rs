//! Call routing data (Classes of Service, trunks, ordered routes, DIDs) and the calls log.

use crate::{Result, Store, StoreError};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CosRow {
    pub name: String,
    pub allow: String,
    /// International calls only to these E.164 country codes (comma-separated); `None`: any.
    pub countries: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrunkRow {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub transport: String,
    /// Digest credentials towards the trunk: user name, realm, HA1 (MD5, SHA-256).
    pub username: Option<String>,
    pub realm: Option<String>,
    #[serde(skip)]
    pub ha1: Option<(String, String)>,
    /// Register at the trunk for this many seconds.
    pub register_expires: Option<u32>,
    /// PEM certificates a TLS trunk's certificate must chain to, instead of the public roots.
    #[serde(skip)]
    pub tls_ca: Option<String>,
    /// Whether extensions may send it transfers (REFER, INVITE with Replaces), each checked like a new
    /// call from the extension.
    pub allow_refer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    pub id: i64,
    pub pattern: String,
    pub trunk: String,
    pub strip: u32,
    pub prepend: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DidRow {
    pub number: String,
    pub extension: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRow {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub category: String,
    pub trunk: Option<String>,
    pub source: String,
    /// `ringing`, `answered` or `ended`.
    pub state: String,
    /// Final status: 200 for a call ended by BYE, else the failure status.
    pub status: Option<u16>,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Why the proxy ended the call itself (such as the longest trunk call); `None` otherwise.
    pub end_reason: Option<String>,
}

fn exists(e: rusqlite::Error, what: String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::InUse(what)
        }
        other => other.into(),
    }
}

/// The dial plan (Classes of Service, trunks, routes, DIDs) and the calls log.
pub trait CallsRepo {
    fn add_cos(&self, name: &str, allow: &str, countries: Option<&str>, now: i64) -> Result<()>;

    fn cos_list(&self) -> Result<Vec<CosRow>>;

    /// How many extensions use each Class of Service, by name; one no extension uses is absent.
    fn cos_usage(&self) -> Result<Vec<(String, u64)>>;

    fn cos_exists(&self, name: &str) -> Result<bool>;

    /// Deletes a CoS no extension uses.
    fn delete_cos(&self, name: &str) -> Result<bool>;

    fn add_trunk(&self, t: &TrunkRow, now: i64) -> Result<()>;

    fn trunks(&self) -> Result<Vec<TrunkRow>>;

    /// Deletes a trunk no route uses.
    fn delete_trunk(&self, name: &str) -> Result<bool>;

    /// Appends a route (routes are tried in the order they were added).
    fn add_route(&self, pattern: &str, trunk: &str, strip: u32, prepend: &str) -> Result<i64>;

    fn routes(&self) -> Result<Vec<RouteRow>>;

    fn delete_route(&self, id: i64) -> Result<bool>;

    fn add_did(&self, number: &str, extension: &str) -> Result<()>;

    fn dids(&self) -> Result<Vec<DidRow>>;

    fn delete_did(&self, number: &str) -> Result<bool>;

    fn call_started(&self, c: &CallRow) -> Result<()>;

    fn call_answered(&self, call_id: &str, now: i64) -> Result<()>;

    fn call_ended(&self, call_id: &str, status: u16, now: i64) -> Result<()>;

    /// The proxy ended the call itself (BYE to both parties), for `reason`.
    fn call_cut(&self, call_id: &str, reason: &str, now: i64) -> Result<()>;

    /// Calls in progress first, then the most recent; at most `limit`.
    fn calls(&self, limit: u32) -> Result<Vec<CallRow>>;

    /// Keeps the calls log bounded: ended calls before `before` go. Calls still marked in progress when
    /// the daemon starts were cut by the restart.
    fn purge_calls(&self, before: i64) -> Result<usize>;

    fn close_stale_calls(&self, now: i64) -> Result<usize>;
}

impl CallsRepo for Store {
    fn add_cos(&self, name: &str, allow: &str, countries: Option<&str>, now: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO cos(name, allow, countries, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, allow, countries, now],
            )
            .map_err(|e| exists(e, format!("class of service {name} already exists (delete it first to change it)")))?;
        Ok(())
    }

    fn cos_list(&self) -> Result<Vec<CosRow>> {
        let mut st = self.conn.prepare("SELECT name, allow, countries FROM cos ORDER BY name")?;
        let rows = st.query_map([], |r| Ok(CosRow { name: r.get(0)?, allow: r.get(1)?, countries: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn cos_usage(&self) -> Result<Vec<(String, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT cos, COUNT(*) FROM extensions WHERE cos IS NOT NULL GROUP BY cos ORDER BY cos")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn cos_exists(&self, name: &str) -> Result<bool> {
        Ok(self.conn.query_row("SELECT 1 FROM cos WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some())
    }

    fn delete_cos(&self, name: &str) -> Result<bool> {
        let users: Vec<String> = {
            let mut st = self.conn.prepare("SELECT number FROM extensions WHERE cos = ?1 ORDER BY number LIMIT 5")?;
            st.query_map([name], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        if !users.is_empty() {
            return Err(StoreError::InUse(format!(
                "class of service {name} is assigned to extension(s) {}; assign another first (pbxguard ext cos NUMBER NAME)",
                users.join(", ")
            )));
        }
        Ok(self.conn.execute("DELETE FROM cos WHERE name = ?1", [name])? > 0)
    }

    fn add_trunk(&self, t: &TrunkRow, now: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO trunks(name, host, port, transport, created_at, username, realm, ha1_md5, ha1_sha256,
                   register_expires, tls_ca, allow_refer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    t.name,
                    t.host,
                    t.port,
                    t.transport,
                    now,
                    t.username,
                    t.realm,
                    t.ha1.as_ref().map(|h| &h.0),
                    t.ha1.as_ref().map(|h| &h.1),
                    t.register_expires,
                    t.tls_ca,
                    t.allow_refer
                ],
            )
            .map_err(|e| exists(e, format!("trunk {} already exists", t.name)))?;
        Ok(())
    }

    fn trunks(&self) -> Result<Vec<TrunkRow>> {
        let mut st = self.conn.prepare(
            "SELECT name, host, port, transport, username, realm, ha1_md5, ha1_sha256, register_expires, tls_ca,
               allow_refer FROM trunks ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            let md5: Option<String> = r.get(6)?;
            let sha: Option<String> = r.get(7)?;
            Ok(TrunkRow {
                name: r.get(0)?,
                host: r.get(1)?,
                port: r.get(2)?,
                transport: r.get(3)?,
                username: r.get(4)?,
                realm: r.get(5)?,
                ha1: md5.zip(sha),
                register_expires: r.get(8)?,
                tls_ca: r.get(9)?,
                allow_refer: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_trunk(&self, name: &str) -> Result<bool> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM routes WHERE trunk = ?1", [name], |r| r.get(0))?;
        if n > 0 {
            return Err(StoreError::InUse(format!(
                "trunk {name} is used by {n} route(s); delete them first (pbxguard route list, pbxguard route del ID)"
            )));
        }
        Ok(self.conn.execute("DELETE FROM trunks WHERE name = ?1", [name])? > 0)
    }

    fn add_route(&self, pattern: &str, trunk: &str, strip: u32, prepend: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO routes(pattern, trunk, strip, prepend) VALUES (?1, ?2, ?3, ?4)",
                params![pattern, trunk, strip, prepend],
            )
            .map_err(|e| exists(e, format!("trunk {trunk} does not exist (pbxguard trunk list)")))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn routes(&self) -> Result<Vec<RouteRow>> {
        let mut st = self.conn.prepare("SELECT id, pattern, trunk, strip, prepend FROM routes ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(RouteRow { id: r.get(0)?, pattern: r.get(1)?, trunk: r.get(2)?, strip: r.get(3)?, prepend: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_route(&self, id: i64) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM routes WHERE id = ?1", [id])? > 0)
    }

    fn add_did(&self, number: &str, extension: &str) -> Result<()> {
        self.conn
            .execute("INSERT INTO dids(number, extension) VALUES (?1, ?2)", params![number, extension])
            .map_err(|e| exists(e, format!("DID {number} already exists, or extension {extension} does not exist")))?;
        Ok(())
    }

    fn dids(&self) -> Result<Vec<DidRow>> {
        let mut st = self.conn.prepare("SELECT number, extension FROM dids ORDER BY number")?;
        let rows = st.query_map([], |r| Ok(DidRow { number: r.get(0)?, extension: r.get(1)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_did(&self, number: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM dids WHERE number = ?1", [number])? > 0)
    }

    fn call_started(&self, c: &CallRow) -> Result<()> {
        // Cached statements: a busy proxy writes three rows per call.
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO calls(call_id, caller, callee, category, trunk, source, state, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'ringing', ?7)",
            )?
            .execute(params![c.call_id, c.caller, c.callee, c.category, c.trunk, c.source, c.started_at])?;
        Ok(())
    }

    fn call_answered(&self, call_id: &str, now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE calls SET state = 'answered', answered_at = ?2 WHERE call_id = ?1 AND state = 'ringing'",
            )?
            .execute(params![call_id, now])?;
        Ok(())
    }

    fn call_ended(&self, call_id: &str, status: u16, now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE calls SET state = 'ended', status = ?2, ended_at = ?3 WHERE call_id = ?1 AND state != 'ended'",
            )?
            .execute(params![call_id, status, now])?;
        Ok(())
    }

    fn call_cut(&self, call_id: &str, reason: &str, now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE calls SET state = 'ended', status = 200, ended_at = ?3, end_reason = ?2
                 WHERE call_id = ?1 AND state != 'ended'",
            )?
            .execute(params![call_id, reason, now])?;
        Ok(())
    }

    fn calls(&self, limit: u32) -> Result<Vec<CallRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {CALL_COLUMNS} FROM calls ORDER BY (state = 'ended'), started_at DESC, rowid DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit], call)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn purge_calls(&self, before: i64) -> Result<usize> {
        Ok(self.conn.execute("DELETE FROM calls WHERE state = 'ended' AND started_at < ?1", [before])?)
    }

    fn close_stale_calls(&self, now: i64) -> Result<usize> {
        Ok(self
            .conn
            .execute("UPDATE calls SET state = 'ended', status = 503, ended_at = ?1 WHERE state != 'ended'", [now])?)
    }
}

pub(crate) const CALL_COLUMNS: &str = "call_id, caller, callee, category, trunk, source, state, status, started_at, answered_at, \
                            ended_at, end_reason";

pub(crate) fn call(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRow> {
    Ok(CallRow {
        call_id: r.get(0)?,
        caller: r.get(1)?,
        callee: r.get(2)?,
        category: r.get(3)?,
        trunk: r.get(4)?,
        source: r.get(5)?,
        state: r.get(6)?,
        status: r.get(7)?,
        started_at: r.get(8)?,
        answered_at: r.get(9)?,
        ended_at: r.get(10)?,
        end_reason: r.get(11)?,
    })
}
