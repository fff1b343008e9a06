//! The operations, called as the CLI, the daemon and the HTTP API call them: typed input, typed result,
//! typed error, and nothing changed when they fail.

use pbxguard_app::extensions::{self, NewExtension, Secret};
use pbxguard_app::views::{LiteralOnly, Resolver};
use pbxguard_app::{Error, configure, open_store, security};
use std::net::SocketAddr;

fn data() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pbxguard-app-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    u64::from_le_bytes(pbxguard_app::random::random_bytes::<8>())
}

fn new_ext(number: &str, secret: Secret) -> NewExtension {
    NewExtension { number: number.into(), secret, algorithms: None, acl: None, cos: None }
}

#[test]
fn adding_an_extension_validates_stores_and_reports_by_kind() {
    let d = data();
    let store = open_store(&d).unwrap();
    let generated = extensions::add(&store, new_ext("1001", Secret::Generate)).unwrap();
    assert!(generated.is_some_and(|s| s.len() >= 20));
    // Each failure has its kind and changes nothing.
    let weak = extensions::add(&store, new_ext("1002", Secret::Given("password".into())));
    assert!(matches!(&weak, Err(Error::Invalid(m)) if m.contains("does not meet the password policy")), "{weak:?}");
    let again = extensions::add(&store, new_ext("1001", Secret::Generate));
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    let cos = extensions::add(&store, NewExtension { cos: Some("gold".into()), ..new_ext("1003", Secret::Generate) });
    assert!(matches!(cos, Err(Error::NotFound(_))), "{cos:?}");
    let listed = extensions::list(&store).unwrap();
    assert_eq!(listed.iter().map(|e| e.number.as_str()).collect::<Vec<_>>(), ["1001"]);
    assert!(listed[0].compliant);
    std::fs::remove_dir_all(d).unwrap();
}

/// A UDP trunk named by its host name, carrier.example.
fn carrier() -> pbxguard_app::calls::NewTrunk {
    pbxguard_app::calls::NewTrunk {
        name: "carrier".into(),
        host: "carrier.example".into(),
        port: 5060,
        transport: pbxguard_app::calls::TrunkTransport::Udp,
        username: None,
        secret: None,
        realm: None,
        register: None,
        tls_ca: None,
        allow_refer: false,
    }
}

