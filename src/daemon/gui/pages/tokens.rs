//! API tokens: the list (never a token, only its prefix), making one (shown once), revoking one.

use super::super::access::Authed;
use super::super::access::Writer;
use super::super::layout;
use super::super::shared::url_encode;
use super::super::shared::{Shared, status_of};
use super::ui::shown_once;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::clock::utc;
use pbxguard_app::tokens::{self, TokenScope, TokenView};

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/tokens", get(list).post(add)).route("/tokens/{name}/delete", post(delete))
}

#[derive(serde::Deserialize, Default)]
struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
}

fn page(who: &Authed, rows: &[TokenView], form: &AddForm, error: Option<&str>) -> Markup {
    layout::page(
        "API tokens",
        Some(who),
        html! {
            h1 { "API tokens" }
            p.hint {
                "Bearer tokens for the REST API (" a href="/api/v1/openapi.json" { "OpenAPI document" }
                ") and /metrics: send one as " code { "Authorization: Bearer TOKEN" } ". A token is shown once \
                 when made; only its hash is kept. The CLI does the same: " code { "pbxguard token add NAME --scope read" } "."
            }
            @if let Some(e) = error { (layout::error_box(e)) }
            form.inline #token-add method="post" action="/tokens" {
                (layout::csrf_field(who))
                label for="token-name" { "Name" input #token-name name="name" required maxlength="64" value=(form.name); }
                label for="token-scope" {
                    "Scope"
                    select #token-scope name="scope" {
                        option value="read" selected[form.scope != "admin"] { "read: look only" }
                        option value="admin" selected[form.scope == "admin"] { "admin: may change everything" }
                    }
                }
                button #token-add-submit type="submit" { "Make token" }
            }
            @if rows.is_empty() {
                p #no-tokens { "No API tokens yet." }
            } @else {
                div.table-wrap {
                    table #token-list {
                        thead { tr { th { "Name" } th { "Scope" } th { "Prefix" } th { "Created" } th { "Last used" } th {} } }
                        tbody {
                            @for t in rows {
                                tr {
                                    td { (t.name) }
                                    td { (t.scope.as_str()) }
                                    td { code { (t.prefix) "…" } }
                                    td { (utc(t.created_at * 1000)) }
                                    td { @match t.last_used { Some(s) => (utc(s * 1000)), None => span.hint { "never" } } }
                                    td {
                                        form.inline method="post" action=(format!("/tokens/{}/delete", url_encode(&t.name))) {
                                            (layout::csrf_field(who))
                                            button.danger type="submit" data-confirm=(format!("Revoke the API token {}?", t.name)) { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

async fn render(gui: &Shared, who: &Authed, form: &AddForm, error: Option<&pbxguard_app::Error>) -> Response {
    let rows = match gui.db.run(|s| tokens::list(s)).await {
        Ok(r) => r,
        Err(e) => return (status_of(&e), page(who, &[], form, Some(&e.to_string()))).into_response(),
    };
    let status = error.map_or(axum::http::StatusCode::OK, status_of);
    (status, page(who, &rows, form, error.map(ToString::to_string).as_deref())).into_response()
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    render(&gui, &who, &AddForm::default(), None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<AddForm>) -> Response {
    let (name, scope) = (f.name.trim().to_owned(), f.scope.clone());
    let made = match TokenScope::parse(&scope) {
        Ok(scope) => gui.db.run(move |s| tokens::add(s, &name, scope)).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(t) => {
            tracing::info!(admin = %who.who, token = t.view.name, scope = t.view.scope.as_str(), "API token made in the GUI");
            let what = format!("The {} token {}", t.view.scope.as_str(), t.view.name);
            shown_once("API token made", &who, &what, &t.token, "/tokens")
        }
        Err(e) => render(&gui, &who, &f, Some(&e)).await,
    }
}

async fn delete(State(gui): State<Shared>, Writer(who): Writer, Path(name): Path<String>) -> Response {
    let n = name.clone();
    match gui.db.run(move |s| tokens::delete(s, &n)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, token = name, "API token revoked in the GUI");
            Redirect::to("/tokens").into_response()
        }
        Err(e) => render(&gui, &who, &AddForm::default(), Some(&e)).await,
    }
}
