//! Login on the admin accounts (argon2id through `pbxguard_app::admins`, with the number of hashes
//! computed at once bounded by the session table), the forced password change, logout.

use super::access::{Authed, Scope, cookie_token};
use super::layout;
use super::sessions::{ABSOLUTE, COOKIE};
use super::shared::{Peer, Shared, reasons, status_of};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use pbxguard_app::admins::{self, Login, NewPassword};
use pbxguard_app::clock::now_ms;
use pbxguard_shield::{Observation, Service};
use std::time::Duration;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/password", get(password_page).post(change_password))
}

#[derive(serde::Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

/// Only a local path: never a redirect to another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn login_form(next: &str, error: Option<&str>, user: &str) -> Markup {
    layout::page(
        "Log in",
        None,
        html! {
            form.narrow method="post" action="/login" {
                h1 { "pbxguard" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="next" value=(next);
                label for="user" { "Admin name" }
                input #user name="user" autocomplete="username" required value=(user);
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
                button #login type="submit" { "Log in" }
            }
        },
    )
}

async fn login_page(Query(q): Query<NextQuery>) -> Markup {
    login_form(safe_next(q.next.as_deref()), None, "")
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

fn session_cookie(token: &str) -> String {
    // __Host-: Secure, Path=/ and no Domain, so no other site and no subdomain can set or read it.
    format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}", ABSOLUTE.as_secs())
}

async fn login(
    State(gui): State<Shared>,
    axum::Extension(Peer(ip)): axum::Extension<Peer>,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    if f.user.len() > 256 || f.password.len() > 1024 {
        return (StatusCode::BAD_REQUEST, "too long").into_response();
    }
    let Ok(Ok(_permit)) = tokio::time::timeout(Duration::from_secs(3), gui.sessions.hashing.acquire()).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy: try again in a moment").into_response();
    };
    let (user, password) = (f.user.clone(), f.password);
    let outcome = gui.db.run(move |s| admins::login(s, &user, &password, Some(ip))).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "GUI login");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the login could not be checked").into_response();
        }
    };
    let now = now_ms();
    let next = safe_next(f.next.as_deref()).to_owned();
    match outcome {
        Login::Refused => {
            gui.state.with_gate(|g| g.observe_on(now, Service::Gui, Observation::AuthFailed { ip, user: &f.user }));
            tracing::info!(source = %ip, user = %f.user, "GUI login refused");
            (StatusCode::UNAUTHORIZED, login_form(&next, Some("Wrong name or password."), &f.user)).into_response()
        }
        Login::Accepted | Login::MustChange => {
            gui.state.with_gate(|g| g.observe_on(now, Service::Gui, Observation::AuthSucceeded { ip, user: &f.user }));
            let must = outcome == Login::MustChange;
            let token = gui.sessions.create(&f.user, must);
            tracing::info!(source = %ip, user = %f.user, must_change = must, "GUI login");
            let to = if must { "/password" } else { next.as_str() };
            ([(header::SET_COOKIE, session_cookie(&token))], Redirect::to(to)).into_response()
        }
    }
}

async fn logout(State(gui): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie_token(&headers) {
        gui.sessions.remove(t);
    }
    let clear = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

/// The session behind a cookie, must-change or not (the password page is the one page a must-change
/// session may see).
fn any_session(gui: &Shared, headers: &HeaderMap) -> Option<(String, String, bool, String)> {
    let t = cookie_token(headers)?;
    let (admin, csrf, must) = gui.sessions.get(t)?;
    Some((admin, csrf, must, t.to_owned()))
}

fn password_form(admin: &str, csrf: &str, must: bool, reasons: &[String]) -> Markup {
    let who = Authed { who: admin.to_owned(), scope: Scope::Admin, csrf: csrf.to_owned() };
    layout::page(
        "Change password",
        (!must).then_some(&who),
        html! {
            form.narrow method="post" action="/password" {
                h1 { "Change the password of " (admin) }
                @if must {
                    p.notice { "This account still has its first password. Choose a new one: nothing else is available until then." }
                }
                @if !reasons.is_empty() {
                    div.error role="alert" { p { "The new password was refused:" } ul #reasons { @for r in reasons { li { (r) } } } }
                }
                (layout::csrf_field(&who))
                label for="new" { "New password" }
                input #new name="new" type="password" autocomplete="new-password" required;
                label for="confirm" { "New password again" }
                input #confirm name="confirm" type="password" autocomplete="new-password" required;
                p.hint { "At least 8 characters with upper and lower case, a digit and a special character; not the account name." }
                button #change type="submit" { "Change password" }
            }
        },
    )
}

async fn password_page(State(gui): State<Shared>, headers: HeaderMap) -> Response {
    match any_session(&gui, &headers) {
        Some((admin, csrf, must, _)) => password_form(&admin, &csrf, must, &[]).into_response(),
        None => Redirect::to("/login?next=/password").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    new: String,
    confirm: String,
}

async fn change_password(
    State(gui): State<Shared>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<PasswordForm>,
) -> Response {
    let Some((admin, csrf, must, token)) = any_session(&gui, &headers) else {
        return Redirect::to("/login?next=/password").into_response();
    };
    if f.new != f.confirm {
        let r = ["the two passwords differ".to_owned()];
        return (StatusCode::BAD_REQUEST, password_form(&admin, &csrf, must, &r)).into_response();
    }
    let name = admin.clone();
    let Ok(_permit) = gui.sessions.hashing.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    };
    match gui.db.run(move |s| admins::set_password(s, &name, NewPassword::Given(f.new))).await {
        Ok(_) => {
            gui.sessions.changed(&token, &admin);
            tracing::info!(admin, "admin password changed in the GUI");
            Redirect::to("/").into_response()
        }
        Err(e) => {
            let reasons = reasons(&e.to_string());
            (status_of(&e), password_form(&admin, &csrf, must, &reasons)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_after_login_stay_on_this_site() {
        assert_eq!(safe_next(Some("/extensions?page=2")), "/extensions?page=2");
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", ""] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
    }
}
