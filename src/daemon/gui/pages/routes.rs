//! Outbound routes: which trunk a dialled number leaves through. Listed in the order the proxy tries
//! them (the first match wins), appended, deleted; and a box that shows the route a number takes.

use super::super::access::{Authed, Writer};
use super::super::layout;
use super::super::shared::Shared;
use super::ui::{broken, given, refused};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::calls;
use pbxguard_app::invalid;
use pbxguard_store::{RouteRow, TrunkRow};

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/routes", get(list).post(add)).route("/routes/del", post(del))
}

#[derive(serde::Deserialize, Default)]
struct RouteForm {
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    trunk: String,
    #[serde(default)]
    strip: String,
    #[serde(default)]
    prepend: String,
}

#[derive(serde::Deserialize, Default)]
struct TestQuery {
    #[serde(default)]
    number: String,
}

/// A number tried in the box, and the route it takes (with the number its trunk is sent).
type Tested = (String, pbxguard_app::Result<Option<(RouteRow, String)>>);

struct Listing {
    routes: Vec<RouteRow>,
    trunks: Vec<TrunkRow>,
    test: Option<Tested>,
}

async fn listing(gui: &Shared, test: Option<String>) -> pbxguard_app::Result<Listing> {
    gui.db
        .run(move |s| {
            let test = test.map(|n| {
                let r = calls::route_for(s, &n);
                (n, r)
            });
            Ok(Listing { routes: calls::routes(s)?, trunks: calls::trunks(s)?, test })
        })
        .await
}

fn test_result(test: &Tested) -> Markup {
    let (number, r) = test;
    html! {
        div #route-test-result role="status" {
            @match r {
                Ok(Some((route, sent))) => p.ok {
                    (number) " takes route " (route.id) " (" code { (route.pattern) } "): trunk " strong { (route.trunk) } ", sent as " code { (sent) } "."
                },
                Ok(None) => p.notice { (number) ": no route matches; a call to it is refused unless it is an extension." },
                Err(e) => (layout::error_box(&e.to_string())),
            }
        }
    }
}

fn body(who: &Authed, l: &Listing, f: &RouteForm, error: Option<&str>) -> Markup {
    html! {
        h1 { "Routes" }
        p.hint { "Tried from the top; the first pattern that matches the dialled number decides the trunk. Whether the caller may call that number at all is its Class of Service." }
        @if let Some(e) = error { (layout::error_box(e)) }
        div.table-wrap { table #route-list {
            thead { tr { th { "Order" } th { "ID" } th { "Pattern" } th { "Trunk" } th { "Strip" } th { "Prepend" } th {} } }
            tbody { @for (i, r) in l.routes.iter().enumerate() { tr data-route=(r.id) {
                td { (i + 1) }
                td { (r.id) }
                td { code { (r.pattern) } }
                td { (r.trunk) }
                td { (r.strip) }
                td { @if r.prepend.is_empty() { span.hint { "nothing" } } @else { code { (r.prepend) } } }
                td { form method="post" action="/routes/del" {
                    (layout::csrf_field(who))
                    input type="hidden" name="id" value=(r.id);
                    button.danger type="submit" data-confirm={"Delete route " (r.id) " (" (r.pattern) ")?"} { "Delete" }
                } }
            } } }
        } }
        @if l.routes.is_empty() { p.hint { "No route: calls to numbers outside the PBX are refused." } }
        h2 { "Which route does a number take?" }
        form.inline #route-test method="get" action="/routes" {
            label for="test-number" { "Dialled number" input #test-number name="number" maxlength="32" inputmode="tel" value=(l.test.as_ref().map(|t| t.0.as_str()).unwrap_or("")); }
            button.secondary type="submit" { "Check" }
        }
        @if let Some(t) = &l.test { (test_result(t)) }
        h2 #add { "Add a route" }
        @if l.trunks.is_empty() {
            p.notice { "Add a trunk first: a route sends calls to one. " a href="/trunks#add" { "Add a trunk" } }
        } @else {
            form.card #route-add method="post" action="/routes" {
                (layout::csrf_field(who))
                div.inline {
                    label for="pattern" { "Pattern" input #pattern name="pattern" required maxlength="200" value=(f.pattern) placeholder="_00."; }
                    label for="trunk" { "Trunk"
                        select #trunk name="trunk" {
                            @for t in &l.trunks { option value=(t.name) selected[f.trunk == t.name] { (t.name) } }
                        }
                    }
                    label for="strip" { "Strip digits" input #strip name="strip" inputmode="numeric" maxlength="3" value=(f.strip) placeholder="0"; }
                    label for="prepend" { "Prepend" input #prepend name="prepend" maxlength="32" value=(f.prepend); }
                    button #route-add-submit type="submit" { "Add" }
                }
                p.hint {
                    "A pattern is a number, an Asterisk pattern (" code { "_NXXNXXXXXX" } ", " code { "_011." } "; X any digit, Z 1-9, N 2-9, "
                    code { "[1-5]" } " a set, " code { "." } " one or more, " code { "!" } " zero or more) or a regular expression starting with "
                    code { "^" } ". Strip removes leading digits, then prepend adds digits in front. The new route goes last."
                }
            }
        }
    }
}

async fn render(
    gui: &Shared,
    who: &Authed,
    f: &RouteForm,
    test: Option<String>,
    error: Option<&pbxguard_app::Error>,
) -> Response {
    match listing(gui, test).await {
        Ok(l) => {
            let page = layout::page("Routes", Some(who), body(who, &l, f, error.map(ToString::to_string).as_deref()));
            match error {
                Some(e) => refused(e, page),
                None => page.into_response(),
            }
        }
        Err(e) => broken("Routes", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed, Query(q): Query<TestQuery>) -> Response {
    let test = given(&q.number).map(str::to_owned);
    render(&gui, &who, &RouteForm::default(), test, None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<RouteForm>) -> Response {
    let strip = match given(&f.strip).map(str::parse::<u32>).transpose() {
        Ok(s) => s.unwrap_or(0),
        Err(_) => {
            let e = invalid!("strip {:?}: give how many leading digits to remove (0 for none)", f.strip.trim());
            return render(&gui, &who, &f, None, Some(&e)).await;
        }
    };
    let (pattern, trunk, prepend) = (f.pattern.trim().to_owned(), f.trunk.clone(), f.prepend.trim().to_owned());
    match gui.db.run(move |s| calls::add_route(s, &pattern, &trunk, strip, &prepend)).await {
        Ok(id) => {
            tracing::info!(admin = %who.who, route = id, pattern = f.pattern.trim(), "route added in the GUI");
            Redirect::to("/routes").into_response()
        }
        Err(e) => render(&gui, &who, &f, None, Some(&e)).await,
    }
}

#[derive(serde::Deserialize)]
struct DelForm {
    #[serde(default)]
    id: String,
}

async fn del(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<DelForm>) -> Response {
    let Ok(id) = f.id.trim().parse::<i64>() else {
        let e = invalid!("route {:?}: not a route ID (the list shows them)", f.id);
        return render(&gui, &who, &RouteForm::default(), None, Some(&e)).await;
    };
    match gui.db.run(move |s| calls::delete_route(s, id)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, route = id, "route deleted in the GUI");
            Redirect::to("/routes").into_response()
        }
        Err(e) => render(&gui, &who, &RouteForm::default(), None, Some(&e)).await,
    }
}
