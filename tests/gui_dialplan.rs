//! The admin GUI's dial-plan pages (ACL groups, trunks, routes, DIDs, Classes of Service), end to end
//! over HTTPS: each added through its form and listed, a bad input refused with the operator's message
//! and nothing changed, deleted; and the CLI sees what the GUI did (and the GUI what the CLI did), since
//! both call the same operations.

mod common;
use common::*;
use serde_json::Value;

fn json(data: &std::path::Path, args: &[&str]) -> Value {
    serde_json::from_str(&cli_ok(data, args)).unwrap()
}

/// The `field` values of a `--json` list, in order.
fn names(v: &Value, field: &str) -> Vec<String> {
    v.as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_owned()).collect()
}

#[test]
fn acl_groups_are_added_edited_refused_and_deleted_through_the_forms() {
    let d = TempDir::new("gui-acls");
    let mut daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);

    let (status, page) = admin.get("/acls");
    assert_eq!(status, 200, "{page}");
    for id in ["id=\"acl-add\"", "id=\"name\"", "id=\"rules\"", "id=\"acl-list\"", "name=\"csrf\""] {
        assert!(page.contains(id), "no {id} on the ACL page");
    }

    // A bad CIDR: refused with the rule named, the form kept, nothing stored.
    let (status, _, body) = admin.post("/acls", &[("name", "office"), ("rules", "10.0.0/8")]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("rule &quot;10.0.0/8&quot;") || body.contains("rule \"10.0.0/8\""), "{body}");
    assert!(body.contains("value=\"office\""), "the name was not kept");
    assert_eq!(json(&d.0, &["acl", "list", "--json"]), serde_json::json!([]));
    // Too broad without the box ticked.
    let (status, _, body) = admin.post("/acls", &[("name", "all"), ("rules", "0.0.0.0/0")]);
    assert_eq!(status, 400);
    assert!(body.contains("wider than /8"), "{body}");

    let (status, location, _) = admin.post("/acls", &[("name", "office"), ("rules", "10.0.0.0/8, !10.9.0.0/16")]);
    assert_eq!((status, location.as_str()), (303, "/acls"));
    let listed = json(&d.0, &["acl", "list", "--json"]);
    assert_eq!(listed[0]["rules"], serde_json::json!(["10.0.0.0/8", "!10.9.0.0/16"]), "{listed}");
    let (_, page) = admin.get("/acls");
    assert!(page.contains("data-acl=\"office\"") && page.contains("!10.9.0.0/16"), "{page}");
    // Adding it again must not replace it.
    let (status, _, body) = admin.post("/acls", &[("name", "office"), ("rules", "192.0.2.0/24")]);
    assert_eq!(status, 409);
    assert!(body.contains("already exists"), "{body}");

    // Editing its networks: a bad one refused and kept in its row, a good one stored.
    let (status, _, body) = admin.post("/acls/edit", &[("name", "office"), ("rules", "!10.0.0.0/8")]);
    assert_eq!(status, 400);
    assert!(body.contains("no allow rule") && body.contains("value=\"!10.0.0.0/8\""), "{body}");
    assert_eq!(json(&d.0, &["acl", "list", "--json"])[0]["rules"][0], "10.0.0.0/8");
    assert_eq!(admin.post("/acls/edit", &[("name", "office"), ("rules", "10.1.0.0/16")]).0, 303);
    assert_eq!(json(&d.0, &["acl", "list", "--json"])[0]["rules"], serde_json::json!(["10.1.0.0/16"]));

    // In use by an extension (added from the CLI): counted, and deleting it is refused.
    cli_ok(&d.0, &["ext", "add", "2001", "--generate", "--acl", "office"]);
    cli_ok(&d.0, &["acl", "add", "branch", "192.0.2.0/24"]);
    let (_, page) = admin.get("/acls");
    assert!(page.contains("href=\"/extensions?q=office\">1</a>"), "{page}");
    assert!(page.contains("data-acl=\"branch\""), "a group added by the CLI is not listed");
    let (status, _, body) = admin.post("/acls/del", &[("name", "office")]);
    assert_eq!(status, 409);
    assert!(body.contains("assigned to extension(s) 2001"), "{body}");
    cli_ok(&d.0, &["ext", "acl", "2001", "none"]);
    assert_eq!(admin.post("/acls/del", &[("name", "office")]).0, 303);
    assert_eq!(names(&json(&d.0, &["acl", "list", "--json"]), "name"), ["branch"]);
    assert_eq!(admin.post("/acls/del", &[("name", "office")]).0, 404);

    // A read-only token may look, not change.
    let out = cli_ok(&d.0, &["token", "add", "viewer", "--scope", "read"]);
    let token = out.lines().last().unwrap().trim().to_owned();
    let r = admin
        .agent
        .post(format!("{}/acls", admin.base))
        .header("authorization", &format!("Bearer {token}"))
        .send_form([("name", "x"), ("rules", "192.0.2.0/24")])
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(names(&json(&d.0, &["acl", "list", "--json"]), "name"), ["branch"]);
    daemon.stop();
}

