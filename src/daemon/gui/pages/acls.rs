//! ACL groups: the networks an extension may register and call from. List with how many extensions
//! use each, add, change a group's networks in its row, delete (refused while extensions use it).

use super::super::access::{Authed, Writer};
use super::super::layout;
use super::super::shared::{Shared, url_encode};
use super::ui::{broken, refused};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::security;
use pbxguard_store::AclRow;
use std::collections::BTreeMap;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/acls", get(list).post(add)).route("/acls/edit", post(edit)).route("/acls/del", post(del))
}

#[derive(serde::Deserialize, Default)]
struct AclForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    rules: String,
    #[serde(default)]
    force: Option<String>,
}

impl AclForm {
    /// Rules as typed: separated by spaces or commas, as on the command line.
    fn rules(&self) -> Vec<String> {
        self.rules.split(|c: char| c.is_whitespace() || c == ',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
    }
}

struct Listing {
    groups: Vec<AclRow>,
    usage: BTreeMap<String, u64>,
}

async fn listing(gui: &Shared) -> pbxguard_app::Result<Listing> {
    gui.db.run(|s| Ok(Listing { groups: security::acls(s)?, usage: security::acl_usage(s)? })).await
}

/// What the operator just tried, kept in the form it came from after a refusal.
enum Tried<'a> {
    Nothing,
    Add(&'a AclForm),
    Edit(&'a AclForm),
}

fn body(who: &Authed, l: &Listing, tried: &Tried<'_>, error: Option<&str>) -> Markup {
    let empty = AclForm::default();
    let add = match tried {
        Tried::Add(f) => f,
        _ => &empty,
    };
    html! {
        h1 { "ACL groups" }
        p.hint {
            "An extension in a group registers and calls only from the networks it allows. Rules: a network "
            "(CIDR) allows it, " code { "!CIDR" } " denies it; the most specific rule decides, and an address no rule "
            "matches is denied. An extension without a group may use any address."
        }
        @if let Some(e) = error { (layout::error_box(e)) }
        div.table-wrap { table #acl-list {
            thead { tr { th { "Group" } th { "Networks" } th { "Extensions" } th {} } }
            tbody {
                @for g in &l.groups {
                    @let users = l.usage.get(&g.name).copied().unwrap_or(0);
                    @let rules = match tried { Tried::Edit(f) if f.name == g.name => f.rules.as_str(), _ => g.rules.as_str() };
                    tr data-acl=(g.name) {
                        td { strong { (g.name) } }
                        td {
                            form.inline method="post" action="/acls/edit" {
                                (layout::csrf_field(who))
                                input type="hidden" name="name" value=(g.name);
                                label for=(format!("rules-{}", g.name)) { span.hint { "networks" }
                                    input.value id=(format!("rules-{}", g.name)) name="rules" required value=(rules);
                                }
                                label for=(format!("force-{}", g.name)) { span.hint { "wider than /8 (--force)" }
                                    input id=(format!("force-{}", g.name)) name="force" type="checkbox" value="1";
                                }
                                button.secondary type="submit" { "Save" }
                            }
                        }
                        td {
                            @if users == 0 { span.hint { "none" } }
                            @else { a href=(format!("/extensions?q={}", url_encode(&g.name))) { (users) } }
                        }
                        td { form method="post" action="/acls/del" {
                            (layout::csrf_field(who))
                            input type="hidden" name="name" value=(g.name);
                            button.danger type="submit" data-confirm={"Delete ACL group " (g.name) "?"} { "Delete" }
                        } }
                    }
                }
            }
        } }
        @if l.groups.is_empty() { p.hint { "No ACL group yet." } }
        h2 #add { "Add a group" }
        form.card #acl-add method="post" action="/acls" {
            (layout::csrf_field(who))
            div.inline {
                label for="name" { "Name" input #name name="name" required maxlength="64" value=(add.name); }
                label for="rules" { "Networks" input #rules name="rules" required value=(add.rules) placeholder="10.0.0.0/8 !10.9.0.0/16"; }
                label for="force" { "Allow networks wider than /8 (--force)" input #force name="force" type="checkbox" value="1" checked[add.force.is_some()]; }
                button #acl-add-submit type="submit" { "Add" }
            }
            p.hint { "Then put extensions in it on their page, or with " code { "pbxguard ext acl NUMBER GROUP" } "." }
        }
    }
}

async fn render(gui: &Shared, who: &Authed, tried: &Tried<'_>, error: Option<&pbxguard_app::Error>) -> Response {
    match listing(gui).await {
        Ok(l) => {
            let page =
                layout::page("ACL groups", Some(who), body(who, &l, tried, error.map(ToString::to_string).as_deref()));
            match error {
                Some(e) => refused(e, page),
                None => page.into_response(),
            }
        }
        Err(e) => broken("ACL groups", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    render(&gui, &who, &Tried::Nothing, None).await
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<AclForm>) -> Response {
    let (name, rules, force) = (f.name.trim().to_owned(), f.rules(), f.force.is_some());
    match gui.db.run(move |s| security::create_acl(s, &name, &rules, force)).await {
        Ok(_) => {
            tracing::info!(admin = %who.who, group = f.name.trim(), "ACL group added in the GUI");
            Redirect::to("/acls").into_response()
        }
        Err(e) => render(&gui, &who, &Tried::Add(&f), Some(&e)).await,
    }
}

async fn edit(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<AclForm>) -> Response {
    let (name, rules, force) = (f.name.clone(), f.rules(), f.force.is_some());
    match gui.db.run(move |s| security::edit_acl(s, &name, &rules, force)).await {
        Ok(_) => {
            tracing::info!(admin = %who.who, group = f.name, "ACL group changed in the GUI");
            Redirect::to("/acls").into_response()
        }
        Err(e) => render(&gui, &who, &Tried::Edit(&f), Some(&e)).await,
    }
}

async fn del(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<AclForm>) -> Response {
    let name = f.name.clone();
    match gui.db.run(move |s| security::delete_acl(s, &name)).await {
        Ok(()) => {
            tracing::info!(admin = %who.who, group = f.name, "ACL group deleted in the GUI");
            Redirect::to("/acls").into_response()
        }
        Err(e) => render(&gui, &who, &Tried::Nothing, Some(&e)).await,
    }
}
