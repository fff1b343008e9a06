//! The host firewall: the wizard's services, the last apply and the one awaiting a confirm (with its
//! rollback deadline and the confirm button), and the nftables ruleset an apply would load.
//!
//! No apply from here this round: an apply must never cut the operator off, and the CLI's anti-lockout
//! check knows the caller's SSH session, which a browser's request does not carry. The wizard and
//! apply stay on the command line (`pbxguard firewall wizard`).

use super::super::access::{Authed, Writer};
use super::super::layout;
use super::super::shared::Shared;
use super::ui::{broken, refused};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use pbxguard_app::clock::utc;
use pbxguard_app::firewall as fw;
use pbxguard_store::prelude::*;
use pbxguard_store::{ApplyRow, ApplyState, FirewallServiceRow};

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/firewall", get(show)).route("/firewall/confirm", post(confirm))
}

/// What the page and `GET /api/v1/firewall` show.
pub(crate) struct View {
    pub(crate) services: Vec<FirewallServiceRow>,
    /// The wizard has saved services (otherwise `services` are its defaults).
    pub(crate) saved: bool,
    pub(crate) enabled: bool,
    /// Whether table `inet pbxguard` is loaded, or why that is unknown.
    pub(crate) loaded: Result<bool, String>,
    pub(crate) pending: Option<ApplyRow>,
    pub(crate) last: Option<ApplyRow>,
    /// `nft -f` text, or why it cannot be built.
    pub(crate) ruleset: Result<String, String>,
}

pub(crate) async fn view(gui: &Shared) -> pbxguard_app::Result<View> {
    let data = gui.data.clone();
    gui.db
        .run(move |s| {
            let ruleset = crate::host::ports(s, &data, None, None)
                .map_err(|e| format!("{e:#}"))
                .and_then(|ports| fw::ruleset(s, &ports).map_err(|e| e.to_string()))
                .map(|rs| pbxguard_firewall::render::ruleset(&rs));
            Ok(View {
                services: fw::services(s)?,
                saved: !s.firewall_services()?.is_empty(),
                enabled: pbxguard_app::settings::get(s, "firewall.enabled")? == "true",
                loaded: crate::host::firewall_loaded(),
                pending: fw::pending(s)?,
                last: fw::last(s)?,
                ruleset,
            })
        })
        .await
}

fn page(who: &Authed, v: &View, error: Option<&str>) -> Markup {
    layout::page(
        "Firewall",
        Some(who),
        html! {
            h1 { "Host firewall" }
            @if let Some(e) = error { (layout::error_box(e)) }
            p #fw-state {
                "Table inet pbxguard: "
                @match &v.loaded {
                    Ok(true) => span.ok { "loaded" },
                    Ok(false) => span.warn-text { "not loaded" },
                    Err(why) => span.hint { "unknown (" (why) ")" },
                }
                "; kernel bans (firewall.enabled): " (if v.enabled { "on" } else { "off" })
            }
            (apply_state(who, v))
            h2 { "Services" }
            @if !v.saved {
                p.notice #fw-defaults { "The wizard has not run yet: these are its defaults, everything open to anyone." }
            }
            div.table-wrap {
                table #fw-services {
                    thead { tr { th { "Service" } th { "Protocol" } th { "Ports" } th { "Allowed from" } } }
                    tbody {
                        @for s in &v.services {
                            tr data-service=(s.name) {
                                td { (s.name) }
                                td { (s.proto) }
                                td { @match &s.ports { Some(p) => (p), None => span.hint { "what is listening" } } }
                                td { @if s.sources.trim().is_empty() { span.warn-text { "anyone" } } @else { (s.sources) } }
                            }
                        }
                    }
                }
            }
            p.hint {
                "Changing the services and applying them stays on the command line this round: "
                code { "pbxguard firewall wizard" } " checks that the SSH session you run it from stays allowed, \
                 and rolls back unless you confirm."
            }
            h2 { "The ruleset an apply would load" }
            @match &v.ruleset {
                Ok(text) => pre #fw-ruleset { (text) },
                Err(why) => (layout::error_box(&format!("the ruleset cannot be built: {why}"))),
            }
        },
    )
}

