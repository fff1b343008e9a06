//! Who is asking: an admin session (the cookie) or an API token (a bearer header), and CSRF on every
//! state-changing request made with a cookie. Every handler relies on this module; the pages that log
//! in, out and change passwords are in `auth`.

use super::sessions::COOKIE;
use super::shared::{Shared, json_error, url_encode};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// What a request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// Look only.
    Read,
    /// Everything an admin can do.
    Admin,
}

pub(super) fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn bearer_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// An authenticated request: an admin's session or an API token.
#[derive(Clone, Debug)]
pub(crate) struct Authed {
    /// The admin's name, or `token:NAME`.
    pub(crate) who: String,
    pub(crate) scope: Scope,
    /// The session's CSRF token, for forms (empty for API tokens, which need none).
    pub(crate) csrf: String,
}

/// Why a request was not let in.
pub(crate) enum Refusal {
    Login { next: String },
    MustChange,
    Unauthorized,
    ReadOnly,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Login { next } => Redirect::to(&format!("/login?next={}", url_encode(&next))).into_response(),
            Self::MustChange => Redirect::to("/password").into_response(),
            Self::Unauthorized => json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "log in, or send an API token as 'Authorization: Bearer TOKEN' (pbxguard token add NAME)",
                None,
            ),
            Self::ReadOnly => json_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API token has the read scope: it cannot change anything",
                None,
            ),
        }
    }
}

impl FromRequestParts<Shared> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gui: &Shared) -> Result<Self, Response> {
        let path = parts.uri.path().to_owned();
        if let Some(token) = bearer_header(&parts.headers) {
            let token = token.to_owned();
            return match verify_token(gui, token).await {
                Some((name, scope)) => Ok(Self { who: format!("token:{name}"), scope, csrf: String::new() }),
                None => Err(Refusal::Unauthorized.into_response()),
            };
        }
        let session = cookie_token(&parts.headers).and_then(|t| gui.sessions.get(t));
        match session {
            Some((_, _, true)) if is_api(&path) => Err(json_error(
                StatusCode::FORBIDDEN,
                "must-change",
                "this account must change its password first (POST /password, or pbxguard admin passwd)",
                None,
            )),
            Some((_, _, true)) => Err(Refusal::MustChange.into_response()),
            Some((admin, csrf, false)) => Ok(Self { who: admin, scope: Scope::Admin, csrf }),
            None if is_api(&path) => Err(Refusal::Unauthorized.into_response()),
            None => {
                let next = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
                Err(Refusal::Login { next }.into_response())
            }
        }
    }
}

/// An authenticated request allowed to change things (an admin session or an `admin` token).
pub(crate) struct Writer(pub(crate) Authed);

impl FromRequestParts<Shared> for Writer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gui: &Shared) -> Result<Self, Response> {
        let a = Authed::from_request_parts(parts, gui).await?;
        if a.scope != Scope::Admin {
            return Err(Refusal::ReadOnly.into_response());
        }
        Ok(Self(a))
    }
}

/// Refuses a state-changing request that carries the session cookie but not the session's CSRF
/// token (the `x-csrf-token` header, or a form's `csrf` field), and one whose `Origin` is another
/// site. Bearer-token requests carry no ambient credential and need no token.
pub(crate) async fn csrf(State(gui): State<Shared>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if let (Some(origin), Some(host)) = (req.headers().get(header::ORIGIN), req.headers().get(header::HOST)) {
        let same = origin.to_str().ok().and_then(|o| o.strip_prefix("https://")) == host.to_str().ok();
        if !same {
            return forbidden_csrf("the request came from another site");
        }
    }
    let Some(token) = cookie_token(req.headers()).map(str::to_owned) else { return next.run(req).await };
    if bearer_header(req.headers()).is_some() {
        return next.run(req).await;
    }
    // No live session: the handler's own check answers (login page, or 401).
    let Some((_, expected, _)) = gui.sessions.get(&token) else { return next.run(req).await };
    if let Some(h) = req.headers().get("x-csrf-token") {
        return if same_secret(h.as_bytes(), expected.as_bytes()) {
            next.run(req).await
        } else {
            forbidden_csrf("wrong CSRF token")
        };
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return forbidden_csrf("no CSRF token");
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    let given = form_urlencoded_field(&bytes, "csrf");
    if !given.is_some_and(|g| same_secret(g.as_bytes(), expected.as_bytes())) {
        return forbidden_csrf("no CSRF token, or a wrong one");
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// Forms are small except a pasted blacklist.
const FORM_LIMIT: usize = 16 * 1024 * 1024;

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

fn forbidden_csrf(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        format!("refused: {why}. Reload the page and try again (a form is valid for the session it came from)."),
    )
        .into_response()
}

/// A verified token is trusted this long without asking the store again: a revoked token stops
/// working within this time, and a busy client costs one lookup a second instead of one per request.
const FRESH: Duration = Duration::from_secs(1);

struct Verified {
    name: String,
    scope: Scope,
    at: Instant,
}

/// Keyed by the token's SHA-256, so the map holds no token and a lookup's timing says nothing about
/// one. Only tokens that exist get in, so its size is bounded by the tokens in the store.
static CACHE: LazyLock<Mutex<HashMap<[u8; 32], Verified>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The API token behind a bearer header: its name and scope, or `None` if unknown or revoked.
///
/// A wrong token is not a shield observation: tokens are 256 random bits, so guessing is hopeless,
/// while a monitoring job still using a revoked token would otherwise get its address banned from
/// SIP as well.
pub(super) async fn verify_token(gui: &Shared, token: String) -> Option<(String, Scope)> {
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&key).filter(|v| v.at.elapsed() < FRESH) {
            return Some((v.name.clone(), v.scope));
        }
    }
    let found = match gui.db.run(move |s| pbxguard_app::tokens::verify(s, &token)).await {
        Ok(found) => found,
        Err(e) => {
            // Fail closed: the database is unreadable, so the token cannot be checked.
            tracing::warn!(error = %e, "checking an API token failed");
            None
        }
    };
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|_, v| v.at.elapsed() < FRESH);
    let t = found?;
    let scope = match t.scope {
        pbxguard_app::tokens::TokenScope::Read => Scope::Read,
        pbxguard_app::tokens::TokenScope::Admin => Scope::Admin,
    };
    cache.insert(key, Verified { name: t.name.clone(), scope, at: Instant::now() });
    Some((t.name, scope))
}
