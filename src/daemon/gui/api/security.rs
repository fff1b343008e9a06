//! Bans, trusted networks, blacklists and the security event log.
//!
//! A network's CIDR has a slash, so the routes that name one take it either URL-encoded in one segment
//! (`/api/v1/bans/198.51.100.0%2F24`) or as two (`/api/v1/bans/198.51.100.0/24`).

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, QueryOf, created};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use pbxguard_app::{blacklist, security};
use pbxguard_store::{BanRow, EventRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    // A pasted list of 100,000+ networks is a few MB; every other body is small.
    let (schemas, paths, import) = routes!(list_blacklists, import_blacklist);
    OpenApiRouter::new()
        .routes(routes!(list_bans, add_ban))
        .routes(routes!(delete_ban))
        .routes(routes!(delete_ban_network))
        .routes(routes!(list_trusted, add_trusted))
        .routes(routes!(delete_trusted))
        .routes(routes!(delete_trusted_network))
        .routes((schemas, paths, import.layer(DefaultBodyLimit::max(BLACKLIST_LIMIT))))
        .routes(routes!(delete_blacklist))
        .routes(routes!(list_events))
}

const BLACKLIST_LIMIT: usize = 64 << 20;

#[derive(Serialize, ToSchema)]
struct BanOut {
    /// The banned address or network.
    target: String,
    /// The detector (scanner, brute-force, flood...) or "manual".
    reason: String,
    evidence: String,
    first_seen_ms: i64,
    created_ms: i64,
    /// Null: until removed.
    expires_ms: Option<i64>,
    /// How many times this source was banned within the history window.
    offence: u32,
    /// The operator's note.
    note: Option<String>,
}

impl From<BanRow> for BanOut {
    fn from(b: BanRow) -> Self {
        Self {
            target: b.target,
            reason: b.reason,
            evidence: b.evidence,
            first_seen_ms: b.first_seen_ms,
            created_ms: b.created_ms,
            expires_ms: b.expires_ms,
            offence: b.offence,
            note: b.note,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// 1-based page (default 1).
    page: Option<u64>,
    /// Rows per page, 1-500 (default 50).
    per_page: Option<u64>,
}

impl PageQuery {
    fn bounds(&self) -> ApiResult<(u64, u64)> {
        let per_page = self.per_page.unwrap_or(50);
        if !(1..=500).contains(&per_page) {
            return Err(ApiError::invalid(format!("per_page {per_page}: give 1 to 500"), "per_page"));
        }
        Ok((self.page.unwrap_or(1).max(1), per_page))
    }
}

#[derive(Serialize, ToSchema)]
struct BanPage {
    items: Vec<BanOut>,
    total: u64,
    page: u64,
    per_page: u64,
}

/// Bans in force, newest first, one page at a time.
#[utoipa::path(get, path = "/api/v1/bans", tag = "bans", params(PageQuery),
    responses((status = 200, body = BanPage), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
async fn list_bans(State(gui): State<Shared>, _a: Authed, QueryOf(q): QueryOf<PageQuery>) -> ApiResult<Json<BanPage>> {
    let (page, per_page) = q.bounds()?;
    let mut all = gui.db.run(|s| security::bans(s)).await?;
    all.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then_with(|| a.target.cmp(&b.target)));
    let total = all.len() as u64;
    let skip = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let items = all.into_iter().skip(skip).take(per_page as usize).map(Into::into).collect();
    Ok(Json(BanPage { items, total, page, per_page }))
}

#[derive(Deserialize, ToSchema)]
struct BanIn {
    /// An IP address or CIDR network (203.0.113.9, 198.51.100.0/24, 2001:db8::/48).
    target: String,
    /// Why (kept with the ban).
    reason: String,
    /// How long, such as 30m, 12h or 7d (at most 3650d); null: until removed.
    duration: Option<String>,
    /// Allow a network wider than /8 (IPv4) or /32 (IPv6).
    #[serde(default)]
    force: bool,
}

/// Bans an address or network; a running daemon enforces it within a second.
#[utoipa::path(post, path = "/api/v1/bans", tag = "bans", request_body = BanIn,
    responses((status = 201, body = BanOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, description = "Inside a trusted network", body = ApiErrorBody)))]
async fn add_ban(State(gui): State<Shared>, Writer(a): Writer, JsonBody(b): JsonBody<BanIn>) -> ApiResult<Response> {
    let row = gui
        .db
        .run(move |s| security::ban(s, &b.target, &b.reason, b.duration.as_deref(), b.force, &crate::resolve::System))
        .await
        .map_err(|e| ApiError::from(e).field(&[("--for", "duration")], Some("target")))?;
    tracing::info!(who = a.who, target = row.target, "ban added through the API");
    Ok(created(BanOut::from(row)))
}