fn apply_state(who: &Authed, v: &View) -> Markup {
    html! {
        @match &v.pending {
            Some(armed) if armed.state == ApplyState::Applied => {
                div.notice #fw-pending role="status" {
                    p {
                        "Apply " (armed.id) " is loaded and rolls back at "
                        strong { (armed.deadline_ms.map(utc).unwrap_or_default()) }
                        " unless it is confirmed. Confirm only if you can still reach this server the way you need \
                         to (a new SSH login proves it)."
                    }
                    form method="post" action="/firewall/confirm" {
                        (layout::csrf_field(who))
                        button #fw-confirm type="submit" { "Confirm: keep this ruleset" }
                    }
                }
            }
            Some(waiting) => p.notice #fw-pending { "Apply " (waiting.id) " waits for the daemon to load it." },
            None => {}
        }
        @if let Some(l) = v.last.as_ref().filter(|l| v.pending.as_ref().is_none_or(|p| p.id != l.id)) {
            p #fw-last {
                "Last apply: " (l.id) " " (l.state.as_str()) " at " (utc(l.updated_ms))
                @if let Some(d) = &l.detail { " (" (d) ")" }
            }
        } @else if v.last.is_none() {
            p.hint #fw-last { "No apply yet." }
        }
    }
}

async fn show(State(gui): State<Shared>, who: Authed) -> Response {
    match view(&gui).await {
        Ok(v) => page(&who, &v, None).into_response(),
        Err(e) => broken("Firewall", &who, &e),
    }
}

async fn confirm(State(gui): State<Shared>, Writer(who): Writer) -> Response {
    match gui.db.run(|s| fw::confirm(s)).await {
        Ok(row) => {
            tracing::info!(admin = %who.who, apply = row.id, "firewall apply confirmed in the GUI");
            Redirect::to("/firewall").into_response()
        }
        Err(e) => match view(&gui).await {
            Ok(v) => refused(&e, page(&who, &v, Some(&e.to_string()))),
            Err(_) => broken("Firewall", &who, &e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::access::Scope;
    use super::*;

    fn row(id: i64, state: ApplyState, deadline_ms: Option<i64>) -> ApplyRow {
        ApplyRow {
            id,
            ruleset: String::new(),
            rollback_ms: 60_000,
            state,
            detail: None,
            previous: None,
            requested_ms: 0,
            deadline_ms,
            updated_ms: 0,
        }
    }

    fn render(pending: Option<ApplyRow>, last: Option<ApplyRow>) -> String {
        let who = Authed { who: "admin".into(), scope: Scope::Admin, csrf: "t0ken".into() };
        let v = View {
            services: Vec::new(),
            saved: true,
            enabled: true,
            loaded: Ok(true),
            pending,
            last,
            ruleset: Ok(String::new()),
        };
        apply_state(&who, &v).into_string()
    }

    #[test]
    fn the_confirm_button_appears_only_while_an_apply_awaits_its_confirm() {
        // 2026-12-01 04:00:00 UTC.
        let armed = row(7, ApplyState::Applied, Some(1_796_097_600_000));
        let html = render(Some(armed.clone()), Some(armed));
        assert!(html.contains("id=\"fw-confirm\"") && html.contains("action=\"/firewall/confirm\""), "{html}");
        assert!(html.contains("Apply 7") && html.contains("2026-12-01"), "no deadline: {html}");
        assert!(html.contains("name=\"csrf\" value=\"t0ken\""), "no CSRF field: {html}");
        assert!(!html.contains("id=\"fw-last\""), "the pending apply is listed twice: {html}");

        let html = render(Some(row(8, ApplyState::Requested, None)), None);
        assert!(html.contains("waits for the daemon") && !html.contains("fw-confirm"), "{html}");

        let html = render(None, Some(row(6, ApplyState::RolledBack, None)));
        assert!(!html.contains("fw-confirm") && html.contains("rolled_back"), "{html}");
    }
}