#[test]
fn trunks_routes_and_dids_are_added_refused_and_deleted_through_the_forms() {
    let d = TempDir::new("gui-trunks");
    let mut daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);

    let (status, page) = admin.get("/trunks");
    assert_eq!(status, 200);
    assert!(page.contains("id=\"trunk-add\"") && page.contains("id=\"trunk-list\""), "{page}");
    // Routes need a trunk first, and say so.
    let (_, page) = admin.get("/routes");
    assert!(page.contains("Add a trunk first"), "{page}");

    // Refusals: a port out of range, credentials without a secret. Nothing stored, secret never echoed.
    let (status, _, body) = admin.post("/trunks", &[("name", "carrier"), ("host", "127.0.0.1"), ("port", "70000")]);
    assert_eq!(status, 400);
    assert!(body.contains("from 1 to 65535") && body.contains("value=\"carrier\""), "{body}");
    let (status, _, body) = admin.post(
        "/trunks",
        &[("name", "carrier"), ("host", "127.0.0.1"), ("username", "pbx"), ("secret", "Tr0mbone-Secret")],
    );
    assert_eq!(status, 400);
    assert!(body.contains("need all three"), "{body}");
    assert!(!body.contains("Tr0mbone-Secret"), "the secret was sent back");
    assert_eq!(json(&d.0, &["trunk", "list", "--json"]), serde_json::json!([]));

    let form = [
        ("name", "carrier"),
        ("host", "127.0.0.1"),
        ("port", "5090"),
        ("transport", "udp"),
        ("username", "pbx"),
        ("secret", "Tr0mbone-Secret"),
        ("realm", "carrier.example"),
        ("register", "600"),
        ("tls_ca", ""),
        ("allow_refer", "1"),
    ];
    let (status, location, body) = admin.post("/trunks", &form);
    assert_eq!((status, location.as_str()), (303, "/trunks"), "{body}");
    let t = &json(&d.0, &["trunk", "list", "--json"])[0];
    assert_eq!(
        (&t["name"], &t["port"], &t["username"], &t["realm"], &t["register_expires"], &t["allow_refer"]),
        (
            &Value::from("carrier"),
            &Value::from(5090),
            &Value::from("pbx"),
            &Value::from("carrier.example"),
            &Value::from(600),
            &Value::from(true)
        ),
        "{t}"
    );
    let (_, page) = admin.get("/trunks");
    assert!(page.contains("data-trunk=\"carrier\"") && page.contains("pbx@carrier.example"), "{page}");
    assert!(!page.contains("Tr0mbone-Secret"));
    let (status, _, body) = admin.post("/trunks", &form);
    assert_eq!(status, 409, "{body}");
    cli_ok(&d.0, &["trunk", "add", "backup", "--host", "127.0.0.2"]);
    let (_, page) = admin.get("/trunks");
    assert!(page.contains("data-trunk=\"backup\"") && page.contains("does not register"), "{page}");

    // Routes: a bad pattern and an unknown trunk refused, nothing added; two added in order.
    let (status, _, body) = admin.post("/routes", &[("pattern", "00abc"), ("trunk", "carrier")]);
    assert_eq!(status, 400);
    assert!(body.contains("expected a number") && body.contains("value=\"00abc\""), "{body}");
    let (status, _, body) = admin.post("/routes", &[("pattern", "_00."), ("trunk", "nope")]);
    assert_eq!(status, 404);
    assert!(body.contains("trunk nope does not exist"), "{body}");
    let (status, _, body) = admin.post("/routes", &[("pattern", "_00."), ("trunk", "carrier"), ("strip", "two")]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&d.0, &["route", "list", "--json"]), serde_json::json!([]));
    let route = [("pattern", "_00."), ("trunk", "carrier"), ("strip", "2"), ("prepend", "+")];
    assert_eq!(admin.post("/routes", &route).1, "/routes");
    cli_ok(&d.0, &["route", "add", "_0.", "--trunk", "backup", "--strip", "1", "--prepend", "44"]);
    let routes = json(&d.0, &["route", "list", "--json"]);
    assert_eq!(names(&routes, "pattern"), ["_00.", "_0."]);
    let (_, page) = admin.get("/routes");
    let (first, second) = (page.find("<code>_00.</code>").unwrap(), page.find("<code>_0.</code>").unwrap());
    assert!(first < second, "routes not in match order");
    let (_, page) = admin.get("/routes?number=0049301234");
    assert!(page.contains("trunk <strong>carrier</strong>, sent as <code>+49301234</code>"), "{page}");
    let (_, page) = admin.get("/routes?number=02071234567");
    assert!(page.contains("sent as <code>442071234567</code>"), "{page}");

    // A trunk a route uses cannot go.
    let (status, _, body) = admin.post("/trunks/del", &[("name", "carrier")]);
    assert_eq!(status, 409);
    assert!(body.contains("used by 1 route"), "{body}");
    let id = routes[0]["id"].to_string();
    assert_eq!(admin.post("/routes/del", &[("id", &id)]).0, 303);
    assert_eq!(names(&json(&d.0, &["route", "list", "--json"]), "pattern"), ["_0."]);
    assert_eq!(admin.post("/routes/del", &[("id", &id)]).0, 404);
    assert_eq!(admin.post("/trunks/del", &[("name", "carrier")]).0, 303);
    assert_eq!(names(&json(&d.0, &["trunk", "list", "--json"]), "name"), ["backup"]);

    // DIDs: an unknown extension refused; added, listed by the CLI, deleted.
    cli_ok(&d.0, &["ext", "add", "2001", "--generate"]);
    let (status, _, body) = admin.post("/dids", &[("number", "442071234567"), ("ext", "9999")]);
    assert_eq!(status, 404);
    assert!(body.contains("extension 9999 does not exist") && body.contains("value=\"442071234567\""), "{body}");
    assert_eq!(json(&d.0, &["did", "list", "--json"]), serde_json::json!([]));
    assert_eq!(admin.post("/dids", &[("number", "442071234567"), ("ext", "2001")]).1, "/dids");
    assert_eq!(
        json(&d.0, &["did", "list", "--json"]),
        serde_json::json!([{"number": "442071234567", "extension": "2001"}])
    );
    let (_, page) = admin.get("/dids");
    assert!(page.contains("data-did=\"442071234567\"") && page.contains("href=\"/extensions/2001\""), "{page}");
    assert_eq!(admin.post("/dids/del", &[("number", "442071234567")]).0, 303);
    assert_eq!(json(&d.0, &["did", "list", "--json"]), serde_json::json!([]));
    assert_eq!(admin.post("/dids/del", &[("number", "442071234567")]).0, 404);
    daemon.stop();
}

