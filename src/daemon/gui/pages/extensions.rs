//! Extensions: the paged list with search, adding one (the password policy checked as the secret is
//! typed, and again on submit), and one extension's page to change its secret, ACL group, Class of
//! Service and limits, suspend or enable it, or delete it.

use super::super::access::Authed;
use super::super::access::Writer;
use super::super::layout;
use super::super::shared::url_encode;
use super::super::shared::{Shared, json_error, status_of};
use super::ui::{broken, given, or_default, pager, refused, shown_once};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use maud::{Markup, html};
use pbxguard_app::extensions::{self, ExtensionView, NewExtension, Page, Secret};
use pbxguard_store::{AclRow, CosRow, ExtensionFilter};

const PER_PAGE: u64 = 50;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/extensions", get(list).post(add))
        .route("/extensions/check-secret", post(check_secret))
        .route("/extensions/{number}", get(show))
        .route("/extensions/{number}/secret", post(set_secret))
        .route("/extensions/{number}/acl", post(set_acl))
        .route("/extensions/{number}/cos", post(set_cos))
        .route("/extensions/{number}/limits", post(set_limits))
        .route("/extensions/{number}/suspend", post(suspend))
        .route("/extensions/{number}/enable", post(enable))
        .route("/extensions/{number}/delete", post(delete))
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    /// "", "suspended" or "noncompliant".
    #[serde(default)]
    status: String,
    page: Option<u64>,
}

impl ListQuery {
    fn filter(&self) -> ExtensionFilter<'_> {
        ExtensionFilter {
            text: given(&self.q),
            suspended: self.status == "suspended",
            noncompliant: self.status == "noncompliant",
        }
    }

    /// The filter as a query string, for the pager's links.
    fn encoded(&self) -> String {
        let mut parts = Vec::new();
        if let Some(q) = given(&self.q) {
            parts.push(format!("q={}", url_encode(q)));
        }
        if !self.status.is_empty() {
            parts.push(format!("status={}", url_encode(&self.status)));
        }
        parts.join("&")
    }
}

/// What the add form held, kept when it is shown again after a refusal (never the secret).
#[derive(serde::Deserialize, Default)]
struct AddForm {
    #[serde(default)]
    number: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    generate: Option<String>,
    #[serde(default)]
    acl: String,
    #[serde(default)]
    cos: String,
}

struct Listing {
    page: Page<ExtensionView>,
    acls: Vec<AclRow>,
    cos: Vec<CosRow>,
}

async fn listing(gui: &Shared, q: &ListQuery) -> pbxguard_app::Result<Listing> {
    let (text, suspended, noncompliant) =
        (given(&q.q).map(str::to_owned), q.status == "suspended", q.status == "noncompliant");
    let page = q.page.unwrap_or(1);
    gui.db
        .run(move |s| {
            let f = ExtensionFilter { text: text.as_deref(), suspended, noncompliant };
            Ok(Listing {
                page: extensions::page(s, &f, page, PER_PAGE)?,
                acls: pbxguard_app::security::acls(s)?,
                cos: pbxguard_app::calls::cos_list(s)?,
            })
        })
        .await
}

fn list_page(who: &Authed, q: &ListQuery, l: &Listing, form: &AddForm, error: Option<&str>) -> Markup {
    let filter = q.filter();
    layout::page(
        "Extensions",
        Some(who),
        html! {
            h1 { "Extensions" }
            form.inline #ext-search method="get" action="/extensions" role="search" {
                label for="q" { "Search" input #q name="q" type="search" value=(q.q) placeholder="number, ACL group or CoS"; }
                label for="status" { "Show"
                    select #status name="status" {
                        option value="" selected[q.status.is_empty()] { "all" }
                        option value="suspended" selected[filter.suspended] { "suspended" }
                        option value="noncompliant" selected[filter.noncompliant] { "weak secret" }
                    }
                }
                button.secondary type="submit" { "Search" }
            }
            div.table-wrap {
                table #ext-list {
                    thead { tr { th { "Number" } th { "Registered" } th { "ACL group" } th { "CoS" } th { "Limits" } th { "State" } } }
                    tbody {
                        @for e in &l.page.items {
                            tr data-number=(e.number) {
                                td { a href=(format!("/extensions/{}", url_encode(&e.number))) { (e.number) } }
                                td { (e.registrations) }
                                td { (or_default(e.acl.as_deref(), "any address")) }
                                td { (or_default(e.cos.as_deref(), "default")) }
                                td { (limits_text(e)) }
                                td { (state(e)) }
                            }
                        }
                        @if l.page.items.is_empty() { tr { td colspan="6" { "No extension matches." } } }
                    }
                }
            }
            (pager("/extensions", &q.encoded(), &l.page))
            h2 #add { "Add an extension" }
            (add_form(who, l, form, error))
        },
    )
}

