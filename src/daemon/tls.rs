//! TLS server configuration: the operator's certificate and key, or a self-signed pair generated once
//! into `<data>/tls/` (so clients that pin it keep working across restarts), reloaded on SIGHUP. And
//! the client side for TLS trunks, which are verified like any TLS server: name and chain, never skipped.

use crate::config::TlsConfig;
use anyhow::{Context, Result, anyhow};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

fn generate(cert: &Path, key: &Path) -> Result<()> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_default();
    let mut names = vec!["localhost".to_owned()];
    if !host.is_empty() {
        names.push(host);
    }
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| anyhow!("generating a self-signed certificate: {e}"))?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(cert, ck.cert.pem())?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(key)?, ck.signing_key.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate; set tls.cert and tls.key to use your own");
    Ok(())
}

/// The certificate and key files in use: the operator's, else the generated pair (made now if missing).
fn paths(data: &Path, cfg: &TlsConfig) -> Result<(PathBuf, PathBuf)> {
    Ok(match (&cfg.cert, &cfg.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let (c, k) = (data.join("tls/cert.pem"), data.join("tls/key.pem"));
            if !c.exists() || !k.exists() {
                generate(&c, &k)?;
            }
            (c, k)
        }
    })
}

fn load(cert: &Path, key: &Path) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing TLS certificate {} (expected PEM)", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{} holds no certificate", cert.display()));
    }
    let pk = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading TLS private key {} (expected PEM)", key.display()))?;
    CertifiedKey::from_der(chain, pk, &rustls::crypto::ring::default_provider())
        .map_err(|e| anyhow!("the TLS certificate {} and key {} do not match: {e}", cert.display(), key.display()))
}

/// The server certificate, replaceable while the daemon runs: SIGHUP, a change to its files (an
/// import or an ACME renewal by another process) or the GUI loads the pair again, and every handshake
/// after that presents it; connections already up keep the one they started with.
#[derive(Debug)]
pub(crate) struct ServerCert {
    current: RwLock<Arc<CertifiedKey>>,
    data: PathBuf,
    files: std::sync::Mutex<Watched>,
}

/// The files served, and what they looked like when loaded (and at the last look), to notice a change.
#[derive(Debug)]
struct Watched {
    cert: PathBuf,
    key: PathBuf,
    loaded: Option<Stamp>,
    seen: Option<Stamp>,
    /// When `seen` last changed: the files are loaded once they held still this long.
    seen_at: std::time::Instant,
}

/// How long changed files must hold still before they are loaded (an import renames the key, then the
/// chain: loading between the two would find a mismatched pair).
const HELD_STILL: std::time::Duration = std::time::Duration::from_millis(900);

type Stamp = [(std::time::SystemTime, u64, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len(), std::os::unix::fs::MetadataExt::ino(&m)))
    };
    Some([one(cert)?, one(key)?])
}

impl ServerCert {
    pub(crate) fn load(data: &Path, cfg: &TlsConfig) -> Result<Arc<Self>> {
        let (cert, key) = paths(data, cfg)?;
        let loaded = stamp(&cert, &key);
        let ck = load(&cert, &key)?;
        record(data, &cert, &key);
        let files = Watched { cert, key, loaded, seen: loaded, seen_at: std::time::Instant::now() };
        Ok(Arc::new(Self { current: RwLock::new(Arc::new(ck)), data: data.to_owned(), files: files.into() }))
    }

    /// Fail-safe: an unreadable or mismatched new pair is an error and the old one stays in use.
    pub(crate) fn reload(&self, data: &Path, cfg: &TlsConfig) -> Result<()> {
        let (cert, key) = paths(data, cfg)?;
        self.load_from(cert, key)
    }

    /// Loads the files in use again (after the GUI wrote them).
    pub(crate) fn reload_files(&self) -> Result<()> {
        let (cert, key) = {
            let w = self.watched();
            (w.cert.clone(), w.key.clone())
        };
        self.load_from(cert, key)
    }

