//! The REST API over HTTPS against a real daemon: API tokens (read and admin scopes, revocation),
//! typed errors, the OpenAPI document against the router, /metrics (a token or a trusted source), and
//! the session's CSRF protection and logout.

mod common;
use common::*;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

#[test]
fn tokens_read_cannot_change_admin_can_and_revoked_ones_stop_working() {
    let d = TempDir::new("api-tokens");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let read = token(&d.0, "dashboard", "read");
    let admin = token(&d.0, "ci", "admin");
    cli_ok(&d.0, &["ext", "add", "1001", "--generate"]);

    // Listed without the token itself; last use recorded on use.
    let listed: Value = serde_json::from_str(&cli_ok(&d.0, &["token", "list", "--json"])).unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ci", "dashboard"]);
    assert!(!cli_ok(&d.0, &["token", "list"]).contains(&read), "a token is shown once only");

    // A read token lists extensions...
    let (s, page) = api.call("GET", "/api/v1/extensions?per_page=10", Some(&read), None);
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["number"], "1001");
    assert!(page["items"][0].get("ha1_md5").is_none());
    let (s, _) = api.call("GET", "/api/v1/status", Some(&read), None);
    assert_eq!(s, 200);
    // ...and changes nothing: every change is 403, and nothing changed.
    let changes: [(&str, &str, Option<Value>); 6] = [
        ("POST", "/api/v1/extensions", Some(json!({"number": "1002", "generate": true}))),
        ("DELETE", "/api/v1/extensions/1001", None),
        ("POST", "/api/v1/extensions/1001/suspend", Some(json!({}))),
        ("POST", "/api/v1/bans", Some(json!({"target": "203.0.113.9", "reason": "x"}))),
        ("PUT", "/api/v1/settings/shield.brute_force", Some(json!({"value": "3/10m"}))),
        ("POST", "/api/v1/trusted", Some(json!({"cidr": "192.0.2.0/24"}))),
    ];
    for (m, p, body) in changes {
        let (s, e) = api.call(m, p, Some(&read), body);
        assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")), "{m} {p}: {e}");
    }
    assert_eq!(api.call("GET", "/api/v1/extensions", Some(&read), None).1["total"], 1);
    assert_eq!(api.call("GET", "/api/v1/bans", Some(&read), None).1["total"], 0);
    let used: Value = serde_json::from_str(&cli_ok(&d.0, &["token", "list", "--json"])).unwrap();
    assert!(used[1]["last_used"].is_i64(), "{used}");

    // An admin token adds and deletes an extension.
    let (s, made) =
        api.call("POST", "/api/v1/extensions", Some(&admin), Some(json!({"number": "1002", "generate": true})));
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["extension"]["number"], "1002");
    assert!(made["secret"].as_str().is_some_and(|s| s.len() >= 8));
    let (s, dup) =
        api.call("POST", "/api/v1/extensions", Some(&admin), Some(json!({"number": "1002", "generate": true})));
    assert_eq!((s, dup["error"].as_str()), (409, Some("conflict")));
    assert_eq!(api.call("GET", "/api/v1/extensions/1002", Some(&admin), None).0, 200);
    assert_eq!(api.call("DELETE", "/api/v1/extensions/1002", Some(&admin), None).0, 204);
    let (s, gone) = api.call("GET", "/api/v1/extensions/1002", Some(&admin), None);
    assert_eq!((s, gone["error"].as_str()), (404, Some("not-found")));

    // Typed errors name the field at fault, and change nothing.
    let (s, e) = api.call("POST", "/api/v1/bans", Some(&admin), Some(json!({"target": "10.0.0.0/33", "reason": "x"})));
    assert_eq!((s, e["error"].as_str(), e["field"].as_str()), (400, Some("invalid"), Some("target")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("/33"), "{e}");
    let (s, e) = api.call("POST", "/api/v1/trusted", Some(&admin), Some(json!({"cidr": "192.0.2.300"})));
    assert_eq!((s, e["field"].as_str()), (400, Some("cidr")), "{e}");
    let (s, e) = api.call(
        "POST",
        "/api/v1/bans",
        Some(&admin),
        Some(json!({"target": "203.0.113.9", "reason": "x", "duration": "forever"})),
    );
    assert_eq!((s, e["field"].as_str()), (400, Some("duration")), "{e}");
    let (s, e) = api.call("PUT", "/api/v1/settings/no.such", Some(&admin), Some(json!({"value": "1"})));
    assert_eq!((s, e["field"].as_str()), (400, Some("key")), "{e}");
    let (s, e) = api.call("POST", "/api/v1/extensions", Some(&admin), Some(json!({"numbr": "1"})));
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid")), "a body that is not the schema: {e}");
    assert_eq!(api.call("GET", "/api/v1/bans", Some(&admin), None).1["total"], 0);

    // A ban on a network and its removal, with the slash as a path segment.
    let (s, b) =
        api.call("POST", "/api/v1/bans", Some(&admin), Some(json!({"target": "198.51.100.0/24", "reason": "test"})));
    assert_eq!((s, b["target"].as_str()), (201, Some("198.51.100.0/24")), "{b}");
    assert_eq!(api.call("DELETE", "/api/v1/bans/198.51.100.0/24", Some(&admin), None).0, 204);
    let (s, e) = api.call("DELETE", "/api/v1/bans/198.51.100.0%2F24", Some(&admin), None);
    assert_eq!((s, e["error"].as_str()), (404, Some("not-found")), "the encoded form reaches the operation: {e}");

    // Revoked: 401 within a second or two (verified tokens are cached for a second).
    cli_ok(&d.0, &["token", "del", "dashboard"]);
    let refused = wait_for(Duration::from_secs(5), || {
        (api.call("GET", "/api/v1/extensions", Some(&read), None).0 == 401).then_some(())
    });
    assert!(refused.is_some(), "a revoked token still works");
    let (s, e) = api.call("GET", "/api/v1/status", Some("pbxg_not-a-token"), None);
    assert_eq!((s, e["error"].as_str()), (401, Some("unauthorized")));
    daemon.stop();
}

