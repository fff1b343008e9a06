//! The REST API's dial-plan areas against a real daemon: ACL groups, trunks, routes, DIDs, Classes of
//! Service and an extension's dial-plan settings (PATCH). For each: the success path read back, an
//! invalid input (400 naming the field), a missing name (404), and a `read` token refused (403) with
//! nothing changed.

mod common;
use common::*;
use serde_json::{Value, json};

/// Asserts a typed error: the status, its kind and the field it names.
#[track_caller]
fn refused(got: (u16, Value), status: u16, field: Option<&str>) -> Value {
    let (s, e) = got;
    let kind = match status {
        400 => "invalid",
        403 => "forbidden",
        404 => "not-found",
        409 => "conflict",
        _ => panic!("status {status}"),
    };
    assert_eq!((s, e["error"].as_str()), (status, Some(kind)), "{e}");
    if status != 403 {
        assert_eq!(e["field"].as_str(), field, "{e}");
        assert!(!e["message"].as_str().unwrap_or_default().is_empty(), "{e}");
    }
    e
}

/// A daemon with extension 1001, its API client, and a `read` and an `admin` token.
fn start(tag: &str) -> (TempDir, Daemon, Api, String, String) {
    let d = TempDir::new(tag);
    let daemon = Daemon::start(&d.0);
    let api = Api::new(&daemon);
    let (read, admin) = (token(&d.0, "watch", "read"), token(&d.0, "ops", "admin"));
    cli_ok(&d.0, &["ext", "add", "1001", "--generate"]);
    (d, daemon, api, read, admin)
}