    fn load_from(&self, cert: PathBuf, key: PathBuf) -> Result<()> {
        let before = stamp(&cert, &key);
        let new = Arc::new(load(&cert, &key)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = new;
        record(&self.data, &cert, &key);
        *self.watched() = Watched { cert, key, loaded: before, seen: before, seen_at: std::time::Instant::now() };
        Ok(())
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called when the files may have changed, and every second while [`ServerCert::settling`]: loads
    /// them again once they changed and then held still for [`HELD_STILL`]. `None`: nothing to do.
    pub(crate) fn poll_files(&self) -> Option<Result<()>> {
        let (cert, key) = {
            let mut w = self.watched();
            let now = stamp(&w.cert, &w.key);
            if now != w.seen {
                w.seen = now;
                w.seen_at = std::time::Instant::now();
                return None;
            }
            if now.is_none() || now == w.loaded || w.seen_at.elapsed() < HELD_STILL {
                return None;
            }
            // Tried once per change: a bad pair is reported once, not every second.
            w.loaded = now;
            (w.cert.clone(), w.key.clone())
        };
        Some(self.load_from(cert, key))
    }

    /// The files changed since they were loaded and have not been loaded again yet.
    pub(crate) fn settling(&self) -> bool {
        let w = self.watched();
        w.seen.is_some() && w.seen != w.loaded
    }

    /// The certificate and key files in use.
    pub(crate) fn files(&self) -> [PathBuf; 2] {
        let w = self.watched();
        [w.cert.clone(), w.key.clone()]
    }

    /// The chain served now, leaf first.
    pub(crate) fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).cert.clone()
    }
}

/// Tells commands which files to write (see `pbxguard_app::certs`). Best effort: a data directory
/// the daemon cannot write has bigger problems, reported elsewhere.
fn record(data: &Path, cert: &Path, key: &Path) {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let files = pbxguard_app::certs::TlsFiles { cert: abs(cert), key: abs(key) };
    if let Err(e) = pbxguard_app::certs::record_in_use(data, &files) {
        tracing::warn!(error = %e, "cannot record which TLS certificate files are in use");
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

pub(crate) fn acceptor(cert: Arc<ServerCert>) -> Result<TlsAcceptor> {
    let sc = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    Ok(TlsAcceptor::from(Arc::new(sc)))
}

/// How pbxguard reaches a TLS trunk: the name its certificate must carry (the trunk's host, a DNS name
/// or an IP address) and what it must chain to.
#[derive(Clone)]
pub(crate) struct TlsPeer {
    pub(crate) name: ServerName<'static>,
    pub(crate) config: Arc<ClientConfig>,
}

/// A client configuration trusting `ca` (PEM) if given, else the public roots (Mozilla's list, built
/// in, so it does not depend on what the host has installed).
fn client_config(ca: Option<&str>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(pem) => {
            roots.add_parsable_certificates(pbxguard_app::tls::ca_certificates(pem).map_err(|e| anyhow!(e))?);
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let c = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(c))
}

/// The TLS trunks by the address they resolved to. A trunk whose stored CA is unusable is left out
/// (and logged): its calls fail, the others keep working.
pub(crate) fn peers(
    rows: &[pbxguard_store::TrunkRow],
    trunks: &[Arc<pbxguard_pbx::Trunk>],
) -> std::collections::HashMap<std::net::SocketAddr, TlsPeer> {
    let mut out = std::collections::HashMap::new();
    for t in trunks.iter().filter(|t| t.transport == pbxguard_pbx::Transport::Tls) {
        let ca = rows.iter().find(|r| r.name == t.name).and_then(|r| r.tls_ca.as_deref());
        let name = match ServerName::try_from(t.host.clone()) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(trunk = t.name, host = t.host, error = %e, "trunk host is not a valid TLS server name");
                continue;
            }
        };
        if out.contains_key(&t.addr) {
            // One connection per address, so one way of verifying it.
            tracing::error!(trunk = t.name, addr = %t.addr, "another TLS trunk uses this address; its certificate settings apply");
            continue;
        }
        match client_config(ca) {
            Ok(config) => {
                out.insert(t.addr, TlsPeer { name, config });
            }
            Err(e) => {
                tracing::error!(trunk = t.name, error = %e, "trunk TLS certificates unusable; its calls will fail")
            }
        }
    }
    out
}
