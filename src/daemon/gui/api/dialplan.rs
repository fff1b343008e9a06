//! The dial plan: trunks (the carriers calls leave through), outbound routes (which trunk a dialled
//! number takes) and DIDs (the inbound numbers a trunk sends, each ringing one extension).

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, QueryOf, created};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use pbxguard_app::calls::{self, NewTrunk, TrunkTransport};
use pbxguard_store::{DidRow, RouteRow, TrunkRow};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(list_trunks, add_trunk))
        .routes(routes!(delete_trunk))
        .routes(routes!(list_routes, add_route))
        .routes(routes!(match_route))
        .routes(routes!(delete_route))
        .routes(routes!(list_dids, add_did))
        .routes(routes!(delete_did))
}

#[derive(Serialize, ToSchema)]
struct TrunkOut {
    name: String,
    host: String,
    port: u16,
    /// udp, tcp or tls.
    transport: String,
    /// Digest credentials towards the trunk (the secret is stored only as hashes, never shown).
    username: Option<String>,
    realm: Option<String>,
    /// Registers at the trunk for this many seconds (null: does not register).
    register: Option<u32>,
    /// Whether the running daemon's registration succeeded (null: it does not register, or has not
    /// tried yet).
    registered: Option<bool>,
    /// Its TLS certificate must chain to the CA given when it was added, not the public roots.
    own_ca: bool,
    /// Extensions may transfer calls to it (REFER), each checked like a new call.
    allow_refer: bool,
}

impl TrunkOut {
    fn new(t: TrunkRow, live: &HashMap<String, bool>) -> Self {
        let registered = t.register_expires.and_then(|_| live.get(&t.name).copied());
        Self {
            registered,
            name: t.name,
            host: t.host,
            port: t.port,
            transport: t.transport,
            username: t.username,
            realm: t.realm,
            register: t.register_expires,
            own_ca: t.tls_ca.is_some(),
            allow_refer: t.allow_refer,
        }
    }
}

/// The trunks' registration state: only the running daemon knows whether a registration succeeded.
fn live(gui: &Shared) -> HashMap<String, bool> {
    gui.state.sip().trunk_registrations().into_iter().collect()
}

/// The trunks, by name.
#[utoipa::path(get, path = "/api/v1/trunks", tag = "trunks",
    responses((status = 200, body = Vec<TrunkOut>), (status = 401, body = ApiErrorBody)))]
async fn list_trunks(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<TrunkOut>>> {
    let rows = gui.db.run(|s| calls::trunks(s)).await?;
    let live = live(&gui);
    Ok(Json(rows.into_iter().map(|t| TrunkOut::new(t, &live)).collect()))
}

#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

#[derive(Deserialize, ToSchema)]
struct TrunkIn {
    /// 1-64 letters, digits, '-', '_' or '.'.
    name: String,
    /// A host name (resolved now, so a typo is refused here) or an address.
    host: String,
    /// Default 5060.
    port: Option<u16>,
    #[serde(default)]
    transport: Transport,
    /// Credentials, if the trunk challenges our calls: all three or none.
    username: Option<String>,
    secret: Option<String>,
    realm: Option<String>,
    /// Register at the trunk for this many seconds, 60-86400 (needs the credentials; null: do not).
    register: Option<u32>,
    /// With tls: PEM certificates the trunk's certificate must chain to (null: the public roots).
    tls_ca: Option<String>,
    /// Allow transfers (REFER) to it, each checked like a new call.
    #[serde(default)]
    allow_refer: bool,
}

/// Where a trunk operation's message points, in the order tried.
const TRUNK_FIELDS: &[(&str, &str)] = &[
    ("trunk name", "name"),
    ("--port", "port"),
    ("trunk host", "host"),
    ("--register", "register"),
    ("--tls-ca", "tls_ca"),
    ("credentials", "username"),
];

/// Adds a trunk; its host is resolved now. The secret is stored only as digest hashes.
#[utoipa::path(post, path = "/api/v1/trunks", tag = "trunks", request_body = TrunkIn,
    responses((status = 201, body = TrunkOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, description = "The name is taken", body = ApiErrorBody)))]
