//! Voicemail mailboxes: the paged list and setting a PIN under the PIN policy (a PIN equal to the
//! extension forces the owner to initialise the mailbox at first login).

use super::super::access::Authed;
use super::super::access::Writer;
use super::super::layout;
use super::super::shared::Shared;
use super::super::shared::url_encode;
use super::ui::{broken, given, pager, refused};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::extensions::Page;
use pbxguard_app::mailboxes::{self, SetPin};
use pbxguard_store::Mailbox;

const PER_PAGE: u64 = 50;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/voicemail", get(list).post(set_pin))
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct PinForm {
    #[serde(default)]
    extension: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    force_name: Option<String>,
    #[serde(default)]
    force_greeting: Option<String>,
}

async fn load(gui: &Shared, q: &ListQuery) -> pbxguard_app::Result<(Page<Mailbox>, usize)> {
    let text = given(&q.q).map(str::to_owned);
    let page = q.page.unwrap_or(1);
    gui.db.run(move |s| Ok((mailboxes::page(s, text.as_deref(), page, PER_PAGE)?, mailboxes::pin_min_length(s)?))).await
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn render(who: &Authed, q: &ListQuery, p: &Page<Mailbox>, min: usize, f: &PinForm, error: Option<&str>) -> Markup {
    let query = given(&q.q).map(|t| format!("q={}", url_encode(t))).unwrap_or_default();
    layout::page(
        "Voicemail",
        Some(who),
        html! {
            h1 { "Voicemail" }
            form.inline method="get" action="/voicemail" role="search" {
                label for="q" { "Mailbox" input #q name="q" type="search" value=(q.q); }
                button.secondary type="submit" { "Search" }
            }
            div.table-wrap {
                table #vm-list {
                    thead { tr { th { "Mailbox" } th { "Must initialise" } th { "Force name" } th { "Force greeting" } th { "Name recorded" } th { "Greeting recorded" } } }
                    tbody {
                        @for m in &p.items {
                            tr data-mailbox=(m.extension) {
                                td { (m.extension) }
                                td { (yes(m.must_initialise)) }
                                td { (yes(m.force_name)) }
                                td { (yes(m.force_greeting)) }
                                td { (yes(m.name_recorded)) }
                                td { (yes(m.greeting_recorded)) }
                            }
                        }
                        @if p.items.is_empty() { tr { td colspan="6" { "No mailbox." } } }
                    }
                }
            }
            (pager("/voicemail", &query, p))
            h2 { "Set a mailbox PIN" }
            @if let Some(e) = error { (layout::error_box(e)) }
            form.card #vm-pin method="post" action="/voicemail" {
                (layout::csrf_field(who))
                div.inline {
                    label for="extension" { "Extension" input #extension name="extension" required inputmode="numeric" maxlength="20" value=(f.extension); }
                    label for="pin" { "PIN" input #pin name="pin" type="password" required inputmode="numeric" autocomplete="off" maxlength="32"; }
                    label for="force_name" { "Force name recording" input #force_name name="force_name" type="checkbox" value="yes" checked[f.force_name.is_some() || f.extension.is_empty()]; }
                    label for="force_greeting" { "Force greeting recording" input #force_greeting name="force_greeting" type="checkbox" value="yes" checked[f.force_greeting.is_some() || f.extension.is_empty()]; }
                    button #vm-pin-submit type="submit" { "Set PIN" }
                }
                p.hint { "Digits, at least " (min) " (voicemail.pin_min_length), not one digit repeated, not a straight sequence, not a common PIN. A PIN equal to the extension is allowed: the owner then must choose a new PIN and record a name and greeting at first login." }
            }
        },
    )
}

async fn list(State(gui): State<Shared>, who: Authed, Query(q): Query<ListQuery>) -> Response {
    match load(&gui, &q).await {
        Ok((p, min)) => render(&who, &q, &p, min, &PinForm::default(), None).into_response(),
        Err(e) => broken("Voicemail", &who, &e),
    }
}

async fn set_pin(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<PinForm>) -> Response {
    let (ext, pin) = (f.extension.trim().to_owned(), f.pin.clone());
    let (name, greeting) = (f.force_name.is_some(), f.force_greeting.is_some());
    let r = gui
        .db
        .run(move |s| {
            mailboxes::set_pin(
                s,
                SetPin { extension: &ext, pin: &pin, force_name: Some(name), force_greeting: Some(greeting) },
            )
        })
        .await;
    match r {
        Ok(_) => Redirect::to("/voicemail").into_response(),
        Err(e) => {
            let q = ListQuery::default();
            match load(&gui, &q).await {
                Ok((p, min)) => refused(&e, render(&who, &q, &p, min, &f, Some(&e.to_string()))),
                Err(e2) => broken("Voicemail", &who, &e2),
            }
        }
    }
}