/// Fills every `{param}` of an OpenAPI path.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { if seg.contains("len") { "24" } else { "192.0.2.1" } } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_openapi_document_lists_every_route_and_every_route_in_it_answers() {
    let d = TempDir::new("api-doc");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    // /metrics is served once the daemon has written them (within a second of starting).
    let metrics = wait_for(Duration::from_secs(5), || (api.call("GET", "/metrics", None, None).0 == 200).then_some(()));
    assert!(metrics.is_some(), "no metrics for a trusted source");
    let (s, doc) = api.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(s, 200, "served without authentication");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // The router's routes, as the handlers register them: each must be in the document...
    let expected = [
        ("get", "/api/v1/openapi.json"),
        ("get", "/metrics"),
        ("get", "/api/v1/status"),
        ("get", "/api/v1/extensions"),
        ("post", "/api/v1/extensions"),
        ("get", "/api/v1/extensions/{number}"),
        ("delete", "/api/v1/extensions/{number}"),
        ("put", "/api/v1/extensions/{number}/secret"),
        ("post", "/api/v1/extensions/{number}/suspend"),
        ("post", "/api/v1/extensions/{number}/enable"),
        ("get", "/api/v1/bans"),
        ("post", "/api/v1/bans"),
        ("delete", "/api/v1/bans/{target}"),
        ("delete", "/api/v1/bans/{address}/{prefix_len}"),
        ("get", "/api/v1/trusted"),
        ("post", "/api/v1/trusted"),
        ("delete", "/api/v1/trusted/{cidr}"),
        ("delete", "/api/v1/trusted/{address}/{prefix_len}"),
        ("get", "/api/v1/blacklists"),
        ("post", "/api/v1/blacklists"),
        ("delete", "/api/v1/blacklists/{name}"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/calls"),
        ("get", "/api/v1/settings"),
        ("put", "/api/v1/settings/{key}"),
        ("get", "/api/v1/admins"),
        ("post", "/api/v1/admins"),
        ("delete", "/api/v1/admins/{name}"),
        ("put", "/api/v1/admins/{name}/password"),
        ("get", "/api/v1/tokens"),
        ("post", "/api/v1/tokens"),
        ("delete", "/api/v1/tokens/{name}"),
        ("get", "/api/v1/mailboxes"),
        ("put", "/api/v1/mailboxes/{extension}/pin"),
        ("get", "/api/v1/certs"),
        ("post", "/api/v1/certs"),
        ("post", "/api/v1/certs/csr"),
        ("post", "/api/v1/certs/acme"),
        ("get", "/api/v1/firewall"),
        ("get", "/api/v1/ssh"),
        ("get", "/api/v1/audit"),
        ("patch", "/api/v1/extensions/{number}"),
        ("get", "/api/v1/acls"),
        ("post", "/api/v1/acls"),
        ("put", "/api/v1/acls/{name}"),
        ("delete", "/api/v1/acls/{name}"),
        ("get", "/api/v1/trunks"),
        ("post", "/api/v1/trunks"),
        ("delete", "/api/v1/trunks/{name}"),
        ("get", "/api/v1/routes"),
        ("post", "/api/v1/routes"),
        ("get", "/api/v1/routes/match"),
        ("delete", "/api/v1/routes/{id}"),
        ("get", "/api/v1/dids"),
        ("post", "/api/v1/dids"),
        ("delete", "/api/v1/dids/{number}"),
        ("get", "/api/v1/cos"),
        ("post", "/api/v1/cos"),
        ("delete", "/api/v1/cos/{name}"),
        ("get", "/api/v1/cos/classify"),
    ];
    for (m, p) in expected {
        assert!(paths.get(p).and_then(|i| i.get(m)).is_some(), "{m} {p} is not in the OpenAPI document");
    }
    // ...and every operation the document names is routed: without credentials it is refused (401),
    // never unknown (404) or of the wrong method (405). Anything else in /api/ is 404.
    let mut n = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            n += 1;
            let m = method.to_uppercase();
            let body = (m == "POST" || m == "PUT").then(|| json!({}));
            let (s, e) = api.call(&m, &concrete(path), None, body);
            let want = if path == "/api/v1/openapi.json" { 200 } else { 401 };
            // /metrics from 127.0.0.1 (a listener's address, so trusted) is served.
            let want = if path == "/metrics" { 200 } else { want };
            assert_eq!(s, want, "{m} {path}: {e}");
        }
    }
    assert_eq!(n, expected.len(), "the document has operations the test does not know: {:?}", paths.keys());
    assert_eq!(api.call("GET", "/api/v1/nothing", None, None).0, 404);
    daemon.stop();
}

