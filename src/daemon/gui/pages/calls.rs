//! The calls log, newest first and paged, with the calls in progress at the top.

use super::super::access::Authed;
use super::super::layout;
use super::super::shared::Shared;
use super::dashboard::utc;
use super::ui::{broken, pager};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use pbxguard_app::reports;
use pbxguard_store::CallRow;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/calls", get(list))
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    page: Option<u64>,
}

fn secs(t: Option<i64>) -> String {
    t.map_or(String::new(), |t| utc(t * 1000))
}

fn table(id: &str, rows: &[CallRow]) -> Markup {
    html! {
        div.table-wrap { table #(id) {
            thead { tr { th { "Started (UTC)" } th { "From" } th { "To" } th { "Category" } th { "Trunk" } th { "Source" } th { "State" } th { "Status" } th { "Ended (UTC)" } } }
            tbody { @for c in rows { tr {
                td { (secs(Some(c.started_at))) } td { (c.caller) } td { (c.callee) } td { (c.category) }
                td { (c.trunk.as_deref().unwrap_or("")) } td { (c.source) } td { (c.state) }
                td { (c.status.map(|s| s.to_string()).unwrap_or_default()) @if let Some(r) = &c.end_reason { " (" (r) ")" } }
                td { (secs(c.ended_at)) }
            } } }
        } }
    }
}

async fn list(State(gui): State<Shared>, who: Authed, Query(q): Query<ListQuery>) -> Response {
    let page = q.page.unwrap_or(1);
    let r = gui.db.run(move |s| Ok((reports::live_calls(s, 100)?, reports::calls(s, page)?))).await;
    match r {
        Ok((live, log)) => layout::page(
            "Calls",
            Some(&who),
            html! {
                h1 { "Calls" }
                h2 { "In progress (" (live.total) ")" }
                @if live.items.is_empty() { p.hint { "No call in progress." } } @else { (table("live-calls", &live.items)) }
                h2 { "Calls log" }
                (table("call-list", &log.items))
                @if log.items.is_empty() { p.hint { "No call yet." } }
                (pager("/calls", "", &log))
            },
        )
        .into_response(),
        Err(e) => broken("Calls", &who, &e),
    }
}
