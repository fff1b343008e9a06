//! The certificate manager end to end: imports refused with a clear message and nothing changed, a
//! good import served by the GUI and SIP TLS without a restart, a CSR that openssl verifies and whose
//! certificate imports alone, and ACME against a real local CA (Debian's pebble) — obtained by the
//! daemon itself and by `pbxguard cert acme`, each served without a restart. Serials are read with
//! `openssl s_client`, a real TLS peer.

mod common;

use common::{Daemon, TempDir, cli, cli_ok, require, wait_for};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What a new TLS connection to `to` is shown: (serial as openssl prints it, issuer).
fn served(to: SocketAddr) -> Option<(String, String)> {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "timeout 5 openssl s_client -connect {to} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer"
        ))
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    let serial = out.lines().find_map(|l| l.strip_prefix("serial="))?.to_ascii_uppercase();
    let issuer = out.lines().find_map(|l| l.strip_prefix("issuer="))?.trim().to_owned();
    Some((serial, issuer))
}

fn serial_of(to: SocketAddr) -> String {
    served(to).expect("a TLS handshake with the daemon").0
}

/// Waits until `to` serves a certificate with `serial`.
fn await_serial(to: SocketAddr, serial: &str) -> bool {
    wait_for(Duration::from_secs(10), || served(to).filter(|(s, _)| s == serial)).is_some()
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A server certificate for localhost/127.0.0.1 from `ca`, with `serial` (hex), valid from..to.
fn leaf(ca: &Ca, serial: &[u8], from: (i32, u8, u8), to: (i32, u8, u8)) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    p.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
    p.not_before = date_time_ymd(from.0, from.1, from.2);
    p.not_after = date_time_ymd(to.0, to.1, to.2);
    let cert = p.signed_by(&key, &Issuer::from_params(&ca.params, &ca.key)).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn refused(data: &Path, args: &[&str], why: &str) {
    let o = cli(data, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(why), "pbxguard {args:?} should fail with {why:?}: {err}");
}

#[test]
fn import_refuses_bad_pairs_and_serves_a_good_one_without_a_restart() {
    require("openssl");
    let d = TempDir::new("certs-import");
    let files = TempDir::new("certs-import-files");
    let daemon = Daemon::start(&d.0);
    let first = serial_of(daemon.gui);
    let before = std::fs::read(d.0.join("tls/cert.pem")).unwrap();
    let key_before = std::fs::read(d.0.join("tls/key.pem")).unwrap();

    let ca = ca("pbxguard test CA");
    let (good, good_key) = leaf(&ca, &[0x4a, 0x11, 0xce], (2025, 1, 1), (2035, 1, 1));
    let (_, other_key) = leaf(&ca, &[0x01], (2025, 1, 1), (2035, 1, 1));
    let (old, old_key) = leaf(&ca, &[0x02], (2020, 1, 1), (2021, 1, 1));
    let chain = write(&files.0, "chain.pem", &format!("{good}{}", ca.pem));
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    refused(&d.0, &["cert", "import", &s(&chain), &s(&write(&files.0, "other.pem", &other_key))], "does not match");
    let expired = write(&files.0, "old.pem", &format!("{old}{}", ca.pem));
    refused(
        &d.0,
        &["cert", "import", &s(&expired), &s(&write(&files.0, "old-key.pem", &old_key))],
        "expired on 2021-01-01",
    );
    let lone = write(&files.0, "lone.pem", &good);
    refused(&d.0, &["cert", "import", &s(&lone), &s(&write(&files.0, "key.pem", &good_key))], "incomplete");
    refused(&d.0, &["cert", "import", &s(&chain)], "no CSR pending");
    assert_eq!(std::fs::read(d.0.join("tls/cert.pem")).unwrap(), before, "a refused import changed the certificate");
    assert_eq!(std::fs::read(d.0.join("tls/key.pem")).unwrap(), key_before, "a refused import changed the key");
    assert_eq!(serial_of(daemon.gui), first);

    let out = cli_ok(&d.0, &["cert", "import", &s(&chain), &s(&files.0.join("key.pem"))]);
    assert!(out.contains("serial       4A11CE"), "{out}");
    assert!(await_serial(daemon.gui, "4A11CE"), "the GUI still serves {:?}\n{}", served(daemon.gui), daemon.log());
    assert!(await_serial(daemon.tls, "4A11CE"), "SIP TLS still serves {:?}", served(daemon.tls));
    let shown: serde_json::Value = serde_json::from_str(&cli_ok(&d.0, &["cert", "show", "--json"])).unwrap();
    assert_eq!(shown["chain"][0]["serial"], "4A11CE");
    assert_eq!(shown["chain"][1]["subject"], "CN=pbxguard test CA");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.0.join("tls/key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_csr_verifies_and_the_certificate_for_it_imports_alone() {
    require("openssl");
    let d = TempDir::new("certs-csr");
    let files = TempDir::new("certs-csr-files");
    let daemon = Daemon::start(&d.0);
    let csr = files.0.join("req.csr");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    cli_ok(&d.0, &["cert", "csr", "--name", "pbx.example.com", "--name", "127.0.0.1", "--out", &s(&csr)]);
    let o = Command::new("openssl").args(["req", "-verify", "-noout", "-text", "-in"]).arg(&csr).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "openssl req -verify: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("verify OK"), "{o:?}");
    assert!(text.contains("DNS:pbx.example.com") && text.contains("IP Address:127.0.0.1"), "{text}");
    let pending = std::fs::metadata(d.0.join("tls/pending-key.pem")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&pending.permissions()) & 0o777, 0o600);
    assert!(cli_ok(&d.0, &["cert", "show"]).contains("pending CSR  for pbx.example.com"));

    // The CA's side, with openssl: a certificate for the CSR's key.
    let ca = ca("pbxguard CSR test CA");
    write(&files.0, "ca.pem", &ca.pem);
    write(&files.0, "ca-key.pem", &ca.key.serialize_pem());
    write(&files.0, "ext.cnf", "subjectAltName=DNS:pbx.example.com,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n");
    let o = Command::new("openssl")
        .current_dir(&files.0)
        .args(["x509", "-req", "-in", "req.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-set_serial", "0x7E57C5"])
        .args(["-days", "30", "-extfile", "ext.cnf", "-out", "leaf.pem"])
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl x509 -req: {o:?}");
    let chain = write(&files.0, "chain.pem", &(std::fs::read_to_string(files.0.join("leaf.pem")).unwrap() + &ca.pem));
    let out = cli_ok(&d.0, &["cert", "import", &s(&chain)]);
    assert!(out.contains("7E57C5"), "{out}");
    assert!(!d.0.join("tls/pending-key.pem").exists(), "the pending key stays after its certificate was imported");
    assert!(await_serial(daemon.gui, "7E57C5"), "the GUI serves {:?}", served(daemon.gui));
}

/// pebble (the ACME CA) and pebble-challtestsrv (its DNS: every name is 127.0.0.1), stopped on drop.
struct Pebble {
    children: Vec<Child>,
    dir: TempDir,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for f in ["pebble.log", "dns.log"] {
                eprintln!("--- {f}:\n{}", std::fs::read_to_string(self.dir.0.join(f)).unwrap_or_default());
            }
        }
    }
}

