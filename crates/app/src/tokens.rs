//! API tokens for the REST API and `/metrics`: bearer tokens with a scope (`read` looks, `admin` may
//! change everything an admin can). A token is shown once when made; the store keeps only its SHA-256
//! (a token is 32 random bytes, so no slow hash is needed to resist guessing) and a prefix to tell
//! tokens apart in lists and logs.

use crate::{Result, conflict, invalid, not_found};
use pbxguard_store::{Backend, TokenRow};
use sha2::{Digest, Sha256};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Look only: every change is refused.
    Read,
    /// Everything an admin can do.
    Admin,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "read" => Ok(Self::Read),
            "admin" => Ok(Self::Admin),
            _ => Err(invalid!("unknown scope {s:?}: use read (look only) or admin (may change everything)")),
        }
    }
}

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "pbxg_";
/// Characters of the token kept as its visible prefix (the marker and 8 hex digits: 32 bits).
const SHOWN: usize = TOKEN_PREFIX.len() + 8;

/// A token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenView {
    pub name: String,
    pub scope: TokenScope,
    /// The token's first characters.
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; recorded at most once a minute.
    pub last_used: Option<i64>,
}

/// A new token: its listing and the token, shown this once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewToken {
    #[serde(flatten)]
    pub view: TokenView,
    pub token: String,
}

fn view(r: TokenRow) -> TokenView {
    TokenView {
        // The table's CHECK allows only these two; an unknown one would be a newer pbxguard's, and
        // reading it as read-only fails safe.
        scope: TokenScope::parse(&r.scope).unwrap_or(TokenScope::Read),
        name: r.name,
        prefix: r.prefix,
        created_at: r.created_at,
        last_used: r.last_used,
    }
}

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(invalid!("invalid token name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"));
    }
    Ok(())
}

/// Makes a token; the returned token is shown once and cannot be read back.
pub fn add(store: &dyn Backend, name: &str, scope: TokenScope) -> Result<NewToken> {
    check_name(name)?;
    let hex: String = crate::random::random_bytes::<32>().iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("{TOKEN_PREFIX}{hex}");
    let row = TokenRow {
        name: name.to_owned(),
        prefix: token[..SHOWN].to_owned(),
        scope: scope.as_str().to_owned(),
        created_at: crate::clock::now_secs(),
        last_used: None,
    };
    if !store.add_token(&row, &digest(&token))? {
        return Err(conflict!(
            "a token named {name} exists already; pick another name, or revoke it first with `pbxguard token del {name}`"
        ));
    }
    Ok(NewToken { view: view(row), token })
}

pub fn list(store: &dyn Backend) -> Result<Vec<TokenView>> {
    Ok(store.tokens()?.into_iter().map(view).collect())
}

/// Revokes a token: it stops working at once for new lookups (the daemon caches a verified token for
/// a second at most).
pub fn delete(store: &dyn Backend, name: &str) -> Result<()> {
    if !store.delete_token(name)? {
        return Err(not_found!("no API token named {name:?} (see `pbxguard token list`)"));
    }
    Ok(())
}

/// How stale `last_used` may get: recording every use would make each API call a database write.
const TOUCH_EVERY_S: i64 = 60;

/// The token behind `token`, if it exists; records its use (at most once a minute). Anything that is
/// not a well-formed token is unknown without a lookup.
pub fn verify(store: &dyn Backend, token: &str) -> Result<Option<TokenView>> {
    let well_formed = token.len() == TOKEN_PREFIX.len() + 64
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Ok(None);
    }
    let Some(row) = store.token_by_hash(&digest(token))? else { return Ok(None) };
    let now = crate::clock::now_secs();
    let mut v = view(row);
    if v.last_used.is_none_or(|t| now - t >= TOUCH_EVERY_S) {
        store.touch_token(&v.name, now)?;
        v.last_used = Some(now);
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbxguard_store::Store;

    #[test]
    fn a_token_verifies_until_revoked_and_is_never_stored() {
        let s = Store::open_in_memory().unwrap();
        let t = add(&s, "ci", TokenScope::Read).unwrap();
        assert!(t.token.starts_with(TOKEN_PREFIX) && t.token.len() == 69, "{}", t.token);
        assert!(t.token.starts_with(&t.view.prefix));
        let listed = list(&s).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_used, None);
        let v = verify(&s, &t.token).unwrap().expect("valid");
        assert_eq!((v.name.as_str(), v.scope), ("ci", TokenScope::Read));
        assert!(list(&s).unwrap()[0].last_used.is_some(), "use recorded");
        let mut wrong = t.token.clone();
        wrong.replace_range(10..11, if &t.token[10..11] == "0" { "1" } else { "0" });
        assert!(verify(&s, &wrong).unwrap().is_none());
        for junk in ["", "pbxg_", "Bearer x", &t.token[..20], &t.token.to_uppercase()] {
            assert!(verify(&s, junk).unwrap().is_none(), "{junk}");
        }
        delete(&s, "ci").unwrap();
        assert!(verify(&s, &t.token).unwrap().is_none(), "revoked");
        assert!(matches!(delete(&s, "ci"), Err(crate::Error::NotFound(_))));
    }

    #[test]
    fn names_and_scopes_are_checked() {
        let s = Store::open_in_memory().unwrap();
        add(&s, "grafana", TokenScope::Admin).unwrap();
        assert!(matches!(add(&s, "grafana", TokenScope::Read), Err(crate::Error::Conflict(_))));
        for bad in ["", "a b", "x/y", &"n".repeat(65)] {
            assert!(matches!(add(&s, bad, TokenScope::Read), Err(crate::Error::Invalid(_))), "{bad}");
        }
        assert_eq!(TokenScope::parse("admin").unwrap(), TokenScope::Admin);
        assert!(TokenScope::parse("root").is_err());
    }
}
