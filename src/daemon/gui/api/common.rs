//! What every API handler shares: typed errors (`{"error", "message", "field"}`) and extractors whose
//! rejections are typed errors too.

use crate::daemon::gui::shared::{json_error, status_of};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct ApiErrorBody {
    /// `invalid`, `not-found`, `conflict`, `internal`, `unauthorized`, `forbidden`, `must-change`.
    error: String,
    /// What is wrong and how to fix it.
    message: String,
    /// The request field at fault, when one is.
    field: Option<String>,
}

/// An operation's failure as an answer. Internal errors are logged, not shown: their text may name
/// files and database details.
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    pub(super) fn invalid(message: impl Into<String>, field: &'static str) -> Self {
        Self { status: StatusCode::BAD_REQUEST, kind: "invalid", message: message.into(), field: Some(field) }
    }

    /// Names the field at fault: the first `(needle, field)` whose needle the message contains, else
    /// `default` (for an invalid input only: a missing object is not a field's fault unless named).
    pub(super) fn field(mut self, rules: &[(&str, &'static str)], default: Option<&'static str>) -> Self {
        if self.kind == "invalid" || self.kind == "not-found" {
            let lower = self.message.to_lowercase();
            self.field = rules
                .iter()
                .find(|(needle, _)| lower.contains(&needle.to_lowercase()))
                .map(|(_, f)| *f)
                .or(if self.kind == "invalid" { default } else { None });
        }
        self
    }
}

impl From<pbxguard_app::Error> for ApiError {
    fn from(e: pbxguard_app::Error) -> Self {
        use pbxguard_app::Error as E;
        let status = status_of(&e);
        let (kind, message) = match e {
            E::Invalid(m) => ("invalid", m),
            E::NotFound(m) => ("not-found", m),
            E::Conflict(m) => ("conflict", m),
            e @ (E::Io(_) | E::Store(_)) => {
                tracing::error!(error = %e, "API operation failed");
                ("internal", "the operation failed on the server; the daemon's log says why".to_owned())
            }
        };
        Self { status, kind, message, field: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.status, self.kind, &self.message, self.field)
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body whose rejection (bad JSON, a missing or mistyped field) is a typed error.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) => {
                // A body that is not the schema (bad JSON, a missing or mistyped field) is an invalid
                // input like any other; a body too large or not JSON keeps its own status.
                let status = match e.status() {
                    s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(json_error(status, "invalid", &e.body_text(), None))
            }
        }
    }
}

/// Query parameters whose rejection is a typed error.
pub(crate) struct QueryOf<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryOf<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(json_error(e.status(), "invalid", &e.body_text(), None)),
        }
    }
}

/// Answers `201 Created` with a JSON body.
pub(super) fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

/// One page of a long list, as every paged list answers it.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct Paged<T> {
    items: Vec<T>,
    /// Rows the filter matches in all.
    total: u64,
    page: u64,
    per_page: u64,
    pages: u64,
}

impl<T> Paged<T> {
    /// The page an operation read, each row in the API's shape.
    pub(super) fn of<U: Into<T>>(p: pbxguard_app::extensions::Page<U>) -> Self {
        let pages = p.pages();
        Self {
            items: p.items.into_iter().map(Into::into).collect(),
            total: p.total,
            page: p.page,
            per_page: p.per_page,
            pages,
        }
    }
}