async fn add_trunk(
    State(gui): State<Shared>,
    Writer(a): Writer,
    JsonBody(b): JsonBody<TrunkIn>,
) -> ApiResult<Response> {
    let transport = match b.transport {
        Transport::Udp => TrunkTransport::Udp,
        Transport::Tcp => TrunkTransport::Tcp,
        Transport::Tls => TrunkTransport::Tls,
    };
    let name = b.name.trim().to_owned();
    let new = NewTrunk {
        name: name.clone(),
        host: b.host.trim().to_owned(),
        port: b.port.unwrap_or(5060),
        transport,
        username: b.username,
        secret: b.secret,
        realm: b.realm,
        register: b.register,
        tls_ca: b.tls_ca,
        allow_refer: b.allow_refer,
    };
    let n = name.clone();
    // Resolving the host may wait for DNS: it runs on the blocking thread with the store call.
    let row = gui
        .db
        .run(move |s| {
            calls::add_trunk(s, new, &crate::resolve::System)?;
            calls::trunks(s)?
                .into_iter()
                .find(|t| t.name == n)
                .ok_or_else(|| pbxguard_app::not_found!("trunk {n} was deleted as it was added"))
        })
        .await
        .map_err(|e| ApiError::from(e).field(TRUNK_FIELDS, Some("host")))?;
    tracing::info!(who = a.who, trunk = name, "trunk added through the API");
    Ok(created(TrunkOut::new(row, &HashMap::new())))
}

/// Deletes a trunk no route uses.
#[utoipa::path(delete, path = "/api/v1/trunks/{name}", tag = "trunks",
    params(("name" = String, Path, description = "The trunk's name")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, description = "Routes use it", body = ApiErrorBody)))]
async fn delete_trunk(State(gui): State<Shared>, Writer(a): Writer, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let n = name.clone();
    gui.db.run(move |s| calls::delete_trunk(s, &n)).await?;
    tracing::info!(who = a.who, trunk = name, "trunk deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct RouteOut {
    id: i64,
    /// A number, an Asterisk pattern (`_011.`) or a regular expression starting with `^`.
    pattern: String,
    trunk: String,
    /// Leading digits removed before the call is sent to the trunk.
    strip: u32,
    /// Then added in front.
    prepend: String,
}

impl From<RouteRow> for RouteOut {
    fn from(r: RouteRow) -> Self {
        Self { id: r.id, pattern: r.pattern, trunk: r.trunk, strip: r.strip, prepend: r.prepend }
    }
}

/// The outbound routes in the order the proxy tries them: the first whose pattern matches decides.
#[utoipa::path(get, path = "/api/v1/routes", tag = "routes",
    responses((status = 200, body = Vec<RouteOut>), (status = 401, body = ApiErrorBody)))]
async fn list_routes(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<RouteOut>>> {
    let rows = gui.db.run(|s| calls::routes(s)).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
struct RouteIn {
    /// A number, an Asterisk pattern (X any digit, Z 1-9, N 2-9, [1-5] a set, `.` one or more, `!`
    /// zero or more: `_00.`) or a regular expression starting with `^`.
    pattern: String,
    /// The trunk's name.
    trunk: String,
    /// Leading digits to remove (default 0).
    #[serde(default)]
    strip: u32,
    /// Digits (+ * #) to add in front after stripping (default none).
    #[serde(default)]
    prepend: String,
}

/// Appends a route: it is tried after every existing one.
#[utoipa::path(post, path = "/api/v1/routes", tag = "routes", request_body = RouteIn,
    responses((status = 201, body = RouteOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, description = "No such trunk", body = ApiErrorBody)))]