#[test]
fn classes_of_service_are_added_refused_classified_and_deleted_through_the_forms() {
    let d = TempDir::new("gui-cos");
    let mut daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);

    let (status, page) = admin.get("/cos");
    assert_eq!(status, 200);
    assert!(page.contains("id=\"cos-add\"") && page.contains("id=\"allow-international\""), "{page}");
    assert!(page.contains("data-cos=\"(default)\""), "the built-in default is not shown");

    // Countries without international calls: refused, the ticks kept, nothing stored.
    let (status, _, body) =
        admin.post("/cos", &[("name", "europe"), ("allow", "internal"), ("allow", "local"), ("countries", "44,49")]);
    assert_eq!(status, 400);
    assert!(body.contains("does not allow international calls"), "{body}");
    assert!(body.contains("value=\"local\" checked"), "the ticks were not kept: {body}");
    let (status, _, body) = admin.post("/cos", &[("name", "no spaces"), ("allow", "local")]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("use 1-64 letters"), "{body}");
    assert_eq!(json(&d.0, &["cos", "list", "--json"]), serde_json::json!([]));

    let form = [("name", "europe"), ("allow", "internal"), ("allow", "international"), ("countries", "44,49")];
    assert_eq!(admin.post("/cos", &form).1, "/cos");
    let listed = json(&d.0, &["cos", "list", "--json"]);
    assert_eq!((&listed[0]["name"], &listed[0]["countries"]), (&Value::from("europe"), &Value::from("44,49")));
    assert!(listed[0]["allow"].as_str().unwrap().contains("international"), "{listed}");
    cli_ok(&d.0, &["ext", "add", "2001", "--generate", "--cos", "europe"]);
    let (_, page) = admin.get("/cos");
    assert!(page.contains("data-cos=\"europe\"") && page.contains("title=\"United Kingdom\""), "{page}");
    assert!(page.contains("href=\"/extensions?q=europe\">1</a>"), "{page}");

    // Classify: the same answer as `pbxguard cos classify`.
    let cli_says = cli_ok(&d.0, &["cos", "classify", "00441234567890"]);
    assert!(cli_says.contains("international") && cli_says.contains("country 44"), "{cli_says}");
    let (_, page) = admin.get("/cos?number=00441234567890");
    assert!(page.contains("<strong>international</strong>") && page.contains("country +44 United Kingdom"), "{page}");
    let (_, page) = admin.get("/cos?number=2001");
    assert!(page.contains("(an extension)"), "{page}");
    let (_, page) = admin.get(&format!("/cos?number={}", "1".repeat(100)));
    assert!(page.contains("at most 64"), "{page}");

    let (status, _, body) = admin.post("/cos/del", &[("name", "europe")]);
    assert_eq!(status, 409);
    assert!(body.contains("assigned to extension(s) 2001"), "{body}");
    cli_ok(&d.0, &["ext", "cos", "2001", "none"]);
    assert_eq!(admin.post("/cos/del", &[("name", "europe")]).0, 303);
    assert_eq!(json(&d.0, &["cos", "list", "--json"]), serde_json::json!([]));
    daemon.stop();
}
