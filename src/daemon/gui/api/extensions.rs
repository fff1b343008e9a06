//! Extensions: list (paged), show, add, delete, secret, suspend and enable.

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, Paged, QueryOf, created};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pbxguard_app::extensions::{self, ExtensionView, NewExtension, Secret};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(show, update, delete))
        .routes(routes!(set_secret))
        .routes(routes!(suspend))
        .routes(routes!(enable))
}

/// Where an extension operation's message points.
const FIELDS: &[(&str, &str)] = &[
    ("secret", "secret"),
    ("password policy", "secret"),
    ("--algorithms", "algorithms"),
    ("ACL group", "acl"),
    ("class of service", "cos"),
];

#[derive(Serialize, ToSchema)]
pub(super) struct ExtensionOut {
    number: String,
    /// Digest algorithms offered to it (null: the global auth.algorithms).
    algorithms: Option<String>,
    acl: Option<String>,
    cos: Option<String>,
    /// Why its outbound calls are suspended (null: they are not).
    suspended: Option<String>,
    max_calls: Option<u32>,
    calls_per_hour: Option<u32>,
    /// Own longest trunk call, seconds (0: no limit; null: calls.max_trunk_duration).
    max_call_secs: Option<u32>,
    /// Its secret met the password policy when it was set.
    compliant: bool,
    policy_violations: Option<String>,
    registrations: usize,
    created_at: i64,
    updated_at: i64,
}

