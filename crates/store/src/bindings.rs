use crate::{Result, Store};
use rusqlite::params;
use serde::Serialize;

/// A registration: one contact of one extension (RFC 3261 §10.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binding {
    pub extension: String,
    /// The contact URI (the binding's identity within the extension).
    pub uri: String,
    /// The Contact value as the client sent it, header parameters included.
    pub contact: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    pub q: Option<f64>,
    /// Transport source address of the REGISTER ("ip:port").
    pub source: String,
    pub transport: String,
    pub user_agent: Option<String>,
    pub updated_at: i64,
}

/// Registrations (bindings): what the registrar persists.
pub trait RegistrationsRepo {
    /// Replaces every binding of `extension` with `bindings`, atomically.
    fn replace_bindings(&mut self, extension: &str, bindings: &[Binding]) -> Result<()>;

    /// Applies many extensions' replacements in one transaction (the daemon batches writes).
    fn replace_bindings_batch(&mut self, batch: &[(&str, &[Binding])]) -> Result<()>;

    /// Bindings still valid at `now`, ordered by extension.
    fn bindings(&self, now: i64) -> Result<Vec<Binding>>;

    /// Removes bindings that expired before `now`; returns how many.
    fn purge_expired_bindings(&self, now: i64) -> Result<usize>;
}

impl RegistrationsRepo for Store {
    fn replace_bindings(&mut self, extension: &str, bindings: &[Binding]) -> Result<()> {
        self.replace_bindings_batch(&[(extension, bindings)])
    }

    fn replace_bindings_batch(&mut self, batch: &[(&str, &[Binding])]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM bindings WHERE extension = ?1")?;
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO bindings(extension, uri, contact, expires_at, call_id, cseq, q, source, transport, user_agent, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for &(ext, bindings) in batch {
                del.execute([ext])?;
                for b in bindings {
                    // The extension may have been deleted meanwhile; its bindings are simply dropped.
                    match ins.execute(params![
                        b.extension,
                        b.uri,
                        b.contact,
                        b.expires_at,
                        b.call_id,
                        b.cseq,
                        b.q,
                        b.source,
                        b.transport,
                        b.user_agent,
                        b.updated_at
                    ]) {
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.code == rusqlite::ErrorCode::ConstraintViolation => {}
                        other => {
                            other?;
                        }
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn bindings(&self, now: i64) -> Result<Vec<Binding>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {BINDING_COLUMNS} FROM bindings WHERE expires_at > ?1 ORDER BY extension, uri"
        ))?;
        let rows = st.query_map([now], binding)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn purge_expired_bindings(&self, now: i64) -> Result<usize> {
        Ok(self.conn.execute("DELETE FROM bindings WHERE expires_at <= ?1", [now])?)
    }
}

pub(crate) const BINDING_COLUMNS: &str =
    "extension, uri, contact, expires_at, call_id, cseq, q, source, transport, user_agent, updated_at";

pub(crate) fn binding(r: &rusqlite::Row<'_>) -> rusqlite::Result<Binding> {
    Ok(Binding {
        extension: r.get(0)?,
        uri: r.get(1)?,
        contact: r.get(2)?,
        expires_at: r.get(3)?,
        call_id: r.get(4)?,
        cseq: r.get(5)?,
        q: r.get(6)?,
        source: r.get(7)?,
        transport: r.get(8)?,
        user_agent: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::prelude::*;
    use crate::{Credentials, Extension, Store};

    /// A test extension (the other store tests use it too).
    pub(crate) fn ext(n: &str) -> Extension {
        let c =
            Credentials { realm: "r".into(), ha1_md5: "a".into(), ha1_sha256: "b".into(), ha1_sha512_256: "c".into() };
        Extension::new(n.into(), c, 0)
    }

    fn binding(ext: &str, uri: &str, exp: i64) -> super::Binding {
        super::Binding {
            extension: ext.into(),
            uri: uri.into(),
            contact: format!("<{uri}>"),
            expires_at: exp,
            call_id: "c".into(),
            cseq: 1,
            q: None,
            source: "127.0.0.1:5060".into(),
            transport: "udp".into(),
            user_agent: None,
            updated_at: 0,
        }
    }

    #[test]
    fn bindings_replace_expire_and_cascade() {
        let mut s = Store::open_in_memory().unwrap();
        s.add_extension(&ext("100")).unwrap();
        assert!(matches!(s.add_extension(&ext("100")), Err(crate::StoreError::ExtensionExists(_))));
        s.replace_bindings("100", &[binding("100", "sip:a@h", 50), binding("100", "sip:b@h", 200)]).unwrap();
        assert_eq!(s.bindings(100).unwrap().len(), 1);
        assert_eq!(s.purge_expired_bindings(100).unwrap(), 1);
        s.replace_bindings_batch(&[
            ("100", &[binding("100", "sip:c@h", 300)][..]),
            ("999", &[binding("999", "sip:x@h", 300)][..]),
        ])
        .unwrap();
        assert_eq!(s.bindings(0).unwrap().iter().map(|b| b.uri.as_str()).collect::<Vec<_>>(), ["sip:c@h"]);
        s.delete_extension("100").unwrap();
        assert!(s.bindings(0).unwrap().is_empty());
    }
}
