//! `pbxguard audit` on a deliberately weak setup: every weakness is listed with its fix, the exit status
//! says something critical was found, and `--fix` changes only what is safe to change.

mod common;
use common::*;
use std::process::Command;

/// A shadow file whose root password is `password`, hashed by the system's own crypt (yescrypt, as
/// Debian 12 does by default).
fn shadow_with_root(dir: &std::path::Path, password: &str) -> std::path::PathBuf {
    let out = Command::new("perl")
        .args(["-e", "print crypt($ARGV[0], q($y$j9T$PaIGCtRHbqKzEzHZXWJ/B0$))", password])
        .output()
        .expect("perl");
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("$y$"), "the system crypt has no yescrypt: {hash:?}");
    let path = dir.join("shadow");
    std::fs::write(&path, format!("daemon:*:19000:0:99999:7:::\nroot:{hash}:19000:0:99999:7:::\n")).unwrap();
    path
}

fn audit_json(data: &std::path::Path, extra: &[&str]) -> (serde_json::Value, i32) {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(extra);
    let o = cli(data, &args);
    let report = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("audit --json printed no JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)));
    (report, o.status.code().unwrap_or(-1))
}

fn finding<'a>(report: &'a serde_json::Value, check: &str, title_part: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check && f["title"].as_str().unwrap().contains(title_part))
        .unwrap_or_else(|| panic!("no {check} finding about {title_part:?} in {report:#}"))
}

