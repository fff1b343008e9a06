use crate::{Result, Store, StoreError};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// The stored form of an extension's secret: HA1 per digest algorithm, all for one realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub ha1_sha512_256: String,
}

/// An extension (a SIP account of the PBX).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    pub number: String,
    #[serde(skip)]
    pub credentials: Credentials,
    /// Digest algorithms offered to this extension, in order; `None` follows the global setting.
    pub algorithms: Option<String>,
    /// ACL group restricting where the extension may be used from.
    pub acl: Option<String>,
    /// Password-policy rules its secret broke when it was set (codes, comma-separated); `None`: compliant.
    pub policy_violations: Option<String>,
    /// Class of Service; `None`: the default one.
    pub cos: Option<String>,
    /// Why outbound calls are suspended (a toll-fraud rule), until an operator re-enables them.
    pub suspended: Option<String>,
    /// Own toll-fraud limits; `None`: the settings fraud.max_concurrent / fraud.calls_per_hour.
    pub max_calls: Option<u32>,
    pub calls_per_hour: Option<u32>,
    /// Own longest trunk call, seconds (0: no limit); `None`: the setting calls.max_trunk_duration.
    pub max_call_secs: Option<u32>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Extension {
    /// A new extension with its credentials and nothing else set: new columns get their default here
    /// once, not at every place that creates an extension.
    pub fn new(number: String, credentials: Credentials, now: i64) -> Self {
        Self {
            number,
            credentials,
            algorithms: None,
            acl: None,
            policy_violations: None,
            cos: None,
            suspended: None,
            max_calls: None,
            calls_per_hour: None,
            max_call_secs: None,
            created_at: now,
            updated_at: now,
        }
    }
}

const COLUMNS: &str = "number, realm, ha1_md5, ha1_sha256, ha1_sha512_256, algorithms, created_at, updated_at, acl, policy_violations, cos, \
     suspended, max_calls, calls_per_hour, max_call_secs";

fn row(r: &Row<'_>) -> rusqlite::Result<Extension> {
    Ok(Extension {
        number: r.get(0)?,
        credentials: Credentials {
            realm: r.get(1)?,
            ha1_md5: r.get(2)?,
            ha1_sha256: r.get(3)?,
            ha1_sha512_256: r.get(4)?,
        },
        algorithms: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        acl: r.get(8)?,
        policy_violations: r.get(9)?,
        cos: r.get(10)?,
        suspended: r.get(11)?,
        max_calls: r.get(12)?,
        calls_per_hour: r.get(13)?,
        max_call_secs: r.get(14)?,
    })
}

/// Extensions and their credentials (HA1 only), limits and state.
pub trait ExtensionsRepo {
    fn add_extension(&self, ext: &Extension) -> Result<()>;

    fn extension(&self, number: &str) -> Result<Option<Extension>>;

    fn extensions(&self) -> Result<Vec<Extension>>;

    fn extension_count(&self) -> Result<u64>;

    /// Replaces an extension's secret (as HA1s) and records its policy compliance.
    fn set_credentials(&self, number: &str, c: &Credentials, violations: Option<&str>, now: i64) -> Result<()>;

    /// Sets (or clears) an extension's Class of Service.
    fn set_extension_cos(&self, number: &str, cos: Option<&str>) -> Result<()>;

    /// Suspends outbound calls (with the reason) or re-enables them (`None`).
    fn set_suspended(&self, number: &str, reason: Option<&str>) -> Result<()>;

    /// Sets an extension's own toll-fraud limits (`None`: the global settings).
    fn set_call_limits(&self, number: &str, max_calls: Option<u32>, per_hour: Option<u32>) -> Result<()>;

    /// Sets an extension's own longest trunk call, seconds (0: no limit; `None`: the setting).
    fn set_max_call_secs(&self, number: &str, secs: Option<u32>) -> Result<()>;

    /// Deletes an extension and its registrations.
    fn delete_extension(&self, number: &str) -> Result<()>;