fn pebble() -> Pebble {
    require("pebble");
    require("pebble-challtestsrv");
    let dir = TempDir::new("pebble");
    // Its own HTTPS listener: a CA the client trusts (acme.ca_file) and a CA:FALSE leaf (rustls
    // refuses a CA certificate as a server's).
    let ca = ca("pebble listener CA");
    let key = KeyPair::generate().unwrap();
    let p = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let listener = p.signed_by(&key, &Issuer::from_params(&ca.params, &ca.key)).unwrap();
    write(&dir.0, "ca.pem", &ca.pem);
    write(&dir.0, "listener.pem", &listener.pem());
    write(&dir.0, "listener-key.pem", &key.serialize_pem());
    let config = format!(
        r#"{{"pebble": {{"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "{0}/listener.pem", "privateKey": "{0}/listener-key.pem",
  "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
        dir.0.display()
    );
    write(&dir.0, "pebble.json", &config);
    let logs = dir.0.clone();
    let log = |f: &str| Stdio::from(std::fs::File::create(logs.join(f)).unwrap());
    let dns = Command::new("pebble-challtestsrv")
        .args(["-dns01", "127.0.0.1:8053", "-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", "127.0.0.1:8055", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .stdout(log("dns.log"))
        .stderr(log("dns.err"))
        .spawn()
        .unwrap();
    let mut guard = Pebble { children: vec![dns], dir };
    let ca_run = Command::new("pebble")
        .arg("-config")
        .arg(guard.dir.0.join("pebble.json"))
        .args(["-dnsserver", "127.0.0.1:8053"])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(log("pebble.log"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    guard.children.push(ca_run);
    let up = wait_for(Duration::from_secs(15), || {
        std::net::TcpStream::connect_timeout(&"127.0.0.1:14000".parse().unwrap(), Duration::from_millis(200)).ok()
    });
    assert!(up.is_some(), "pebble did not start");
    guard
}

#[test]
fn acme_from_pebble_is_served_without_a_restart() {
    require("openssl");
    let pebble = pebble();
    let d = TempDir::new("certs-acme");
    let daemon = Daemon::start(&d.0);
    let (first, _) = served(daemon.gui).expect("a TLS handshake");
    // The directory last: once it is set the daemon sees ACME configured (within 10 s), finds its
    // self-signed certificate is not for pbxguard.test, and obtains one by itself.
    let ca_file = pebble.dir.0.join("ca.pem");
    for (k, v) in [
        ("acme.ca_file", ca_file.to_str().unwrap()),
        ("acme.http_port", "5002"),
        ("acme.email", "admin@pbxguard.test"),
        ("acme.domains", "pbxguard.test"),
        ("acme.directory", "https://127.0.0.1:14000/dir"),
    ] {
        cli_ok(&d.0, &["settings", "set", k, v]);
    }
    let from_pebble = |want_other_than: &str| {
        wait_for(Duration::from_secs(30), || {
            served(daemon.gui).filter(|(s, issuer)| s != want_other_than && issuer.contains("Pebble Intermediate"))
        })
    };
    let (by_daemon, _) =
        from_pebble(&first).unwrap_or_else(|| panic!("the daemon did not obtain a certificate:\n{}", daemon.log()));
    assert!(await_serial(daemon.tls, &by_daemon), "SIP TLS serves {:?}", served(daemon.tls));
    let shown: serde_json::Value = serde_json::from_str(&cli_ok(&d.0, &["cert", "show", "--json"])).unwrap();
    assert_eq!(shown["chain"][0]["sans"], serde_json::json!(["pbxguard.test"]));
    assert_eq!(shown["chain"][0]["serial"], by_daemon.as_str());

    // Now from the command line, while the daemon runs: a new certificate, served without a restart.
    let out = cli_ok(&d.0, &["cert", "acme"]);
    assert!(out.contains("obtained from https://127.0.0.1:14000/dir"), "{out}");
    let (by_cli, _) = from_pebble(&by_daemon).expect("the daemon serves the certificate the CLI obtained");
    assert!(out.contains(&format!("serial       {by_cli}")), "{out}");
    assert!(d.0.join("acme/account.json").exists());
}

fn field<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page.find(&format!("name=\"{name}\" value=\"")).expect("the field") + name.len() + 15;
    &page[at..at + page[at..].find('"').unwrap()]
}

#[test]
fn the_page_and_the_api_show_import_and_refuse() {
    require("openssl");
    const PW: &str = "Zq7!vRt#9mLp";
    let d = TempDir::new("certs-gui");
    let daemon = Daemon::start(&d.0);
    cli_ok(&d.0, &["admin", "passwd", "admin", "--password", PW]);
    let base = format!("https://{}", daemon.gui);
    let agent = common::https_agent();
    let r = agent.post(format!("{base}/login")).send_form([("user", "admin"), ("password", PW)]).unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = |agent: &ureq::Agent| {
        agent
            .get(format!("{base}/certs"))
            .header("cookie", &cookie)
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap()
    };
    let first = serial_of(daemon.gui);
    let html = page(&agent);
    assert!(html.contains(&format!("<td id=\"cert-serial\">{first}</td>")), "{html}");
    let csrf = field(&html, "csrf").to_owned();

    let ca = ca("pbxguard GUI test CA");
    let (good, key) = leaf(&ca, &[0x6a, 0x01], (2025, 1, 1), (2035, 1, 1));
    let (_, wrong) = leaf(&ca, &[0x6a, 0x02], (2025, 1, 1), (2035, 1, 1));
    let chain = format!("{good}{}", ca.pem);
    let post = |chain: &str, key: &str| {
        agent
            .post(format!("{base}/certs/import"))
            .header("cookie", &cookie)
            .send_form([("csrf", csrf.as_str()), ("chain", chain), ("key", key)])
            .unwrap()
    };
    let r = post(&chain, &wrong);
    assert_eq!(r.status(), 400);
    let body = r.into_body().read_to_string().unwrap();
    assert!(
        body.contains("does not match") && body.contains("BEGIN CERTIFICATE"),
        "refusal or kept input missing: {body}"
    );
    assert!(!body.contains("PRIVATE KEY"), "a key was sent back to the browser");
    assert_eq!(serial_of(daemon.gui), first);
    let r = post(&chain, &key);
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/certs?done=import"));
    // Loaded before the answer: the very next handshake presents it.
    assert_eq!(serial_of(daemon.gui), "6A01");
    assert!(page(&agent).contains("<td id=\"cert-serial\">6A01</td>"));

    // The API: a read token sees, cannot change; an admin token is refused with a typed error.
    let token =
        |scope: &str| cli_ok(&d.0, &["token", "add", scope, "--scope", scope]).lines().nth(1).unwrap().to_owned();
    let (read, admin) = (token("read"), token("admin"));
    let r = agent.get(format!("{base}/api/v1/certs")).header("authorization", format!("Bearer {read}")).call().unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(v["served"][0]["serial"], "6A01");
    let json = serde_json::json!({ "chain": chain, "key": wrong }).to_string();
    let send = |path: &str, bearer: &str, body: &str| {
        agent
            .post(format!("{base}{path}"))
            .header("authorization", format!("Bearer {bearer}"))
            .header("content-type", "application/json")
            .send(body)
            .unwrap()
    };
    assert_eq!(send("/api/v1/certs", &read, &json).status(), 403);
    let r = send("/api/v1/certs", &admin, &json);
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = serde_json::from_str(&r.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"], "invalid");
    let r = send("/api/v1/certs/csr", &admin, r#"{"names": ["pbx.example.com"]}"#);
    assert_eq!(r.status(), 201);
    assert!(r.into_body().read_to_string().unwrap().contains("BEGIN CERTIFICATE REQUEST"));
    assert_eq!(serial_of(daemon.gui), "6A01");
}
