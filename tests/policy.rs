//! The password policy on SIP secrets, end to end: refusals with reasons, generated secrets, and the
//! guide's two switches (enforce; automatically fix invalid passwords).

mod common;
use common::*;
use pbxguard_shield::PasswordPolicy;

#[test]
fn weak_secrets_are_refused_with_every_reason_and_nothing_changes() {
    let d = TempDir::new("policy");
    let o = cli(&d.0, &["ext", "add", "1001", "--secret", "pass1001"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    for reason in [
        "add an upper-case letter (A-Z)",
        "add a special character such as ! $ % ^",
        "must not contain the extension number 1001",
        "--generate",
    ] {
        assert!(err.contains(reason), "missing {reason:?} in:\n{err}");
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["ext", "list", "--json"])).unwrap();
    assert!(list.is_empty(), "a refused secret must not create the extension");
    // --generate always meets the policy.
    let out = cli_ok(&d.0, &["ext", "add", "1001", "--generate"]);
    let secret = out.trim().rsplit(' ').next().unwrap();
    assert!(PasswordPolicy::default().check(secret, &[("1001", "the extension number")]).is_empty(), "{secret}");
    let o = cli(&d.0, &["ext", "passwd", "1001", "--secret", "Password1!"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("common password \"password\""));
    let list: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["ext", "list", "--json"])).unwrap();
    assert_eq!(list[0]["compliant"], true);
    // A longer minimum than the usual 20-character secret: generated secrets follow it.
    cli_ok(&d.0, &["settings", "set", "password_policy.min_length", "40"]);
    let out = cli_ok(&d.0, &["ext", "passwd", "1001", "--generate"]);
    assert_eq!(out.trim().rsplit(' ').next().unwrap().len(), 40, "{out}");
}

#[test]
fn turning_the_policy_on_lists_and_autofix_replaces_weak_secrets() {
    let d = TempDir::new("autofix");
    cli_ok(&d.0, &["settings", "set", "password_policy.enforce", "false"]);
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "1234"]);
    cli_ok(&d.0, &["ext", "add", "1002", "--secret", "Str0ng!Secret#2026"]);
    cli_ok(&d.0, &["ext", "add", "1003", "--secret", "secret1003"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["ext", "list", "--json"])).unwrap();
    let compliant: Vec<bool> = list.iter().map(|e| e["compliant"].as_bool().unwrap()).collect();
    assert_eq!(compliant, [false, true, false]);
    let out = cli_ok(&d.0, &["settings", "set", "password_policy.enforce", "true"]);
    assert!(out.contains("2 extension(s) have a secret that breaks the policy"), "{out}");
    assert!(out.contains("1001") && out.contains("1003") && !out.contains("1002 "), "{out}");
    let csv = cli_ok(&d.0, &["settings", "set", "password_policy.autofix", "true", "--csv"]);
    let rows: Vec<&str> = csv.lines().skip(1).filter(|l| l.contains(',')).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let policy = PasswordPolicy::default();
    for row in &rows {
        let (number, secret) = row.split_once(',').unwrap();
        assert!(policy.check(secret, &[(number, "the extension number")]).is_empty(), "{row}");
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["ext", "list", "--json"])).unwrap();
    assert!(list.iter().all(|e| e["compliant"] == true));
    let events = cli_ok(&d.0, &["events", "--json"]);
    assert_eq!(events.lines().filter(|l| l.contains("secret-autofix")).count(), 2, "{events}");
    // The new secrets are not stored in clear.
    let db = std::fs::read(d.0.join("pbxguard.db")).unwrap();
    for row in &rows {
        let secret = row.split_once(',').unwrap().1.as_bytes();
        assert!(!db.windows(secret.len()).any(|w| w == secret));
    }
}
