//! Classes of Service: which categories of number an extension may call (and, for international
//! calls, which countries). List with how many extensions use each, add, delete, and a box that
//! classifies a number the way the proxy will.

use super::super::access::{Authed, Writer};
use super::super::layout;
use super::super::shared::{Shared, url_encode};
use super::ui::{broken, given, refused};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::calls::{self, Classified};
use pbxguard_shield::{Category, ClassOfService};
use pbxguard_store::CosRow;
use std::collections::BTreeMap;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/cos", get(list).post(add)).route("/cos/del", post(del))
}

/// The add form: `allow` comes once per ticked category, so it is read as pairs, not a struct.
#[derive(Default)]
struct CosForm {
    name: String,
    allow: Vec<String>,
    countries: String,
}

impl CosForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        for (k, v) in pairs {
            match k.as_str() {
                "name" => f.name = v,
                "allow" => f.allow.push(v),
                "countries" => f.countries = v,
                _ => {}
            }
        }
        f
    }
}

#[derive(serde::Deserialize, Default)]
struct ClassifyQuery {
    #[serde(default)]
    number: String,
}

struct Listing {
    classes: Vec<CosRow>,
    usage: BTreeMap<String, u64>,
    classified: Option<(String, pbxguard_app::Result<Classified>)>,
}

async fn listing(gui: &Shared, number: Option<String>) -> pbxguard_app::Result<Listing> {
    gui.db
        .run(move |s| {
            let classified = number.map(|n| {
                let r = calls::classify(s, &n);
                (n, r)
            });
            Ok(Listing { classes: calls::cos_list(s)?, usage: calls::cos_usage(s)?, classified })
        })
        .await
}

fn countries(c: &CosRow) -> Markup {
    let international = c.allow.split(',').any(|a| a == Category::International.as_str());
    html! {
        @match (&c.countries, international) {
            (Some(text), _) => {
                @match calls::parse_countries(text) {
                    Ok(list) => {
                        @for (i, code) in list.iter().enumerate() {
                            @if i > 0 { ", " }
                            span title=(code.name()) { "+" (code) }
                        }
                    },
                    Err(_) => (text),
                }
            },
            (None, true) => "any",
            (None, false) => span.hint { "no international calls" },
        }
    }
}

fn classified(number: &str, r: &pbxguard_app::Result<Classified>) -> Markup {
    html! {
        div #classify-result role="status" {
            @match r {
                Ok(Classified::Extension) => p { strong { (number) } ": " (Category::Internal) " (an extension)" },
                Ok(Classified::Category { category, plan, pattern, country }) => p {
                    strong { (number) } ": " strong { (category) } " (plan " (plan) ", pattern " code { (pattern) }
                    @match (category, country) {
                        (Category::International, Some(c)) => { ", country +" (c) " " (c.name()) },
                        (Category::International, None) => ", no known country code",
                        _ => {},
                    }
                    ")"
                },
                Ok(Classified::Unknown { plan }) => p.notice { (number) ": no category in plan " (plan) "; calls to it are refused." },
                Err(e) => (layout::error_box(&e.to_string())),
            }
        }
    }
}

