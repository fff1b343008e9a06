//! The REST API, `/api/v1/...`: JSON over the same operations as the pages and the CLI, and
//! `/metrics` for Prometheus.
//!
//! Every route is registered through one `OpenApiRouter` together with its `#[utoipa::path]`
//! description, so the router and the OpenAPI document (`/api/v1/openapi.json`, served without
//! authentication: it describes the API, it holds no data) cannot drift apart. Authentication is an
//! API token (`Authorization: Bearer TOKEN`, `pbxguard token add`) or an admin session (the cookie,
//! with the `x-csrf-token` header on changes); a `read` token gets 403 on every change.

mod accounts;
mod acls;
mod certs;
mod common;
mod cos;
mod dialplan;
mod extensions;
mod host;
mod security;
mod system;

use super::sessions::COOKIE;
use super::shared::Shared;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use common::ApiErrorBody;
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pbxguard",
        description = "The REST API of pbxguard: the same operations as the CLI and the admin GUI. \
                       Authenticate with an API token (`pbxguard token add NAME --scope read|admin`) as \
                       `Authorization: Bearer TOKEN`, or with an admin session cookie plus the session's \
                       `x-csrf-token` header on changes. Errors are `{\"error\": KIND, \"message\": TEXT, \
                       \"field\": NAME|null}` with status 400 (invalid), 401, 403, 404 (not-found), 409 \
                       (conflict) or 500 (internal)."
    ),
    modifiers(&Schemes),
    security(("bearer" = []), ("session" = [])),
    components(schemas(ApiErrorBody))
)]
struct ApiDoc;

struct Schemes;

impl Modify for Schemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(COOKIE))));
    }
}

/// Every API route with its description.
fn api() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi))
        .merge(system::routes())
        .merge(extensions::routes())
        .merge(security::routes())
        .merge(acls::routes())
        .merge(dialplan::routes())
        .merge(cos::routes())
        .merge(accounts::routes())
        .merge(certs::routes())
        .merge(host::routes())
}

pub(super) fn routes() -> Router<Shared> {
    api().split_for_parts().0
}

/// The OpenAPI document of every route in [`routes`].
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| document().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_describes_every_operation_with_its_errors() {
        let doc = super::document();
        let json: serde_json::Value = serde_json::from_str(&doc.to_json().unwrap()).unwrap();
        let paths = json["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v1/extensions"));
        assert!(paths.contains_key("/metrics"));
        assert!(paths.contains_key("/api/v1/openapi.json"));
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    path == "/api/v1/openapi.json" || path == "/metrics" || op["responses"].get("401").is_some(),
                    "{method} {path} does not document 401"
                );
                if method != "get" {
                    assert!(
                        op["responses"].get("403").is_some(),
                        "{method} {path} does not document 403 (read tokens)"
                    );
                }
            }
        }
    }
}