    /// One page of extensions in number order, each with its live registrations (counted through the
    /// bindings' primary key, so a page costs its own rows, not the table's).
    fn extensions_page(
        &self,
        f: &ExtensionFilter<'_>,
        now: i64,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<(Extension, u32)>>;

    /// How many extensions the filter matches.
    fn extensions_matching(&self, f: &ExtensionFilter<'_>) -> Result<u64>;
}

impl ExtensionsRepo for Store {
    fn add_extension(&self, ext: &Extension) -> Result<()> {
        let c = &ext.credentials;
        let res = self.conn.execute(
            &format!(
                "INSERT INTO extensions({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ),
            params![
                ext.number,
                c.realm,
                c.ha1_md5,
                c.ha1_sha256,
                c.ha1_sha512_256,
                ext.algorithms,
                ext.created_at,
                ext.updated_at,
                ext.acl,
                ext.policy_violations,
                ext.cos,
                ext.suspended,
                ext.max_calls,
                ext.calls_per_hour,
                ext.max_call_secs
            ],
        );
        match res {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::ExtensionExists(ext.number.clone()))
            }
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    fn extension(&self, number: &str) -> Result<Option<Extension>> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {COLUMNS} FROM extensions WHERE number = ?1"), [number], row)
            .optional()?)
    }

    fn extensions(&self) -> Result<Vec<Extension>> {
        let mut st = self.conn.prepare(&format!("SELECT {COLUMNS} FROM extensions ORDER BY number"))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn extension_count(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM extensions", [], |r| r.get(0))?)
    }

    fn set_credentials(&self, number: &str, c: &Credentials, violations: Option<&str>, now: i64) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE extensions SET realm = ?2, ha1_md5 = ?3, ha1_sha256 = ?4, ha1_sha512_256 = ?5, updated_at = ?6,
               policy_violations = ?7 WHERE number = ?1",
            params![number, c.realm, c.ha1_md5, c.ha1_sha256, c.ha1_sha512_256, now, violations],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchExtension(number.to_owned()));
        }
        Ok(())
    }

    fn set_extension_cos(&self, number: &str, cos: Option<&str>) -> Result<()> {
        self.update_extension(number, "cos", cos)
    }

    fn set_suspended(&self, number: &str, reason: Option<&str>) -> Result<()> {
        self.update_extension(number, "suspended", reason)
    }

    fn set_call_limits(&self, number: &str, max_calls: Option<u32>, per_hour: Option<u32>) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE extensions SET max_calls = ?2, calls_per_hour = ?3 WHERE number = ?1",
            params![number, max_calls, per_hour],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchExtension(number.to_owned()));
        }
        Ok(())
    }

    fn set_max_call_secs(&self, number: &str, secs: Option<u32>) -> Result<()> {
        let n =
            self.conn.execute("UPDATE extensions SET max_call_secs = ?2 WHERE number = ?1", params![number, secs])?;
        if n == 0 {
            return Err(StoreError::NoSuchExtension(number.to_owned()));
        }
        Ok(())
    }

    fn delete_extension(&self, number: &str) -> Result<()> {
        if self.conn.execute("DELETE FROM extensions WHERE number = ?1", [number])? == 0 {
            return Err(StoreError::NoSuchExtension(number.to_owned()));
        }
        Ok(())
    }

    fn extensions_page(
        &self,
        f: &ExtensionFilter<'_>,
        now: i64,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<(Extension, u32)>> {
        let sql = format!(
            "SELECT {COLUMNS}, (SELECT COUNT(*) FROM bindings b WHERE b.extension = e.number AND b.expires_at > ?4)
             FROM extensions e WHERE {} ORDER BY number LIMIT ?5 OFFSET ?6",
            ExtensionFilter::WHERE
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(
            params![
                f.text,
                f.suspended,
                f.noncompliant,
                now,
                limit.min(i64::MAX as u64) as i64,
                offset.min(i64::MAX as u64) as i64
            ],
            |r| Ok((row(r)?, r.get(15)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn extensions_matching(&self, f: &ExtensionFilter<'_>) -> Result<u64> {
        // Unfiltered, SQLite counts the smallest index (0.1 ms for 10,000 extensions); the filter's
        // expression makes it read every row (2 ms), on every view of the first page.
        if f.text.is_none() && !f.suspended && !f.noncompliant {
            return Ok(self.conn.prepare_cached("SELECT COUNT(*) FROM extensions")?.query_row([], |r| r.get(0))?);
        }
        let sql = format!("SELECT COUNT(*) FROM extensions WHERE {}", ExtensionFilter::WHERE);
        Ok(self.conn.prepare_cached(&sql)?.query_row(params![f.text, f.suspended, f.noncompliant], |r| r.get(0))?)
    }
}

impl Store {
    fn update_extension(&self, number: &str, column: &str, value: Option<&str>) -> Result<()> {
        let n = self
            .conn
            .execute(&format!("UPDATE extensions SET {column} = ?2 WHERE number = ?1"), params![number, value])?;
        if n == 0 {
            return Err(StoreError::NoSuchExtension(number.to_owned()));
        }
        Ok(())
    }
}

/// Which extensions a page of the list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtensionFilter<'a> {
    /// Part of the number, or an ACL group or Class of Service name (exact).
    pub text: Option<&'a str>,
    /// Only those whose outbound calls are suspended.
    pub suspended: bool,
    /// Only those whose secret broke the password policy when it was set.
    pub noncompliant: bool,
}

impl ExtensionFilter<'_> {
    const WHERE: &'static str = "(?1 IS NULL OR instr(number, ?1) > 0 OR acl = ?1 OR cos = ?1)
         AND (?2 = 0 OR suspended IS NOT NULL) AND (?3 = 0 OR policy_violations IS NOT NULL)";
}
