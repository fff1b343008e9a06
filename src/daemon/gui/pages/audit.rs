//! The security audit: the score out of 100 and every finding with the command that fixes it,
//! grouped by severity, the same report as `pbxguard audit` (the host's facts come from
//! `crate::host`, which the command uses too). Safe fixes stay on the command line (`audit --fix`).

use super::super::access::Authed;
use super::super::layout;
use super::super::shared::Shared;
use super::ui::broken;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use pbxguard_app::audit::{self, Finding, Report, Severity};
use std::path::Path;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/audit", get(show))
}

/// The report the page and `GET /api/v1/audit` show.
pub(crate) async fn report(gui: &Shared) -> pbxguard_app::Result<Report> {
    let data = gui.data.clone();
    // The audit runs perl and nft and reads sshd's files: on a blocking thread, beside its store calls.
    gui.db
        .run(move |s| {
            let host = crate::host::audit_facts(&data, Path::new(crate::host::SHADOW));
            audit::run(s, &data, &host)
        })
        .await
}

fn finding(f: &Finding) -> Markup {
    html! {
        li.finding data-check=(f.check) data-severity=(f.severity.as_str()) {
            strong { (f.title) }
            @if f.auto_fix { " " span.hint title="pbxguard audit --fix applies it" { "[auto]" } }
            p { (f.evidence) }
            p { "Fix: " code { (f.fix) } }
        }
    }
}

fn page(who: &Authed, r: &Report) -> Markup {
    let groups = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];
    let auto = r.findings.iter().filter(|f| f.auto_fix).count();
    layout::page(
        "Audit",
        Some(who),
        html! {
            h1 { "Security audit" }
            p.score #audit-score data-score=(r.score) {
                "Score: " strong { (r.score) "/100" }
                @if r.critical { " " span.error-text { "(critical findings: fix them first)" } }
            }
            p.hint #audit-count data-findings=(r.findings.len()) {
                (r.findings.len()) " finding(s). The same report as " code { "pbxguard audit" } "; "
                @if auto > 0 { (auto) " marked [auto] are fixed by " code { "pbxguard audit --fix" } "." }
                @else { "none can be fixed automatically." }
            }
            @for sev in groups {
                @let fs: Vec<&Finding> = r.findings.iter().filter(|f| f.severity == sev).collect();
                @if !fs.is_empty() {
                    section id=(format!("audit-{}", sev.as_str())) {
                        h2 { (capitalised(sev.as_str())) " (" (fs.len()) ")" }
                        ul.findings { @for f in fs { (finding(f)) } }
                    }
                }
            }
            @if r.findings.is_empty() { p.ok #audit-clean { "Nothing to fix." } }
            @if !r.passed.is_empty() {
                h2 { "Passed" }
                p #audit-passed { (r.passed.join(", ")) }
            }
            @if !r.skipped.is_empty() {
                h2 { "Not checked" }
                ul #audit-skipped { @for s in &r.skipped { li { (s.check) ": " (s.why) } } }
            }
        },
    )
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

async fn show(State(gui): State<Shared>, who: Authed) -> Response {
    match report(&gui).await {
        Ok(r) => page(&who, &r).into_response(),
        Err(e) => broken("Audit", &who, &e),
    }
}
