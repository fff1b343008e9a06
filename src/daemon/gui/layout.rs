//! The frame of every page: navigation, the logged-in admin, logout, and the static files (one
//! stylesheet, one script, served from the binary; nothing from other sites, no inline code).

use super::access::Authed;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The navigation: (path, label). A page not built yet is absent rather than a dead link.
pub(crate) const NAV: &[(&str, &str)] = &[
    ("/", "Dashboard"),
    ("/extensions", "Extensions"),
    ("/voicemail", "Voicemail"),
    ("/acls", "ACL groups"),
    ("/trunks", "Trunks"),
    ("/routes", "Routes"),
    ("/dids", "DIDs"),
    ("/cos", "Classes of service"),
    ("/bans", "Bans"),
    ("/trusted", "Trusted"),
    ("/blacklists", "Blacklists"),
    ("/events", "Events"),
    ("/calls", "Calls"),
    ("/settings", "Settings"),
    ("/firewall", "Firewall"),
    ("/ssh", "SSH"),
    ("/audit", "Audit"),
    ("/admins", "Admins"),
    ("/tokens", "API tokens"),
    ("/certs", "Certificates"),
];

/// A whole page. `who` is `None` on the login page and during a forced password change: no
/// navigation then, since nothing else is reachable.
pub(crate) fn page(title: &str, who: Option<&Authed>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · pbxguard" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                @if let Some(who) = who {
                    header {
                        a.brand href="/" { "pbxguard" }
                        nav aria-label="main" {
                            ul { @for (href, label) in NAV { li { a href=(href) { (label) } } } }
                        }
                        form.logout method="post" action="/logout" {
                            (csrf_field(who))
                            span.who { (who.who) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden field every form that changes something carries.
pub(crate) fn csrf_field(who: &Authed) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf); }
}

/// An operation's failure, shown above the form that caused it.
pub(crate) fn error_box(message: &str) -> Markup {
    html! {
        div.error role="alert" {
            @for line in message.lines().filter(|l| !l.trim().is_empty()) { p { (line) } }
        }
    }
}

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
