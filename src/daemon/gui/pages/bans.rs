//! Bans: those in force (newest first, paged, filtered by the start of the address), with their
//! reason, expiry and the trusted network that overrides them; banning an address or network, and
//! lifting a ban. The daemon applies both within a second (the store's change feed).

use super::super::access::Authed;
use super::super::access::Writer;
use super::super::layout;
use super::super::shared::Shared;
use super::super::shared::url_encode;
use super::dashboard::utc;
use super::ui::{broken, given, pager, refused};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::extensions::Page;
use pbxguard_app::reports::{self, BanView};

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/bans", get(list).post(add)).route("/bans/unban", post(unban))
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct BanForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    note: String,
}

fn expiry(b: &BanView) -> String {
    b.ban.expires_ms.map_or("until removed".to_owned(), utc)
}

fn body(who: &Authed, q: &ListQuery, p: &Page<BanView>, form: &BanForm, error: Option<&str>) -> Markup {
    let query = given(&q.q).map(|v| format!("q={}", url_encode(v))).unwrap_or_default();
    html! {
        h1 { "Bans" }
        form.inline #ban-add method="post" action="/bans" {
            (layout::csrf_field(who))
            label for="target" { "Address or network" input #target name="target" required value=(form.target) placeholder="203.0.113.9 or 203.0.113.0/24"; }
            label for="duration" { "For" input #duration name="duration" value=(form.duration) placeholder="12h, 7d; empty: until removed"; }
            label for="note" { "Note" input #note name="note" value=(form.note) placeholder="why"; }
            button #ban-submit type="submit" { "Ban" }
        }
        @if let Some(e) = error { (layout::error_box(e)) }
        form.inline #ban-search method="get" action="/bans" role="search" {
            label for="q" { "Address starts with" input #q name="q" type="search" value=(q.q); }
            button.secondary type="submit" { "Filter" }
        }
        div.table-wrap { table #ban-list {
            thead { tr { th { "Target" } th { "Reason" } th { "Evidence / note" } th { "Since (UTC)" } th { "Expires (UTC)" } th { "Offence" } th {} } }
            tbody {
                @for b in &p.items { tr data-target=(b.ban.target) {
                    td { (b.ban.target) }
                    td { (b.ban.reason) }
                    td {
                        (b.ban.evidence)
                        @if let Some(n) = &b.ban.note { " (" (n) ")" }
                        @if let Some(t) = &b.overridden_by { br; span.notice { "overridden: " (t) " is trusted" } }
                    }
                    td { (utc(b.ban.created_ms)) }
                    td { (expiry(b)) }
                    td { (b.ban.offence) }
                    td { form method="post" action="/bans/unban" {
                        (layout::csrf_field(who))
                        input type="hidden" name="target" value=(b.ban.target);
                        button.danger.unban type="submit" data-confirm={"Lift the ban on " (b.ban.target) "?"} { "Unban" }
                    } }
                } }
            }
        } }
        @if p.items.is_empty() { p.hint { "No ban in force." } }
        (pager("/bans", &query, p))
    }
}

async fn render(
    gui: &Shared,
    who: &Authed,
    q: &ListQuery,
    form: &BanForm,
    error: Option<&pbxguard_app::Error>,
) -> Response {
    let (filter, page) = (q.q.clone(), q.page.unwrap_or(1));
    match gui.db.run(move |s| reports::bans(s, &filter, page)).await {
        Ok(p) => {
            let page = layout::page("Bans", Some(who), body(who, q, &p, form, error.map(|e| e.to_string()).as_deref()));
            match error {
                Some(e) => refused(e, page),
                None => page.into_response(),
            }
        }
        Err(e) => broken("Bans", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed, Query(q): Query<ListQuery>) -> Response {
    render(&gui, &who, &q, &BanForm::default(), None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<BanForm>) -> Response {
    let (target, duration, note) = (f.target.trim().to_owned(), given(&f.duration).map(str::to_owned), f.note.clone());
    let note = if note.trim().is_empty() { "banned in the admin GUI".to_owned() } else { note.trim().to_owned() };
    let r = gui
        .db
        .run(move |s| {
            pbxguard_app::security::ban(s, &target, &note, duration.as_deref(), false, &crate::resolve::System)
        })
        .await;
    match r {
        Ok(_) => Redirect::to("/bans").into_response(),
        Err(e) => render(&gui, &who, &ListQuery::default(), &f, Some(&e)).await,
    }
}

#[derive(serde::Deserialize)]
struct UnbanForm {
    target: String,
}

async fn unban(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<UnbanForm>) -> Response {
    let target = f.target.clone();
    match gui.db.run(move |s| pbxguard_app::security::unban(s, &target)).await {
        Ok(_) => Redirect::to("/bans").into_response(),
        Err(e) => render(&gui, &who, &ListQuery::default(), &BanForm::default(), Some(&e)).await,
    }
}
