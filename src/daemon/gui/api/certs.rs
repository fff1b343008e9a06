//! The certificate SIP TLS and this API share: what is served, importing a chain and key, a key and
//! CSR for a CA, and ACME now. The same functions as the page `/certs` (`gui::certs`), with the same
//! checks and errors; after a change the very next handshake presents the new certificate.

use super::common::{ApiError, ApiErrorBody, ApiResult, JsonBody, created};
use crate::daemon::gui::access::{Authed, Writer};
use crate::daemon::gui::certs::{self as manager, Current};
use crate::daemon::gui::shared::Shared;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use pbxguard_app::certs::{CertInfo, Imported, Pending, TlsFiles};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(show, import)).routes(routes!(csr)).routes(routes!(acme))
}

#[derive(Serialize, ToSchema)]
struct CertOut {
    subject: String,
    /// The names it is valid for (DNS names and addresses).
    sans: Vec<String>,
    issuer: String,
    /// Hex, upper case, as `openssl x509 -serial` prints it.
    serial: String,
    /// Seconds since the epoch.
    not_before: i64,
    /// Seconds since the epoch: when it expires.
    not_after: i64,
    key_type: String,
    self_signed: bool,
    is_ca: bool,
    /// SHA-256 of the DER, hex with colons.
    sha256: String,
}

impl From<CertInfo> for CertOut {
    fn from(c: CertInfo) -> Self {
        Self {
            subject: c.subject,
            sans: c.sans,
            issuer: c.issuer,
            serial: c.serial,
            not_before: c.not_before,
            not_after: c.not_after,
            key_type: c.key_type,
            self_signed: c.self_signed,
            is_ca: c.is_ca,
            sha256: c.sha256,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct FilesOut {
    cert: String,
    key: String,
}

impl From<TlsFiles> for FilesOut {
    fn from(f: TlsFiles) -> Self {
        Self { cert: f.cert.display().to_string(), key: f.key.display().to_string() }
    }
}

#[derive(Serialize, ToSchema)]
struct PendingOut {
    names: Vec<String>,
    /// The CSR to send to the CA (PEM); the key stays on the server.
    csr_pem: String,
    /// When it was made, seconds since the epoch.
    created: i64,
}

impl From<Pending> for PendingOut {
    fn from(p: Pending) -> Self {
        Self { names: p.names, csr_pem: p.csr_pem, created: p.created }
    }
}

#[derive(Serialize, ToSchema)]
struct AcmeOut {
    directory: String,
    domains: Vec<String>,
    /// Where HTTP-01 challenges are answered.
    http_port: u16,
}

#[derive(Serialize, ToSchema)]
struct CertsOut {
    /// The chain served now, the server's certificate first (read from memory: what a client gets).
    served: Vec<CertOut>,
    /// Days until the server's certificate expires (negative: expired).
    days_left: i64,
    files: FilesOut,
    /// A key and CSR waiting for the CA's certificate.
    pending: Option<PendingOut>,
    /// The ACME settings, when acme.directory and acme.domains are set.
    acme: Option<AcmeOut>,
}

impl From<Current> for CertsOut {
    fn from(c: Current) -> Self {
        Self {
            served: c.served.into_iter().map(Into::into).collect(),
            days_left: c.days_left,
            files: c.files.into(),
            pending: c.pending.map(Into::into),
            acme: c.acme.map(|a| AcmeOut { directory: a.directory, domains: a.domains, http_port: a.http_port }),
        }
    }
}

/// The certificate served now (SIP TLS and this API), its files, a pending CSR and ACME.
#[utoipa::path(get, path = "/api/v1/certs", tag = "certificates",
    responses((status = 200, body = CertsOut), (status = 401, body = ApiErrorBody)))]
async fn show(State(gui): State<Shared>, _a: Authed) -> ApiResult<Json<CertsOut>> {
    Ok(Json(manager::current(&gui).await?.into()))
}

#[derive(Serialize, ToSchema)]
struct ImportedOut {
    /// The chain now served, the server's certificate first.
    chain: Vec<CertOut>,
    files: FilesOut,
    /// What is worth knowing but did not stop the import (a name missing, expiry soon...).
    warnings: Vec<String>,
    /// The key was the pending CSR's.
    used_pending_key: bool,
}

impl From<Imported> for ImportedOut {
    fn from(i: Imported) -> Self {
        Self {
            chain: i.chain.into_iter().map(Into::into).collect(),
            files: i.files.into(),
            warnings: i.warnings,
            used_pending_key: i.used_pending_key,
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct ImportIn {
    /// The certificate, then its intermediate certificates (PEM).
    chain: String,
    /// Its private key (PEM); null or empty: the key of the pending CSR.
    key: Option<String>,
}

/// Where an import's message points: at the key, else at the chain.
const IMPORT_FIELDS: &[(&str, &str)] = &[("pending csr", "chain"), ("private key", "key"), ("the key is", "key")];

/// Checks a chain and key (matching, complete, in date) and serves them at once; a refusal changes
/// nothing.
#[utoipa::path(post, path = "/api/v1/certs", tag = "certificates", request_body = ImportIn,
    responses((status = 200, body = ImportedOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, description = "The certificate files are not writable", body = ApiErrorBody)))]
async fn import(
    State(gui): State<Shared>,
    Writer(a): Writer,
    JsonBody(b): JsonBody<ImportIn>,
) -> ApiResult<Json<ImportedOut>> {
    let done = manager::import(&gui, b.chain, b.key)
        .await
        .map_err(|e| ApiError::from(e).field(IMPORT_FIELDS, Some("chain")))?;
    tracing::info!(who = a.who, serial = done.chain[0].serial, "certificate imported through the API");
    Ok(Json(done.into()))
}

#[derive(Deserialize, ToSchema)]
struct CsrIn {
    /// DNS names or addresses, the first one the subject (pbx.example.com, *.example.com, 192.0.2.10).
    names: Vec<String>,
}

/// Makes a new key (kept on the server) and a CSR for the CA; replaces one still pending.
#[utoipa::path(post, path = "/api/v1/certs/csr", tag = "certificates", request_body = CsrIn,
    responses((status = 201, body = PendingOut), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody)))]
async fn csr(State(gui): State<Shared>, Writer(a): Writer, JsonBody(b): JsonBody<CsrIn>) -> ApiResult<Response> {
    let p = manager::csr(&gui, b.names).await.map_err(|e| ApiError::from(e).field(&[], Some("names")))?;
    tracing::info!(who = a.who, names = p.names.join(","), "key and CSR made through the API");
    Ok(created(PendingOut::from(p)))
}

/// Obtains a certificate by ACME now (acme.* settings) and serves it.
#[utoipa::path(post, path = "/api/v1/certs/acme", tag = "certificates",
    responses((status = 200, body = ImportedOut), (status = 400, description = "ACME is not set up", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 409, description = "The HTTP-01 port is taken", body = ApiErrorBody),
        (status = 500, description = "The CA refused or could not be reached (the daemon's log says why)", body = ApiErrorBody)))]
async fn acme(State(gui): State<Shared>, Writer(a): Writer) -> ApiResult<Json<ImportedOut>> {
    let done = manager::acme(&gui).await?;
    tracing::info!(who = a.who, serial = done.chain[0].serial, "certificate obtained by ACME through the API");
    Ok(Json(done.into()))
}
