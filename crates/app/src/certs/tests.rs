use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};

/// 2026-06-01T00:00:00Z: inside every test certificate's validity unless a test says otherwise.
const NOW: i64 = 1_780_272_000;

struct Pki {
    inter_key: KeyPair,
    inter: CertificateParams,
    root_pem: String,
    inter_pem: String,
}

fn ca(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2030, 1, 1);
    p
}

fn pki() -> Pki {
    let root_key = KeyPair::generate().unwrap();
    let root = ca("Test Root");
    let root_pem = root.self_signed(&root_key).unwrap().pem();
    let inter_key = KeyPair::generate().unwrap();
    let inter = ca("Test Intermediate");
    let inter_pem = inter.signed_by(&inter_key, &Issuer::from_params(&root, &root_key)).unwrap().pem();
    Pki { inter_key, inter, root_pem, inter_pem }
}

fn leaf(p: &Pki, from: (i32, u8, u8), to: (i32, u8, u8)) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["pbx.example.com".to_owned()]).unwrap();
    params.not_before = date_time_ymd(from.0, from.1, from.2);
    params.not_after = date_time_ymd(to.0, to.1, to.2);
    let cert = params.signed_by(&key, &Issuer::from_params(&p.inter, &p.inter_key)).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn err(r: Result<Checked>) -> String {
    match r {
        Err(Error::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_full_chain_with_its_key_is_accepted_and_described() {
    let p = pki();
    let (cert, key) = leaf(&p, (2026, 1, 1), (2026, 12, 1));
    let c = check(&format!("{cert}{}{}", p.inter_pem, p.root_pem), &key, NOW).unwrap();
    assert_eq!(c.chain.len(), 3);
    assert_eq!(c.chain[0].sans, ["pbx.example.com"]);
    assert_eq!(c.chain[0].issuer, "CN=Test Intermediate");
    assert_eq!(c.chain[0].key_type, "ECDSA P-256");
    assert!(!c.chain[0].self_signed && c.chain[2].self_signed && c.chain[1].is_ca);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Without the root (what CAs hand out as fullchain.pem) it is complete too.
    check(&format!("{cert}{}", p.inter_pem), &key, NOW).unwrap();
}

#[test]
fn refusals_name_the_problem() {
    let p = pki();
    let (cert, key) = leaf(&p, (2026, 1, 1), (2026, 12, 1));
    let (_, other_key) = leaf(&p, (2026, 1, 1), (2026, 12, 1));
    let full = format!("{cert}{}", p.inter_pem);
    assert!(err(check(&full, &other_key, NOW)).contains("does not match"));
    assert!(err(check(&cert, &key, NOW)).contains("incomplete"));
    assert!(err(check(&format!("{}{cert}", p.inter_pem), &key, NOW)).contains("out of order"));
    assert!(err(check(&format!("{cert}{}", p.root_pem), &key, NOW)).contains("out of order"));
    let (old, old_key) = leaf(&p, (2025, 1, 1), (2026, 2, 1));
    assert!(err(check(&format!("{old}{}", p.inter_pem), &old_key, NOW)).contains("expired on 2026-02-01"));
    let (young, young_key) = leaf(&p, (2026, 9, 1), (2027, 2, 1));
    assert!(err(check(&format!("{young}{}", p.inter_pem), &young_key, NOW)).contains("not valid yet"));
    assert!(err(check("hello", &key, NOW)).contains("no certificate"));
    assert!(err(check(&full, "not a key", NOW)).contains("no private key"));
    assert!(err(check(&full, &cert, NOW)).contains("no private key"));
}

#[test]
fn a_self_signed_certificate_alone_is_complete_with_a_warning() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
    let c = check(&cert.pem(), &key.serialize_pem(), crate::clock::now_secs()).unwrap();
    assert!(c.chain[0].self_signed);
    assert!(c.warnings.iter().any(|w| w.contains("self-signed")));
}

#[test]
fn serial_reads_as_openssl_prints_it() {
    let p = pki();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x8f, 0x01]));
    let cert = params.signed_by(&key, &Issuer::from_params(&p.inter, &p.inter_key)).unwrap();
    let info = describe(&parse_chain(&cert.pem()).unwrap()).unwrap();
    assert_eq!(info[0].serial, "8F01");
}

