//! The daemon's TLS certificate (SIP TLS and the admin GUI share it): what it is, replacing it with a
//! checked chain and key, a key and CSR to hand to a CA, and the ACME settings. Parsing and checks are
//! pure; `import` and `csr` write files in the data directory, atomically, and nothing else. A running
//! daemon watches the files it serves and loads a new pair within two seconds.
//!
//! Which files: the daemon records the pair it serves in `<data>/tls/in-use.json` (its configuration
//! file's `tls.cert`/`tls.key`, else `<data>/tls/cert.pem` and `key.pem`), and every command writes
//! that pair. So an import reaches the daemon whichever way it is configured; a configured path the
//! caller may not write is refused with a message, never silently written elsewhere.
//!
//! What "complete" means without a trust store (we do not know which roots the phones trust): the
//! certificates come leaf first, each one is signed by the next (signature verified, issuer = the
//! next one's subject), every one after the leaf is a CA, and a chain ends either at a self-signed
//! certificate or at a CA certificate (an intermediate whose root the clients hold). A lone leaf is
//! accepted only if it is self-signed; a lone leaf from a CA is the classic missing intermediate.

use crate::{Error, Result, conflict, invalid, not_found};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// Longest chain accepted, and largest PEM input: hostile or mistaken input stays small.
const MAX_CHAIN: usize = 10;
const MAX_PEM: usize = 1 << 20;
/// A certificate from ACME is renewed this many days before it expires (or with a third of its
/// lifetime left, for short-lived ones).
pub const RENEW_DAYS: i64 = 30;

/// One certificate, as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub sans: Vec<String>,
    pub issuer: String,
    /// Hex, upper case, no leading zeros: as `openssl x509 -serial` prints it.
    pub serial: String,
    /// Seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub key_type: String,
    pub self_signed: bool,
    pub is_ca: bool,
    /// SHA-256 of the DER, hex with colons (what phones that pin a certificate show).
    pub sha256: String,
}

impl CertInfo {
    /// Whole days until it expires (negative once expired).
    pub fn days_left(&self, now_secs: i64) -> i64 {
        (self.not_after - now_secs).div_euclid(86_400)
    }
}

/// The certificate and key files the daemon serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The pair pbxguard keeps itself, used when the configuration file names none.
    pub fn default_in(data: &Path) -> Self {
        Self { cert: data.join("tls/cert.pem"), key: data.join("tls/key.pem") }
    }
}

fn in_use_path(data: &Path) -> PathBuf {
    data.join("tls/in-use.json")
}

/// The pair the daemon serves (as it last recorded it), else the default pair.
pub fn files(data: &Path) -> TlsFiles {
    std::fs::read(in_use_path(data))
        .ok()
        .and_then(|b| serde_json::from_slice::<TlsFiles>(&b).ok())
        .unwrap_or_else(|| TlsFiles::default_in(data))
}

/// For the daemon: records the pair it serves, so commands write where it reads.
pub fn record_in_use(data: &Path, files: &TlsFiles) -> Result<()> {
    let json = serde_json::to_vec_pretty(files).map_err(|e| Error::Io(e.to_string()))?;
    write_atomic(&in_use_path(data), &json, false)
}

/// A certificate, checked and ready to be written.
#[derive(Debug)]
pub struct Checked {
    pub chain: Vec<CertInfo>,
    /// Worth knowing, not worth refusing (a CA flag on the leaf, a self-signed certificate).
    pub warnings: Vec<String>,
    cert_pem: String,
    key_pem: String,
}

fn pem_of(tag: &str, der: &[u8]) -> String {
    pem::encode_config(&pem::Pem::new(tag, der), pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

fn hex(bytes: &[u8], sep: &str) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(sep)
}

/// The certificates in a PEM text, leaf first.
pub fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    if pem.len() > MAX_PEM {
        return Err(invalid!("the certificate chain is over 1 MiB: that is not a certificate chain"));
    }
    let ders = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid!("the certificate chain is not valid PEM ({e})"))?;
    if ders.is_empty() {
        return Err(invalid!("no certificate in the chain (expected -----BEGIN CERTIFICATE-----)"));
    }
    if ders.len() > MAX_CHAIN {
        return Err(invalid!("the chain holds {} certificates; at most {MAX_CHAIN} are accepted", ders.len()));
    }
    Ok(ders)
}

