//! ACL groups: the networks an extension may register and call from. List (with how many extensions
//! use each), create, replace a group's rules, delete (refused while an extension uses it).

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, created};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use pbxguard_app::security;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(replace, delete))
}

/// Where an ACL operation's message points; anything else is about the rules.
const FIELDS: &[(&str, &str)] = &[("ACL group name", "name")];

#[derive(Serialize, ToSchema)]
struct AclOut {
    name: String,
    /// In the order stored: `CIDR` allows, `!CIDR` denies; the most specific rule decides, and an
    /// address no rule matches is denied.
    rules: Vec<String>,
    /// How many extensions are in the group.
    extensions: u64,
}

impl AclOut {
    fn new(name: String, rules: &str, extensions: u64) -> Self {
        Self { name, rules: rules.split_whitespace().map(str::to_owned).collect(), extensions }
    }
}

/// The ACL groups, by name, with how many extensions use each.
#[utoipa::path(get, path = "/api/v1/acls", tag = "acls",
    responses((status = 200, body = Vec<AclOut>), (status = 401, body = ApiErrorBody)))]
async fn list(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<AclOut>>> {
    let (groups, usage) = gui.db.run(|s| Ok((security::acls(s)?, security::acl_usage(s)?))).await?;
    Ok(Json(
        groups
            .into_iter()
            .map(|g| {
                let n = usage.get(&g.name).copied().unwrap_or(0);
                AclOut::new(g.name, &g.rules, n)
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
struct AclIn {
    /// 1-64 letters, digits, '.', '_' or '-'.
    name: String,
    /// `CIDR` allows, `!CIDR` denies; at least one allow rule.
    rules: Vec<String>,
    /// Allow a network wider than /8 (IPv4) or /32 (IPv6).
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize, ToSchema)]
struct RulesIn {
    /// The group's new rules, replacing all of them: `CIDR` allows, `!CIDR` denies.
    rules: Vec<String>,
    /// Allow a network wider than /8 (IPv4) or /32 (IPv6).
    #[serde(default)]
    force: bool,
}

/// Creates an ACL group (refused if the name is taken: replace its rules with PUT).
#[utoipa::path(post, path = "/api/v1/acls", tag = "acls", request_body = AclIn,
    responses((status = 201, body = AclOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, description = "The name is taken", body = ApiErrorBody)))]
async fn create(State(gui): State<Shared>, Writer(a): Writer, JsonBody(b): JsonBody<AclIn>) -> ApiResult<Response> {
    let name = b.name.trim().to_owned();
    let n = name.clone();
    let rules = gui
        .db
        .run(move |s| security::create_acl(s, &n, &b.rules, b.force))
        .await
        .map_err(|e| ApiError::from(e).field(FIELDS, Some("rules")))?;
    tracing::info!(who = a.who, group = name, "ACL group added through the API");
    let text: Vec<String> = rules.iter().map(ToString::to_string).collect();
    Ok(created(AclOut::new(name, &text.join(" "), 0)))
}

/// Replaces an ACL group's rules; the extensions in it follow at once.
#[utoipa::path(put, path = "/api/v1/acls/{name}", tag = "acls",
    params(("name" = String, Path, description = "The group's name")), request_body = RulesIn,
    responses((status = 200, body = AclOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn replace(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<RulesIn>,
) -> ApiResult<Json<AclOut>> {
    let n = name.clone();
    let (rules, users) = gui
        .db
        .run(move |s| {
            let rules = security::edit_acl(s, &n, &b.rules, b.force)?;
            Ok((rules, security::acl_usage(s)?.get(&n).copied().unwrap_or(0)))
        })
        .await
        .map_err(|e| ApiError::from(e).field(FIELDS, Some("rules")))?;
    tracing::info!(who = a.who, group = name, "ACL group changed through the API");
    let text: Vec<String> = rules.iter().map(ToString::to_string).collect();
    Ok(Json(AclOut::new(name, &text.join(" "), users)))
}

/// Deletes an ACL group no extension uses.
#[utoipa::path(delete, path = "/api/v1/acls/{name}", tag = "acls",
    params(("name" = String, Path, description = "The group's name")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, description = "Extensions use it", body = ApiErrorBody)))]
async fn delete(State(gui): State<Shared>, Writer(a): Writer, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let n = name.clone();
    gui.db.run(move |s| security::delete_acl(s, &n)).await?;
    tracing::info!(who = a.who, group = name, "ACL group deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}
