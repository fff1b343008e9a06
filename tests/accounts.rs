//! Voicemail PINs (policy, forced initialisation) and admin accounts (admin/admin must change first).

mod common;
use common::*;

fn mailbox(data: &std::path::Path, ext: &str) -> serde_json::Value {
    let v: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(data, &["vm", "list", "--json"])).unwrap();
    v.into_iter().find(|m| m["extension"] == ext).expect("mailbox listed")
}

#[test]
fn voicemail_pins_follow_the_policy_and_the_extension_pin_forces_initialisation() {
    let d = TempDir::new("vm");
    cli_ok(&d.0, &["ext", "add", "1001", "--generate"]);
    let out = cli_ok(&d.0, &["vm", "set", "1001", "--pin", "1001", "--force-greeting", "no"]);
    assert!(out.contains("must initialise"), "{out}");
    let m = mailbox(&d.0, "1001");
    assert_eq!(
        (m["must_initialise"].as_bool(), m["force_name"].as_bool(), m["force_greeting"].as_bool()),
        (Some(true), Some(true), Some(false))
    );
    for (pin, reason) in [
        ("123456", "ascending or descending run"),
        ("777777", "repeat one digit"),
        ("12a4", "digits only"),
        ("5839", "at least 6"),
        ("112233", "most common PINs"),
    ] {
        let o = cli(&d.0, &["vm", "set", "1001", "--pin", pin]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(reason) && err.contains("nothing was changed"), "{pin}: {err}");
    }
    assert_eq!(mailbox(&d.0, "1001")["must_initialise"], true, "refused PINs change nothing");
    cli_ok(&d.0, &["vm", "set", "1001", "--pin", "583920"]);
    let m = mailbox(&d.0, "1001");
    assert_eq!((m["must_initialise"].as_bool(), m["force_greeting"].as_bool()), (Some(false), Some(false)));
    let o = cli(&d.0, &["vm", "set", "9999", "--pin", "583920"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("extension 9999 does not exist"));
    let db = std::fs::read(d.0.join("pbxguard.db")).unwrap();
    assert!(db.windows(10).any(|w| w == b"$argon2id$"), "PINs are stored as argon2id hashes");
}

#[test]
fn the_default_admin_must_change_its_password_under_the_policy() {
    let d = TempDir::new("admin");
    let admins: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["admin", "list", "--json"])).unwrap();
    assert_eq!((admins[0]["name"].as_str(), admins[0]["must_change"].as_bool()), (Some("admin"), Some(true)));
    let o = cli(&d.0, &["admin", "passwd", "--password", "admin"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not meet the password policy"));
    let o = cli(&d.0, &["admin", "passwd", "--password", "Xadmin!2026q"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("must not contain the account name admin"));
    cli_ok(&d.0, &["admin", "passwd", "--password", "Adm!n-Str0ng#Pw"]);
    let admins: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["admin", "list", "--json"])).unwrap();
    assert_eq!(admins[0]["must_change"], false);
    let o = cli(&d.0, &["admin", "passwd", "--password", "Adm!n-Str0ng#Pw"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("must differ from the current one"));
}

/// `admin login` checks a password the way every admin interface will (password on stdin) and logs
/// each attempt as a security event with its source.
#[test]
fn admin_logins_are_security_events_and_admin_admin_must_change_first() {
    use std::io::Write;
    let d = TempDir::new("admin-login");
    let login = |name: &str, pw: &str| -> Option<i32> {
        let mut c = std::process::Command::new(BIN)
            .arg("--data")
            .arg(&d.0)
            .args(["admin", "login", name, "--from", "198.51.100.7"])
            .env_remove("PBXGUARD_DATA")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(format!("{pw}\n").as_bytes()).unwrap();
        c.wait().unwrap().code()
    };
    assert_eq!(login("admin", "admin"), Some(3), "right password, but it must be changed first");
    assert_eq!(login("admin", "guess"), Some(1));
    assert_eq!(login("root", "admin"), Some(1));
    cli_ok(&d.0, &["admin", "passwd", "--password", "Adm!n-Str0ng#Pw"]);
    assert_eq!(login("admin", "Adm!n-Str0ng#Pw"), Some(0));
    assert_eq!(login("admin", "admin"), Some(1), "the old default no longer works");
    let events: Vec<serde_json::Value> = cli_ok(&d.0, &["events", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["kind"].as_str().unwrap().starts_with("admin-login"))
        .collect();
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["user"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("admin-login", "admin", "accepted; the password must be changed before anything else"),
            ("admin-login-failed", "admin", "wrong password"),
            ("admin-login-failed", "root", "unknown account"),
            ("admin-login", "admin", "accepted"),
            ("admin-login-failed", "admin", "wrong password"),
        ]
    );
    assert!(events.iter().all(|e| e["source"] == "198.51.100.7"));
}