fn parse(der: &[u8], n: usize) -> Result<X509Certificate<'_>> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| invalid!("certificate {n} of the chain is not a valid X.509 certificate ({e})"))
}

fn key_type(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> String {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(k)) => format!("RSA {}", k.key_size()),
            _ => "RSA".into(),
        },
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".into(),
                Some("1.3.132.0.34") => "ECDSA P-384".into(),
                Some("1.3.132.0.35") => "ECDSA P-521".into(),
                _ => "ECDSA".into(),
            }
        }
        "1.3.101.112" => "Ed25519".into(),
        other => other.to_owned(),
    }
}

/// DNS names and IP addresses, as an operator writes them; other kinds of name are left out.
fn san_names(names: &[GeneralName<'_>]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn describe_parsed(c: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
    let sans =
        c.subject_alternative_name().ok().flatten().map_or_else(Vec::new, |ext| san_names(&ext.value.general_names));
    let raw = c.raw_serial();
    let trimmed = match raw.iter().position(|&b| b != 0) {
        Some(i) => &raw[i..],
        None => &raw[raw.len().saturating_sub(1)..],
    };
    CertInfo {
        subject: c.subject().to_string(),
        sans,
        issuer: c.issuer().to_string(),
        serial: hex(trimmed, ""),
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        key_type: key_type(c.public_key()),
        self_signed: c.subject().as_raw() == c.issuer().as_raw() && c.verify_signature(None).is_ok(),
        is_ca: c.is_ca(),
        sha256: hex(&Sha256::digest(der), ":"),
    }
}

/// What each certificate of a chain says, leaf first.
pub fn describe(ders: &[CertificateDer<'_>]) -> Result<Vec<CertInfo>> {
    ders.iter().enumerate().map(|(i, d)| parse(d, i + 1).map(|c| describe_parsed(&c, d))).collect()
}

/// Checks a chain and its key (see the module's doc for what "complete" means) at `now` (seconds).
pub fn check(chain_pem: &str, key_pem: &str, now: i64) -> Result<Checked> {
    let ders = parse_chain(chain_pem)?;
    let certs: Vec<X509Certificate<'_>> =
        ders.iter().enumerate().map(|(i, d)| parse(d, i + 1)).collect::<Result<_>>()?;
    let infos: Vec<CertInfo> = certs.iter().zip(&ders).map(|(c, d)| describe_parsed(c, d)).collect();
    let name = |i: usize| {
        if i == 0 {
            format!("the certificate ({})", infos[0].subject)
        } else {
            format!("chain certificate {} ({})", i + 1, infos[i].subject)
        }
    };
    for (i, c) in infos.iter().enumerate() {
        if c.not_after <= now {
            return Err(invalid!("{} expired on {}: get a new one", name(i), crate::clock::utc(c.not_after * 1000)));
        }
        if c.not_before > now {
            return Err(invalid!(
                "{} is not valid yet (from {}): check this machine's clock, or wait",
                name(i),
                crate::clock::utc(c.not_before * 1000)
            ));
        }
    }
    for i in 0..certs.len() - 1 {
        let (child, parent) = (&certs[i], &certs[i + 1]);
        if child.issuer().as_raw() != parent.subject().as_raw()
            || child.verify_signature(Some(parent.public_key())).is_err()
        {
            return Err(invalid!(
                "the chain is out of order or mixed: {} is issued by {:?}, but the next certificate is {:?}. \
                 Put the server certificate first, then each issuer in turn",
                name(i),
                infos[i].issuer,
                infos[i + 1].subject
            ));
        }
        if !infos[i + 1].is_ca {
            return Err(invalid!("{} signs another certificate but is not a CA certificate", name(i + 1)));
        }
    }
    if certs.len() == 1 && !infos[0].self_signed {
        return Err(invalid!(
            "the chain is incomplete: it holds only the server certificate, issued by {:?}. Append the intermediate \
             certificate(s) your CA gave you (often \"fullchain.pem\" or \"ca-bundle\"), or its root if it issued \
             the certificate directly",
            infos[0].issuer
        ));
    }
    let key = key_matching(&certs[0], key_pem)?;
    let mut warnings = Vec::new();
    if infos[0].is_ca {
        warnings.push(
            "the certificate is marked as a CA (basicConstraints CA:TRUE): many TLS clients (rustls, and so some phones) refuse such a server certificate".into(),
        );
    }
    if infos[0].self_signed {
        warnings.push("the certificate is self-signed: phones must be told to trust it".into());
    }
    // What the daemon will do with it: if rustls refuses the pair, so do we, now.
    rustls::sign::CertifiedKey::from_der(ders.clone(), key.clone_key(), &rustls::crypto::ring::default_provider())
        .map_err(|e| invalid!("the TLS library refuses this certificate and key: {e}"))?;
    let tag = match &key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    Ok(Checked {
        cert_pem: ders.iter().map(|d| pem_of("CERTIFICATE", d)).collect(),
        key_pem: pem_of(tag, key.secret_der()),
        chain: infos,
        warnings,
    })
}

/// The private key in `key_pem`, if it is the one the leaf certifies.
fn key_matching(leaf: &X509Certificate<'_>, key_pem: &str) -> Result<PrivateKeyDer<'static>> {
    if key_pem.len() > MAX_PEM {
        return Err(invalid!("the key is over 1 MiB: that is not a private key"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        invalid!("no private key found (expected -----BEGIN PRIVATE KEY-----, EC PRIVATE KEY or RSA PRIVATE KEY; encrypted keys are not supported): {e}")
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        invalid!("the private key is of a kind not supported (RSA, ECDSA P-256/P-384 and Ed25519 are): {e}")
    })?;
    let spki = signer.public_key().ok_or_else(|| invalid!("cannot derive the public key of this private key"))?;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki.as_ref())
        .map_err(|e| invalid!("cannot read the public key of this private key ({e})"))?;
    if spki.subject_public_key.data != leaf.public_key().subject_public_key.data {
        return Err(invalid!(
            "the private key does not match the certificate ({}): it belongs to another certificate. Give the key \
             that was generated with this certificate's CSR",
            leaf.subject()
        ));
    }
    Ok(key)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader sees the old file or
/// the new one, never half of one. A file that existed keeps its owner (a root shell importing for
/// a daemon that runs as `pbxguard` must not leave it a key it cannot read).
fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::Io(format!("{what} {}: {e}", path.display()));
    let dir = path.parent().ok_or_else(|| invalid!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, if secret { 0o600 } else { 0o644 });
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        #[cfg(unix)]
        if let Ok(old) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            // Only root may give a file away; anyone else keeps it as their own.
            let _ = std::os::unix::fs::chown(&tmp, Some(old.uid()), Some(old.gid()));
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("writing", e));
    }
    Ok(())
}

/// Refuses early, naming the fix, when the files the daemon serves cannot be written by this caller.
fn writable(files: &TlsFiles, data: &Path) -> Result<()> {
    for p in [&files.cert, &files.key] {
        let dir = p.parent().unwrap_or(Path::new("/"));
        let probe = dir.join(format!(".pbxguard-probe-{}", std::process::id()));
        let ok = std::fs::create_dir_all(dir).is_ok() && std::fs::write(&probe, b"").is_ok();
        let _ = std::fs::remove_file(&probe);
        if !ok {
            let hint = if *files == TlsFiles::default_in(data) {
                "run this as the user the daemon runs as (or root)".to_owned()
            } else {
                "the daemon's configuration file names it (tls.cert/tls.key): run this as a user that may write there, \
                 or remove tls.cert and tls.key from the configuration to let pbxguard keep its certificate in its data directory"
                    .to_owned()
            };
            return Err(conflict!(
                "cannot write {} (the daemon serves its certificate from there): {hint}",
                p.display()
            ));
        }
    }
    Ok(())
}

/// A key and CSR made by `csr`, waiting for its certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pending {
    pub names: Vec<String>,
    pub csr_pem: String,
    /// When it was made, seconds since the epoch.
    pub created: i64,
}