/// `GET /metrics` with curl from `from`: the status and the body.
fn metrics_from(from: &str, gui: SocketAddr, token: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-k", "-s", "--max-time", "5", "--interface", from, "-o", "-", "-w", "\n%{http_code}"]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let o = c.arg(format!("https://{gui}/metrics")).output().expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn metrics_need_a_token_from_outside_the_trusted_networks() {
    require("curl");
    let d = TempDir::new("api-metrics");
    let mut daemon = Daemon::start(&d.0);
    let read = token(&d.0, "prometheus", "read");
    // The daemon writes the metrics within a second of starting; a trusted source (127.0.0.1, which
    // the daemon listens on) gets them without a token.
    let served = wait_for(Duration::from_secs(5), || {
        let (s, body) = metrics_from("127.0.0.1", daemon.gui, None);
        (s == 200).then_some(body)
    })
    .expect("metrics not served to a trusted source");
    assert!(served.contains("pbxguard_bans_active"), "{served}");
    let (s, body) = metrics_from("127.0.0.71", daemon.gui, None);
    assert_eq!(s, 401, "served without a token to an untrusted source: {body}");
    let (s, body) = metrics_from("127.0.0.71", daemon.gui, Some(&read));
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("# TYPE pbxguard_registrations gauge"), "{body}");
    let (s, _) = metrics_from("127.0.0.1", daemon.gui, Some("pbxg_wrong"));
    assert_eq!(s, 401, "a wrong token is refused even from a trusted source");
    daemon.stop();
}

