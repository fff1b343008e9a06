//! Trusted networks: never banned, never flood-limited. List, add (a ban inside one is overridden
//! while it is trusted, and said so), remove.

use super::super::access::Authed;
use super::super::access::Writer;
use super::super::layout;
use super::super::shared::Shared;
use super::ui::{broken, given, refused};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::security;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/trusted", get(list).post(add)).route("/trusted/del", post(del))
}

#[derive(serde::Deserialize, Default)]
struct TrustForm {
    #[serde(default)]
    cidr: String,
    #[serde(default)]
    note: String,
}

fn body(
    who: &Authed,
    rows: &[(String, Option<String>)],
    form: &TrustForm,
    notice: &[String],
    error: Option<&str>,
) -> Markup {
    html! {
        h1 { "Trusted networks" }
        p.hint { "Addresses here are never banned and never flood-limited. Trunks and the daemon's own addresses are trusted as well." }
        form.inline #trust-add method="post" action="/trusted" {
            (layout::csrf_field(who))
            label for="cidr" { "Address or network" input #cidr name="cidr" required value=(form.cidr) placeholder="192.0.2.0/24"; }
            label for="note" { "Note" input #note name="note" value=(form.note); }
            button #trust-submit type="submit" { "Trust" }
        }
        @if let Some(e) = error { (layout::error_box(e)) }
        @for n in notice { p.notice { (n) } }
        div.table-wrap { table #trusted-list {
            thead { tr { th { "Network" } th { "Note" } th {} } }
            tbody { @for (cidr, note) in rows { tr {
                td { (cidr) } td { (note.as_deref().unwrap_or("")) }
                td { form method="post" action="/trusted/del" {
                    (layout::csrf_field(who))
                    input type="hidden" name="cidr" value=(cidr);
                    button.danger type="submit" data-confirm={"Stop trusting " (cidr) "?"} { "Remove" }
                } }
            } } }
        } }
        @if rows.is_empty() { p.hint { "No trusted network of your own." } }
    }
}

async fn render(
    gui: &Shared,
    who: &Authed,
    form: &TrustForm,
    notice: &[String],
    error: Option<&pbxguard_app::Error>,
) -> Response {
    match gui.db.run(|s| security::trusted(s)).await {
        Ok(rows) => {
            let page = layout::page(
                "Trusted",
                Some(who),
                body(who, &rows, form, notice, error.map(|e| e.to_string()).as_deref()),
            );
            match error {
                Some(e) => refused(e, page),
                None => page.into_response(),
            }
        }
        Err(e) => broken("Trusted", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    render(&gui, &who, &TrustForm::default(), &[], None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<TrustForm>) -> Response {
    let (cidr, note) = (f.cidr.trim().to_owned(), given(&f.note).map(str::to_owned));
    match gui.db.run(move |s| security::trust(s, &cidr, note.as_deref(), false)).await {
        Ok((p, overridden)) if !overridden.is_empty() => {
            let notice: Vec<String> = overridden
                .iter()
                .map(|b| format!("The ban on {} ({}) is overridden while {p} is trusted.", b.target, b.reason))
                .collect();
            render(&gui, &who, &TrustForm::default(), &notice, None).await
        }
        Ok(_) => Redirect::to("/trusted").into_response(),
        Err(e) => render(&gui, &who, &f, &[], Some(&e)).await,
    }
}

async fn del(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<TrustForm>) -> Response {
    let cidr = f.cidr.clone();
    match gui.db.run(move |s| security::untrust(s, &cidr)).await {
        Ok(_) => Redirect::to("/trusted").into_response(),
        Err(e) => render(&gui, &who, &TrustForm::default(), &[], Some(&e)).await,
    }
}
