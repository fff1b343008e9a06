//! TLS server configuration: the operator's certificate and key, or a self-signed pair generated once
//! into `<data>/tls/` (so clients that pin it keep working across restarts).

use crate::config::TlsConfig;
use anyhow::{Context, Result, anyhow};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
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

pub(crate) fn acceptor(data: &Path, cfg: &TlsConfig) -> Result<TlsAcceptor> {
    let (cert, key) = match (&cfg.cert, &cfg.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let (c, k) = (data.join("tls/cert.pem"), data.join("tls/key.pem"));
            if !c.exists() || !k.exists() {
                generate(&c, &k)?;
            }
            (c, k)
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing TLS certificate {} (expected PEM)", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{} holds no certificate", cert.display()));
    }
    let pk = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("reading TLS private key {} (expected PEM)", key.display()))?;
    let sc = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, pk)
        .context("the TLS certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(sc)))
}
