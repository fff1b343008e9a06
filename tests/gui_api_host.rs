//! The REST API for accounts and the host against a real daemon: admin accounts (the password policy's
//! every reason, never one's own account from a session, sessions ended on a password change), API
//! tokens (shown once, revoked), voicemail PINs under the PIN policy, the certificate (a CSR signed by
//! a CA made with openssl, imported with the pending key and served at once), and the read-only
//! firewall, SSH and audit views against what the CLI says of the same host. That the OpenAPI document
//! lists these operations, each refused without credentials, is in tests/gui_api.rs with every other route.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// An API call with an admin session: the cookie, plus the CSRF token on changes.
fn with_session(s: &Admin, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", s.base);
    let r = match method {
        "GET" => s.agent.get(&url).header("cookie", &s.cookie).call(),
        "DELETE" => s.agent.delete(&url).header("cookie", &s.cookie).header("x-csrf-token", &s.csrf).call(),
        "PUT" => s
            .agent
            .put(&url)
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf)
            .header("content-type", "application/json")
            .send(body.unwrap_or(json!({})).to_string()),
        other => panic!("method {other}"),
    }
    .unwrap();
    let status = r.status().as_u16();
    let text = r.into_body().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The status of a GUI login with `user` and `password` (303: accepted, 401: refused).
fn login(d: &Daemon, user: &str, password: &str) -> u16 {
    let r = https_agent()
        .post(format!("https://{}/login", d.gui))
        .send_form([("user", user), ("password", password)])
        .unwrap();
    r.status().as_u16()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|a| a[key].as_str().unwrap().to_owned()).collect()
}

fn assert_invalid(r: &(u16, Value), field: &str) {
    assert_eq!((r.0, r.1["error"].as_str(), r.1["field"].as_str()), (400, Some("invalid"), Some(field)), "{}", r.1);
}

