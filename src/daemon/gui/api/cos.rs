//! Classes of Service: which categories of number an extension may call (and, for international
//! calls, which countries). List with how many extensions use each, add, delete, and classify a
//! number the way the proxy will.

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, QueryOf, created};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::delete as on_delete;
use pbxguard_app::calls::{self, Classified};
use pbxguard_shield::{Category, ClassOfService};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(delete))
        .routes(routes!(classify))
        // The path of `classify` is also where a class named "classify" lives: the router matches the
        // static segment first, so its DELETE is routed here too (the document lists it once, as
        // `/api/v1/cos/{name}`).
        .route("/api/v1/cos/classify", on_delete(delete_classify))
}

#[derive(Serialize, ToSchema)]
struct CosOut {
    name: String,
    /// The categories it may call; emergency calls are always allowed.
    allow: Vec<String>,
    /// International calls only to these E.164 country codes (null: any, if it allows international).
    countries: Option<Vec<String>>,
    /// How many extensions name it (null for the built-in default, which serves every extension
    /// without a class).
    extensions: Option<u64>,
    /// The built-in `default`, listed while no class of that name replaces it.
    built_in: bool,
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// The Classes of Service, by name, with how many extensions use each.
#[utoipa::path(get, path = "/api/v1/cos", tag = "cos",
    responses((status = 200, body = Vec<CosOut>), (status = 401, body = ApiErrorBody)))]
async fn list(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<CosOut>>> {
    let (rows, usage) = gui.db.run(|s| Ok((calls::cos_list(s)?, calls::cos_usage(s)?))).await?;
    let mut out = Vec::with_capacity(rows.len() + 1);
    if !rows.iter().any(|c| c.name == "default") {
        out.push(CosOut {
            name: "default".into(),
            allow: split(&ClassOfService::default_allow().to_string()),
            countries: None,
            extensions: None,
            built_in: true,
        });
    }
    out.extend(rows.into_iter().map(|c| CosOut {
        extensions: Some(usage.get(&c.name).copied().unwrap_or(0)),
        allow: split(&c.allow),
        countries: c.countries.as_deref().map(split),
        name: c.name,
        built_in: false,
    }));
    Ok(Json(out))
}

#[derive(Deserialize, ToSchema)]
struct CosIn {
    /// 1-64 letters, digits, '-', '_' or '.'; `default` replaces the built-in class.
    name: String,
    /// Categories it may call: internal, local, national, mobile, toll-free, international,
    /// premium-rate, emergency (always allowed).
    allow: Vec<String>,
    /// Restrict international calls to these E.164 country codes ("44", "1"); needs international.
    countries: Option<Vec<String>>,
}

/// Where a CoS operation's message points, in the order tried.
const FIELDS: &[(&str, &str)] = &[("--countries", "countries"), ("--allow", "allow")];

/// Adds a Class of Service.
#[utoipa::path(post, path = "/api/v1/cos", tag = "cos", request_body = CosIn,
    responses((status = 201, body = CosOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, description = "The name is taken", body = ApiErrorBody)))]
async fn add(State(gui): State<Shared>, Writer(a): Writer, JsonBody(b): JsonBody<CosIn>) -> ApiResult<Response> {
    let name = b.name.trim().to_owned();
    let (n, allow, countries) = (name.clone(), b.allow.join(","), b.countries.map(|c| c.join(",")));
    let added = gui
        .db
        .run(move |s| calls::add_cos(s, &n, &allow, countries.as_deref()))
        .await
        .map_err(|e| ApiError::from(e).field(FIELDS, Some("name")))?;
    tracing::info!(who = a.who, cos = name, "class of service added through the API");
    Ok(created(CosOut {
        name,
        allow: added.allow.iter().map(|c| c.as_str().to_owned()).collect(),
        countries: added.countries.map(|l| l.iter().map(ToString::to_string).collect()),
        extensions: Some(0),
        built_in: false,
    }))
}

async fn remove(gui: Shared, a: Authed, name: String) -> ApiResult<StatusCode> {
    let n = name.clone();
    gui.db.run(move |s| calls::delete_cos(s, &n)).await?;
    tracing::info!(who = a.who, cos = name, "class of service deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a Class of Service no extension uses.
#[utoipa::path(delete, path = "/api/v1/cos/{name}", tag = "cos",
    params(("name" = String, Path, description = "The class's name")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, description = "Extensions use it", body = ApiErrorBody)))]
async fn delete(State(gui): State<Shared>, Writer(a): Writer, Path(name): Path<String>) -> ApiResult<StatusCode> {
    remove(gui, a, name).await
}

async fn delete_classify(State(gui): State<Shared>, Writer(a): Writer) -> ApiResult<StatusCode> {
    remove(gui, a, "classify".into()).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct NumberQuery {
    /// The dialled number (at most 64 characters).
    number: String,
}

#[derive(Serialize, ToSchema)]
struct ClassifiedOut {
    number: String,
    /// It is an extension's number (category internal).
    extension: bool,
    /// Its category (null: none in the plan, so calls to it are refused).
    category: Option<String>,
    /// The numbering plan (the setting calls.numbering_plan; null for an extension).
    plan: Option<String>,
    /// The plan's pattern that matched.
    pattern: Option<String>,
    /// For an international number, the E.164 country code it calls (null: a spare code).
    country: Option<String>,
    country_name: Option<String>,
}

/// What category a dialled number is, as the Class of Service check sees it.
#[utoipa::path(get, path = "/api/v1/cos/classify", tag = "cos", params(NumberQuery),
    responses((status = 200, body = ClassifiedOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
async fn classify(
    State(gui): State<Shared>,
    _a: Authed,
    QueryOf(q): QueryOf<NumberQuery>,
) -> ApiResult<Json<ClassifiedOut>> {
    let n = q.number.clone();
    // Only the number's length is the caller's fault; a bad numbering plan is the setting's.
    let c = gui
        .db
        .run(move |s| calls::classify(s, &n))
        .await
        .map_err(|e| ApiError::from(e).field(&[("a number has at most", "number")], None))?;
    let mut out = ClassifiedOut {
        number: q.number,
        extension: false,
        category: None,
        plan: None,
        pattern: None,
        country: None,
        country_name: None,
    };
    match c {
        Classified::Extension => {
            out.extension = true;
            out.category = Some(Category::Internal.as_str().into());
        }
        Classified::Category { category, plan, pattern, country } => {
            out.category = Some(category.as_str().into());
            out.plan = Some(plan.into());
            out.pattern = Some(pattern);
            out.country = country.map(|c| c.to_string());
            out.country_name = country.map(|c| c.name().into());
        }
        Classified::Unknown { plan } => out.plan = Some(plan.into()),
    }
    Ok(Json(out))
}
