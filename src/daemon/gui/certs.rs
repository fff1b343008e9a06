//! The certificate manager: the certificate served now (SIP TLS and this GUI share it), importing a
//! chain and key, a key and CSR for a CA, and ACME now. Page `/certs`; the API's `/api/v1/certs`
//! (`api::certs`) calls the same functions. The rules and the files are `pbxguard_app::certs`; ACME
//! is `crate::acme`, run inside the daemon. After a change the daemon's certificate is loaded again
//! at once: the next handshake presents it.

use super::access::Authed;
use super::access::Writer;
use super::layout;
use super::shared::{Shared, status_of};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use pbxguard_app::certs::{self, AcmeSettings, CertInfo, Pending, TlsFiles};
use pbxguard_app::clock::{now_secs, utc};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/certs", get(page))
        .route("/certs/import", post(import_form))
        .route("/certs/csr", post(csr_form))
        .route("/certs/acme", post(acme_form))
}

/// What the page and `GET /api/v1/certs` show: the chain served (from memory, so exactly what a
/// client gets), the files it came from, a pending CSR, the ACME settings.
pub(super) struct Current {
    pub(super) served: Vec<CertInfo>,
    pub(super) days_left: i64,
    pub(super) files: TlsFiles,
    pub(super) pending: Option<Pending>,
    pub(super) acme: Option<AcmeView>,
}

pub(super) struct AcmeView {
    pub(super) directory: String,
    pub(super) domains: Vec<String>,
    pub(super) http_port: u16,
}

pub(super) async fn current(gui: &Shared) -> pbxguard_app::Result<Current> {
    let served = certs::describe(&gui.cert.chain())?;
    let days_left = served.first().map_or(0, |c| c.days_left(now_secs()));
    let data = gui.data.clone();
    let (files, pending) = tokio::task::spawn_blocking(move || (certs::files(&data), certs::pending(&data)))
        .await
        .map_err(|e| pbxguard_app::Error::Io(e.to_string()))?;
    let acme = gui.db.run(|s| pbxguard_app::settings::acme(s)).await?;
    let acme = acme.configured().then(|| AcmeView {
        directory: acme.directory.clone(),
        domains: acme.domains.clone(),
        http_port: acme.http_port,
    });
    Ok(Current { served, days_left, files, pending, acme })
}

#[derive(serde::Deserialize, Default)]
struct Done {
    done: Option<String>,
}

/// The form inputs to keep after a refusal.
#[derive(Default)]
struct Kept {
    chain: String,
    names: String,
}

async fn page(State(gui): State<Shared>, who: Authed, Query(q): Query<Done>) -> Response {
    let notice = match q.done.as_deref() {
        Some("import") => Some("Certificate installed: new connections (SIP TLS and this GUI) use it."),
        Some("acme") => Some("Certificate obtained by ACME and installed: new connections use it."),
        Some("csr") => Some("Key and CSR made: send the CSR below to your CA, then import the certificate it returns."),
        _ => None,
    };
    render(&gui, &who, notice, None, Kept::default()).await
}

async fn render(
    gui: &Shared,
    who: &Authed,
    notice: Option<&str>,
    error: Option<&pbxguard_app::Error>,
    kept: Kept,
) -> Response {
    let status = error.map_or(StatusCode::OK, status_of);
    match current(gui).await {
        Ok(c) => (status, layout::page("Certificates", Some(who), body(who, &c, notice, error, &kept))).into_response(),
        Err(e) => {
            (status_of(&e), layout::page("Certificates", Some(who), layout::error_box(&e.to_string()))).into_response()
        }
    }
}

fn when(secs: i64) -> String {
    utc(secs * 1000)
}