#[test]
fn acl_groups_and_an_extensions_dial_plan_settings() {
    let (d, mut daemon, api, read, admin) = start("api-acls");
    let admin = Some(admin.as_str());

    // Created with its rules normalised, listed with its users.
    let (s, g) = api.call(
        "POST",
        "/api/v1/acls",
        admin,
        Some(json!({"name": "office", "rules": ["10.0.0.0/8", "!10.9.0.0/16"]})),
    );
    assert_eq!(s, 201, "{g}");
    assert_eq!(g, json!({"name": "office", "rules": ["10.0.0.0/8", "!10.9.0.0/16"], "extensions": 0}));
    refused(
        api.call("POST", "/api/v1/acls", admin, Some(json!({"name": "office", "rules": ["10.0.0.0/8"]}))),
        409,
        None,
    );
    let e = refused(
        api.call("POST", "/api/v1/acls", admin, Some(json!({"name": "lab", "rules": ["10.0.0.0/33"]}))),
        400,
        Some("rules"),
    );
    assert!(e["message"].as_str().unwrap().contains("/33"), "{e}");
    refused(
        api.call("POST", "/api/v1/acls", admin, Some(json!({"name": "a b", "rules": ["10.0.0.0/8"]}))),
        400,
        Some("name"),
    );
    refused(
        api.call("POST", "/api/v1/acls", admin, Some(json!({"name": "wide", "rules": ["0.0.0.0/0"]}))),
        400,
        Some("rules"),
    );
    let (s, wide) =
        api.call("POST", "/api/v1/acls", admin, Some(json!({"name": "wide", "rules": ["0.0.0.0/0"], "force": true})));
    assert_eq!((s, &wide["rules"]), (201, &json!(["0.0.0.0/0"])), "{wide}");
    assert_eq!(api.call("DELETE", "/api/v1/acls/wide", admin, None).0, 204);

    // Rules replaced; a missing group is 404.
    let (s, g) = api.call("PUT", "/api/v1/acls/office", admin, Some(json!({"rules": ["192.168.0.0/16"]})));
    assert_eq!((s, &g["rules"]), (200, &json!(["192.168.0.0/16"])), "{g}");
    refused(
        api.call("PUT", "/api/v1/acls/office", admin, Some(json!({"rules": ["!192.168.0.0/16"]}))),
        400,
        Some("rules"),
    );
    refused(api.call("PUT", "/api/v1/acls/nope", admin, Some(json!({"rules": ["192.168.0.0/16"]}))), 404, None);
    let office = json!([{"name": "office", "rules": ["192.168.0.0/16"], "extensions": 0}]);
    assert_eq!(api.call("GET", "/api/v1/acls", admin, None).1, office);

    // A read token changes nothing.
    refused(api.call("PUT", "/api/v1/acls/office", Some(&read), Some(json!({"rules": ["10.0.0.0/8"]}))), 403, None);
    refused(
        api.call("POST", "/api/v1/acls", Some(&read), Some(json!({"name": "x", "rules": ["10.0.0.0/8"]}))),
        403,
        None,
    );
    refused(api.call("DELETE", "/api/v1/acls/office", Some(&read), None), 403, None);
    refused(api.call("PATCH", "/api/v1/extensions/1001", Some(&read), Some(json!({"acl": "office"}))), 403, None);
    assert_eq!(api.call("GET", "/api/v1/acls", Some(&read), None).1, office);
    assert_eq!(api.call("GET", "/api/v1/extensions/1001", Some(&read), None).1["acl"], Value::Null);

    // PATCH sets what it names...
    cli_ok(&d.0, &["cos", "add", "local", "--allow", "internal,local"]);
    let (s, e) = api.call(
        "PATCH",
        "/api/v1/extensions/1001",
        admin,
        Some(json!({"acl": "office", "cos": "local", "max_calls": 2, "calls_per_hour": 10, "max_call_secs": 3600})),
    );
    assert_eq!(s, 200, "{e}");
    let (_, back) = api.call("GET", "/api/v1/extensions/1001", admin, None);
    assert_eq!(back, e);
    let settings =
        |v: &Value| ["acl", "cos", "max_calls", "calls_per_hour", "max_call_secs"].map(|k| v[k].clone()).to_vec();
    assert_eq!(settings(&back), [json!("office"), json!("local"), json!(2), json!(10), json!(3600)]);
    let shown: Value = serde_json::from_str(&cli_ok(&d.0, &["ext", "show", "1001", "--json"])).unwrap();
    assert_eq!(settings(&shown), settings(&back), "the CLI sees what the API set");
    assert_eq!(api.call("GET", "/api/v1/acls", admin, None).1[0]["extensions"], 1);
    refused(api.call("DELETE", "/api/v1/acls/office", admin, None), 409, None);

    // ...refuses as a whole (a bad value among good ones changes nothing)...
    let bad = [
        (json!({"acl": null, "max_calls": 0}), 400, Some("max_calls")),
        (json!({"cos": null, "calls_per_hour": 2_000_000}), 400, Some("calls_per_hour")),
        (json!({"max_calls": 3, "max_call_secs": 700_000}), 400, Some("max_call_secs")),
        (json!({"max_calls": 3, "acl": "nope"}), 404, Some("acl")),
        (json!({"max_calls": 3, "cos": "nope"}), 404, Some("cos")),
        (json!({"max_call": 3}), 400, None),
        (json!({"max_calls": "3"}), 400, None),
    ];
    for (body, status, field) in bad {
        refused(api.call("PATCH", "/api/v1/extensions/1001", admin, Some(body)), status, field);
    }
    assert_eq!(settings(&api.call("GET", "/api/v1/extensions/1001", admin, None).1), settings(&back));
    refused(api.call("PATCH", "/api/v1/extensions/1999", admin, Some(json!({"max_calls": 3}))), 404, None);

    // ...and null clears while a field left out stays.
    let (s, e) = api.call(
        "PATCH",
        "/api/v1/extensions/1001",
        admin,
        Some(json!({"acl": null, "cos": null, "max_calls": null, "max_call_secs": 0})),
    );
    assert_eq!(s, 200, "{e}");
    assert_eq!(settings(&e), [Value::Null, Value::Null, Value::Null, json!(10), json!(0)]);
    assert_eq!(settings(&api.call("GET", "/api/v1/extensions/1001", admin, None).1), settings(&e));

    assert_eq!(api.call("DELETE", "/api/v1/acls/office", admin, None).0, 204);
    assert_eq!(api.call("GET", "/api/v1/acls", admin, None).1, json!([]));
    refused(api.call("DELETE", "/api/v1/acls/office", admin, None), 404, None);

    // The document lists every dial-plan operation (tests/gui_api.rs checks each one answers).
    let (_, doc) = api.call("GET", "/api/v1/openapi.json", None, None);
    let mut by_tag = std::collections::BTreeMap::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            *by_tag.entry(op["tags"][0].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    for (tag, n) in [("acls", 4), ("trunks", 3), ("routes", 4), ("dids", 3), ("cos", 4)] {
        assert_eq!(by_tag.get(tag), Some(&n), "operations tagged {tag}: {by_tag:?}");
    }
    assert!(doc["paths"]["/api/v1/extensions/{number}"]["patch"].is_object());
    daemon.stop();
}

#[test]
fn trunks_routes_and_dids() {
    let (d, mut daemon, api, read, admin) = start("api-dialplan");
    let admin = Some(admin.as_str());

    // A trunk with credentials: the secret is never shown, in any form.
    let trunk = json!({"name": "carrier", "host": "127.0.0.1", "port": 5070, "username": "acct",
                       "secret": "Trunk-S3cret", "realm": "carrier.example"});
    let (s, t) = api.call("POST", "/api/v1/trunks", admin, Some(trunk.clone()));
    assert_eq!(s, 201, "{t}");
    let expected = json!({"name": "carrier", "host": "127.0.0.1", "port": 5070, "transport": "udp", "username": "acct",
                          "realm": "carrier.example", "register": null, "registered": null, "own_ca": false,
                          "allow_refer": false});
    assert_eq!(t, expected);
    let (s, list) = api.call("GET", "/api/v1/trunks", Some(&read), None);
    assert_eq!((s, list), (200, json!([expected])));
    assert!(!api.call("GET", "/api/v1/trunks", admin, None).1.to_string().contains("S3cret"));
    refused(api.call("POST", "/api/v1/trunks", admin, Some(trunk)), 409, None);
    let bad = [
        (json!({"name": "t2", "host": "no-such-host.invalid"}), Some("host")),
        (json!({"name": "t2", "host": "127.0.0.1", "port": 0}), Some("port")),
        (json!({"name": "t 2", "host": "127.0.0.1"}), Some("name")),
        (json!({"name": "t2", "host": "127.0.0.1", "username": "acct"}), Some("username")),
        (json!({"name": "t2", "host": "127.0.0.1", "register": 600}), Some("register")),
        (json!({"name": "t2", "host": "127.0.0.1", "tls_ca": "x"}), Some("tls_ca")),
        (json!({"name": "t2", "host": "127.0.0.1", "transport": "sctp"}), None),
    ];
    for (body, field) in bad {
        refused(api.call("POST", "/api/v1/trunks", admin, Some(body)), 400, field);
    }
    assert_eq!(api.call("GET", "/api/v1/trunks", admin, None).1.as_array().unwrap().len(), 1);

    // Routes: appended, matched as the proxy will, refused with the field at fault.
    let (s, r) = api.call(
        "POST",
        "/api/v1/routes",
        admin,
        Some(json!({"pattern": "_00.", "trunk": "carrier", "strip": 2, "prepend": "+"})),
    );
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    let route = json!({"id": id, "pattern": "_00.", "trunk": "carrier", "strip": 2, "prepend": "+"});
    assert_eq!(r, route);
    let (s, r2) =
        api.call("POST", "/api/v1/routes", admin, Some(json!({"pattern": "^[2-9]\\d{6}$", "trunk": "carrier"})));
    assert_eq!((s, &r2["strip"], &r2["prepend"]), (201, &json!(0), &json!("")), "{r2}");
    assert_eq!(api.call("GET", "/api/v1/routes", Some(&read), None).1, json!([route, r2]));
    let (s, m) = api.call("GET", "/api/v1/routes/match?number=00442071234567", Some(&read), None);
    assert_eq!((s, m), (200, json!({"number": "00442071234567", "route": route, "sent": "+442071234567"})));
    let (s, m) = api.call("GET", "/api/v1/routes/match?number=911", admin, None);
    assert_eq!((s, m), (200, json!({"number": "911", "route": null, "sent": null})));
    refused(api.call("GET", "/api/v1/routes/match?number=12a", admin, None), 400, Some("number"));
    refused(api.call("GET", "/api/v1/routes/match", admin, None), 400, None);
    refused(
        api.call("POST", "/api/v1/routes", admin, Some(json!({"pattern": "_0Q", "trunk": "carrier"}))),
        400,
        Some("pattern"),
    );
    refused(
        api.call("POST", "/api/v1/routes", admin, Some(json!({"pattern": "_0.", "trunk": "carrier", "prepend": "x"}))),
        400,
        Some("prepend"),
    );
    refused(
        api.call("POST", "/api/v1/routes", admin, Some(json!({"pattern": "_0.", "trunk": "nope"}))),
        404,
        Some("trunk"),
    );
    refused(api.call("DELETE", "/api/v1/routes/first", admin, None), 400, Some("id"));
    refused(api.call("DELETE", "/api/v1/routes/99999", admin, None), 404, None);
    refused(api.call("DELETE", &format!("/api/v1/routes/{id}"), Some(&read), None), 403, None);
    refused(
        api.call("POST", "/api/v1/routes", Some(&read), Some(json!({"pattern": "_1.", "trunk": "carrier"}))),
        403,
        None,
    );
    assert_eq!(api.call("GET", "/api/v1/routes", admin, None).1.as_array().unwrap().len(), 2);

    // A trunk in use is kept; without routes it goes.
    refused(api.call("DELETE", "/api/v1/trunks/carrier", Some(&read), None), 403, None);
    refused(api.call("DELETE", "/api/v1/trunks/carrier", admin, None), 409, None);
    assert_eq!(api.call("DELETE", &format!("/api/v1/routes/{id}"), admin, None).0, 204);
    assert_eq!(api.call("DELETE", &format!("/api/v1/routes/{}", r2["id"]), admin, None).0, 204);
    assert_eq!(api.call("GET", "/api/v1/routes", admin, None).1, json!([]));
    assert_eq!(api.call("DELETE", "/api/v1/trunks/carrier", admin, None).0, 204);
    assert_eq!(api.call("GET", "/api/v1/trunks", admin, None).1, json!([]));
    refused(api.call("DELETE", "/api/v1/trunks/carrier", admin, None), 404, None);

    // DIDs.
    let did = json!({"number": "442071234567", "extension": "1001"});
    let (s, got) = api.call("POST", "/api/v1/dids", admin, Some(did.clone()));
    assert_eq!((s, got), (201, did.clone()));
    assert_eq!(api.call("GET", "/api/v1/dids", Some(&read), None).1, json!([did]));
    assert!(cli_ok(&d.0, &["did", "list"]).contains("442071234567"), "the CLI sees it");
    refused(api.call("POST", "/api/v1/dids", admin, Some(did.clone())), 409, None);
    refused(
        api.call("POST", "/api/v1/dids", admin, Some(json!({"number": "44 20", "extension": "1001"}))),
        400,
        Some("number"),
    );
    refused(
        api.call("POST", "/api/v1/dids", admin, Some(json!({"number": "4420", "extension": "1999"}))),
        404,
        Some("extension"),
    );
    refused(api.call("POST", "/api/v1/dids", admin, Some(json!({"number": "4420"}))), 400, None);
    refused(api.call("DELETE", "/api/v1/dids/442071234567", Some(&read), None), 403, None);
    assert_eq!(api.call("GET", "/api/v1/dids", admin, None).1, json!([did]));
    assert_eq!(api.call("DELETE", "/api/v1/dids/442071234567", admin, None).0, 204);
    assert_eq!(api.call("GET", "/api/v1/dids", admin, None).1, json!([]));
    refused(api.call("DELETE", "/api/v1/dids/442071234567", admin, None), 404, None);
    daemon.stop();
}

#[test]
fn classes_of_service_and_classifying_a_number() {
    let (_d, mut daemon, api, read, admin) = start("api-cos");
    let admin = Some(admin.as_str());

    // The built-in default is listed until a class replaces it.
    let (s, list) = api.call("GET", "/api/v1/cos", Some(&read), None);
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        (&list[0]["name"], &list[0]["built_in"], &list[0]["extensions"]),
        (&json!("default"), &json!(true), &Value::Null)
    );
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (s, c) = api.call(
        "POST",
        "/api/v1/cos",
        admin,
        Some(json!({"name": "intl", "allow": ["international", "internal", "national"], "countries": ["44", "49"]})),
    );
    assert_eq!(s, 201, "{c}");
    let intl = json!({"name": "intl", "allow": ["internal", "national", "international"], "countries": ["44", "49"],
                      "extensions": 0, "built_in": false});
    assert_eq!(c, intl);
    assert_eq!(api.call("GET", "/api/v1/cos", admin, None).1[1], intl);
    refused(api.call("POST", "/api/v1/cos", admin, Some(json!({"name": "intl", "allow": ["internal"]}))), 409, None);
    let bad = [
        (json!({"name": "x", "allow": ["bogus"]}), Some("allow")),
        (json!({"name": "x", "allow": ["internal"], "countries": ["44"]}), Some("countries")),
        (json!({"name": "x", "allow": ["international"], "countries": ["999"]}), Some("countries")),
        (json!({"name": "x y", "allow": ["internal"]}), Some("name")),
        (json!({"name": "x"}), None),
    ];
    for (body, field) in bad {
        refused(api.call("POST", "/api/v1/cos", admin, Some(body)), 400, field);
    }
    refused(api.call("POST", "/api/v1/cos", Some(&read), Some(json!({"name": "y", "allow": ["internal"]}))), 403, None);
    refused(api.call("DELETE", "/api/v1/cos/intl", Some(&read), None), 403, None);
    assert_eq!(api.call("GET", "/api/v1/cos", admin, None).1.as_array().unwrap().len(), 2);

    // In use: counted, and kept.
    let (s, e) = api.call("PATCH", "/api/v1/extensions/1001", admin, Some(json!({"cos": "intl"})));
    assert_eq!((s, &e["cos"]), (200, &json!("intl")), "{e}");
    assert_eq!(api.call("GET", "/api/v1/cos", admin, None).1[1]["extensions"], 1);
    refused(api.call("DELETE", "/api/v1/cos/intl", admin, None), 409, None);

    // Classified as the proxy will (the default plan, nanp).
    let (s, c) = api.call("GET", "/api/v1/cos/classify?number=011442071234567", Some(&read), None);
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        (&c["category"], &c["plan"], &c["pattern"], &c["country"], &c["extension"]),
        (&json!("international"), &json!("nanp"), &json!("_011."), &json!("44"), &json!(false)),
        "{c}"
    );
    assert!(c["country_name"].as_str().is_some_and(|n| !n.is_empty()), "{c}");
    let (_, c) = api.call("GET", "/api/v1/cos/classify?number=1001", admin, None);
    assert_eq!((&c["category"], &c["extension"], &c["plan"]), (&json!("internal"), &json!(true), &Value::Null), "{c}");
    let (_, c) = api.call("GET", "/api/v1/cos/classify?number=5", admin, None);
    assert_eq!((&c["category"], &c["plan"]), (&Value::Null, &json!("nanp")), "{c}");
    let long = "1".repeat(65);
    refused(api.call("GET", &format!("/api/v1/cos/classify?number={long}"), admin, None), 400, Some("number"));

    // A class named like the classify path is still deleted by name.
    let (s, _) = api.call("POST", "/api/v1/cos", admin, Some(json!({"name": "classify", "allow": ["internal"]})));
    assert_eq!(s, 201);
    assert_eq!(api.call("DELETE", "/api/v1/cos/classify", admin, None).0, 204);
    refused(api.call("DELETE", "/api/v1/cos/classify", admin, None), 404, None);

    api.call("PATCH", "/api/v1/extensions/1001", admin, Some(json!({"cos": null})));
    assert_eq!(api.call("DELETE", "/api/v1/cos/intl", admin, None).0, 204);
    assert_eq!(api.call("GET", "/api/v1/cos", admin, None).1.as_array().unwrap().len(), 1);
    refused(api.call("DELETE", "/api/v1/cos/intl", admin, None), 404, None);
    daemon.stop();
}