#[test]
fn admin_accounts_follow_the_policy_and_a_session_never_deletes_its_own() {
    let d = TempDir::new("api-admins");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let (read, admin) = (token(&d.0, "dashboard", "read"), token(&d.0, "ci", "admin"));
    let admins = |api: &Api| names(&api.call("GET", "/api/v1/admins", Some(&read), None).1, "name");

    // The password policy: 400 on `password` with every reason in the message; nothing added.
    let e = api.call("POST", "/api/v1/admins", Some(&admin), Some(json!({"name": "jane", "password": "jane"})));
    assert_invalid(&e, "password");
    let msg = e.1["message"].as_str().unwrap();
    for reason in ["at least", "account name", "digit", "special"] {
        assert!(msg.contains(reason), "the reason {reason:?} is missing: {msg}");
    }
    assert_invalid(
        &api.call("POST", "/api/v1/admins", Some(&admin), Some(json!({"name": "ja ne", "generate": true}))),
        "name",
    );
    assert_invalid(&api.call("POST", "/api/v1/admins", Some(&admin), Some(json!({"name": "jane"}))), "password");
    // A read token is refused, and nothing changed.
    let (s, e) = api.call("POST", "/api/v1/admins", Some(&read), Some(json!({"name": "jane", "generate": true})));
    assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")), "{e}");
    assert_eq!(admins(&api), ["admin"]);

    // Added with a generated password, shown once; it logs in and must change it first.
    let (s, made) = api.call("POST", "/api/v1/admins", Some(&admin), Some(json!({"name": "jane", "generate": true})));
    assert_eq!((s, made["name"].as_str(), made["must_change"].as_bool()), (201, Some("jane"), Some(true)), "{made}");
    let first = made["password"].as_str().unwrap().to_owned();
    let listed = api.call("GET", "/api/v1/admins", Some(&read), None).1;
    assert_eq!(names(&listed, "name"), ["admin", "jane"]);
    assert_eq!(listed[1]["must_change"], true);
    assert_eq!(login(&daemon, "jane", &first), 303);
    let (s, e) = api.call("POST", "/api/v1/admins", Some(&admin), Some(json!({"name": "jane", "generate": true})));
    assert_eq!((s, e["error"].as_str()), (409, Some("conflict")), "{e}");

    // A new password: under the policy, not the current one; a given one is not echoed.
    let path = "/api/v1/admins/jane/password";
    assert_invalid(&api.call("PUT", path, Some(&admin), Some(json!({"password": "short"}))), "password");
    assert_invalid(&api.call("PUT", path, Some(&admin), Some(json!({"password": first}))), "password");
    let (s, e) = api.call("PUT", path, Some(&read), Some(json!({"password": "Another-G00d-One!"})));
    assert_eq!(s, 403, "{e}");
    assert_eq!(login(&daemon, "jane", &first), 303, "a read token changed the password");
    let (s, set) = api.call("PUT", path, Some(&admin), Some(json!({"password": "Another-G00d-One!"})));
    assert_eq!((s, &set), (200, &json!({"password": null})));
    assert_eq!(login(&daemon, "jane", &first), 401);
    assert_eq!(login(&daemon, "jane", "Another-G00d-One!"), 303);
    let (s, e) = api.call("PUT", "/api/v1/admins/nobody/password", Some(&admin), Some(json!({"generate": true})));
    assert_eq!((s, e["error"].as_str()), (404, Some("not-found")), "{e}");

    // A session cannot delete its own account (a token has no account, so it can)...
    let session = Admin::login(&daemon);
    let (s, e) = with_session(&session, "DELETE", "/api/v1/admins/admin", None);
    assert_eq!((s, e["error"].as_str()), (409, Some("conflict")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("logged in as admin"), "{e}");
    assert_eq!(admins(&api), ["admin", "jane"]);
    let (s, e) = with_session(&session, "DELETE", "/api/v1/admins/nobody", None);
    assert_eq!((s, e["error"].as_str()), (404, Some("not-found")), "{e}");
    let (s, e) = api.call("DELETE", "/api/v1/admins/jane", Some(&read), None);
    assert_eq!(s, 403, "{e}");
    assert_eq!(with_session(&session, "DELETE", "/api/v1/admins/jane", None).0, 204);
    assert_eq!(admins(&api), ["admin"]);
    assert_eq!(login(&daemon, "jane", "Another-G00d-One!"), 401);
    // ...nor the last one.
    let (s, e) = api.call("DELETE", "/api/v1/admins/admin", Some(&admin), None);
    assert_eq!((s, e["error"].as_str()), (409, Some("conflict")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("last admin"), "{e}");

    // A password changed by someone else ends the account's sessions; one's own keeps the session.
    let (s, _) =
        with_session(&session, "PUT", "/api/v1/admins/admin/password", Some(json!({"password": "Mine-0wn-Choice!"})));
    assert_eq!(s, 200);
    assert_eq!(with_session(&session, "GET", "/api/v1/status", None).0, 200, "one's own change logged out");
    let (s, generated) =
        api.call("PUT", "/api/v1/admins/admin/password", Some(&admin), Some(json!({"generate": true})));
    assert_eq!(s, 200, "{generated}");
    assert_eq!(with_session(&session, "GET", "/api/v1/status", None).0, 401, "the old session survived");
    assert_eq!(login(&daemon, "admin", generated["password"].as_str().unwrap()), 303);
    daemon.stop();
}

#[test]
fn api_tokens_are_shown_once_and_revoked() {
    let d = TempDir::new("api-tokens-host");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let (read, admin) = (token(&d.0, "dashboard", "read"), token(&d.0, "ci", "admin"));
    let list = |api: &Api| api.call("GET", "/api/v1/tokens", Some(&read), None);

    let (s, l) = list(&api);
    assert_eq!((s, names(&l, "name")), (200, vec!["ci".to_owned(), "dashboard".to_owned()]), "{l}");
    assert_eq!((l[0]["scope"].as_str(), l[1]["scope"].as_str()), (Some("admin"), Some("read")));
    assert!(admin.starts_with(l[0]["prefix"].as_str().unwrap()), "{l}");
    assert!(!l.to_string().contains(&admin[13..]), "a token is listed: {l}");

    // A read token cannot make one (not even a read token); nothing changed.
    for scope in ["admin", "read"] {
        let (s, e) = api.call("POST", "/api/v1/tokens", Some(&read), Some(json!({"name": "more", "scope": scope})));
        assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")), "{e}");
    }
    assert_invalid(
        &api.call("POST", "/api/v1/tokens", Some(&admin), Some(json!({"name": "x", "scope": "root"}))),
        "scope",
    );
    assert_invalid(
        &api.call("POST", "/api/v1/tokens", Some(&admin), Some(json!({"name": "bad name", "scope": "read"}))),
        "name",
    );
    assert_eq!(names(&list(&api).1, "name"), ["ci", "dashboard"]);

    // Made once: the token works, is listed only by its prefix, and its name is taken.
    let (s, made) = api.call("POST", "/api/v1/tokens", Some(&admin), Some(json!({"name": "grafana", "scope": "read"})));
    assert_eq!(
        (s, made["token"]["name"].as_str(), made["token"]["scope"].as_str()),
        (201, Some("grafana"), Some("read"))
    );
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(made["token"]["prefix"].as_str().unwrap()) && secret.len() == 69, "{made}");
    assert_eq!(api.call("GET", "/api/v1/status", Some(&secret), None).0, 200);
    assert_eq!(api.call("DELETE", "/api/v1/extensions/1001", Some(&secret), None).0, 403, "a read token wrote");
    let l = list(&api).1;
    assert_eq!(names(&l, "name"), ["ci", "dashboard", "grafana"]);
    assert!(!l.to_string().contains(&secret[13..]), "{l}");
    let (s, e) = api.call("POST", "/api/v1/tokens", Some(&admin), Some(json!({"name": "grafana", "scope": "admin"})));
    assert_eq!((s, e["error"].as_str()), (409, Some("conflict")), "{e}");

    // Revoked: gone from the list, refused within a second or two (verified tokens are cached a second).
    assert_eq!(api.call("DELETE", "/api/v1/tokens/grafana", Some(&read), None).0, 403);
    assert_eq!(api.call("GET", "/api/v1/status", Some(&secret), None).0, 200);
    let (s, e) = api.call("DELETE", "/api/v1/tokens/nothing", Some(&admin), None);
    assert_eq!((s, e["error"].as_str()), (404, Some("not-found")), "{e}");
    assert_eq!(api.call("DELETE", "/api/v1/tokens/grafana", Some(&admin), None).0, 204);
    assert_eq!(names(&list(&api).1, "name"), ["ci", "dashboard"]);
    let refused = wait_for(Duration::from_secs(5), || {
        (api.call("GET", "/api/v1/status", Some(&secret), None).0 == 401).then_some(())
    });
    assert!(refused.is_some(), "a revoked token still works");
    daemon.stop();
}

#[test]
fn mailbox_pins_follow_the_pin_policy_and_mailboxes_are_paged() {
    let d = TempDir::new("api-voicemail");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let (read, admin) = (token(&d.0, "dashboard", "read"), token(&d.0, "ci", "admin"));
    cli_ok(&d.0, &["ext", "add", "1001", "--generate"]);
    cli_ok(&d.0, &["ext", "add", "1002", "--generate"]);
    let page = |q: &str| api.call("GET", &format!("/api/v1/mailboxes{q}"), Some(&read), None);
    assert_eq!(page("").1["total"], 0);

    // The PIN policy's reasons, on `pin`; nothing made.
    let e = api.call("PUT", "/api/v1/mailboxes/1001/pin", Some(&admin), Some(json!({"pin": "1234"})));
    assert_invalid(&e, "pin");
    let msg = e.1["message"].as_str().unwrap();
    assert!(msg.contains("PIN policy") && msg.contains("at least 6") && msg.contains("ascending"), "{msg}");
    assert_invalid(&api.call("PUT", "/api/v1/mailboxes/1001/pin", Some(&admin), Some(json!({"pin": "12a4"}))), "pin");
    let (s, e) = api.call("PUT", "/api/v1/mailboxes/9999/pin", Some(&admin), Some(json!({"pin": "730582"})));
    assert_eq!((s, e["error"].as_str()), (404, Some("not-found")), "{e}");
    assert_eq!(page("").1["total"], 0);

    // The extension's own number forces initialisation; a good PIN does not.
    let (s, m) = api.call("PUT", "/api/v1/mailboxes/1001/pin", Some(&admin), Some(json!({"pin": "1001"})));
    assert_eq!((s, m["extension"].as_str(), m["must_initialise"].as_bool()), (200, Some("1001"), Some(true)), "{m}");
    let (s, m) = api.call(
        "PUT",
        "/api/v1/mailboxes/1002/pin",
        Some(&admin),
        Some(json!({"pin": "730582", "force_name": false})),
    );
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (m["must_initialise"].as_bool(), m["force_name"].as_bool(), m["force_greeting"].as_bool()),
        (Some(false), Some(false), Some(true))
    );
    // A read token is refused, and nothing changed.
    let (s, e) = api.call("PUT", "/api/v1/mailboxes/1002/pin", Some(&read), Some(json!({"pin": "1002"})));
    assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")), "{e}");

    // Read back, one page at a time, and as the CLI lists them.
    let (s, p) = page("?per_page=1");
    assert_eq!(
        (s, p["total"].as_u64(), p["pages"].as_u64(), p["per_page"].as_u64()),
        (200, Some(2), Some(2), Some(1)),
        "{p}"
    );
    assert_eq!(p["items"][0]["extension"], "1001");
    let p = page("?per_page=1&page=2").1;
    assert_eq!(
        (p["items"][0]["extension"].as_str(), p["items"][0]["must_initialise"].as_bool()),
        (Some("1002"), Some(false)),
        "{p}"
    );
    assert_eq!(p["items"][0], m, "the read token changed it");
    let p = page("?q=1001").1;
    assert_eq!((p["total"].as_u64(), p["items"][0]["must_initialise"].as_bool()), (Some(1), Some(true)), "{p}");
    assert!(p["items"][0].get("pin_hash").is_none(), "{p}");
    assert_invalid(&page("?per_page=0"), "per_page");
    let cli: Value = serde_json::from_str(&cli_ok(&d.0, &["vm", "list", "--json"])).unwrap();
    assert_eq!(cli.as_array().unwrap().len(), 2);
    assert_eq!(cli[1]["force_name"], false);
    daemon.stop();
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_csr_signed_by_a_ca_is_imported_with_its_pending_key_and_served_at_once() {
    require("openssl");
    let d = TempDir::new("api-certs");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let (read, admin) = (token(&d.0, "dashboard", "read"), token(&d.0, "ci", "admin"));
    let work = TempDir::new("api-certs-ca");

    let (s, c) = api.call("GET", "/api/v1/certs", Some(&read), None);
    assert_eq!(s, 200, "{c}");
    let first = c["served"][0].clone();
    assert!(first["self_signed"].as_bool().unwrap() && c["days_left"].as_i64().unwrap() > 300, "{c}");
    assert_eq!((c["pending"].is_null(), c["acme"].is_null()), (true, true), "{c}");

    // A key and CSR: bad names are refused on `names`; a read token cannot make one.
    assert_invalid(
        &api.call("POST", "/api/v1/certs/csr", Some(&admin), Some(json!({"names": ["not a name!"]}))),
        "names",
    );
    assert_invalid(&api.call("POST", "/api/v1/certs/csr", Some(&admin), Some(json!({"names": []}))), "names");
    assert_eq!(api.call("POST", "/api/v1/certs/csr", Some(&read), Some(json!({"names": ["pbx.example.com"]}))).0, 403);
    assert!(api.call("GET", "/api/v1/certs", Some(&read), None).1["pending"].is_null());
    let (s, p) =
        api.call("POST", "/api/v1/certs/csr", Some(&admin), Some(json!({"names": ["pbx.example.com", "127.0.0.1"]})));
    assert_eq!((s, &p["names"]), (201, &json!(["pbx.example.com", "127.0.0.1"])), "{p}");
    let csr = p["csr_pem"].as_str().unwrap();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"), "{csr}");
    let pending = api.call("GET", "/api/v1/certs", Some(&read), None).1["pending"].clone();
    assert_eq!(
        (&pending["csr_pem"], &pending["names"]),
        (&p["csr_pem"], &p["names"]),
        "read back from the CSR, IPs too"
    );

    // A CA signs it (openssl, as a real CA would).
    std::fs::write(work.0.join("req.pem"), csr).unwrap();
    openssl(
        &work.0,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=pbxguard API test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        &work.0,
        &[
            "x509",
            "-req",
            "-in",
            "req.pem",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x6B01",
            "-days",
            "20",
            "-copy_extensions",
            "copy",
            "-out",
            "leaf.pem",
        ],
    );
    openssl(&work.0, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"]);
    let read_file = |n: &str| std::fs::read_to_string(work.0.join(n)).unwrap();
    let chain = format!("{}{}", read_file("leaf.pem"), read_file("ca.pem"));

    // Refusals name the part at fault and change nothing.
    let e =
        api.call("POST", "/api/v1/certs", Some(&admin), Some(json!({"chain": chain, "key": read_file("other.key")})));
    assert_invalid(&e, "key");
    assert!(e.1["message"].as_str().unwrap().contains("does not match"), "{}", e.1);
    assert_invalid(&api.call("POST", "/api/v1/certs", Some(&admin), Some(json!({"chain": "no PEM here"}))), "chain");
    assert_invalid(
        &api.call("POST", "/api/v1/certs", Some(&admin), Some(json!({"chain": read_file("leaf.pem")}))),
        "chain",
    );
    assert_eq!(api.call("POST", "/api/v1/certs", Some(&read), Some(json!({"chain": chain}))).0, 403);
    assert_eq!(api.call("GET", "/api/v1/certs", Some(&read), None).1["served"][0], first);

    // Imported with the pending key, and served from the next handshake on.
    let (s, i) = api.call("POST", "/api/v1/certs", Some(&admin), Some(json!({"chain": chain})));
    assert_eq!(
        (s, i["used_pending_key"].as_bool(), i["chain"][0]["serial"].as_str()),
        (200, Some(true), Some("6B01")),
        "{i}"
    );
    let (_, c) = api.call("GET", "/api/v1/certs", Some(&read), None);
    let leaf = &c["served"][0];
    assert_eq!((leaf["serial"].as_str(), leaf["self_signed"].as_bool()), (Some("6B01"), Some(false)), "{c}");
    assert_eq!(leaf["sans"], json!(["pbx.example.com", "127.0.0.1"]));
    assert!(leaf["subject"].as_str().unwrap().contains("pbx.example.com"), "{c}");
    assert!(leaf["issuer"].as_str().unwrap().contains("pbxguard API test CA"), "{c}");
    assert_eq!(c["served"][1]["subject"], leaf["issuer"]);
    assert!((19..=20).contains(&c["days_left"].as_i64().unwrap()), "{c}");
    assert!(c["pending"].is_null(), "the pending key stayed: {c}");

    // ACME is not set up here: said so, on no field.
    let (s, e) = api.call("POST", "/api/v1/certs/acme", Some(&admin), None);
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("acme.directory"), "{e}");
    daemon.stop();
}

#[test]
fn firewall_ssh_and_audit_read_as_the_cli_reports_them() {
    let d = TempDir::new("api-host");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let read = token(&d.0, "dashboard", "read");

    // The firewall before the wizard: its defaults (open to anyone), no apply; the ruleset `render` prints.
    let (s, f) = api.call("GET", "/api/v1/firewall", Some(&read), None);
    assert_eq!(s, 200, "{f}");
    assert_eq!((f["saved"].as_bool(), f["enabled"].as_bool()), (Some(false), Some(false)), "{f}");
    assert!(f["pending"].is_null() && f["last"].is_null(), "{f}");
    let services = f["services"].as_array().unwrap();
    assert!(names(&f["services"], "name").contains(&"ssh".to_owned()), "{f}");
    assert!(services.iter().all(|s| s["sources"] == ""), "{f}");
    let rendered = cli_ok(&d.0, &["firewall", "render"]);
    assert_eq!(f["ruleset"].as_str().map(str::trim), Some(rendered.trim()), "{f}");

    // SSH: sshd's effective configuration as `ssh status` reads it.
    std::fs::write(d.0.join("sshd_config"), "Port 2222\nPermitRootLogin no\nPasswordAuthentication no\n").unwrap();
    let config = d.0.join("sshd_config").display().to_string();
    cli_ok(&d.0, &["settings", "set", "ssh.config", &config]);
    cli_ok(&d.0, &["settings", "set", "ssh.dropin", &d.0.join("pbxguard.conf").display().to_string()]);
    let (s, h) = api.call("GET", "/api/v1/ssh", Some(&read), None);
    assert_eq!(s, 200, "{h}");
    let status: Value = serde_json::from_str(&cli_ok(&d.0, &["ssh", "status", "--json"])).unwrap();
    assert_eq!(h["config"], config);
    assert_eq!(h["sshd"]["ports"], json!([2222]));
    assert_eq!((h["sshd"]["root_login"].as_str(), h["sshd"]["password_auth"].as_bool()), (Some("no"), Some(false)));
    for k in ["ports", "root_login", "password_auth", "allowed", "pending_old_port"] {
        assert_eq!(h["sshd"][k], status[k], "{k}: {h} vs {status}");
    }
    assert_eq!(h["guard_enabled"], status["guard"]["enabled"]);
    std::fs::remove_file(d.0.join("sshd_config")).unwrap();
    let h = api.call("GET", "/api/v1/ssh", Some(&read), None).1;
    assert!(h["sshd"].is_null() && h["unreadable"].as_str().is_some_and(|w| w.contains("sshd_config")), "{h}");

    // The audit: the score and every check, as `pbxguard audit --json` reports the same host.
    let (s, a) = api.call("GET", "/api/v1/audit", Some(&read), None);
    assert_eq!(s, 200, "{a}");
    let report: Value = serde_json::from_slice(&cli(&d.0, &["audit", "--json"]).stdout).unwrap();
    assert_eq!(
        (a["score"].clone(), a["critical"].clone()),
        (report["score"].clone(), report["critical"].clone()),
        "{a} vs {report}"
    );
    let checks = a["checks"].as_array().unwrap();
    let with = |status: &str| -> Vec<String> {
        let mut v: Vec<String> =
            checks.iter().filter(|c| c["status"] == status).map(|c| c["check"].as_str().unwrap().to_owned()).collect();
        v.sort();
        v
    };
    let mut failed = names(&report["findings"], "check");
    failed.sort();
    assert_eq!(with("failed"), failed);
    let mut passed: Vec<String> =
        report["passed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    passed.sort();
    assert_eq!(with("passed"), passed);
    assert_eq!(with("skipped").len(), report["skipped"].as_array().unwrap().len());
    assert!(with("failed").contains(&"admin-password".to_owned()), "the first-run admin/admin is a finding: {a}");
    for c in checks.iter().filter(|c| c["status"] == "failed") {
        assert!(c["severity"].is_string() && c["fix"].as_str().is_some_and(|f| !f.is_empty()), "{c}");
    }
    daemon.stop();
}
