//! The dial-plan operations the GUI pages add: ACL groups created without replacing and edited only
//! when they exist, how many extensions use a group or a Class of Service, and which route a number
//! takes. Each refusal changes nothing.

use pbxguard_app::calls::{self, NewTrunk, TrunkTransport};
use pbxguard_app::extensions::{self, NewExtension, Secret};
use pbxguard_app::views::LiteralOnly;
use pbxguard_app::{Error, open_store, security};

fn data() -> std::path::PathBuf {
    let n = u64::from_le_bytes(pbxguard_app::random::random_bytes::<8>());
    let d = std::env::temp_dir().join(format!("pbxguard-app-dialplan-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rules(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn acl_groups_are_created_once_and_edited_only_when_they_exist() {
    let d = data();
    let store = open_store(&d).unwrap();
    security::create_acl(&store, "office", &rules(&["10.0.0.0/8"]), false).unwrap();
    let r = security::create_acl(&store, "office", &rules(&["192.0.2.0/24"]), false);
    assert!(matches!(&r, Err(Error::Conflict(m)) if m.contains("already exists")), "{r:?}");
    assert_eq!(security::acls(&store).unwrap()[0].rules, "10.0.0.0/8", "a refused create replaced the group");

    let r = security::edit_acl(&store, "branch", &rules(&["192.0.2.0/24"]), false);
    assert!(matches!(&r, Err(Error::NotFound(_))), "{r:?}");
    assert_eq!(security::acls(&store).unwrap().len(), 1, "editing a missing group created it");
    let r = security::edit_acl(&store, "office", &rules(&["10.0.0/8"]), false);
    assert!(matches!(&r, Err(Error::Invalid(_))), "{r:?}");
    security::edit_acl(&store, "office", &rules(&["10.0.0.0/8", "!10.9.0.0/16"]), false).unwrap();
    assert_eq!(security::acls(&store).unwrap()[0].rules, "10.0.0.0/8 !10.9.0.0/16");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn usage_counts_the_extensions_of_each_group_and_class() {
    let d = data();
    let store = open_store(&d).unwrap();
    security::put_acl(&store, "office", &rules(&["10.0.0.0/8"]), false).unwrap();
    security::put_acl(&store, "idle", &rules(&["192.0.2.0/24"]), false).unwrap();
    calls::add_cos(&store, "local", "internal,local", None).unwrap();
    for (n, acl, cos) in [("2001", Some("office"), Some("local")), ("2002", Some("office"), None), ("2003", None, None)]
    {
        let e = NewExtension {
            number: n.into(),
            secret: Secret::Generate,
            algorithms: None,
            acl: acl.map(Into::into),
            cos: cos.map(Into::into),
        };
        extensions::add(&store, e).unwrap();
    }
    let acl = security::acl_usage(&store).unwrap();
    assert_eq!((acl.get("office"), acl.get("idle")), (Some(&2), None));
    let cos = calls::cos_usage(&store).unwrap();
    assert_eq!(cos.into_iter().collect::<Vec<_>>(), [("local".to_owned(), 1)]);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_number_takes_the_first_matching_route_with_strip_and_prepend() {
    let d = data();
    let store = open_store(&d).unwrap();
    let trunk = NewTrunk {
        name: "carrier".into(),
        host: "192.0.2.10".into(),
        port: 5060,
        transport: TrunkTransport::Udp,
        username: None,
        secret: None,
        realm: None,
        register: None,
        tls_ca: None,
        allow_refer: false,
    };
    calls::add_trunk(&store, trunk, &LiteralOnly).unwrap();
    calls::add_route(&store, "_00.", "carrier", 2, "+").unwrap();
    calls::add_route(&store, "_0.", "carrier", 1, "44").unwrap();
    let (r, sent) = calls::route_for(&store, "0049301234").unwrap().unwrap();
    assert_eq!((r.pattern.as_str(), sent.as_str()), ("_00.", "+49301234"));
    let (r, sent) = calls::route_for(&store, "02071234567").unwrap().unwrap();
    assert_eq!((r.pattern.as_str(), sent.as_str()), ("_0.", "442071234567"));
    assert!(calls::route_for(&store, "911").unwrap().is_none());
    for bad in ["", "12a", &"1".repeat(33)] {
        assert!(matches!(calls::route_for(&store, bad), Err(Error::Invalid(_))), "{bad:?}");
    }
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn trunk_credentials_come_all_three_or_not_at_all() {
    let d = data();
    let store = open_store(&d).unwrap();
    let trunk = |username: Option<&str>, secret: Option<&str>, realm: Option<&str>, register| NewTrunk {
        name: "carrier".into(),
        host: "192.0.2.10".into(),
        port: 5060,
        transport: TrunkTransport::Udp,
        username: username.map(Into::into),
        secret: secret.map(Into::into),
        realm: realm.map(Into::into),
        register,
        tls_ca: None,
        allow_refer: false,
    };
    for (u, s, r, reg) in [
        (Some("pbx"), None, None, None),
        (Some("pbx"), Some("Tr0mbone-Secret"), None, None),
        (None, Some("Tr0mbone-Secret"), Some("carrier.example"), None),
        (None, None, None, Some(600)),
    ] {
        let got = calls::add_trunk(&store, trunk(u, s, r, reg), &LiteralOnly);
        assert!(matches!(&got, Err(Error::Invalid(m)) if m.contains("credentials")), "{u:?} {s:?} {r:?}: {got:?}");
    }
    assert!(calls::trunks(&store).unwrap().is_empty(), "a refused trunk was stored");
    calls::add_trunk(
        &store,
        trunk(Some("pbx"), Some("Tr0mbone-Secret"), Some("carrier.example"), Some(600)),
        &LiteralOnly,
    )
    .unwrap();
    assert_eq!(calls::trunks(&store).unwrap()[0].register_expires, Some(600));
    std::fs::remove_dir_all(d).unwrap();
}