#[test]
fn a_ban_on_a_trunk_is_refused_through_the_callers_resolver() {
    struct Table;
    impl Resolver for Table {
        fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
            match host {
                "carrier.example" => Ok(SocketAddr::from(([192, 0, 2, 7], port))),
                _ => Err("unknown".into()),
            }
        }
    }
    let d = data();
    let store = open_store(&d).unwrap();
    // Without DNS the name does not resolve: the trunk is refused, with the reason.
    let r = pbxguard_app::calls::add_trunk(&store, carrier(), &LiteralOnly);
    assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains("does not resolve")), "{r:?}");
    pbxguard_app::calls::add_trunk(&store, carrier(), &Table).unwrap();
    let r = security::ban(&store, "192.0.2.7", "test", None, false, &Table);
    assert!(matches!(&r, Err(Error::Conflict(m)) if m.contains("trusted network 192.0.2.7")), "{r:?}");
    assert!(security::bans(&store).unwrap().is_empty());
    let b = security::ban(&store, "203.0.113.0/24", "scanner farm", Some("12h"), false, &Table).unwrap();
    assert_eq!((b.target.as_str(), b.note.as_deref()), ("203.0.113.0/24", Some("scanner farm")));
    let r = security::ban(&store, "203.0.113.1", "x", Some("soon"), false, &Table);
    assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains("--for \"soon\"")), "{r:?}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn turning_on_autofix_replaces_weak_secrets_once_and_says_so() {
    let d = data();
    let mut store = open_store(&d).unwrap();
    configure::set(&mut store, "password_policy.enforce", "false").unwrap();
    extensions::add(&store, new_ext("2001", Secret::Given("2001".into()))).unwrap();
    let c = configure::set(&mut store, "password_policy.autofix", "true").unwrap();
    assert!(c.review.is_none(), "the policy is off: nothing to review");
    let c = configure::set(&mut store, "password_policy.enforce", "true").unwrap();
    let review = c.review.expect("enforcing reviews every secret");
    assert!(review.fixed);
    assert_eq!(review.extensions.len(), 1);
    assert!(review.extensions[0].new_secret.is_some());
    assert!(extensions::list(&store).unwrap()[0].compliant);
    let bad = configure::set(&mut store, "shield.flood", "lots");
    assert!(matches!(&bad, Err(Error::Invalid(m)) if m.contains("COUNT/DURATION")), "{bad:?}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_country_list_is_validated_stored_and_shown() {
    use pbxguard_app::calls::{self, Classified};
    let d = data();
    let store = open_store(&d).unwrap();
    let intl = "internal,national,international";
    // Each mistake is named with its fix, and nothing is stored.
    let cases = [
        ("44,4x", "\"4x\" is not a country code"),
        ("44,42", "no country has the calling code 42; did you mean 420 (Czech Republic)"),
        ("+44", "without the +, as 44"),
        ("44,49,44", "44 (United Kingdom) is listed twice"),
        (" , ", "give at least one E.164 country code"),
    ];
    for (list, why) in cases {
        let r = calls::add_cos(&store, "world", intl, Some(list));
        assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains(why)), "{list}: {r:?}");
    }
    let r = calls::add_cos(&store, "world", "internal,national", Some("44"));
    assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains("add international to --allow")), "{r:?}");
    assert!(calls::cos_list(&store).unwrap().is_empty());
    // A valid list is kept in the order given and reaches the dial plan.
    let added = calls::add_cos(&store, "world", intl, Some("44, 49,1")).unwrap();
    let codes: Vec<u16> = added.countries.unwrap().iter().map(|c| c.get()).collect();
    assert_eq!(codes, [44, 49, 1]);
    calls::add_cos(&store, "any", intl, None).unwrap();
    let rows = calls::cos_list(&store).unwrap();
    let listed: Vec<(&str, Option<&str>)> = rows.iter().map(|r| (r.name.as_str(), r.countries.as_deref())).collect();
    assert_eq!(listed, [("any", None), ("world", Some("44,49,1"))]);
    let plan = pbxguard_app::views::dialplan(&store, &LiteralOnly).unwrap();
    let world = plan.cos(Some("world"));
    assert!(world.allows_country(plan.plan.country("011441632960000")));
    assert!(!world.allows_country(plan.plan.country("01133123456789")));
    assert!(plan.cos(Some("any")).allows_country(plan.plan.country("01133123456789")));
    // classify names the country of an international number.
    match calls::classify(&store, "011441632960000").unwrap() {
        Classified::Category { country: Some(c), .. } => assert_eq!((c.get(), c.name()), (44, "United Kingdom")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(calls::classify(&store, "2125551234").unwrap(), Classified::Category { country: None, .. }));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_trunk_accepts_transfers_only_when_added_with_allow_refer() {
    let d = data();
    let store = open_store(&d).unwrap();
    let trunk = |name: &str, allow_refer| pbxguard_app::calls::NewTrunk {
        name: name.into(),
        host: "192.0.2.7".into(),
        allow_refer,
        ..carrier()
    };
    pbxguard_app::calls::add_trunk(&store, trunk("plain", false), &LiteralOnly).unwrap();
    pbxguard_app::calls::add_trunk(&store, trunk("xfer", true), &LiteralOnly).unwrap();
    let rows = pbxguard_app::calls::trunks(&store).unwrap();
    assert_eq!(
        rows.iter().map(|t| (t.name.as_str(), t.allow_refer)).collect::<Vec<_>>(),
        [("plain", false), ("xfer", true)]
    );
    let plan = pbxguard_app::views::dialplan(&store, &LiteralOnly).unwrap();
    assert_eq!(plan.trunks.iter().map(|t| t.allow_refer).collect::<Vec<_>>(), [false, true]);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn trust_keeps_the_bans_it_overrides_and_over_broad_networks_need_force() {
    let d = data();
    let store = open_store(&d).unwrap();
    security::ban(&store, "203.0.113.9", "scan", None, false, &LiteralOnly).unwrap();
    let r = security::trust(&store, "0.0.0.0/0", None, false);
    assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains("--force")), "{r:?}");
    let (p, overridden) = security::trust(&store, "203.0.113.0/24", None, false).unwrap();
    assert_eq!(overridden.iter().map(|b| b.target.as_str()).collect::<Vec<_>>(), ["203.0.113.9"]);
    assert_eq!(security::bans(&store).unwrap().len(), 1, "the ban stays stored");
    assert_eq!(security::overriding_trust(&[p], "203.0.113.9"), Some(p));
    security::untrust(&store, "203.0.113.0/24").unwrap();
    assert_eq!(security::bans(&store).unwrap().len(), 1);
    let r = security::ban(&store, "::/0", "x", None, false, &LiteralOnly);
    assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains("wider than /32")), "{r:?}");
    let r = security::ban(&store, "192.0.2.1", "x", Some("3651d"), false, &LiteralOnly);
    assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains("10 years")), "{r:?}");
    security::ban(&store, "192.0.2.1", "x", Some("3650d"), false, &LiteralOnly).unwrap();
    let r = security::put_acl(&store, "all", &["0.0.0.0/0".into()], false);
    assert!(matches!(&r, Err(Error::Invalid(m)) if m.contains("--force")), "{r:?}");
    security::put_acl(&store, "all", &["0.0.0.0/0".into()], true).unwrap();
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn only_open_store_creates_a_data_directory_and_the_database_is_0600() {
    use std::os::unix::fs::PermissionsExt;
    let d = data();
    let missing = d.join("missing");
    let r = pbxguard_app::open_existing(&missing);
    assert!(matches!(&r, Err(Error::NotFound(m)) if m.contains("pbxguard run")), "{:?}", r.err());
    assert!(!missing.exists());
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(pbxguard_app::open_existing(&d).unwrap());
    let mode = std::fs::metadata(d.join("pbxguard.db")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut store = open_store(&d).unwrap();
    let (v, _) = configure::reset(&mut store, "auth.nonce_ttl").unwrap();
    assert_eq!(v, "300");
    std::fs::remove_dir_all(d).unwrap();
}
