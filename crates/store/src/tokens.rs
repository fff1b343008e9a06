//! API tokens: a name, a scope, the SHA-256 of the token (never the token) and a prefix to tell tokens
//! apart. Hashing and validation are the caller's.

use crate::{Result, Store};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub name: String,
    /// The first characters of the token, for the operator to recognise it.
    pub prefix: String,
    /// `read` or `admin`.
    pub scope: String,
    pub created_at: i64,
    pub last_used: Option<i64>,
}

const COLUMNS: &str = "name, prefix, scope, created_at, last_used";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow { name: r.get(0)?, prefix: r.get(1)?, scope: r.get(2)?, created_at: r.get(3)?, last_used: r.get(4)? })
}

/// API tokens (hashes only).
pub trait TokensRepo {
    /// Stores a token; `false` if a token of that name exists (nothing changed).
    fn add_token(&self, t: &TokenRow, hash: &str) -> Result<bool>;

    fn tokens(&self) -> Result<Vec<TokenRow>>;

    /// The token whose hash is `hash` (looked up by its unique index).
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>>;

    fn touch_token(&self, name: &str, now: i64) -> Result<()>;

    /// Removes a token; `false` if there was none of that name.
    fn delete_token(&self, name: &str) -> Result<bool>;
}

impl TokensRepo for Store {
    fn add_token(&self, t: &TokenRow, hash: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO api_tokens(name, hash, prefix, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.name, hash, t.prefix, t.scope, t.created_at],
        )? > 0)
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut st = self.conn.prepare(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY name"))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        Ok(self.conn.query_row(&format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = ?1"), [hash], row).optional()?)
    }

    fn touch_token(&self, name: &str, now: i64) -> Result<()> {
        self.conn.execute("UPDATE api_tokens SET last_used = ?2 WHERE name = ?1", params![name, now])?;
        Ok(())
    }

    fn delete_token(&self, name: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM api_tokens WHERE name = ?1", [name])? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_hash_only_until_deleted() {
        let s = Store::open_in_memory().unwrap();
        let t = TokenRow {
            name: "ci".into(),
            prefix: "pbxg_ab12".into(),
            scope: "read".into(),
            created_at: 1,
            last_used: None,
        };
        assert!(s.add_token(&t, "h1").unwrap());
        assert!(!s.add_token(&t, "h2").unwrap(), "same name");
        assert_eq!(s.token_by_hash("h1").unwrap(), Some(t.clone()));
        assert_eq!(s.token_by_hash("h2").unwrap(), None);
        s.touch_token("ci", 7).unwrap();
        assert_eq!(s.tokens().unwrap()[0].last_used, Some(7));
        assert!(s.delete_token("ci").unwrap());
        assert!(!s.delete_token("ci").unwrap());
        assert_eq!(s.token_by_hash("h1").unwrap(), None);
    }
}