fn pending_key(data: &Path) -> PathBuf {
    data.join("tls/pending-key.pem")
}
fn pending_csr(data: &Path) -> PathBuf {
    data.join("tls/pending-csr.pem")
}

/// The CSR waiting for its certificate, if any.
pub fn pending(data: &Path) -> Option<Pending> {
    let csr_pem = std::fs::read_to_string(pending_csr(data)).ok()?;
    if !pending_key(data).exists() {
        return None;
    }
    let created = std::fs::metadata(pending_csr(data))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let mut names = Vec::new();
    if let Ok((_, p)) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes())
        && let Ok((_, req)) = x509_parser::certification_request::X509CertificationRequest::from_der(&p.contents)
        && let Some(exts) = req.requested_extensions()
    {
        for e in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = e {
                // IP addresses too: a CSR for `pbx.example.com 192.0.2.10` lists both while it waits.
                names.extend(san_names(&san.general_names));
            }
        }
    }
    Some(Pending { names, csr_pem, created })
}

/// The names a certificate may be requested for: DNS names (a leading `*.` allowed) and IP addresses.
pub fn check_names(names: &[String]) -> Result<Vec<String>> {
    let names: Vec<String> = names
        .iter()
        .flat_map(|n| n.split([',', ' ', '\n']))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err(invalid!("give at least one name, such as pbx.example.com"));
    }
    if names.len() > 100 {
        return Err(invalid!("at most 100 names per certificate"));
    }
    for n in &names {
        let bare = n.strip_prefix("*.").unwrap_or(n);
        if bare.len() > 253
            || ServerName::try_from(bare).is_err()
            || (bare != n && bare.parse::<std::net::IpAddr>().is_ok())
        {
            return Err(invalid!(
                "{n:?} is not a DNS name or IP address (such as pbx.example.com, *.example.com or 192.0.2.10)"
            ));
        }
    }
    Ok(names)
}

