//! Status, settings, admin accounts, the calls log, `/metrics` and the OpenAPI document.

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, QueryOf};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::shared::{Peer, Shared, json_error};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use pbxguard_app::{admins, calls, configure, extensions, security};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(status))
        .routes(routes!(list_settings))
        .routes(routes!(set_setting))
        .routes(routes!(list_admins))
        .routes(routes!(list_calls))
}

/// Prometheus metrics (the text format): for an API token of any scope, an admin session, or a
/// client in the trusted networks.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "No token, from outside the trusted networks", body = ApiErrorBody),
        (status = 503, description = "Not written yet (the daemon has just started)", body = ApiErrorBody)))]
async fn metrics(State(gui): State<Shared>, Extension(Peer(ip)): Extension<Peer>, parts: Parts) -> Response {
    let mut parts = parts;
    let has_bearer = parts.headers.contains_key(header::AUTHORIZATION);
    if let Err(refused) = Authed::from_request_parts(&mut parts, &gui).await {
        // A wrong token is refused even from a trusted network: the client meant to authenticate.
        if has_bearer || !gui.state.with_gate(|g| g.is_trusted(ip)) {
            return refused;
        }
    }
    // The daemon renders the metrics once a second for node_exporter's textfile collector; this serves
    // the same text, so both views always agree.
    let path = gui.data.join("metrics.prom");
    match tokio::task::spawn_blocking(move || std::fs::read_to_string(path)).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        _ => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no metrics yet: the daemon writes them within a second of starting",
            None,
        ),
    }
}

#[derive(Serialize, ToSchema)]
struct StatusOut {
    version: &'static str,
    uptime_secs: u64,
    extensions: u64,
    registrations: usize,
    /// Calls being set up or established.
    calls: usize,
    bans: usize,
    blacklist_entries: usize,
    /// The operator's trusted networks (listeners and trunks aside).
    trusted_networks: usize,
}

/// The daemon's version, uptime and counts.
#[utoipa::path(get, path = "/api/v1/status", tag = "meta",
    responses((status = 200, body = StatusOut), (status = 401, body = ApiErrorBody)))]
async fn status(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<StatusOut>> {
    let (extensions, trusted_networks) = gui
        .db
        .run(|s| {
            let total = extensions::page(s, &Default::default(), 1, 1)?.total;
            Ok((total, security::trusted(s)?.len()))
        })
        .await?;
    let (registrations, calls) = {
        let sip = gui.state.sip();
        (sip.registrar().binding_count(), sip.active_calls())
    };
    let (bans, blacklist_entries) = gui.state.with_gate(|g| (g.ban_count(), g.blacklist().len()));
    Ok(Json(StatusOut {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: gui.started.elapsed().as_secs(),
        extensions,
        registrations,
        calls,
        bans,
        blacklist_entries,
        trusted_networks,
    }))
}

#[derive(Serialize, ToSchema)]
struct SettingOut {
    key: &'static str,
    value: String,
    /// "(computed)" when the default is fixed at first start.
    default: &'static str,
    doc: &'static str,
}

/// Every run-time setting with its value, default and documentation.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = Vec<SettingOut>), (status = 401, body = ApiErrorBody)))]
async fn list_settings(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<SettingOut>>> {
    let rows = gui.db.run(|s| configure::list(s)).await?;
    Ok(Json(
        rows.into_iter().map(|r| SettingOut { key: r.key, value: r.value, default: r.default, doc: r.doc }).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
struct SettingIn {
    value: String,
}

#[derive(Serialize, ToSchema)]
struct ReviewedOut {
    extension: String,
    /// The password-policy rules its secret broke.
    violations: String,
    /// The replacement secret, shown once (when password_policy.autofix replaced it).
    new_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SettingChanged {
    key: String,
    value: String,
    /// A password_policy change reviews every extension's secret: which ones break the new policy.
    review: Option<Vec<ReviewedOut>>,
    /// Whether the non-compliant secrets were replaced.
    fixed: Option<bool>,
}

/// Changes a setting; a running daemon applies it within a second.
#[utoipa::path(put, path = "/api/v1/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "The setting, such as shield.brute_force")),
    request_body = SettingIn,
    responses((status = 200, body = SettingChanged), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody)))]
async fn set_setting(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<SettingIn>,
) -> ApiResult<Json<SettingChanged>> {
    let (k, v) = (key.clone(), body.value.clone());
    let changed = gui
        .db
        .run(move |s| configure::set(s, &k, &v))
        .await
        .map_err(|e| ApiError::from(e).field(&[("unknown setting", "key")], Some("value")))?;
    tracing::info!(who = a.who, key, value = body.value, "setting changed through the API");
    let (review, fixed) = match changed.review {
        Some(r) => (
            Some(
                r.extensions
                    .into_iter()
                    .map(|x| ReviewedOut { extension: x.extension, violations: x.violations, new_secret: x.new_secret })
                    .collect(),
            ),
            Some(r.fixed),
        ),
        None => (None, None),
    };
    Ok(Json(SettingChanged { key, value: body.value, review, fixed }))
}

#[derive(Serialize, ToSchema)]
struct AdminOut {
    name: String,
    /// The password must be changed before this account can do anything else.
    must_change: bool,
    updated_at: i64,
}

/// Admin accounts (never their password hashes).
#[utoipa::path(get, path = "/api/v1/admins", tag = "admins",
    responses((status = 200, body = Vec<AdminOut>), (status = 401, body = ApiErrorBody)))]
async fn list_admins(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<AdminOut>>> {
    let rows = gui.db.run(|s| admins::list(s)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|a| AdminOut { name: a.name, must_change: a.must_change, updated_at: a.updated_at })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CallsQuery {
    /// How many calls (1-5000, default 100): calls in progress first, then the newest.
    last: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct CallOut {
    call_id: String,
    caller: String,
    callee: String,
    /// internal, local, national, mobile, international, premium, emergency...
    category: String,
    trunk: Option<String>,
    source: String,
    /// ringing, answered or ended.
    state: String,
    /// Final status: 200 for a call ended by BYE, else the failure status.
    status: Option<u16>,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    /// Why the proxy ended the call itself.
    end_reason: Option<String>,
}

/// The calls log: calls in progress first, then the most recent.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", params(CallsQuery),
    responses((status = 200, body = Vec<CallOut>), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
async fn list_calls(
    State(gui): State<Shared>,
    _a: Authed,
    QueryOf(q): QueryOf<CallsQuery>,
) -> ApiResult<Json<Vec<CallOut>>> {
    let last = q.last.unwrap_or(100);
    if !(1..=5000).contains(&last) {
        return Err(ApiError::invalid(format!("last {last}: give 1 to 5000"), "last"));
    }
    let rows = gui.db.run(move |s| calls::calls(s, last)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| CallOut {
                call_id: c.call_id,
                caller: c.caller,
                callee: c.callee,
                category: c.category,
                trunk: c.trunk,
                source: c.source,
                state: c.state,
                status: c.status,
                started_at: c.started_at,
                answered_at: c.answered_at,
                ended_at: c.ended_at,
                end_reason: c.end_reason,
            })
            .collect(),
    ))
}
