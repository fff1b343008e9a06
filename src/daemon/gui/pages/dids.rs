//! DIDs: the inbound numbers a trunk sends calls to, each ringing one extension. List, add, delete.

use super::super::access::{Authed, Writer};
use super::super::layout;
use super::super::shared::{Shared, url_encode};
use super::ui::{broken, refused};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::calls;
use pbxguard_store::DidRow;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/dids", get(list).post(add)).route("/dids/del", post(del))
}

#[derive(serde::Deserialize, Default)]
struct DidForm {
    #[serde(default)]
    number: String,
    #[serde(default)]
    ext: String,
}

fn body(who: &Authed, rows: &[DidRow], f: &DidForm, error: Option<&str>) -> Markup {
    html! {
        h1 { "DIDs" }
        p.hint { "A call from a trunk to one of these numbers rings its extension. A trunk may also call an extension by its own number; any other number is refused (no calls pass through to another trunk)." }
        @if let Some(e) = error { (layout::error_box(e)) }
        div.table-wrap { table #did-list {
            thead { tr { th { "Inbound number" } th { "Extension" } th {} } }
            tbody { @for d in rows { tr data-did=(d.number) {
                td { (d.number) }
                td { a href=(format!("/extensions/{}", url_encode(&d.extension))) { (d.extension) } }
                td { form method="post" action="/dids/del" {
                    (layout::csrf_field(who))
                    input type="hidden" name="number" value=(d.number);
                    button.danger type="submit" data-confirm={"Delete DID " (d.number) "?"} { "Delete" }
                } }
            } } }
        } }
        @if rows.is_empty() { p.hint { "No DID yet." } }
        h2 #add { "Add a DID" }
        form.card #did-add method="post" action="/dids" {
            (layout::csrf_field(who))
            div.inline {
                label for="number" { "Inbound number, as the trunk sends it" input #number name="number" required maxlength="32" value=(f.number) placeholder="442071234567"; }
                label for="ext" { "Extension that rings" input #ext name="ext" required maxlength="32" value=(f.ext); }
                button #did-add-submit type="submit" { "Add" }
            }
        }
    }
}

async fn render(gui: &Shared, who: &Authed, f: &DidForm, error: Option<&pbxguard_app::Error>) -> Response {
    match gui.db.run(|s| calls::dids(s)).await {
        Ok(rows) => {
            let page = layout::page("DIDs", Some(who), body(who, &rows, f, error.map(ToString::to_string).as_deref()));
            match error {
                Some(e) => refused(e, page),
                None => page.into_response(),
            }
        }
        Err(e) => broken("DIDs", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    render(&gui, &who, &DidForm::default(), None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<DidForm>) -> Response {
    let (number, ext) = (f.number.trim().to_owned(), f.ext.trim().to_owned());
    match gui.db.run(move |s| calls::add_did(s, &number, &ext)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, did = f.number.trim(), "DID added in the GUI");
            Redirect::to("/dids").into_response()
        }
        Err(e) => render(&gui, &who, &f, Some(&e)).await,
    }
}

async fn del(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<DidForm>) -> Response {
    let number = f.number.clone();
    match gui.db.run(move |s| calls::delete_did(s, &number)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, did = f.number, "DID deleted in the GUI");
            Redirect::to("/dids").into_response()
        }
        Err(e) => render(&gui, &who, &DidForm::default(), Some(&e)).await,
    }
}