/// A new key (ECDSA P-256) and a CSR for `names`. The key stays in the data directory (0600) until
/// the CA's certificate for it is imported; a new CSR replaces one still pending.
pub fn csr(data: &Path, names: &[String]) -> Result<Pending> {
    let names = check_names(names)?;
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(|e| invalid!("{e}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0].clone());
    let key = rcgen::KeyPair::generate().map_err(|e| Error::Io(format!("generating a key: {e}")))?;
    let req = params.serialize_request(&key).map_err(|e| Error::Io(format!("making the CSR: {e}")))?;
    let csr_pem = req.pem().map_err(|e| Error::Io(format!("encoding the CSR: {e}")))?;
    write_atomic(&pending_key(data), key.serialize_pem().as_bytes(), true)?;
    write_atomic(&pending_csr(data), csr_pem.as_bytes(), false)?;
    Ok(Pending { names, csr_pem, created: crate::clock::now_secs() })
}

/// What an import did.
#[derive(Debug, serde::Serialize)]
pub struct Imported {
    pub files: TlsFiles,
    pub chain: Vec<CertInfo>,
    pub warnings: Vec<String>,
    /// The key came from the pending CSR.
    pub used_pending_key: bool,
}

/// Checks `chain_pem` with `key_pem` (or, without one, the key of the pending CSR) and writes both
/// where the daemon reads them. Any failure changes nothing.
pub fn import(data: &Path, chain_pem: &str, key_pem: Option<&str>, now: i64) -> Result<Imported> {
    let pending = std::fs::read_to_string(pending_key(data)).ok();
    let (key_pem, used_pending_key) = match (key_pem.filter(|k| !k.trim().is_empty()), &pending) {
        (Some(k), _) => (k.to_owned(), false),
        (None, Some(p)) => (p.clone(), true),
        (None, None) => {
            return Err(invalid!(
                "no private key given and no CSR pending: give the key file too (pbxguard cert import CHAIN.pem KEY.pem), \
                 or make a key and CSR first (pbxguard cert csr --name NAME) and import the CA's answer"
            ));
        }
    };
    let checked = check(chain_pem, &key_pem, now).map_err(|e| match (e, used_pending_key) {
        (Error::Invalid(m), true) if m.contains("does not match") => invalid!(
            "the certificate is not the one for the pending CSR: its key does not match. Give the certificate the CA issued for that CSR, or its own key"
        ),
        (e, _) => e,
    })?;
    let files = files(data);
    writable(&files, data)?;
    install(&files, &checked)?;
    // The pending key is in use now (or superseded by the same key given explicitly).
    if pending.is_some_and(|p| used_pending_key || p.trim() == key_pem.trim()) {
        let _ = std::fs::remove_file(pending_key(data));
        let _ = std::fs::remove_file(pending_csr(data));
    }
    Ok(Imported { files, chain: checked.chain, warnings: checked.warnings, used_pending_key })
}

/// Key first, then the chain: the daemon watching them may catch the pair mismatched for an instant,
/// refuses it and keeps serving the old one until the chain follows. A failure on the second puts
/// the old key back.
fn install(files: &TlsFiles, checked: &Checked) -> Result<()> {
    let old_key = std::fs::read(&files.key).ok();
    write_atomic(&files.key, checked.key_pem.as_bytes(), true)?;
    if let Err(e) = write_atomic(&files.cert, checked.cert_pem.as_bytes(), false) {
        if let Some(k) = old_key {
            let _ = write_atomic(&files.key, &k, true);
        }
        return Err(e);
    }
    Ok(())
}

/// The certificate in use, as `pbxguard cert show` and the GUI present it.
#[derive(Debug, serde::Serialize)]
pub struct Shown {
    pub files: TlsFiles,
    pub chain: Vec<CertInfo>,
    pub days_left: i64,
    pub pending: Option<Pending>,
}

pub fn show(data: &Path, now: i64) -> Result<Shown> {
    let files = files(data);
    let pem = std::fs::read_to_string(&files.cert).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found!(
            "no certificate at {} yet: the daemon makes a self-signed one at its first start; or import yours (pbxguard cert import)",
            files.cert.display()
        ),
        _ => Error::Io(format!("reading {}: {e}", files.cert.display())),
    })?;
    let chain = describe(&parse_chain(&pem)?)?;
    let days_left = chain[0].days_left(now);
    Ok(Shown { files, chain, days_left, pending: pending(data) })
}