async fn unban(gui: Shared, a: Authed, target: String) -> ApiResult<StatusCode> {
    let p = gui
        .db
        .run(move |s| security::unban(s, &target))
        .await
        .map_err(|e| ApiError::from(e).field(&[], Some("target")))?;
    tracing::info!(who = a.who, target = %p, "ban lifted through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a ban on an address, or on a network given URL-encoded (`198.51.100.0%2F24`).
#[utoipa::path(delete, path = "/api/v1/bans/{target}", tag = "bans",
    params(("target" = String, Path, description = "An address, or a CIDR with its slash URL-encoded")),
    responses((status = 204, description = "Lifted"), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn delete_ban(State(gui): State<Shared>, Writer(a): Writer, Path(target): Path<String>) -> ApiResult<StatusCode> {
    unban(gui, a, target).await
}

/// Lifts a ban on a network.
#[utoipa::path(delete, path = "/api/v1/bans/{address}/{prefix_len}", tag = "bans",
    params(("address" = String, Path, description = "The network's address"),
        ("prefix_len" = u8, Path, description = "Its prefix length")),
    responses((status = 204, description = "Lifted"), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn delete_ban_network(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path((address, len)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    unban(gui, a, format!("{address}/{len}")).await
}

#[derive(Serialize, ToSchema)]
struct TrustedOut {
    cidr: String,
    note: Option<String>,
}

/// The operator's trusted networks: never banned, never flood-limited.
#[utoipa::path(get, path = "/api/v1/trusted", tag = "trusted",
    responses((status = 200, body = Vec<TrustedOut>), (status = 401, body = ApiErrorBody)))]
async fn list_trusted(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<TrustedOut>>> {
    let rows = gui.db.run(|s| security::trusted(s)).await?;
    Ok(Json(rows.into_iter().map(|(cidr, note)| TrustedOut { cidr, note }).collect()))
}

#[derive(Deserialize, ToSchema)]
struct TrustedIn {
    /// An IP address or CIDR network.
    cidr: String,
    note: Option<String>,
    /// Allow a network wider than /8 (IPv4) or /32 (IPv6).
    #[serde(default)]
    force: bool,
}

#[derive(Serialize, ToSchema)]
struct Trusted {
    cidr: String,
    /// Bans inside the network: they stay stored, overridden while the trust lasts.
    overridden_bans: Vec<BanOut>,
}

/// Trusts a network.
#[utoipa::path(post, path = "/api/v1/trusted", tag = "trusted", request_body = TrustedIn,
    responses((status = 201, body = Trusted), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, description = "Already trusted", body = ApiErrorBody)))]
async fn add_trusted(
    State(gui): State<Shared>,
    Writer(a): Writer,
    JsonBody(b): JsonBody<TrustedIn>,
) -> ApiResult<Response> {
    let (p, bans) = gui
        .db
        .run(move |s| security::trust(s, &b.cidr, b.note.as_deref(), b.force))
        .await
        .map_err(|e| ApiError::from(e).field(&[], Some("cidr")))?;
    tracing::info!(who = a.who, cidr = %p, "network trusted through the API");
    Ok(created(Trusted { cidr: p.to_string(), overridden_bans: bans.into_iter().map(Into::into).collect() }))
}

async fn untrust(gui: Shared, a: Authed, cidr: String) -> ApiResult<StatusCode> {
    let p = gui
        .db
        .run(move |s| security::untrust(s, &cidr))
        .await
        .map_err(|e| ApiError::from(e).field(&[], Some("cidr")))?;
    tracing::info!(who = a.who, cidr = %p, "trust removed through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// Stops trusting an address, or a network given URL-encoded (`10.0.0.0%2F8`).
#[utoipa::path(delete, path = "/api/v1/trusted/{cidr}", tag = "trusted",
    params(("cidr" = String, Path, description = "An address, or a CIDR with its slash URL-encoded")),
    responses((status = 204, description = "Removed"), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn delete_trusted(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(cidr): Path<String>,
) -> ApiResult<StatusCode> {
    untrust(gui, a, cidr).await
}

/// Stops trusting a network.
#[utoipa::path(delete, path = "/api/v1/trusted/{address}/{prefix_len}", tag = "trusted",
    params(("address" = String, Path, description = "The network's address"),
        ("prefix_len" = u8, Path, description = "Its prefix length")),
    responses((status = 204, description = "Removed"), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn delete_trusted_network(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path((address, len)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    untrust(gui, a, format!("{address}/{len}")).await
}

#[derive(Serialize, ToSchema)]
struct BlacklistOut {
    name: String,
    /// The file or URL it came from (a URL is downloaded again on a schedule).
    source: String,
    entries: i64,
    bad_lines: i64,
    refreshed_at: i64,
    last_error: Option<String>,
}

/// The blacklists with their sizes.
#[utoipa::path(get, path = "/api/v1/blacklists", tag = "blacklists",
    responses((status = 200, body = Vec<BlacklistOut>), (status = 401, body = ApiErrorBody)))]
async fn list_blacklists(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<BlacklistOut>>> {
    let rows = gui.db.run(|s| blacklist::stats(s)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|b| BlacklistOut {
                name: b.name,
                source: b.source,
                entries: b.entries,
                bad_lines: b.bad_lines,
                refreshed_at: b.refreshed_at,
                last_error: b.last_error,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
struct BlacklistIn {
    /// The list's name; an import under an existing name replaces that list.
    name: String,
    /// The list in voipbl format: one address or CIDR per line, `#` comments.
    text: String,
}

#[derive(Serialize, ToSchema)]
struct ImportedOut {
    entries: usize,
    /// Lines skipped: unreadable ones and networks too broad to blacklist.
    bad_lines: usize,
    /// Of those, networks wider than /8 (IPv4) or /32 (IPv6), refused.
    too_broad: usize,
}

/// Imports (or replaces) a blacklist from text, in one transaction.
#[utoipa::path(post, path = "/api/v1/blacklists", tag = "blacklists", request_body = BlacklistIn,
    responses((status = 201, body = ImportedOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 413, description = "Over 64 MB")))]
async fn import_blacklist(
    State(gui): State<Shared>,
    Writer(a): Writer,
    JsonBody(b): JsonBody<BlacklistIn>,
) -> ApiResult<Response> {
    let name = b.name.trim().to_owned();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("give the list a name of 1-64 printable characters", "name"));
    }
    let n = name.clone();
    let r = gui
        .db
        .run(move |s| blacklist::import(s, &n, "api", &b.text, |_, _| {}))
        .await
        .map_err(|e| ApiError::from(e).field(&[], Some("text")))?;
    tracing::info!(who = a.who, list = name, entries = r.entries, "blacklist imported through the API");
    Ok(created(ImportedOut { entries: r.entries, bad_lines: r.bad_lines, too_broad: r.too_broad }))
}

/// Deletes a blacklist.
#[utoipa::path(delete, path = "/api/v1/blacklists/{name}", tag = "blacklists",
    params(("name" = String, Path, description = "The list's name")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn delete_blacklist(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let n = name.clone();
    gui.db.run(move |s| blacklist::delete(s, &n)).await?;
    tracing::info!(who = a.who, list = name, "blacklist deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Events after this id, oldest first (keyset paging: pass the last id you got). Default: the
    /// newest `limit` events.
    after: Option<i64>,
    /// At most this many, 1-1000 (default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct EventOut {
    id: i64,
    at_ms: i64,
    /// What happened: scanner, auth-failed, ban, flood...
    kind: String,
    source: Option<String>,
    user: Option<String>,
    detail: String,
}

impl From<EventRow> for EventOut {
    fn from(e: EventRow) -> Self {
        Self { id: e.id, at_ms: e.at_ms, kind: e.kind, source: e.source, user: e.user, detail: e.detail }
    }
}

#[derive(Serialize, ToSchema)]
struct EventPage {
    items: Vec<EventOut>,
    /// Pass as `after` for the next page (the last id of this one, or `after` when it is empty).
    next_after: i64,
}

/// Security events, oldest first from a position: follow the log by passing `next_after` back.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
async fn list_events(
    State(gui): State<Shared>,
    _a: Authed,
    QueryOf(q): QueryOf<EventsQuery>,
) -> ApiResult<Json<EventPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(format!("limit {limit}: give 1 to 1000"), "limit"));
    }
    let (start, rows) = gui
        .db
        .run(move |s| {
            let start = match q.after {
                Some(a) => a,
                None => security::events_tail_start(s, limit)?,
            };
            Ok((start, security::events_after(s, start, limit)?))
        })
        .await?;
    let next_after = rows.last().map_or(start, |e| e.id);
    Ok(Json(EventPage { items: rows.into_iter().map(Into::into).collect(), next_after }))
}
