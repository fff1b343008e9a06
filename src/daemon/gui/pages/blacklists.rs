//! VoIP blacklists: the stored lists with their size, source and last refresh; import from a URL
//! or pasted text. An import of 100,000 entries takes seconds, so it runs as a background job whose
//! progress the page polls (`/blacklists/jobs/{id}`); the daemon picks the new list up from the
//! store's change feed.

use super::super::access::Authed;
use super::super::access::Writer;
use super::super::layout;
use super::super::shared::Shared;
use super::dashboard::utc;
use super::ui::{broken, given};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::{Markup, html};
use pbxguard_app::blacklist;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/blacklists", get(list).post(import))
        .route("/blacklists/del", post(del))
        .route("/blacklists/jobs/{id}", get(job))
}

/// An import's state, as the page shows it.
#[derive(Clone, serde::Serialize)]
struct Job {
    name: String,
    done: usize,
    total: usize,
    /// "downloading", "importing", "finished" or "failed".
    state: &'static str,
    message: String,
}

/// The recent imports (the last 20 kept).
static JOBS: Mutex<BTreeMap<u64, Job>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

fn update(id: u64, f: impl FnOnce(&mut Job)) {
    if let Some(j) = JOBS.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&id) {
        f(j);
    }
}

fn jobs() -> Vec<(u64, Job)> {
    JOBS.lock().unwrap_or_else(|e| e.into_inner()).iter().rev().map(|(k, v)| (*k, v.clone())).collect()
}

#[derive(serde::Deserialize, Default)]
struct ImportForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    text: String,
}

fn body(who: &Authed, lists: &[pbxguard_store::BlacklistInfo], error: Option<&str>, form: &ImportForm) -> Markup {
    html! {
        h1 { "Blacklists" }
        div.table-wrap { table #blacklist-list {
            thead { tr { th { "Name" } th { "Source" } th { "Entries" } th { "Bad lines" } th { "Refreshed (UTC)" } th { "Last error" } th {} } }
            tbody { @for b in lists { tr {
                td { (b.name) } td { (b.source) } td { (b.entries) } td { (b.bad_lines) } td { (utc(b.refreshed_at * 1000)) }
                td { (b.last_error.as_deref().unwrap_or("")) }
                td { form method="post" action="/blacklists/del" {
                    (layout::csrf_field(who))
                    input type="hidden" name="name" value=(b.name);
                    button.danger type="submit" data-confirm={"Delete the list " (b.name) "?"} { "Delete" }
                } }
            } } }
        } }
        @if lists.is_empty() { p.hint { "No blacklist yet." } }
        h2 { "Import" }
        @if let Some(e) = error { (layout::error_box(e)) }
        form #blacklist-import method="post" action="/blacklists" {
            (layout::csrf_field(who))
            p { label for="name" { "Name" } br; input #name name="name" value=(form.name) placeholder="voipbl (default: the URL's host)"; }
            p { label for="url" { "URL (http or https)" } br; input #url name="url" type="url" value=(form.url) placeholder="https://voipbl.org/update/"; }
            p { label for="text" { "or paste the list (one address or CIDR per line)" } br; textarea #text name="text" rows="6" cols="50" { (form.text) } }
            button #import-submit type="submit" { "Import" }
        }
        @let js = jobs();
        @if !js.is_empty() {
            h2 { "Imports" }
            ul #import-jobs {
                @for (id, j) in js {
                    li.job data-job=(id) data-state=(j.state) {
                        (j.name) ": " span.state { (j.state) } " "
                        progress max=(j.total.max(1)) value=(j.done) {}
                        " " span.count { (j.done) " / " (j.total) } " " span.message { (j.message) }
                    }
                }
            }
        }
    }
}

async fn render(gui: &Shared, who: &Authed, error: Option<&pbxguard_app::Error>, form: &ImportForm) -> Response {
    match gui.db.run(|s| blacklist::stats(s)).await {
        Ok(lists) => {
            let status = error.map_or(StatusCode::OK, super::super::shared::status_of);
            let msg = error.map(|e| e.to_string());
            (status, layout::page("Blacklists", Some(who), body(who, &lists, msg.as_deref(), form))).into_response()
        }
        Err(e) => broken("Blacklists", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    render(&gui, &who, None, &ImportForm::default()).await
}

async fn import(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<ImportForm>) -> Response {
    let url = given(&f.url).map(str::to_owned);
    let pasted = !f.text.trim().is_empty();
    let source = match (&url, pasted) {
        (Some(u), false) if blacklist::is_url(u) => u.clone(),
        (Some(_), false) => {
            let e = pbxguard_app::Error::Invalid("the URL must start with http:// or https://".into());
            return render(&gui, &who, Some(&e), &f).await;
        }
        (None, true) => "pasted in the admin GUI".to_owned(),
        _ => {
            let e = pbxguard_app::Error::Invalid("give either a URL or the pasted list, not both (nor neither)".into());
            return render(&gui, &who, Some(&e), &f).await;
        }
    };
    let name = given(&f.name).map_or_else(
        || if url.is_some() { blacklist::default_name(&source) } else { "pasted".to_owned() },
        str::to_owned,
    );
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    {
        let mut j = JOBS.lock().unwrap_or_else(|e| e.into_inner());
        let state = if url.is_some() { "downloading" } else { "importing" };
        j.insert(id, Job { name: name.clone(), done: 0, total: 0, state, message: String::new() });
        while j.len() > 20 {
            j.pop_first();
        }
    }
    let data = gui.data.clone();
    let text = f.text;
    tokio::task::spawn_blocking(move || {
        let text = match url {
            // Only http(s) here: the GUI never reads a file of the server's by name.
            Some(u) => match crate::download::fetch(&u) {
                Ok(t) => t,
                Err(e) => return update(id, |j| (j.state, j.message) = ("failed", format!("{e:#}"))),
            },
            None => text,
        };
        update(id, |j| j.state = "importing");
        let r = pbxguard_app::open_store(&data).and_then(|mut s| {
            blacklist::import(&mut s, &name, &source, &text, |done, total| {
                update(id, |j| (j.done, j.total) = (done, total))
            })
        });
        match r {
            Ok(i) => update(id, |j| {
                (j.state, j.done, j.total) = ("finished", i.entries, i.entries);
                j.message = format!("{} entries, {} lines skipped", i.entries, i.bad_lines);
            }),
            Err(e) => update(id, |j| (j.state, j.message) = ("failed", e.to_string())),
        }
    });
    Redirect::to("/blacklists").into_response()
}

async fn job(_who: Authed, Path(id): Path<u64>) -> Response {
    match JOBS.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        Some(j) => Json(j.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct DelForm {
    name: String,
}

async fn del(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<DelForm>) -> Response {
    let name = f.name.clone();
    match gui.db.run(move |s| blacklist::delete(s, &name)).await {
        Ok(()) => Redirect::to("/blacklists").into_response(),
        Err(e) => render(&gui, &who, Some(&e), &ImportForm::default()).await,
    }
}