impl From<ExtensionView> for ExtensionOut {
    fn from(e: ExtensionView) -> Self {
        Self {
            number: e.number,
            algorithms: e.algorithms,
            acl: e.acl,
            cos: e.cos,
            suspended: e.suspended,
            max_calls: e.max_calls,
            calls_per_hour: e.calls_per_hour,
            max_call_secs: e.max_call_secs,
            compliant: e.compliant,
            policy_violations: e.policy_violations,
            registrations: e.registrations,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// 1-based page (default 1).
    page: Option<u64>,
    /// Rows per page, 1-500 (default 50).
    per_page: Option<u64>,
    /// Part of the number, or an ACL group or Class of Service name.
    q: Option<String>,
    /// Only suspended extensions.
    #[serde(default)]
    suspended: bool,
    /// Only extensions whose secret broke the password policy.
    #[serde(default)]
    noncompliant: bool,
}

/// One page of extensions, in number order.
#[utoipa::path(get, path = "/api/v1/extensions", tag = "extensions", params(ListQuery),
    responses((status = 200, body = Paged<ExtensionOut>), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
async fn list(
    State(gui): State<Shared>,
    _a: Authed,
    QueryOf(q): QueryOf<ListQuery>,
) -> ApiResult<Json<Paged<ExtensionOut>>> {
    let (page, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(50));
    let p = gui
        .db
        .run(move |s| {
            let filter = pbxguard_store::ExtensionFilter {
                text: q.q.as_deref().filter(|t| !t.is_empty()),
                suspended: q.suspended,
                noncompliant: q.noncompliant,
            };
            extensions::page(s, &filter, page, per_page)
        })
        .await
        .map_err(|e| ApiError::from(e).field(&[("per page", "per_page"), ("search", "q")], None))?;
    Ok(Json(Paged::of(p)))
}

#[derive(Deserialize, ToSchema)]
struct ExtensionIn {
    number: String,
    /// The SIP secret; leave out and set `generate` for a strong random one (returned once).
    secret: Option<String>,
    #[serde(default)]
    generate: bool,
    /// Digest algorithms offered, in order, such as "SHA-256,MD5" (null: auth.algorithms).
    algorithms: Option<String>,
    acl: Option<String>,
    cos: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ExtensionCreated {
    extension: ExtensionOut,
    /// The generated secret, shown this once (null when the secret was given).
    secret: Option<String>,
}

fn secret_of(secret: Option<String>, generate: bool) -> ApiResult<Secret> {
    match (secret, generate) {
        (Some(s), false) => Ok(Secret::Given(s)),
        (None, true) => Ok(Secret::Generate),
        _ => Err(ApiError::invalid("give either \"secret\" or \"generate\": true", "secret")),
    }
}

/// Adds an extension under the password policy.
#[utoipa::path(post, path = "/api/v1/extensions", tag = "extensions", request_body = ExtensionIn,
    responses((status = 201, body = ExtensionCreated), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, description = "No such ACL group or Class of Service", body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
async fn add(State(gui): State<Shared>, Writer(a): Writer, JsonBody(b): JsonBody<ExtensionIn>) -> ApiResult<Response> {
    let secret = secret_of(b.secret, b.generate)?;
    let number = b.number.clone();
    let new = NewExtension { number: b.number, secret, algorithms: b.algorithms, acl: b.acl, cos: b.cos };
    let n = number.clone();
    let (view, secret) = gui
        .db
        .run(move |s| {
            let secret = extensions::add(s, new)?;
            Ok((extensions::show(s, &n)?, secret))
        })
        .await
        .map_err(|e| ApiError::from(e).field(FIELDS, Some("number")))?;
    tracing::info!(who = a.who, number, "extension added through the API");
    Ok(created(ExtensionCreated { extension: view.into(), secret }))
}

/// One extension.
#[utoipa::path(get, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(("number" = String, Path, description = "The extension number")),
    responses((status = 200, body = ExtensionOut), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn show(State(gui): State<Shared>, _a: Authed, Path(number): Path<String>) -> ApiResult<Json<ExtensionOut>> {
    Ok(Json(gui.db.run(move |s| extensions::show(s, &number)).await?.into()))
}

/// Deletes an extension (its registrations and mailbox go with it).
#[utoipa::path(delete, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(("number" = String, Path, description = "The extension number")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn delete(State(gui): State<Shared>, Writer(a): Writer, Path(number): Path<String>) -> ApiResult<StatusCode> {
    let n = number.clone();
    gui.db.run(move |s| extensions::delete(s, &n)).await?;
    tracing::info!(who = a.who, number, "extension deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct SecretIn {
    /// The new secret; leave out and set `generate` for a strong random one (returned once).
    secret: Option<String>,
    #[serde(default)]
    generate: bool,
}

#[derive(Serialize, ToSchema)]
struct SecretSet {
    /// The generated secret, shown this once (null when the secret was given).
    secret: Option<String>,
}

/// Changes an extension's secret under the password policy.
#[utoipa::path(put, path = "/api/v1/extensions/{number}/secret", tag = "extensions",
    params(("number" = String, Path, description = "The extension number")), request_body = SecretIn,
    responses((status = 200, body = SecretSet), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn set_secret(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(number): Path<String>,
    JsonBody(b): JsonBody<SecretIn>,
) -> ApiResult<Json<SecretSet>> {
    let secret = secret_of(b.secret, b.generate)?;
    let n = number.clone();
    let secret = gui
        .db
        .run(move |s| extensions::set_secret(s, &n, secret))
        .await
        .map_err(|e| ApiError::from(e).field(FIELDS, Some("secret")))?;
    tracing::info!(who = a.who, number, "extension secret changed through the API");
    Ok(Json(SecretSet { secret }))
}

#[derive(Deserialize, ToSchema, Default)]
struct SuspendIn {
    /// Why (shown with the extension).
    #[serde(default)]
    reason: String,
}

/// Suspends an extension's outbound calls until it is enabled again.
#[utoipa::path(post, path = "/api/v1/extensions/{number}/suspend", tag = "extensions",
    params(("number" = String, Path, description = "The extension number")), request_body = SuspendIn,
    responses((status = 204, description = "Suspended"), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn suspend(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(number): Path<String>,
    JsonBody(b): JsonBody<SuspendIn>,
) -> ApiResult<StatusCode> {
    let n = number.clone();
    gui.db
        .run(move |s| extensions::suspend(s, &n, &b.reason))
        .await
        .map_err(|e| ApiError::from(e).field(&[], Some("reason")))?;
    tracing::info!(who = a.who, number, "extension suspended through the API");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct Enabled {
    /// Why it had been suspended (null: it was not).
    was_suspended: Option<String>,
}

/// Lifts an extension's suspension.
#[utoipa::path(post, path = "/api/v1/extensions/{number}/enable", tag = "extensions",
    params(("number" = String, Path, description = "The extension number")),
    responses((status = 200, body = Enabled), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn enable(State(gui): State<Shared>, Writer(a): Writer, Path(number): Path<String>) -> ApiResult<Response> {
    let n = number.clone();
    let was = gui.db.run(move |s| extensions::enable(s, &n)).await?;
    tracing::info!(who = a.who, number, "extension enabled through the API");
    Ok(Json(Enabled { was_suspended: was }).into_response())
}

/// `Some(None)` for a field given as null, so that PATCH tells "clear it" from "left out" (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to an extension's dial-plan settings: a field left out stays as it is, null clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExtensionPatch {
    /// Its ACL group (null: none, any address may register it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    acl: Option<Option<String>>,
    /// Its Class of Service (null: the default one).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    cos: Option<Option<String>>,
    /// Concurrent trunk calls, 1-1000 (null: fraud.max_concurrent).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    max_calls: Option<Option<u32>>,
    /// Trunk calls per hour, 1-1000000 (null: fraud.calls_per_hour).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    calls_per_hour: Option<Option<u32>>,
    /// Longest trunk call, seconds, up to 7 days (0: no limit; null: calls.max_trunk_duration).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    max_call_secs: Option<Option<u32>>,
}

const PATCH_FIELDS: &[(&str, &str)] = &[
    ("--concurrent", "max_calls"),
    ("--per-hour", "calls_per_hour"),
    ("--max-duration", "max_call_secs"),
    ("ACL group", "acl"),
    ("class of service", "cos"),
];

/// Sets an extension's ACL group, Class of Service and limits; nothing changes unless all are valid.
#[utoipa::path(patch, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(("number" = String, Path, description = "The extension number")), request_body = ExtensionPatch,
    responses((status = 200, body = ExtensionOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody),
        (status = 404, description = "No such extension, ACL group or Class of Service", body = ApiErrorBody)))]
async fn update(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(number): Path<String>,
    JsonBody(b): JsonBody<ExtensionPatch>,
) -> ApiResult<Json<ExtensionOut>> {
    let n = number.clone();
    let view = gui
        .db
        .run(move |s| {
            // The groups are checked before anything is written; set_limits checks its values before it
            // writes; so a refusal leaves every value as it was.
            extensions::show(s, &n)?;
            if let Some(Some(g)) = &b.acl {
                pbxguard_app::validate::require_acl(s, g)?;
            }
            if let Some(Some(c)) = &b.cos {
                pbxguard_app::validate::require_cos(s, c)?;
            }
            let count = |v: Option<Option<u32>>| v.map(|v| v.map_or("default".to_owned(), |n| n.to_string()));
            let longest = b.max_call_secs.map(|v| match v {
                None => "default".to_owned(),
                Some(0) => "off".to_owned(),
                Some(secs) => format!("{secs}s"),
            });
            if b.max_calls.is_some() || b.calls_per_hour.is_some() || longest.is_some() {
                let (c, h) = (count(b.max_calls), count(b.calls_per_hour));
                extensions::set_limits(s, &n, c.as_deref(), h.as_deref(), longest.as_deref())?;
            }
            if let Some(g) = &b.acl {
                extensions::set_acl(s, &n, g.as_deref())?;
            }
            if let Some(c) = &b.cos {
                extensions::set_cos(s, &n, c.as_deref())?;
            }
            extensions::show(s, &n)
        })
        .await
        .map_err(|e| ApiError::from(e).field(PATCH_FIELDS, None))?;
    tracing::info!(who = a.who, number, "extension's dial-plan settings changed through the API");
    Ok(Json(view.into()))
}