/// The session cookie of a logged-in admin whose password was changed, and the session's CSRF token.
fn log_in(api: &Api) -> (String, String) {
    let r =
        api.agent.post(format!("{}/login", api.base)).send_form([("user", "admin"), ("password", "admin")]).unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = api
        .agent
        .get(format!("{}/password", api.base))
        .header("cookie", &cookie)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let good = "Plenty-0f-Entropy!";
    let r = api
        .agent
        .post(format!("{}/password", api.base))
        .header("cookie", &cookie)
        .send_form([("csrf", csrf.as_str()), ("new", good), ("confirm", good)])
        .unwrap();
    assert_eq!(r.status(), 303);
    (cookie, csrf)
}

#[test]
fn a_post_without_csrf_is_refused_and_a_cookie_is_dead_after_logout() {
    let d = TempDir::new("api-csrf");
    let mut daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let (cookie, csrf) = log_in(&api);
    let url = format!("{}/api/v1/extensions", api.base);
    let body = json!({"number": "2001", "generate": true}).to_string();

    // The session works for the API; a change without the CSRF token is refused, with it accepted.
    let r = api.agent.get(&url).header("cookie", &cookie).call().unwrap();
    assert_eq!(r.status(), 200);
    let r =
        api.agent.post(&url).header("cookie", &cookie).header("content-type", "application/json").send(&body).unwrap();
    assert_eq!(r.status(), 403);
    let r = api
        .agent
        .post(format!("{}/tokens", api.base))
        .header("cookie", &cookie)
        .send_form([("name", "x"), ("scope", "admin")])
        .unwrap();
    assert_eq!(r.status(), 403, "a form without the CSRF token");
    let r = api
        .agent
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .send(&body)
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(cli_ok(&d.0, &["ext", "list"]).contains("2001"));
    assert_eq!(cli_ok(&d.0, &["token", "list", "--json"]).trim(), "[]", "the refused form made a token");

    // The tokens page makes a token (shown once) and revokes it.
    let r = api
        .agent
        .post(format!("{}/tokens", api.base))
        .header("cookie", &cookie)
        .send_form([("csrf", csrf.as_str()), ("name", "from-gui"), ("scope", "read")])
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.into_body().read_to_string().unwrap();
    let shown = page.split("id=\"secret-once\">").nth(1).and_then(|t| t.split('<').next()).expect("token shown once");
    let shown = shown.to_owned();
    assert!(shown.starts_with("pbxg_"), "{shown}");
    assert_eq!(api.call("GET", "/api/v1/status", Some(&shown), None).0, 200);
    let list = api.agent.get(format!("{}/tokens", api.base)).header("cookie", &cookie).call().unwrap();
    let list = list.into_body().read_to_string().unwrap();
    assert!(list.contains("from-gui") && !list.contains(&shown), "listed without the token");
    let r = api
        .agent
        .post(format!("{}/tokens/from-gui/delete", api.base))
        .header("cookie", &cookie)
        .send_form([("csrf", csrf.as_str())])
        .unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/tokens"));

    // Logout ends the session: the same cookie, replayed, is refused everywhere.
    let r = api
        .agent
        .post(format!("{}/logout", api.base))
        .header("cookie", &cookie)
        .send_form([("csrf", csrf.as_str())])
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = api.agent.get(format!("{}/", api.base)).header("cookie", &cookie).call().unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login"));
    assert_eq!(api.agent.get(&url).header("cookie", &cookie).call().unwrap().status(), 401);
    let r = api
        .agent
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .send(json!({"number": "2002", "generate": true}).to_string())
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!cli_ok(&d.0, &["ext", "list"]).contains("2002"));
    daemon.stop();
}