fn body(who: &Authed, l: &Listing, f: &CosForm, error: Option<&str>) -> Markup {
    let ticked = |c: &Category| f.allow.iter().any(|a| a == c.as_str());
    html! {
        h1 { "Classes of Service" }
        p.hint { "What an extension may call, by category of number. Emergency numbers are always allowed. An extension without a class gets " code { "default" } "." }
        @if let Some(e) = error { (layout::error_box(e)) }
        div.table-wrap { table #cos-list {
            thead { tr { th { "Name" } th { "Allowed" } th { "International to" } th { "Extensions" } th {} } }
            tbody {
                @if !l.classes.iter().any(|c| c.name == "default") {
                    tr data-cos="(default)" {
                        td { strong { "default" } " " span.hint { "(built in)" } }
                        td { (ClassOfService::default_allow().to_string().replace(',', ", ")) }
                        td { span.hint { "no international calls" } }
                        td { span.hint { "extensions without a class" } }
                        td { span.hint { "add one named default to replace it" } }
                    }
                }
                @for c in &l.classes {
                    @let users = l.usage.get(&c.name).copied().unwrap_or(0);
                    tr data-cos=(c.name) {
                        td { strong { (c.name) } }
                        td { (c.allow.replace(',', ", ")) }
                        td { (countries(c)) }
                        td {
                            @if users == 0 { span.hint { "none" } }
                            @else { a href=(format!("/extensions?q={}", url_encode(&c.name))) { (users) } }
                        }
                        td { form method="post" action="/cos/del" {
                            (layout::csrf_field(who))
                            input type="hidden" name="name" value=(c.name);
                            button.danger type="submit" data-confirm={"Delete class of service " (c.name) "?"} { "Delete" }
                        } }
                    }
                }
            }
        } }
        h2 { "Classify a number" }
        form.inline #classify method="get" action="/cos" {
            label for="classify-number" { "Dialled number"
                input #classify-number name="number" maxlength="32" inputmode="tel" value=(l.classified.as_ref().map(|c| c.0.as_str()).unwrap_or(""));
            }
            button.secondary type="submit" { "Classify" }
        }
        @if let Some((n, r)) = &l.classified { (classified(n, r)) }
        p.hint { "The numbering plan is the setting " code { "calls.numbering_plan" } ". Which trunk a number leaves through: " a href="/routes" { "Routes" } "." }
        h2 #add { "Add a class of service" }
        form.card #cos-add method="post" action="/cos" {
            (layout::csrf_field(who))
            div.inline {
                label for="name" { "Name" input #name name="name" required maxlength="64" value=(f.name); }
            }
            fieldset {
                legend { "May call" }
                div.inline {
                    @for c in &Category::ALL {
                        label for=(format!("allow-{}", c.as_str())) {
                            (c.as_str())
                            input id=(format!("allow-{}", c.as_str())) name="allow" type="checkbox" value=(c.as_str()) checked[ticked(c)];
                        }
                    }
                }
            }
            div.inline {
                label for="countries" { "International calls only to (country codes)" input #countries name="countries" maxlength="200" value=(f.countries) placeholder="44,49,33"; }
                button #cos-add-submit type="submit" { "Add" }
            }
            p.hint { "Country codes restrict international calls (tick international) to those E.164 codes; empty: any country. 1 is the North American Numbering Plan." }
        }
    }
}

async fn render(
    gui: &Shared,
    who: &Authed,
    f: &CosForm,
    number: Option<String>,
    error: Option<&pbxguard_app::Error>,
) -> Response {
    match listing(gui, number).await {
        Ok(l) => {
            let page = layout::page(
                "Classes of Service",
                Some(who),
                body(who, &l, f, error.map(ToString::to_string).as_deref()),
            );
            match error {
                Some(e) => refused(e, page),
                None => page.into_response(),
            }
        }
        Err(e) => broken("Classes of Service", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed, Query(q): Query<ClassifyQuery>) -> Response {
    let number = given(&q.number).map(str::to_owned);
    render(&gui, &who, &CosForm::default(), number, None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let f = CosForm::from_pairs(pairs);
    let (name, allow, countries) =
        (f.name.trim().to_owned(), f.allow.join(","), given(&f.countries).map(str::to_owned));
    match gui.db.run(move |s| calls::add_cos(s, &name, &allow, countries.as_deref())).await {
        Ok(_) => {
            tracing::info!(admin = %who.who, cos = f.name.trim(), "class of service added in the GUI");
            Redirect::to("/cos").into_response()
        }
        Err(e) => render(&gui, &who, &f, None, Some(&e)).await,
    }
}

#[derive(serde::Deserialize)]
struct DelForm {
    #[serde(default)]
    name: String,
}

async fn del(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<DelForm>) -> Response {
    let name = f.name.clone();
    match gui.db.run(move |s| calls::delete_cos(s, &name)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, cos = f.name, "class of service deleted in the GUI");
            Redirect::to("/cos").into_response()
        }
        Err(e) => render(&gui, &who, &CosForm::default(), None, Some(&e)).await,
    }
}
