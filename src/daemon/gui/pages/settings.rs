//! Settings: every run-time setting with its documentation, allowed values, default and current
//! value, edited in place (validated by `pbxguard_app::configure`, as `pbxguard settings set` is).

use super::super::access::Authed;
use super::super::access::Writer;
use super::super::layout;
use super::super::shared::Shared;
use super::ui::{broken, refused};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::configure::{self, SettingView};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/settings", get(list))
        .route("/settings/{key}", post(set))
        .route("/settings/{key}/reset", post(reset))
}

type Rows = Vec<(SettingView, Option<String>)>;

async fn load(gui: &Shared) -> pbxguard_app::Result<Rows> {
    gui.db
        .run(|s| {
            configure::list(s)?
                .into_iter()
                .map(|v| Ok((pbxguard_app::settings::allowed(v.key)?, v)))
                .map(|r: pbxguard_app::Result<_>| r.map(|(a, v)| (v, a)))
                .collect()
        })
        .await
}

/// `tried`: the key and value an operator just tried, kept in its input after a refusal.
fn render(who: &Authed, rows: &Rows, tried: Option<(&str, &str)>, error: Option<&str>) -> Markup {
    layout::page(
        "Settings",
        Some(who),
        html! {
            h1 { "Settings" }
            p.hint { "Stored in the database; a running daemon applies a change within a second." }
            @if let Some(e) = error { (layout::error_box(e)) }
            div.table-wrap {
                table #settings-list {
                    thead { tr { th { "Setting" } th { "Value" } th { "Default" } } }
                    tbody {
                        @for (s, allowed) in rows {
                            @let value = match tried { Some((k, v)) if k == s.key => v, _ => s.value.as_str() };
                            tr id=(format!("setting-{}", s.key)) {
                                td {
                                    strong { code { (s.key) } }
                                    p.hint { (s.doc) }
                                    @if let Some(a) = allowed { p.hint { "Allowed: " (a) } }
                                }
                                td {
                                    form.inline method="post" action=(format!("/settings/{}", s.key)) {
                                        (layout::csrf_field(who))
                                        label for=(format!("v-{}", s.key)) { span.hint { "value" }
                                            input.value id=(format!("v-{}", s.key)) name="value" value=(value);
                                        }
                                        button.secondary type="submit" { "Save" }
                                    }
                                }
                                td {
                                    code { (s.default) }
                                    @if s.value != s.default && s.default != "(computed)" {
                                        form method="post" action=(format!("/settings/{}/reset", s.key)) {
                                            (layout::csrf_field(who))
                                            button.secondary type="submit" { "Reset" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

async fn list(State(gui): State<Shared>, who: Authed) -> Response {
    match load(&gui).await {
        Ok(rows) => render(&who, &rows, None, None).into_response(),
        Err(e) => broken("Settings", &who, &e),
    }
}

#[derive(serde::Deserialize)]
struct ValueForm {
    #[serde(default)]
    value: String,
}

async fn after(
    gui: &Shared,
    who: &Authed,
    key: &str,
    value: &str,
    r: pbxguard_app::Result<configure::Changed>,
) -> Response {
    match r {
        Ok(changed) => {
            tracing::info!(admin = %who.who, key, "setting changed in the GUI");
            match changed.review.filter(|r| r.fixed && !r.extensions.is_empty()) {
                // New secrets were generated: shown here once, never again.
                Some(review) => layout::page(
                    "Settings",
                    Some(who),
                    html! {
                        h1 { (key) " changed" }
                        div.notice role="status" { p { "These extensions' secrets broke the policy and were replaced (shown once):" } }
                        table { @for r in &review.extensions { tr { td { (r.extension) } td { code { (r.new_secret.as_deref().unwrap_or("")) } } } } }
                        p { a.button href="/settings" { "Back" } }
                    },
                )
                .into_response(),
                None => Redirect::to(&format!("/settings#setting-{key}")).into_response(),
            }
        }
        Err(e) => match load(gui).await {
            Ok(rows) => refused(&e, render(who, &rows, Some((key, value)), Some(&e.to_string()))),
            Err(_) => broken("Settings", who, &e),
        },
    }
}

async fn set(
    State(gui): State<Shared>,
    Writer(who): Writer,
    Path(key): Path<String>,
    Form(f): Form<ValueForm>,
) -> Response {
    let (k, v) = (key.clone(), f.value.clone());
    let r = gui.db.run(move |s| configure::set(s, &k, &v)).await;
    after(&gui, &who, &key, &f.value, r).await
}

async fn reset(State(gui): State<Shared>, Writer(who): Writer, Path(key): Path<String>) -> Response {
    let k = key.clone();
    let r = gui.db.run(move |s| configure::reset(s, &k).map(|(_, c)| c)).await;
    after(&gui, &who, &key, "", r).await
}
