//! Accounts: admin accounts (add, change a password, delete; the list is in `system`), API tokens and
//! voicemail mailboxes. The same operations as `pbxguard admin | token | vm` and the pages `/admins`,
//! `/tokens` and `/voicemail`.

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, Paged, QueryOf, created};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use pbxguard_app::admins::{self, NewPassword};
use pbxguard_app::mailboxes::{self, SetPin};
use pbxguard_app::tokens::{self, TokenScope, TokenView};
use pbxguard_store::Mailbox;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(add_admin))
        .routes(routes!(delete_admin))
        .routes(routes!(set_admin_password))
        .routes(routes!(list_tokens, add_token))
        .routes(routes!(delete_token))
        .routes(routes!(list_mailboxes))
        .routes(routes!(set_pin))
}

/// Where an admin operation's message points.
const ADMIN_FIELDS: &[(&str, &str)] = &[("admin name", "name"), ("password", "password")];

#[derive(Deserialize, ToSchema)]
struct PasswordIn {
    /// The password (the password policy: at least 8 characters with upper and lower case, a digit and
    /// a special character, not the account name); leave out and set `generate` for a strong random one.
    password: Option<String>,
    #[serde(default)]
    generate: bool,
}

impl PasswordIn {
    fn new_password(self) -> ApiResult<NewPassword> {
        match (self.password, self.generate) {
            (Some(p), false) => Ok(NewPassword::Given(p)),
            (None, true) => Ok(NewPassword::Generate),
            _ => Err(ApiError::invalid("give either \"password\" or \"generate\": true", "password")),
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct AdminIn {
    /// 1 to 64 letters, digits, '.', '_' or '-'.
    name: String,
    #[serde(flatten)]
    password: PasswordIn,
}

#[derive(Serialize, ToSchema)]
struct AdminCreated {
    name: String,
    /// Always true: whoever chose the password is not the account's owner.
    must_change: bool,
    /// The generated password, shown this once (null when the password was given).
    password: Option<String>,
}

/// Adds an admin account under the password policy; it must change its password at its first login.
#[utoipa::path(post, path = "/api/v1/admins", tag = "admins", request_body = AdminIn,
    responses((status = 201, body = AdminCreated),
        (status = 400, description = "Invalid name, or a password against the policy (every reason in `message`)", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn add_admin(
    State(gui): State<Shared>,
    Writer(a): Writer,
    JsonBody(b): JsonBody<AdminIn>,
) -> ApiResult<Response> {
    let new = b.password.new_password()?;
    let name = b.name.trim().to_owned();
    let n = name.clone();
    let password = gui
        .db
        .run(move |s| admins::add(s, &n, new))
        .await
        .map_err(|e| ApiError::from(e).field(ADMIN_FIELDS, Some("name")))?;
    tracing::info!(who = a.who, added = name, "admin account added through the API");
    Ok(created(AdminCreated { name, must_change: true, password }))
}

/// Deletes an admin account and ends its sessions: never the last one, never the session's own.
#[utoipa::path(delete, path = "/api/v1/admins/{name}", tag = "admins",
    params(("name" = String, Path, description = "The account name")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody),
        (status = 409, description = "The last account, or the one this session is logged in as", body = ApiErrorBody)))]
async fn delete_admin(State(gui): State<Shared>, Writer(a): Writer, Path(name): Path<String>) -> ApiResult<StatusCode> {
    // A token's `who` is `token:NAME`, which no account name can be (no ':'), so only a session is
    // kept from deleting its own account.
    let (n, acting) = (name.clone(), a.who.clone());
    gui.db.run(move |s| admins::delete(s, &n, Some(&acting))).await?;
    gui.sessions.end_all(&name);
    tracing::info!(who = a.who, deleted = name, "admin account deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct PasswordSet {
    /// The generated password, shown this once (null when the password was given).
    password: Option<String>,
}

/// Changes an admin's password under the password policy; the account's other sessions end.
#[utoipa::path(put, path = "/api/v1/admins/{name}/password", tag = "admins",
    params(("name" = String, Path, description = "The account name")), request_body = PasswordIn,
    responses((status = 200, body = PasswordSet),
        (status = 400, description = "Against the password policy (every reason in `message`), or the current one", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn set_admin_password(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<PasswordIn>,
) -> ApiResult<Json<PasswordSet>> {
    let new = b.new_password()?;
    let n = name.clone();
    let password = gui
        .db
        .run(move |s| admins::set_password(s, &n, new))
        .await
        .map_err(|e| ApiError::from(e).field(ADMIN_FIELDS, Some("password")))?;
    // Whoever held that password is logged out; changing one's own keeps this session.
    if name != a.who {
        gui.sessions.end_all(&name);
    }
    tracing::info!(who = a.who, account = name, "admin password changed through the API");
    Ok(Json(PasswordSet { password }))
}

#[derive(Serialize, ToSchema)]
struct TokenOut {
    name: String,
    /// read (look only) or admin (may change everything).
    scope: &'static str,
    /// The token's first characters, to tell tokens apart.
    prefix: String,
    created_at: i64,
    /// Recorded at most once a minute.
    last_used: Option<i64>,
}

impl From<TokenView> for TokenOut {
    fn from(t: TokenView) -> Self {
        Self {
            name: t.name,
            scope: t.scope.as_str(),
            prefix: t.prefix,
            created_at: t.created_at,
            last_used: t.last_used,
        }
    }
}

/// API tokens (never the tokens themselves: only their hashes are kept).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenOut>), (status = 401, body = ApiErrorBody)))]
async fn list_tokens(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<Vec<TokenOut>>> {
    let rows = gui.db.run(|s| tokens::list(s)).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
struct TokenIn {
    /// 1 to 64 letters, digits, '.', '_' or '-'.
    name: String,
    /// read or admin.
    scope: String,
}

#[derive(Serialize, ToSchema)]
struct TokenCreated {
    token: TokenOut,
    /// The token to send as `Authorization: Bearer TOKEN`, shown this once.
    secret: String,
}

/// Makes an API token; the token is in the answer, and only there.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenIn,
    responses((status = 201, body = TokenCreated), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn add_token(
    State(gui): State<Shared>,
    Writer(a): Writer,
    JsonBody(b): JsonBody<TokenIn>,
) -> ApiResult<Response> {
    let scope = TokenScope::parse(&b.scope).map_err(|e| ApiError::from(e).field(&[], Some("scope")))?;
    let name = b.name.trim().to_owned();
    let made = gui
        .db
        .run(move |s| tokens::add(s, &name, scope))
        .await
        .map_err(|e| ApiError::from(e).field(&[], Some("name")))?;
    tracing::info!(
        who = a.who,
        token = made.view.name,
        scope = made.view.scope.as_str(),
        "API token made through the API"
    );
    Ok(created(TokenCreated { token: made.view.into(), secret: made.token }))
}

/// Revokes an API token: it stops working within a second.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "The token's name")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn delete_token(State(gui): State<Shared>, Writer(a): Writer, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let n = name.clone();
    gui.db.run(move |s| tokens::delete(s, &n)).await?;
    tracing::info!(who = a.who, token = name, "API token revoked through the API");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct MailboxOut {
    extension: String,
    /// The PIN is the extension number: at first login the owner must choose a new PIN (and record a
    /// name and greeting where forced).
    must_initialise: bool,
    force_name: bool,
    force_greeting: bool,
    name_recorded: bool,
    greeting_recorded: bool,
    updated_at: i64,
}

impl From<Mailbox> for MailboxOut {
    fn from(m: Mailbox) -> Self {
        Self {
            extension: m.extension,
            must_initialise: m.must_initialise,
            force_name: m.force_name,
            force_greeting: m.force_greeting,
            name_recorded: m.name_recorded,
            greeting_recorded: m.greeting_recorded,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MailboxQuery {
    /// 1-based page (default 1).
    page: Option<u64>,
    /// Rows per page, 1-500 (default 50).
    per_page: Option<u64>,
    /// Part of the mailbox's extension number.
    q: Option<String>,
}

/// One page of voicemail mailboxes, in extension order (never their PINs).
#[utoipa::path(get, path = "/api/v1/mailboxes", tag = "voicemail", params(MailboxQuery),
    responses((status = 200, body = Paged<MailboxOut>), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
async fn list_mailboxes(
    State(gui): State<Shared>,
    _a: Authed,
    QueryOf(q): QueryOf<MailboxQuery>,
) -> ApiResult<Json<Paged<MailboxOut>>> {
    let (page, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(50));
    let text = q.q.filter(|t| !t.is_empty());
    let p = gui
        .db
        .run(move |s| mailboxes::page(s, text.as_deref(), page, per_page))
        .await
        .map_err(|e| ApiError::from(e).field(&[("per page", "per_page"), ("search", "q")], None))?;
    Ok(Json(Paged::of(p)))
}

#[derive(Deserialize, ToSchema)]
struct PinIn {
    /// Digits under the PIN policy (voicemail.pin_min_length, not one digit repeated, not a sequence,
    /// not a common PIN); the extension number itself forces initialisation at first login.
    pin: String,
    /// Force recording a name at first login (null: keep, or on for a new mailbox).
    force_name: Option<bool>,
    /// Force recording a greeting at first login (null: keep, or on for a new mailbox).
    force_greeting: Option<bool>,
}

/// Sets a mailbox's PIN (making the mailbox if the extension has none).
#[utoipa::path(put, path = "/api/v1/mailboxes/{extension}/pin", tag = "voicemail",
    params(("extension" = String, Path, description = "The extension number")), request_body = PinIn,
    responses((status = 200, body = MailboxOut),
        (status = 400, description = "Against the PIN policy (every reason in `message`)", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, description = "No such extension", body = ApiErrorBody)))]
async fn set_pin(
    State(gui): State<Shared>,
    Writer(a): Writer,
    Path(extension): Path<String>,
    JsonBody(b): JsonBody<PinIn>,
) -> ApiResult<Json<MailboxOut>> {
    let ext = extension.clone();
    let m = gui
        .db
        .run(move |s| {
            mailboxes::set_pin(
                s,
                SetPin { extension: &ext, pin: &b.pin, force_name: b.force_name, force_greeting: b.force_greeting },
            )
        })
        .await
        .map_err(|e| ApiError::from(e).field(&[], Some("pin")))?;
    tracing::info!(who = a.who, mailbox = extension, "voicemail PIN set through the API");
    Ok(Json(m.into()))
}
