//! The security event log: filtered by kind, source, user and text, paged by id (keyset: the
//! hundred-thousandth row costs what the first does).

use super::super::access::Authed;
use super::super::layout;
use super::super::shared::Shared;
use super::super::shared::url_encode;
use super::dashboard::event_row;
use super::ui::refused;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use pbxguard_app::reports::{self, EventFilter};

const PER_PAGE: i64 = 50;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/events", get(list))
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    q: String,
    before: Option<i64>,
    after: Option<i64>,
}

impl ListQuery {
    fn filter(&self) -> EventFilter {
        EventFilter {
            kind: self.kind.clone(),
            source: self.source.clone(),
            user: self.user.clone(),
            text: self.q.clone(),
        }
    }

    fn link(&self, key: &str, id: i64) -> String {
        let mut s = format!("/events?{key}={id}");
        for (k, v) in [("kind", &self.kind), ("source", &self.source), ("user", &self.user), ("q", &self.q)] {
            if !v.trim().is_empty() {
                s.push_str(&format!("&{k}={}", url_encode(v.trim())));
            }
        }
        s
    }
}

async fn list(State(gui): State<Shared>, who: Authed, Query(q): Query<ListQuery>) -> Response {
    let (f, before, after) = (q.filter(), q.before, q.after);
    let r =
        gui.db.run(move |s| Ok((reports::events(s, &f, before, after, PER_PAGE + 1), reports::event_kinds(s)?))).await;
    let (rows, kinds) = match r {
        Ok((rows, kinds)) => (rows, kinds),
        Err(e) => (Err(e), Vec::new()),
    };
    let (mut rows, error) = match rows {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    // One row more than a page says whether there is another page in that direction.
    let more = rows.len() as i64 > PER_PAGE;
    if more {
        if q.after.is_some() {
            rows.remove(0);
        } else {
            rows.pop();
        }
    }
    let older = (more || q.after.is_some()).then(|| rows.last().map(|r| r.id)).flatten();
    let newer = (q.before.is_some() || (q.after.is_some() && more)).then(|| rows.first().map(|r| r.id)).flatten();
    let page = layout::page(
        "Events",
        Some(&who),
        html! {
            h1 { "Security events" }
            form.inline #event-filter method="get" action="/events" role="search" {
                label for="kind" { "Kind"
                    select #kind name="kind" {
                        option value="" { "any" }
                        @for k in &kinds { option value=(k) selected[*k == q.kind.trim()] { (k) } }
                    }
                }
                label for="source" { "Source address" input #source name="source" value=(q.source) placeholder="192.0.2.1"; }
                label for="user" { "User" input #user name="user" value=(q.user) placeholder="1001"; }
                label for="q" { "Text" input #q name="q" type="search" value=(q.q); }
                button type="submit" { "Filter" }
            }
            @if let Some(e) = &error { (layout::error_box(&e.to_string())) }
            div.table-wrap { table #event-list {
                thead { tr { th { "When (UTC)" } th { "Kind" } th { "Source" } th { "User" } th { "Detail" } } }
                tbody { @for e in &rows { (event_row(e)) } }
            } }
            @if rows.is_empty() && error.is_none() { p.hint { "No event matches." } }
            nav.pager aria-label="pages" {
                @if let Some(id) = newer { a #prev rel="prev" href=(q.link("after", id)) { "← Newer" } }
                @if let Some(id) = older { a #next rel="next" href=(q.link("before", id)) { "Older →" } }
            }
        },
    );
    match error {
        Some(e) => refused(&e, page),
        None => page.into_response(),
    }
}