#[test]
fn a_weak_setup_lists_every_weakness_with_its_fix_and_fails() {
    let d = TempDir::new("audit-weak");
    let data = d.0.join("data");
    std::fs::create_dir(&data).unwrap();
    let shadow = shadow_with_root(&d.0, "scopserv");
    cli_ok(&data, &["settings", "set", "password_policy.enforce", "false"]);
    cli_ok(&data, &["ext", "add", "1001", "--secret", "1001"]);
    cli_ok(&data, &["settings", "set", "password_policy.enforce", "true"]);
    cli_ok(&data, &["vm", "set", "1001", "--pin", "1001"]);
    cli_ok(&data, &["settings", "set", "fraud.suspend", "false"]);
    cli_ok(&data, &["settings", "set", "shield.brute_force", "100000/1s"]);
    cli_ok(&data, &["cos", "add", "default", "--allow", "internal,local,national,international,premium-rate"]);

    let (r, code) = audit_json(&data, &["--shadow", shadow.to_str().unwrap()]);
    assert_eq!(code, 1, "critical findings must fail the command: {r:#}");
    assert_eq!(r["critical"], true);
    assert!(r["score"].as_u64().unwrap() < 50, "{r:#}");

    let admin = finding(&r, "admin-password", "admin");
    assert_eq!(admin["severity"], "critical");
    assert_eq!(admin["fix"], "pbxguard admin passwd admin");
    let root = finding(&r, "root-password", "default");
    assert_eq!(root["severity"], "critical");
    assert!(root["evidence"].as_str().unwrap().contains("scopserv"));
    assert_eq!(root["fix"], "passwd root");
    assert!(!r.to_string().contains("$y$"), "a password hash must never be printed");
    let secrets = finding(&r, "sip-secrets", "password policy");
    assert!(secrets["evidence"].as_str().unwrap().contains("1001"));
    assert!(secrets["fix"].as_str().unwrap().contains("pbxguard ext passwd 1001 --generate"));
    finding(&r, "voicemail-pins", "initialise");
    finding(&r, "acl-groups", "anywhere");
    finding(&r, "class-of-service", "default Class of Service allows international and premium-rate");
    let fraud = finding(&r, "fraud-limits", "not suspended");
    assert_eq!(fraud["fix"], "pbxguard settings set fraud.suspend true");
    assert_eq!(fraud["auto_fix"], true);
    let bf = finding(&r, "shield-detectors", "shield.brute_force");
    assert_eq!(bf["fix"], "pbxguard settings reset shield.brute_force");
    finding(&r, "blacklists", "no VoIP blacklist");

    // The text report carries the same findings and fixes.
    let text = cli(&data, &["audit", "--shadow", shadow.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("[CRITICAL] root's password is a well-known default"), "{out}");
    assert!(out.contains("fix: pbxguard settings set fraud.suspend true"), "{out}");

    // --fix needs a terminal or --yes, and then changes only the safe things.
    let refused = cli(&data, &["audit", "--fix", "--shadow", shadow.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(cli_ok(&data, &["settings", "get", "fraud.suspend"]).trim(), "false");
    let fixed = cli(&data, &["audit", "--fix", "--yes", "--shadow", shadow.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&fixed.stdout);
    assert!(out.contains("fixed: fraud.suspend = true"), "{out}");
    assert!(out.contains("fixed: shield.brute_force = 5/10m (its default)"), "{out}");
    assert_eq!(cli_ok(&data, &["settings", "get", "fraud.suspend"]).trim(), "true");
    let (after, _) = audit_json(&data, &["--shadow", shadow.to_str().unwrap()]);
    let auto: Vec<_> = after["findings"].as_array().unwrap().iter().filter(|f| f["auto_fix"] == true).collect();
    assert!(auto.is_empty(), "audit --fix left safe fixes undone: {auto:#?}");
    // Secrets and passwords are never changed behind the admin's back.
    finding(&after, "sip-secrets", "password policy");
    finding(&after, "admin-password", "admin");
}

#[test]
fn a_locked_root_and_a_changed_admin_password_pass() {
    let d = TempDir::new("audit-good");
    let data = d.0.join("data");
    std::fs::create_dir(&data).unwrap();
    let shadow = d.0.join("shadow");
    std::fs::write(&shadow, "root:!:19000:0:99999:7:::\n").unwrap();
    let o = Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["admin", "passwd", "admin", "--password", "Corr3ct-Horse-Battery!"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (r, _) = audit_json(&data, &["--shadow", shadow.to_str().unwrap()]);
    let passed: Vec<_> = r["passed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(passed.contains(&"admin-password"), "{r:#}");
    assert!(passed.contains(&"root-password"), "{r:#}");
    assert!(passed.contains(&"fraud-limits"), "{r:#}");
    assert!(passed.contains(&"shield-detectors"), "{r:#}");
    assert_eq!(r["critical"], false, "{r:#}");
}

/// A netns of its own, removed on drop: the firewall table the hardened audit sees is this test's.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_hardened_setup_scores_100_and_passes() {
    require("nft");
    let d = TempDir::new("audit-hardened");
    let data = d.0.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let shadow = d.0.join("shadow");
    std::fs::write(&shadow, "root:!:19000:0:99999:7:::\n").unwrap();
    let sshd_config = d.0.join("sshd_config");
    std::fs::write(
        &sshd_config,
        "Port 2222\nPermitRootLogin no\nPasswordAuthentication no\nAllowUsers *@10.9.0.0/24\n",
    )
    .unwrap();
    let list = d.0.join("voipbl.txt");
    std::fs::write(&list, "198.51.100.7\n203.0.113.0/24\n").unwrap();
    let ns = Netns(format!("pbxg-audit-{}", std::process::id()));
    let o = Command::new("ip").args(["netns", "add", &ns.0]).output().unwrap();
    assert!(o.status.success(), "ip netns add: {}", String::from_utf8_lossy(&o.stderr));
    let in_ns = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &ns.0, BIN, "--data"])
            .arg(&data)
            .args(args)
            .env_remove("PBXGUARD_DATA")
            .env_remove("SSH_CONNECTION")
            .output()
            .unwrap()
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        o
    };
    ok(in_ns(&["admin", "passwd", "admin", "--password", "Corr3ct-Horse-Battery!"]));
    ok(in_ns(&["settings", "set", "ssh.config", sshd_config.to_str().unwrap()]));
    ok(in_ns(&["blacklist", "import", list.to_str().unwrap()]));
    ok(in_ns(&[
        "firewall",
        "wizard",
        "--yes",
        "--ssh-from",
        "10.9.0.0/24",
        "--gui-from",
        "10.9.0.0/24",
        "--rollback-after",
        "0",
        "--sshd-config",
        sshd_config.to_str().unwrap(),
    ]));
    let o = in_ns(&["audit", "--json", "--shadow", shadow.to_str().unwrap()]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("no JSON ({e}): {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    });
    assert_eq!(r["score"], 100, "{r:#}");
    assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{r:#}");
    assert_eq!(o.status.code(), Some(0), "{r:#}");
    let passed: Vec<_> = r["passed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for check in ["admin-password", "root-password", "ssh", "firewall", "blacklists", "data-permissions"] {
        assert!(passed.contains(&check), "{check} did not run and pass: {r:#}");
    }
}
