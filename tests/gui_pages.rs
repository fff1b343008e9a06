//! The admin GUI's configuration pages, end to end over HTTPS: extensions added, refused and changed
//! through the forms (with the session's CSRF token), every configuration page answering with its
//! title, and the extensions list staying quick with 10,000 of them.

mod common;
use common::*;

fn ext_json(data: &std::path::Path, number: &str) -> serde_json::Value {
    serde_json::from_str(&cli_ok(data, &["ext", "show", number, "--json"])).unwrap()
}

#[test]
fn extensions_are_added_refused_and_changed_through_the_forms() {
    let d = TempDir::new("gui-ext");
    let mut daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);

    let (status, page) = admin.get("/extensions");
    assert_eq!(status, 200);
    for id in
        ["id=\"ext-add\"", "id=\"number\"", "id=\"name\"", "id=\"secret\"", "id=\"ext-add-submit\"", "id=\"ext-list\""]
    {
        assert!(page.contains(id), "no {id} on the extensions page");
    }

    // A weak secret is refused with every reason, the number kept, nothing stored.
    let (status, _, body) = admin.post(
        "/extensions",
        &[("number", "2001"), ("name", "Reception"), ("secret", "2001"), ("acl", ""), ("cos", "")],
    );
    assert_eq!(status, 400, "{body}");
    for reason in ["at least", "upper-case", "special character", "extension number"] {
        assert!(body.contains(reason), "reason {reason:?} not shown: {body}");
    }
    assert!(body.contains("value=\"2001\""), "the number was not kept");
    assert!(!cli(&d.0, &["ext", "show", "2001"]).status.success(), "a refused extension was stored");

    // The policy as it is typed: the JSON endpoint needs the CSRF header like any POST.
    let check = |secret: &str, csrf: &str| {
        admin
            .agent
            .post(format!("{}/extensions/check-secret", admin.base))
            .header("cookie", &admin.cookie)
            .header("x-csrf-token", csrf)
            .header("content-type", "application/json")
            .send(serde_json::json!({"number": "2001", "secret": secret}).to_string())
            .unwrap()
    };
    let r = check("short", &admin.csrf);
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(v["enforced"], true);
    assert!(v["reasons"].as_array().unwrap().len() >= 3, "{v}");
    let v: serde_json::Value =
        serde_json::from_str(&check("Str0ng-Enough-Secret!", &admin.csrf).into_body().read_to_string().unwrap())
            .unwrap();
    assert_eq!(v["reasons"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(check("short", "forged").status(), 403);

    // A good secret: added, back to the list, listed.
    let (status, location, _) = admin.post(
        "/extensions",
        &[("number", "2001"), ("name", "Reception"), ("secret", "Str0ng-Enough-Secret!"), ("acl", ""), ("cos", "")],
    );
    assert_eq!((status, location.as_str()), (303, "/extensions"));
    let (_, page) = admin.get("/extensions");
    assert!(page.contains("data-number=\"2001\""), "2001 not listed: {page}");

    // A generated secret is shown once.
    let (status, _, body) = admin.post("/extensions", &[("number", "2002"), ("secret", ""), ("generate", "1")]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"secret-once\""), "{body}");
    // A number taken is a conflict, said so.
    let (status, _, body) = admin.post("/extensions", &[("number", "2002"), ("secret", ""), ("generate", "1")]);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already exists"));

    // Search finds by part of the number.
    let (_, page) = admin.get("/extensions?q=002");
    assert!(page.contains("data-number=\"2002\"") && !page.contains("data-number=\"2001\""));

    // Its own page: limits, suspend, enable, a refused limit, delete.
    let (status, page) = admin.get("/extensions/2001");
    assert_eq!(status, 200);
    assert!(page.contains("Extension 2001"));
    let (status, location, _) =
        admin.post("/extensions/2001/limits", &[("concurrent", "3"), ("per_hour", "40"), ("max_duration", "2h")]);
    assert_eq!((status, location.as_str()), (303, "/extensions/2001"));
    let e = ext_json(&d.0, "2001");
    assert_eq!(
        (e["max_calls"].as_u64(), e["calls_per_hour"].as_u64(), e["max_call_secs"].as_u64()),
        (Some(3), Some(40), Some(7200))
    );
    let (status, _, body) =
        admin.post("/extensions/2001/limits", &[("concurrent", "0"), ("per_hour", ""), ("max_duration", "")]);
    assert_eq!(status, 400);
    assert!(body.contains("whole number from 1 to 1000"), "{body}");
    assert_eq!(ext_json(&d.0, "2001")["max_calls"].as_u64(), Some(3), "a refused change changed something");

    assert_eq!(admin.post("/extensions/2001/suspend", &[("reason", "odd calls at night")]).0, 303);
    assert_eq!(ext_json(&d.0, "2001")["suspended"], "odd calls at night");
    let (_, page) = admin.get("/extensions?status=suspended");
    assert!(page.contains("data-number=\"2001\"") && !page.contains("data-number=\"2002\""));
    assert_eq!(admin.post("/extensions/2001/enable", &[]).0, 303);
    assert!(ext_json(&d.0, "2001")["suspended"].is_null());

    let (status, _, body) = admin.post("/extensions/2001/secret", &[("secret", "weak")]);
    assert_eq!(status, 400);
    assert!(body.contains("upper-case"), "{body}");
    let (status, _, body) = admin.post("/extensions/2001/secret", &[("secret", ""), ("generate", "1")]);
    assert_eq!(status, 200);
    assert!(body.contains("id=\"secret-once\""));

    // Without the CSRF token nothing changes.
    let r = admin
        .agent
        .post(format!("{}/extensions/2001/delete", admin.base))
        .header("cookie", &admin.cookie)
        .send_form([("x", "y")])
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(admin.post("/extensions/2001/delete", &[]).0, 303);
    assert!(!cli(&d.0, &["ext", "show", "2001"]).status.success());
    assert_eq!(admin.get("/extensions/2001").0, 404);
    daemon.stop();
}

