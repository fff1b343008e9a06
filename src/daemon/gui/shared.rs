//! What every handler of the GUI and the API shares: the daemon's handles, the client's address,
//! and how an operation's error becomes an HTTP answer. A leaf: it imports no other GUI module.

use super::db::Db;
use super::sessions::Sessions;
use crate::daemon::feed::Feed;
use crate::daemon::state::State;
use crate::daemon::tls::ServerCert;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What every handler shares.
pub(crate) struct Gui {
    pub(crate) data: PathBuf,
    pub(crate) db: Arc<Db>,
    pub(crate) state: Arc<State>,
    pub(crate) feed: Arc<Feed>,
    pub(crate) cert: Arc<ServerCert>,
    pub(crate) sessions: Sessions,
    pub(crate) started: Instant,
}

pub(crate) type Shared = Arc<Gui>;

/// The client's address, as the TCP connection saw it (IPv4-mapped addresses made plain).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) std::net::IpAddr);

/// An operation's error as an HTTP answer: the kind gives the status, the message is the operator's.
pub(crate) fn status_of(e: &pbxguard_app::Error) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match e {
        pbxguard_app::Error::Invalid(_) => StatusCode::BAD_REQUEST,
        pbxguard_app::Error::NotFound(_) => StatusCode::NOT_FOUND,
        pbxguard_app::Error::Conflict(_) => StatusCode::CONFLICT,
        pbxguard_app::Error::Io(_) | pbxguard_app::Error::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON error: `{"error": KIND, "message": TEXT, "field": NAME?}`.
pub(crate) fn json_error(status: axum::http::StatusCode, kind: &str, message: &str, field: Option<&str>) -> Response {
    let body = serde_json::json!({ "error": kind, "message": message, "field": field });
    (status, axum::Json(body)).into_response()
}

pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The policy's message as a list: one reason per line, without the frame around them.
pub(crate) fn reasons(message: &str) -> Vec<String> {
    let lines: Vec<String> = message
        .lines()
        .map(|l| l.trim().trim_start_matches("- ").to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with("nothing was changed") && !l.ends_with("password policy:"))
        .collect();
    if lines.is_empty() { vec![message.to_owned()] } else { lines }
}