/// ACME (RFC 8555) settings: where to ask, for which names, how to answer HTTP-01.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub directory: String,
    pub domains: Vec<String>,
    pub email: String,
    pub ca_file: Option<PathBuf>,
    pub http_port: u16,
}

impl AcmeSettings {
    pub fn configured(&self) -> bool {
        !self.directory.is_empty() && !self.domains.is_empty()
    }
}

/// Why the certificate should be obtained again from the ACME server now, if it should: it is not
/// one for the configured names (the self-signed one, or the names changed), or it is near its end.
pub fn renewal_due(leaf: &CertInfo, acme: &AcmeSettings, now: i64) -> Option<String> {
    if !acme.configured() {
        return None;
    }
    if let Some(d) = acme.domains.iter().find(|d| !leaf.sans.iter().any(|s| s.eq_ignore_ascii_case(d))) {
        return Some(format!("the certificate does not name {d}"));
    }
    let lifetime = leaf.not_after - leaf.not_before;
    let before = (RENEW_DAYS * 86_400).min(lifetime / 3);
    (leaf.not_after - now <= before).then(|| format!("the certificate expires in {} days", leaf.days_left(now)))
}

/// `acme.domains`: comma-separated DNS names, no wildcards (HTTP-01 cannot prove one), or empty.
pub fn check_acme_domains(v: &str) -> std::result::Result<(), String> {
    if v.trim().is_empty() {
        return Ok(());
    }
    const RULE: &str = "expected comma-separated DNS names such as pbx.example.com,sip.example.com";
    let names = check_names(&[v.to_owned()]).map_err(|e| format!("{RULE}: {e}"))?;
    match names.iter().find(|n| n.starts_with("*.") || n.parse::<std::net::IpAddr>().is_ok()) {
        Some(n) => Err(format!("{RULE}; {n}: HTTP-01 proves DNS names only, not wildcards or addresses")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