#[test]
fn the_extensions_list_reads_one_page_of_ten_thousand() {
    let d = TempDir::new("gui-ext-10k");
    let csv = d.0.join("ext.csv");
    let mut text = String::from("number,secret,pin\n");
    for n in 0..10_000 {
        text.push_str(&format!("{},,{}\n", 100_000 + n, if n % 10 == 0 { "390517" } else { "" }));
    }
    std::fs::write(&csv, text).unwrap();
    cli_ok(&d.0, &["import", "csv", csv.to_str().unwrap()]);
    let mut daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);
    let _ = admin.get("/extensions");
    for path in ["/extensions", "/extensions?page=150", "/extensions?q=10999", "/voicemail?page=10"] {
        let t = std::time::Instant::now();
        let (status, page) = admin.get(path);
        let took = t.elapsed();
        assert_eq!(status, 200, "{path}: {page}");
        // A guard against loading the whole table, not a benchmark.
        assert!(took < std::time::Duration::from_millis(500), "{path} took {took:?}");
    }
    let (_, page) = admin.get("/extensions?page=150");
    assert!(page.contains("data-number=\"107450\"") && page.contains("Page 150 of 200"), "{page}");
    let (_, page) = admin.get("/voicemail");
    assert!(page.contains("data-mailbox=\"100000\"") && page.contains("1000 in all"), "{page}");
    daemon.stop();
}

#[test]
fn settings_are_listed_with_their_meaning_and_changed_in_place() {
    let d = TempDir::new("gui-settings");
    let mut daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);
    let (status, page) = admin.get("/settings");
    assert_eq!(status, 200);
    assert!(
        page.contains("auth.nonce_ttl") && page.contains("Allowed: expected a whole number of seconds from 30 to 3600"),
        "{page}"
    );
    let (status, _, body) = admin.post("/settings/auth.nonce_ttl", &[("value", "5")]);
    assert_eq!(status, 400);
    assert!(body.contains("invalid value for auth.nonce_ttl") && body.contains("value=\"5\""), "{body}");
    assert_eq!(admin.post("/settings/auth.nonce_ttl", &[("value", "600")]).0, 303);
    assert_eq!(cli_ok(&d.0, &["settings", "get", "auth.nonce_ttl"]).trim(), "600");
    assert_eq!(admin.post("/settings/auth.nonce_ttl/reset", &[]).0, 303);
    assert_eq!(cli_ok(&d.0, &["settings", "get", "auth.nonce_ttl"]).trim(), "300");
    daemon.stop();
}
