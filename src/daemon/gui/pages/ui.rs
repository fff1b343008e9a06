//! Small pieces the configuration pages share: the answer to a failed operation, the pager, optional
//! form fields, the "shown once" page for a generated secret.

use super::super::access::Authed;
use super::super::layout;
use super::super::shared::status_of;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use pbxguard_app::extensions::Page;

/// A form field left empty means "not given".
pub(super) fn given(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty()).then_some(v)
}

/// A page re-rendered after an operation failed: the operation's status, its message above the form.
pub(super) fn refused(e: &pbxguard_app::Error, page: Markup) -> Response {
    (status_of(e), page).into_response()
}

/// A page that could not even be read (the store failed): the message, nothing else.
pub(super) fn broken(title: &str, who: &Authed, e: &pbxguard_app::Error) -> Response {
    tracing::warn!(error = %e, page = title, "GUI page failed");
    (status_of(e), layout::page(title, Some(who), html! { h1 { (title) } (layout::error_box(&e.to_string())) }))
        .into_response()
}

/// "Page N of M" with previous and next links; `query` is the filter's query string without `page`
/// (already encoded).
pub(super) fn pager<T>(path: &str, query: &str, p: &Page<T>) -> Markup {
    let link = |n: u64| {
        if query.is_empty() { format!("{path}?page={n}") } else { format!("{path}?{query}&page={n}") }
    };
    let pages = p.pages();
    html! {
        nav.pager aria-label="pages" {
            @if p.page > 1 { a #prev rel="prev" href=(link(p.page - 1)) { "← Previous" } }
            span { "Page " (p.page) " of " (pages) " (" (p.total) " in all)" }
            @if p.page < pages { a #next rel="next" href=(link(p.page + 1)) { "Next →" } }
        }
    }
}

/// A secret, password or PIN generated for the operator: shown on this page once, never again.
pub(super) fn shown_once(title: &str, who: &Authed, what: &str, secret: &str, back: &str) -> Response {
    layout::page(
        title,
        Some(who),
        html! {
            h1 { (title) }
            div.notice role="status" {
                p { (what) " (shown once: copy it now, it is stored only as a hash):" }
                p { code #secret-once { (secret) } }
            }
            p { a.button href=(back) { "Back" } }
        },
    )
    .into_response()
}

/// `None` shown as a dash with a hint of what applies instead.
pub(super) fn or_default(v: Option<impl std::fmt::Display>, default: &str) -> Markup {
    html! {
        @match v {
            Some(v) => (v.to_string()),
            None => span.hint { (default) },
        }
    }
}
