//! Admin accounts: the list (must-change, last login), adding one (the password policy's every
//! reason shown), changing one's password, deleting one (never the last, never yourself). The same
//! functions as `pbxguard admin add | passwd | del`.

use super::super::access::{Authed, Writer};
use super::super::layout;
use super::super::shared::{Shared, reasons, url_encode};
use super::ui::{refused, shown_once};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::admins::{self, AdminView, NewPassword};
use pbxguard_app::clock::utc;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/admins", get(list).post(add))
        .route("/admins/{name}/password", post(password))
        .route("/admins/{name}/delete", post(delete))
}

/// What the add form held, kept when it is shown again after a refusal (never the password).
#[derive(serde::Deserialize, Default)]
struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    generate: Option<String>,
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    generate: Option<String>,
}

/// A refusal, and which form it belongs to (shown above that form).
enum Trouble<'a> {
    None,
    Add(&'a str),
    Row(&'a str, &'a str),
}

fn trouble_box(message: &str) -> Markup {
    let rs = reasons(message);
    html! {
        div.error role="alert" {
            @if rs.len() > 1 {
                p { "Refused, nothing changed:" }
                ul.reasons { @for r in &rs { li { (r) } } }
            } @else {
                p { (message) }
            }
        }
    }
}

fn row_trouble<'a>(t: &Trouble<'a>, name: &str) -> Option<&'a str> {
    match t {
        Trouble::Row(n, e) if *n == name => Some(*e),
        _ => None,
    }
}

fn page(who: &Authed, rows: &[AdminView], form: &AddForm, trouble: &Trouble<'_>) -> Markup {
    layout::page(
        "Admins",
        Some(who),
        html! {
            h1 { "Admin accounts" }
            p.hint {
                "Accounts that may log in here and use the API with a session. A new account must change its \
                 password at its first login. The CLI does the same: " code { "pbxguard admin add NAME --generate" } "."
            }
            div.table-wrap {
                table #admin-list {
                    thead { tr { th { "Name" } th { "Password" } th { "Last login" } th { "Change password" } th {} } }
                    tbody {
                        @for a in rows {
                            @let base = format!("/admins/{}", url_encode(&a.name));
                            tr data-name=(a.name) {
                                td { (a.name) @if a.name == who.who { " " span.hint { "(you)" } } }
                                td {
                                    @if a.must_change { span.warn-text { "must be changed at next login" } }
                                    @else { "set " (utc(a.updated_at * 1000)) }
                                }
                                td {
                                    @match a.last_login_ms {
                                        Some(ms) => { (utc(ms)) @if let Some(f) = &a.last_login_from { " from " (f) } }
                                        None => span.hint { "none in the event log" },
                                    }
                                }
                                td {
                                    @if let Some(e) = row_trouble(trouble, &a.name) { (trouble_box(e)) }
                                    form.inline method="post" action=(format!("{base}/password")) {
                                        (layout::csrf_field(who))
                                        label {
                                            "New password"
                                            input name="password" type="password" autocomplete="new-password" maxlength="1024";
                                        }
                                        button.secondary type="submit" { "Change" }
                                        button.secondary type="submit" name="generate" value="1" { "Generate" }
                                    }
                                }
                                td {
                                    form method="post" action=(format!("{base}/delete")) {
                                        (layout::csrf_field(who))
                                        button.danger type="submit" data-confirm=(format!("Delete the admin account {}?", a.name)) { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 #add { "Add an admin" }
            @if let Trouble::Add(e) = trouble { (trouble_box(e)) }
            form.card #admin-add method="post" action="/admins" {
                (layout::csrf_field(who))
                div.inline {
                    label for="admin-name" { "Name" input #admin-name name="name" required maxlength="64" autocomplete="off" value=(form.name); }
                    label for="admin-password" { "Password" input #admin-password name="password" type="password" autocomplete="new-password" maxlength="1024"; }
                    label for="admin-generate" { "Generate one" input #admin-generate name="generate" type="checkbox" value="1" checked[form.generate.is_some()]; }
                    button #admin-add-submit type="submit" { "Add" }
                }
                p.hint { "At least 8 characters with upper and lower case, a digit and a special character; not the account name. Leave it empty and tick “Generate one” for a strong random password, shown once." }
            }
        },
    )
}

async fn render(
    gui: &Shared,
    who: &Authed,
    form: &AddForm,
    trouble: Trouble<'_>,
    e: Option<&pbxguard_app::Error>,
) -> Response {
    match gui.db.run(|s| admins::overview(s)).await {
        Ok(rows) => {
            let p = page(who, &rows, form, &trouble);
            match e {
                Some(e) => refused(e, p),
                None => p.into_response(),
            }
        }
        Err(e) => super::ui::broken("Admins", who, &e),
    }
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    render(&gui, &who, &AddForm::default(), Trouble::None, None).await
}

fn new_password(password: String, generate: Option<&String>) -> NewPassword {
    if generate.is_some() && password.is_empty() { NewPassword::Generate } else { NewPassword::Given(password) }
}

async fn add(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<AddForm>) -> Response {
    let name = f.name.trim().to_owned();
    let new = new_password(f.password.clone(), f.generate.as_ref());
    let n = name.clone();
    match gui.db.run(move |s| admins::add(s, &n, new)).await {
        Ok(generated) => {
            tracing::info!(admin = %who.who, added = name, "admin account added in the GUI");
            match generated {
                Some(p) => shown_once(&format!("Admin {name} added"), &who, "Its first password", &p, "/admins"),
                None => Redirect::to("/admins").into_response(),
            }
        }
        Err(e) => {
            let msg = e.to_string();
            render(&gui, &who, &f, Trouble::Add(&msg), Some(&e)).await
        }
    }
}

async fn password(
    State(gui): State<Shared>,
    Writer(who): Writer,
    Path(name): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let new = new_password(f.password, f.generate.as_ref());
    let n = name.clone();
    match gui.db.run(move |s| admins::set_password(s, &n, new)).await {
        Ok(generated) => {
            // Whoever held that password is logged out; changing one's own keeps this session.
            if name != who.who {
                gui.sessions.end_all(&name);
            }
            tracing::info!(admin = %who.who, account = name, "admin password changed in the GUI");
            match generated {
                Some(p) => shown_once(&format!("Admin {name}: new password"), &who, "The new password", &p, "/admins"),
                None => Redirect::to("/admins").into_response(),
            }
        }
        Err(e) => {
            let msg = e.to_string();
            render(&gui, &who, &AddForm::default(), Trouble::Row(&name, &msg), Some(&e)).await
        }
    }
}

async fn delete(State(gui): State<Shared>, Writer(who): Writer, Path(name): Path<String>) -> Response {
    let (n, acting) = (name.clone(), who.who.clone());
    match gui.db.run(move |s| admins::delete(s, &n, Some(&acting))).await {
        Ok(()) => {
            gui.sessions.end_all(&name);
            tracing::info!(admin = %who.who, deleted = name, "admin account deleted in the GUI");
            Redirect::to("/admins").into_response()
        }
        Err(e) => {
            let msg = e.to_string();
            render(&gui, &who, &AddForm::default(), Trouble::Row(&name, &msg), Some(&e)).await
        }
    }
}