fn limits_text(e: &ExtensionView) -> String {
    let n = |v: Option<u32>| v.map_or("default".to_owned(), |n| n.to_string());
    format!("{} at once, {} per hour", n(e.max_calls), n(e.calls_per_hour))
}

fn state(e: &ExtensionView) -> Markup {
    html! {
        @if let Some(why) = &e.suspended { span.error-text { "suspended: " (why) } }
        @else if !e.compliant { span.warn-text title=(e.policy_violations.as_deref().unwrap_or("")) { "weak secret" } }
        @else { span.ok { "ok" } }
    }
}

fn add_form(who: &Authed, l: &Listing, f: &AddForm, error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { (layout::error_box(e)) }
        form.card #ext-add method="post" action="/extensions" {
            (layout::csrf_field(who))
            div.inline {
                label for="number" { "Number" input #number name="number" required inputmode="numeric" pattern="[0-9]{1,20}" maxlength="20" autocomplete="off" value=(f.number); }
                label for="name" { "Name" input #name name="name" maxlength="64" autocomplete="off" value=(f.name); }
                label for="secret" { "Secret" input #secret name="secret" type="password" autocomplete="new-password" maxlength="128" aria-describedby="secret-reasons"; }
                label for="generate" { "Generate one" input #generate name="generate" type="checkbox" value="1" checked[f.generate.is_some()]; }
            }
            ul #secret-reasons.hint aria-live="polite" {}
            div.inline {
                label for="acl" { "ACL group" (acl_select("acl", &l.acls, given(&f.acl))) }
                label for="cos" { "Class of Service" (cos_select("cos", &l.cos, given(&f.cos))) }
                button #ext-add-submit type="submit" { "Add" }
            }
            p.hint { "The name is for this page only (not stored yet). The secret is stored only as digest hashes; leave it empty and tick “Generate one” for a strong random secret, shown once." }
        }
    }
}

fn acl_select(id: &str, acls: &[AclRow], current: Option<&str>) -> Markup {
    html! {
        select id=(id) name="acl" {
            option value="" selected[current.is_none()] { "none (any address)" }
            @for a in acls { option value=(a.name) selected[current == Some(a.name.as_str())] { (a.name) " (" (a.rules) ")" } }
        }
    }
}

fn cos_select(id: &str, cos: &[CosRow], current: Option<&str>) -> Markup {
    html! {
        select id=(id) name="cos" {
            option value="" selected[current.is_none()] { "default" }
            @for c in cos { option value=(c.name) selected[current == Some(c.name.as_str())] { (c.name) " (" (c.allow) ")" } }
        }
    }
}

async fn list(State(gui): State<Shared>, who: Authed, Query(q): Query<ListQuery>) -> Response {
    match listing(&gui, &q).await {
        Ok(l) => list_page(&who, &q, &l, &AddForm::default(), None).into_response(),
        Err(e) => broken("Extensions", &who, &e),
    }
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<AddForm>) -> Response {
    let secret =
        if f.generate.is_some() && f.secret.is_empty() { Secret::Generate } else { Secret::Given(f.secret.clone()) };
    let new = NewExtension {
        number: f.number.trim().to_owned(),
        secret,
        algorithms: None,
        acl: given(&f.acl).map(str::to_owned),
        cos: given(&f.cos).map(str::to_owned),
    };
    let number = new.number.clone();
    match gui.db.run(move |s| extensions::add(s, new)).await {
        Ok(Some(secret)) => {
            tracing::info!(admin = %who.who, number, "extension added in the GUI");
            shown_once(&format!("Extension {number} added"), &who, "Its secret", &secret, "/extensions")
        }
        Ok(None) => {
            tracing::info!(admin = %who.who, number, "extension added in the GUI");
            Redirect::to("/extensions").into_response()
        }
        Err(e) => {
            let q = ListQuery::default();
            match listing(&gui, &q).await {
                Ok(l) => refused(&e, list_page(&who, &q, &l, &f, Some(&e.to_string()))),
                Err(e2) => broken("Extensions", &who, &e2),
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct CheckSecret {
    #[serde(default)]
    number: String,
    secret: String,
}

/// The policy's verdict on a secret being typed: `{"enforced": bool, "reasons": [...]}`.
async fn check_secret(State(gui): State<Shared>, _who: Authed, Json(c): Json<CheckSecret>) -> Response {
    match gui.db.run(move |s| extensions::check_secret(s, &c.number, &c.secret)).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => json_error(status_of(&e), "invalid", &e.to_string(), Some("secret")),
    }
}

struct Detail {
    ext: ExtensionView,
    acls: Vec<AclRow>,
    cos: Vec<CosRow>,
}

async fn detail(gui: &Shared, number: String) -> pbxguard_app::Result<Detail> {
    gui.db
        .run(move |s| {
            Ok(Detail {
                ext: extensions::show(s, &number)?,
                acls: pbxguard_app::security::acls(s)?,
                cos: pbxguard_app::calls::cos_list(s)?,
            })
        })
        .await
}

fn detail_page(who: &Authed, d: &Detail, error: Option<&str>) -> Markup {
    let e = &d.ext;
    let base = format!("/extensions/{}", url_encode(&e.number));
    let n = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
    let duration = match e.max_call_secs {
        None => String::new(),
        Some(0) => "off".to_owned(),
        Some(s) => format!("{s}s"),
    };
    layout::page(
        &format!("Extension {}", e.number),
        Some(who),
        html! {
            p { a href="/extensions" { "← Extensions" } }
            h1 { "Extension " (e.number) }
            @if let Some(err) = error { (layout::error_box(err)) }
            div.cards {
                div.card {
                    h2 { "State" }
                    p { "Registrations: " (e.registrations) }
                    p { "Outbound calls: " (state(e)) }
                    @if let Some(v) = &e.policy_violations { p.hint { "The secret broke the policy when it was set (" (v) "): change it." } }
                    @if e.suspended.is_some() {
                        form method="post" action=(format!("{base}/enable")) {
                            (layout::csrf_field(who))
                            button #enable type="submit" { "Enable outbound calls" }
                        }
                    } @else {
                        form.inline method="post" action=(format!("{base}/suspend")) {
                            (layout::csrf_field(who))
                            label for="reason" { "Reason" input #reason name="reason" maxlength="200" placeholder="suspended by an operator"; }
                            button.secondary #suspend type="submit" { "Suspend outbound calls" }
                        }
                    }
                }
                div.card {
                    h2 { "Secret" }
                    form method="post" action=(format!("{base}/secret")) {
                        (layout::csrf_field(who))
                        input type="hidden" id="number" name="number" value=(e.number);
                        label for="secret" { "New secret" }
                        input #secret name="secret" type="password" autocomplete="new-password" maxlength="128" aria-describedby="secret-reasons";
                        ul #secret-reasons.hint aria-live="polite" {}
                        div.inline {
                            button #set-secret type="submit" { "Change secret" }
                            button.secondary #generate-secret type="submit" name="generate" value="1" { "Generate a new one" }
                        }
                    }
                }
                div.card {
                    h2 { "Where from, and what it may call" }
                    form.inline method="post" action=(format!("{base}/acl")) {
                        (layout::csrf_field(who))
                        label for="acl" { "ACL group" (acl_select("acl", &d.acls, e.acl.as_deref())) }
                        button.secondary type="submit" { "Set" }
                    }
                    form.inline method="post" action=(format!("{base}/cos")) {
                        (layout::csrf_field(who))
                        label for="cos" { "Class of Service" (cos_select("cos", &d.cos, e.cos.as_deref())) }
                        button.secondary type="submit" { "Set" }
                    }
                }
                div.card {
                    h2 { "Toll-fraud limits" }
                    form method="post" action=(format!("{base}/limits")) {
                        (layout::csrf_field(who))
                        p.hint { "Empty: the global setting (fraud.max_concurrent, fraud.calls_per_hour, calls.max_trunk_duration)." }
                        div.inline {
                            label for="concurrent" { "Trunk calls at once" input #concurrent name="concurrent" inputmode="numeric" value=(n(e.max_calls)); }
                            label for="per_hour" { "Per hour" input #per_hour name="per_hour" inputmode="numeric" value=(n(e.calls_per_hour)); }
                            label for="max_duration" { "Longest call" input #max_duration name="max_duration" placeholder="2h, 90m, off" value=(duration); }
                        }
                        button.secondary #set-limits type="submit" { "Set limits" }
                    }
                }
            }
            form.danger-zone method="post" action=(format!("{base}/delete")) {
                (layout::csrf_field(who))
                button.danger #delete type="submit" data-confirm=(format!("Delete extension {} and its registrations?", e.number)) { "Delete extension" }
            }
        },
    )
}

async fn show(State(gui): State<Shared>, who: Authed, Path(number): Path<String>) -> Response {
    match detail(&gui, number).await {
        Ok(d) => detail_page(&who, &d, None).into_response(),
        Err(e) => broken("Extension", &who, &e),
    }
}

/// After a change: back to the extension's page, or that page again with the refusal.
async fn after(gui: &Shared, who: &Authed, number: String, r: pbxguard_app::Result<()>) -> Response {
    match r {
        Ok(()) => Redirect::to(&format!("/extensions/{}", url_encode(&number))).into_response(),
        Err(e) => match detail(gui, number).await {
            Ok(d) => refused(&e, detail_page(who, &d, Some(&e.to_string()))),
            Err(_) => broken("Extension", who, &e),
        },
    }
}

#[derive(serde::Deserialize)]
struct SecretForm {
    #[serde(default)]
    secret: String,
    generate: Option<String>,
}

async fn set_secret(
    State(gui): State<Shared>,
    Writer(who): Writer,
    Path(number): Path<String>,
    Form(f): Form<SecretForm>,
) -> Response {
    let secret = if f.generate.is_some() { Secret::Generate } else { Secret::Given(f.secret) };
    let n = number.clone();
    match gui.db.run(move |s| extensions::set_secret(s, &n, secret)).await {
        Ok(Some(secret)) => {
            let back = format!("/extensions/{}", url_encode(&number));
            shown_once(&format!("Extension {number}: new secret"), &who, "The new secret", &secret, &back)
        }
        Ok(None) => after(&gui, &who, number, Ok(())).await,
        Err(e) => after(&gui, &who, number, Err(e)).await,
    }
}

#[derive(serde::Deserialize)]
struct AclForm {
    #[serde(default)]
    acl: String,
}

async fn set_acl(
    State(gui): State<Shared>,
    Writer(who): Writer,
    Path(number): Path<String>,
    Form(f): Form<AclForm>,
) -> Response {
    let n = number.clone();
    let r = gui.db.run(move |s| extensions::set_acl(s, &n, given(&f.acl))).await;
    after(&gui, &who, number, r).await
}

#[derive(serde::Deserialize)]
struct CosForm {
    #[serde(default)]
    cos: String,
}

async fn set_cos(
    State(gui): State<Shared>,
    Writer(who): Writer,
    Path(number): Path<String>,
    Form(f): Form<CosForm>,
) -> Response {
    let n = number.clone();
    let r = gui.db.run(move |s| extensions::set_cos(s, &n, given(&f.cos))).await;
    after(&gui, &who, number, r).await
}

#[derive(serde::Deserialize)]
struct LimitsForm {
    #[serde(default)]
    concurrent: String,
    #[serde(default)]
    per_hour: String,
    #[serde(default)]
    max_duration: String,
}

async fn set_limits(
    State(gui): State<Shared>,
    Writer(who): Writer,
    Path(number): Path<String>,
    Form(f): Form<LimitsForm>,
) -> Response {
    let n = number.clone();
    // An empty field puts the global setting back, as "default" does on the command line.
    let v = |s: &str| Some(given(s).unwrap_or("default").to_owned());
    let (c, h, d) = (v(&f.concurrent), v(&f.per_hour), v(&f.max_duration));
    let r =
        gui.db.run(move |s| extensions::set_limits(s, &n, c.as_deref(), h.as_deref(), d.as_deref()).map(drop)).await;
    after(&gui, &who, number, r).await
}

#[derive(serde::Deserialize)]
struct SuspendForm {
    #[serde(default)]
    reason: String,
}

async fn suspend(
    State(gui): State<Shared>,
    Writer(who): Writer,
    Path(number): Path<String>,
    Form(f): Form<SuspendForm>,
) -> Response {
    let n = number.clone();
    let r = gui.db.run(move |s| extensions::suspend(s, &n, &f.reason)).await;
    after(&gui, &who, number, r).await
}

async fn enable(State(gui): State<Shared>, Writer(who): Writer, Path(number): Path<String>) -> Response {
    let n = number.clone();
    let r = gui.db.run(move |s| extensions::enable(s, &n).map(drop)).await;
    after(&gui, &who, number, r).await
}

async fn delete(State(gui): State<Shared>, Writer(who): Writer, Path(number): Path<String>) -> Response {
    let n = number.clone();
    match gui.db.run(move |s| extensions::delete(s, &n)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, number, "extension deleted in the GUI");
            Redirect::to("/extensions").into_response()
        }
        Err(e) => after(&gui, &who, number, Err(e)).await,
    }
}