fn body(who: &Authed, c: &Current, notice: Option<&str>, error: Option<&pbxguard_app::Error>, kept: &Kept) -> Markup {
    html! {
        h1 { "Certificates" }
        @if let Some(n) = notice { p.notice role="status" #cert-notice { (n) } }
        @if let Some(e) = error { (layout::error_box(&e.to_string())) }
        @if let Some(leaf) = c.served.first() {
            section.card #cert-current {
                h2 { "In use" }
                div.table-wrap { table {
                    tbody {
                        tr { th scope="row" { "Subject" } td #cert-subject { (leaf.subject) } }
                        tr { th scope="row" { "Names" } td #cert-names { (leaf.sans.join(", ")) } }
                        tr { th scope="row" { "Issuer" } td #cert-issuer {
                            (leaf.issuer) @if leaf.self_signed { " " span.warn-text { "(self-signed)" } }
                        } }
                        tr { th scope="row" { "Serial" } td #cert-serial { (leaf.serial) } }
                        tr { th scope="row" { "Valid" } td { (when(leaf.not_before)) " to " (when(leaf.not_after)) } }
                        tr { th scope="row" { "Days left" } td #cert-days {
                            @if c.days_left < 0 { span.error-text { "expired" } }
                            @else if c.days_left < certs::RENEW_DAYS { span.warn-text { (c.days_left) } }
                            @else { (c.days_left) }
                        } }
                        tr { th scope="row" { "Key type" } td #cert-key-type { (leaf.key_type) } }
                        tr { th scope="row" { "SHA-256" } td { code { (leaf.sha256) } } }
                        tr { th scope="row" { "Files" } td { code { (c.files.cert.display()) } br; code { (c.files.key.display()) } } }
                    }
                } }
                @if c.served.len() > 1 {
                    h2 { "Chain" }
                    ol { @for i in &c.served[1..] { li { (i.subject) " — until " (when(i.not_after)) } } }
                }
            }
        }
        section.card #cert-acme {
            h2 { "ACME" }
            @match &c.acme {
                Some(a) => {
                    p { "From " code { (a.directory) } " for " strong { (a.domains.join(", ")) }
                        ", answering HTTP-01 on port " (a.http_port) ". Renewed automatically "
                        (certs::RENEW_DAYS) " days before it expires." }
                    form method="post" action="/certs/acme" {
                        (layout::csrf_field(who))
                        button #acme-now type="submit" { "Obtain a certificate now" }
                    }
                }
                None => p.hint { "Not set up. Set acme.directory and acme.domains (and acme.email) on the "
                    a href="/settings" { "settings" } " page; then the daemon obtains and renews the certificate itself." }
            }
        }
        section.card #cert-import {
            h2 { "Import a certificate" }
            p.hint { "The certificate first, then its intermediate certificates (PEM). Checked before anything changes: the key must match, the chain must be complete (each certificate signed by the next), nothing expired." }
            form method="post" action="/certs/import" {
                (layout::csrf_field(who))
                label for="chain" { "Certificate chain (PEM)" }
                textarea #chain name="chain" rows="8" cols="66" spellcheck="false" required { (kept.chain) }
                label for="chain-file" { "or read it from a file" }
                input #chain-file type="file" accept=".pem,.crt,.cer" data-fill="chain";
                label for="key" { "Private key (PEM)" @if c.pending.is_some() { " — leave empty to use the key of the pending CSR" } }
                textarea #key name="key" rows="6" cols="66" spellcheck="false" autocomplete="off" {}
                label for="key-file" { "or read it from a file" }
                input #key-file type="file" accept=".pem,.key" data-fill="key";
                p { button #import type="submit" { "Check and install" } }
            }
        }
        section.card #cert-csr {
            h2 { "Key and CSR" }
            @if let Some(p) = &c.pending {
                p { "Pending since " (when(p.created)) " for " strong { (p.names.join(", ")) } ": send this CSR to your CA, then import the certificate it returns (the key stays here)." }
                pre.ruleset #csr-pem { (p.csr_pem) }
            }
            form.inline method="post" action="/certs/csr" {
                (layout::csrf_field(who))
                label for="names" { "Names (comma-separated)"
                    input #names name="names" required placeholder="pbx.example.com, sip.example.com" value=(kept.names);
                }
                button #make-csr type="submit" { @if c.pending.is_some() { "Replace with a new key and CSR" } @else { "Make a key and CSR" } }
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct ImportForm {
    chain: String,
    #[serde(default)]
    key: String,
}

pub(super) async fn import(gui: &Shared, chain: String, key: Option<String>) -> pbxguard_app::Result<certs::Imported> {
    let data = gui.data.clone();
    let done = tokio::task::spawn_blocking(move || certs::import(&data, &chain, key.as_deref(), now_secs()))
        .await
        .map_err(|e| pbxguard_app::Error::Io(e.to_string()))??;
    loaded(gui)?;
    Ok(done)
}

/// Serves what was just written, now; the file watcher would within two seconds anyway.
fn loaded(gui: &Shared) -> pbxguard_app::Result<()> {
    gui.cert
        .reload_files()
        .map_err(|e| pbxguard_app::Error::Io(format!("the new certificate was written but does not load: {e:#}")))
}

async fn import_form(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<ImportForm>) -> Response {
    let key = (!f.key.trim().is_empty()).then_some(f.key);
    match import(&gui, f.chain.clone(), key).await {
        Ok(d) => {
            tracing::info!(admin = who.who, serial = d.chain[0].serial, "certificate imported");
            Redirect::to("/certs?done=import").into_response()
        }
        // The key is never sent back to the browser.
        Err(e) => render(&gui, &who, None, Some(&e), Kept { chain: f.chain, names: String::new() }).await,
    }
}

#[derive(serde::Deserialize)]
struct CsrForm {
    names: String,
}

pub(super) async fn csr(gui: &Shared, names: Vec<String>) -> pbxguard_app::Result<Pending> {
    let data = gui.data.clone();
    tokio::task::spawn_blocking(move || certs::csr(&data, &names))
        .await
        .map_err(|e| pbxguard_app::Error::Io(e.to_string()))?
}

async fn csr_form(State(gui): State<Shared>, Writer(who): Writer, Form(f): Form<CsrForm>) -> Response {
    match csr(&gui, vec![f.names.clone()]).await {
        Ok(_) => Redirect::to("/certs?done=csr").into_response(),
        Err(e) => render(&gui, &who, None, Some(&e), Kept { chain: String::new(), names: f.names }).await,
    }
}

pub(super) async fn acme(gui: &Shared) -> pbxguard_app::Result<certs::Imported> {
    let settings: AcmeSettings = gui.db.run(|s| pbxguard_app::settings::acme(s)).await?;
    let done = crate::acme::obtain(&gui.data, &settings).await?;
    loaded(gui)?;
    Ok(done)
}

async fn acme_form(State(gui): State<Shared>, Writer(who): Writer) -> Response {
    match acme(&gui).await {
        Ok(d) => {
            tracing::info!(admin = who.who, serial = d.chain[0].serial, "certificate obtained by ACME");
            Redirect::to("/certs?done=acme").into_response()
        }
        Err(e) => render(&gui, &who, None, Some(&e), Kept::default()).await,
    }
}
