//! Obtaining the TLS certificate from an ACME CA (RFC 8555) with HTTP-01: shared by the daemon (its
//! renewal check and the GUI's button) and `pbxguard cert acme`, so whoever runs it answers the
//! challenge itself. The certificate goes through `pbxguard_app::certs::import` like any other (the
//! same checks, written where the daemon reads it; a running daemon picks it up).
//!
//! The account key is kept in `<data>/acme/account.json` (0600) and reused while the directory URL
//! stays the same. The HTTP-01 responder listens on `acme.http_port` only while an order runs.

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use pbxguard_app::certs::{AcmeSettings, Imported};
use pbxguard_app::{Error, Result, invalid};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the CA gets to validate and to issue: real CAs answer in seconds.
const PATIENCE: Duration = Duration::from_secs(90);

fn acme_err(what: &str) -> impl Fn(instant_acme::Error) -> Error + '_ {
    move |e| Error::Io(format!("ACME: {what}: {e}"))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    directory: String,
    credentials: AccountCredentials,
}

fn builder(acme: &AcmeSettings) -> Result<instant_acme::AccountBuilder> {
    match &acme.ca_file {
        Some(ca) => Account::builder_with_root(ca).map_err(|e| {
            invalid!(
                "acme.ca_file {}: {e} (expected the PEM certificate of the CA behind the ACME server)",
                ca.display()
            )
        }),
        None => Account::builder().map_err(acme_err("setting up HTTPS")),
    }
}

/// The stored account for this directory, else a new one (stored).
async fn account(data: &Path, acme: &AcmeSettings) -> Result<Account> {
    let path = data.join("acme/account.json");
    if let Some(stored) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Stored>(&b).ok())
        .filter(|s| s.directory == acme.directory)
    {
        return builder(acme)?.from_credentials(stored.credentials).await.map_err(acme_err("restoring the account"));
    }
    let contact = format!("mailto:{}", acme.email);
    let contacts: Vec<&str> = if acme.email.is_empty() { vec![] } else { vec![contact.as_str()] };
    let new = NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = builder(acme)?
        .create(&new, acme.directory.clone(), None)
        .await
        .map_err(acme_err(&format!("creating an account at {}", acme.directory)))?;
    let json = serde_json::to_vec(&Stored { directory: acme.directory.clone(), credentials })
        .map_err(|e| Error::Io(format!("ACME account: {e}")))?;
    write_private(&path, &json)?;
    Ok(account)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::Io(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(&tmp).map_err(io)?, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// Answers `/.well-known/acme-challenge/TOKEN` with its key authorization until dropped. The CA
/// checks each token several times (pebble three), so it keeps answering for the whole order.
struct Responder {
    tokens: Tokens,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn responder(port: u16) -> Result<Responder> {
    let tokens: Tokens = Arc::default();
    let app = {
        let tokens = tokens.clone();
        axum::Router::new().route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(move |axum::extract::Path(token): axum::extract::Path<String>| {
                let answer = tokens.lock().unwrap_or_else(|e| e.into_inner()).get(&token).cloned();
                async move {
                    use axum::response::IntoResponse;
                    match answer {
                        Some(a) => a.into_response(),
                        None => axum::http::StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        )
    };
    let mut tasks = Vec::new();
    let v4 = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await.map_err(|e| {
        Error::Conflict(format!(
            "cannot listen on port {port} to answer the ACME HTTP-01 challenge: {e}. Stop what uses it (another web \
             server or a certificate tool), or run as a user allowed to bind it"
        ))
    })?;
    tasks.push(tokio::spawn(serve(v4, app.clone())));
    // IPv6 too where the host has it (a separate socket: the IPv4 one is not dual-stack).
    if let Ok(s) = tokio::net::TcpSocket::new_v6()
        && socket2::SockRef::from(&s).set_only_v6(true).is_ok()
        && s.bind(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port))).is_ok()
        && let Ok(l) = s.listen(64)
    {
        tasks.push(tokio::spawn(serve(l, app)));
    }
    Ok(Responder { tokens, tasks })
}

async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "ACME HTTP-01 responder stopped");
    }
}

/// Orders a certificate for `acme.domains`, answers the challenges, and installs what the CA issues.
pub(crate) async fn obtain(data: &Path, acme: &AcmeSettings) -> Result<Imported> {
    if !acme.configured() {
        return Err(invalid!(
            "ACME is not set up: pbxguard settings set acme.directory URL, and acme.domains NAME[,NAME...] \
             (and acme.email for the CA's expiry notices)"
        ));
    }
    let account = account(data, acme).await?;
    let ids: Vec<Identifier> = acme.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&ids)).await.map_err(acme_err("placing the order"))?;
    let web = responder(acme.http_port).await?;
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(acme_err("reading an authorization"))?;
            if a.status != AuthorizationStatus::Pending {
                continue;
            }
            let name = a.identifier().to_string();
            let mut ch = a.challenge(ChallengeType::Http01).ok_or_else(|| {
                Error::Io(format!("ACME: the CA offers no HTTP-01 challenge for {name}; pbxguard answers only HTTP-01"))
            })?;
            web.tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ch.token.clone(), ch.key_authorization().as_str().to_owned());
            ch.set_ready().await.map_err(acme_err("answering the challenge"))?;
        }
    }
    let retry = RetryPolicy::new().timeout(PATIENCE);
    let status = order.poll_ready(&retry).await.map_err(acme_err("waiting for validation"))?;
    if status != OrderStatus::Ready {
        return Err(Error::Io(format!(
            "ACME: the CA did not validate {}: {}",
            acme.domains.join(", "),
            why(&mut order).await
        )));
    }
    let key_pem = order.finalize().await.map_err(acme_err("finalizing the order"))?;
    let chain = order.poll_certificate(&retry).await.map_err(acme_err("fetching the certificate"))?;
    drop(web);
    let data = data.to_owned();
    tokio::task::spawn_blocking(move || {
        pbxguard_app::certs::import(&data, &chain, Some(&key_pem), pbxguard_app::clock::now_secs())
    })
    .await
    .map_err(|e| Error::Io(format!("installing the certificate: {e}")))?
}

/// What the CA said about the challenges that failed.
async fn why(order: &mut instant_acme::Order) -> String {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(Ok(a)) = authzs.next().await {
        for c in a.challenges.iter().filter(|c| c.r#type == ChallengeType::Http01) {
            if let Some(p) = &c.error {
                out.push(format!("{}: {p}", a.identifier()));
            }
        }
    }
    if out.is_empty() {
        "no reason given (check that each name resolves to this host and port 80 reaches acme.http_port)".into()
    } else {
        out.join("; ")
    }
}