#[test]
fn import_writes_the_pair_in_use_and_a_failure_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("pbxguard-certs-{}-import", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let p = pki();
    let (cert, key) = leaf(&p, (2026, 1, 1), (2026, 12, 1));
    let full = format!("{cert}{}", p.inter_pem);
    let files = TlsFiles::default_in(&dir);
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(&files.cert, "old cert").unwrap();
    std::fs::write(&files.key, "old key").unwrap();
    let (_, wrong) = leaf(&p, (2026, 1, 1), (2026, 12, 1));
    assert!(import(&dir, &full, Some(&wrong), NOW).is_err());
    assert!(import(&dir, &full, None, NOW).unwrap_err().to_string().contains("no CSR pending"));
    assert_eq!(std::fs::read_to_string(&files.cert).unwrap(), "old cert");
    assert_eq!(std::fs::read_to_string(&files.key).unwrap(), "old key");
    let done = import(&dir, &full, Some(&key), NOW).unwrap();
    assert_eq!(done.files, files);
    assert_eq!(parse_chain(&std::fs::read_to_string(&files.cert).unwrap()).unwrap().len(), 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Configured elsewhere: the daemon's record says where, and import follows it.
    let other = TlsFiles { cert: dir.join("etc/full.pem"), key: dir.join("etc/priv.pem") };
    record_in_use(&dir, &other).unwrap();
    import(&dir, &full, Some(&key), NOW).unwrap();
    assert!(other.cert.exists() && other.key.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_csr_key_waits_for_its_certificate() {
    let dir = std::env::temp_dir().join(format!("pbxguard-certs-{}-csr", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let made = csr(&dir, &["pbx.example.com, sip.example.com".to_owned()]).unwrap();
    assert_eq!(made.names, ["pbx.example.com", "sip.example.com"]);
    assert_eq!(pending(&dir).unwrap().names, made.names);
    // The CA's answer: a certificate for the CSR's key.
    let p = pki();
    let req = rcgen::CertificateSigningRequestParams::from_pem(&made.csr_pem).unwrap();
    let cert = req.signed_by(&Issuer::from_params(&p.inter, &p.inter_key)).unwrap();
    let (unrelated, _) = leaf(&p, (2026, 1, 1), (2029, 12, 1));
    let e = import(&dir, &format!("{unrelated}{}", p.inter_pem), None, crate::clock::now_secs()).unwrap_err();
    assert!(e.to_string().contains("pending CSR"), "{e}");
    let done = import(&dir, &format!("{}{}", cert.pem(), p.inter_pem), None, crate::clock::now_secs()).unwrap();
    assert!(done.used_pending_key);
    assert!(pending(&dir).is_none());
    assert!(csr(&dir, &["not a name!".to_owned()]).is_err());
    assert!(csr(&dir, &[]).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn renewal_is_due_for_other_names_or_near_the_end() {
    let acme = AcmeSettings {
        directory: "https://acme.example/dir".into(),
        domains: vec!["pbx.example.com".into()],
        email: String::new(),
        ca_file: None,
        http_port: 80,
    };
    let day = 86_400;
    let mut leaf = CertInfo {
        subject: String::new(),
        sans: vec!["pbx.example.com".into()],
        issuer: String::new(),
        serial: String::new(),
        not_before: NOW - 60 * day,
        not_after: NOW + 31 * day,
        key_type: String::new(),
        self_signed: false,
        is_ca: false,
        sha256: String::new(),
    };
    assert_eq!(renewal_due(&leaf, &acme, NOW), None);
    assert!(renewal_due(&leaf, &acme, NOW + 2 * day).unwrap().contains("29 days"));
    // A six-day certificate is renewed with two days left, not at once.
    leaf.not_before = NOW;
    leaf.not_after = NOW + 6 * day;
    assert_eq!(renewal_due(&leaf, &acme, NOW + 3 * day), None);
    assert!(renewal_due(&leaf, &acme, NOW + 4 * day).is_some());
    leaf.sans = vec!["localhost".into()];
    assert!(renewal_due(&leaf, &acme, NOW).unwrap().contains("does not name pbx.example.com"));
    assert_eq!(renewal_due(&leaf, &AcmeSettings { directory: String::new(), ..acme }, NOW), None);
}

#[test]
fn acme_domains_are_dns_names() {
    assert!(check_acme_domains("").is_ok());
    assert!(check_acme_domains("pbx.example.com, sip.example.com").is_ok());
    assert!(check_acme_domains("*.example.com").is_err());
    assert!(check_acme_domains("192.0.2.1").is_err());
    assert!(check_acme_domains("a b!").is_err());
}