async fn add_route(
    State(gui): State<Shared>,
    Writer(a): Writer,
    JsonBody(b): JsonBody<RouteIn>,
) -> ApiResult<Response> {
    let (pattern, prepend) = (b.pattern.trim().to_owned(), b.prepend.trim().to_owned());
    let row = gui
        .db
        .run(move |s| {
            let id = calls::add_route(s, &pattern, &b.trunk, b.strip, &prepend)?;
            calls::routes(s)?
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| pbxguard_app::not_found!("route {id} was deleted as it was added"))
        })
        .await
        .map_err(|e| ApiError::from(e).field(&[("--prepend", "prepend"), ("trunk", "trunk")], Some("pattern")))?;
    tracing::info!(who = a.who, route = row.id, "route added through the API");
    Ok(created(RouteOut::from(row)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct NumberQuery {
    /// The dialled number: 1-32 digits, + * or #.
    number: String,
}

#[derive(Serialize, ToSchema)]
struct RouteMatch {
    number: String,
    /// The route it takes (null: none matches, so a call to it is refused unless it is an extension).
    route: Option<RouteOut>,
    /// The number the trunk is sent, after strip and prepend.
    sent: Option<String>,
}

/// Which route a dialled number takes, and the number its trunk is sent.
#[utoipa::path(get, path = "/api/v1/routes/match", tag = "routes", params(NumberQuery),
    responses((status = 200, body = RouteMatch), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
async fn match_route(
    State(gui): State<Shared>,
    _a: Authed,
    QueryOf(q): QueryOf<NumberQuery>,
) -> ApiResult<Json<RouteMatch>> {
    let n = q.number.clone();
    let found =
        gui.db.run(move |s| calls::route_for(s, &n)).await.map_err(|e| ApiError::from(e).field(&[], Some("number")))?;
    let (route, sent) = match found {
        Some((r, sent)) => (Some(r.into()), Some(sent)),
        None => (None, None),
    };
    Ok(Json(RouteMatch { number: q.number, route, sent }))
}

/// Deletes a route.
#[utoipa::path(delete, path = "/api/v1/routes/{id}", tag = "routes",
    params(("id" = i64, Path, description = "The route's id (from the list)")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn delete_route(State(gui): State<Shared>, Writer(a): Writer, Path(id): Path<String>) -> ApiResult<StatusCode> {
    // Taken as text so that a wrong id is a typed error naming the field, not the router's plain text.
    let Ok(id) = id.trim().parse::<i64>() else {
        return Err(ApiError::invalid(format!("route {id:?}: not a route id (GET /api/v1/routes lists them)"), "id"));
    };
    gui.db.run(move |s| calls::delete_route(s, id)).await?;
    tracing::info!(who = a.who, route = id, "route deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize, ToSchema)]
struct Did {
    /// The inbound number, as the trunk sends it.
    number: String,
    /// The extension it rings.
    extension: String,
}

impl From<DidRow> for Did {
    fn from(d: DidRow) -> Self {
        Self { number: d.number, extension: d.extension }
    }
}

/// The DIDs, by number.
#[utoipa::path(get, path = "/api/v1/dids", tag = "dids",
    responses((status = 200, body = Vec<Did>), (status = 401, body = ApiErrorBody)))]
async fn list_dids(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<Did>>> {
    let rows = gui.db.run(|s| calls::dids(s)).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Adds a DID: calls from a trunk to the number ring the extension.
#[utoipa::path(post, path = "/api/v1/dids", tag = "dids", request_body = Did,
    responses((status = 201, body = Did), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, description = "No such extension", body = ApiErrorBody),
        (status = 409, description = "The number is taken", body = ApiErrorBody)))]
async fn add_did(State(gui): State<Shared>, Writer(a): Writer, JsonBody(b): JsonBody<Did>) -> ApiResult<Response> {
    let d = Did { number: b.number.trim().to_owned(), extension: b.extension.trim().to_owned() };
    let (number, ext) = (d.number.clone(), d.extension.clone());
    gui.db
        .run(move |s| calls::add_did(s, &number, &ext))
        .await
        .map_err(|e| ApiError::from(e).field(&[("does not exist", "extension")], Some("number")))?;
    tracing::info!(who = a.who, did = d.number, "DID added through the API");
    Ok(created(d))
}

/// Deletes a DID.
#[utoipa::path(delete, path = "/api/v1/dids/{number}", tag = "dids",
    params(("number" = String, Path, description = "The inbound number")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn delete_did(State(gui): State<Shared>, Writer(a): Writer, Path(number): Path<String>) -> ApiResult<StatusCode> {
    let n = number.clone();
    gui.db.run(move |s| calls::delete_did(s, &n)).await?;
    tracing::info!(who = a.who, did = number, "DID deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}
