//! The admin GUI's host pages, end to end over HTTPS: admin accounts added (a weak password refused
//! with its every reason), changed and deleted (never yourself, never the last); the firewall page
//! showing what the wizard saved; the SSH page with sshd's facts, and with no sshd at all; the audit
//! page giving the same score and findings as `pbxguard audit --json`.

mod common;
use common::*;
use std::process::Command;

fn admins_json(data: &std::path::Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&cli_ok(data, &["admin", "list", "--json"])).unwrap()
}

#[test]
fn admins_are_added_refused_changed_and_deleted_through_the_forms() {
    let d = TempDir::new("gui-admins");
    let daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);

    let (status, page) = admin.get("/admins");
    assert_eq!(status, 200);
    for id in
        ["id=\"admin-list\"", "id=\"admin-add\"", "id=\"admin-name\"", "id=\"admin-password\"", "data-name=\"admin\""]
    {
        assert!(page.contains(id), "no {id} on the admins page: {page}");
    }
    assert!(page.contains("from 127.0.0.1"), "the last login is not shown: {page}");

    // A weak password: every reason shown, the name kept, nothing added.
    let (status, _, body) = admin.post("/admins", &[("name", "jane"), ("password", "jane")]);
    assert_eq!(status, 400, "{body}");
    for reason in ["at least", "upper-case", "digit", "special character", "account name"] {
        assert!(body.contains(reason), "reason {reason:?} not shown: {body}");
    }
    assert!(body.contains("value=\"jane\""), "the name was not kept");
    assert_eq!(admins_json(&d.0).len(), 1, "a refused admin was stored");
    // A name that is no name is refused and says what a name may hold.
    let (status, _, body) = admin.post("/admins", &[("name", "ja ne"), ("password", "Str0ng-Enough-Pass!")]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("letters, digits"), "{body}");

    // A strong one: added, must change its password at first login (as the first-run admin does).
    let (status, location, body) = admin.post("/admins", &[("name", "jane"), ("password", "Str0ng-Enough-Pass!")]);
    assert_eq!((status, location.as_str()), (303, "/admins"), "{body}");
    let jane = admins_json(&d.0).into_iter().find(|a| a["name"] == "jane").expect("jane listed");
    assert_eq!(jane["must_change"], true);
    let r = admin
        .agent
        .post(format!("{}/login", admin.base))
        .send_form([("user", "jane"), ("password", "Str0ng-Enough-Pass!")])
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/password", "the new admin was not sent to change its password");
    let (_, page) = admin.get("/admins");
    assert!(page.contains("data-name=\"jane\"") && page.contains("must be changed at next login"), "{page}");
    // Taken: a conflict, said so.
    let (status, _, body) = admin.post("/admins", &[("name", "jane"), ("password", "An0ther-Strong-Pass!")]);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already exists"));

    // Another admin's password: refused with reasons, then changed; a generated one is shown once.
    let (status, _, body) = admin.post("/admins/jane/password", &[("password", "short")]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at least"), "{body}");
    let (status, location, _) = admin.post("/admins/jane/password", &[("password", "Changed-By-Admin-9!")]);
    assert_eq!((status, location.as_str()), (303, "/admins"));
    let (status, _, body) = admin.post("/admins/jane/password", &[("password", ""), ("generate", "1")]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"secret-once\""), "{body}");

    // Never yourself: said why, nothing deleted.
    let (status, _, body) = admin.post("/admins/admin/delete", &[]);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("logged in as admin"), "{body}");
    assert_eq!(admins_json(&d.0).len(), 2);
    // Unknown: not found.
    let (status, _, _) = admin.post("/admins/nobody/delete", &[]);
    assert_eq!(status, 404);
    // Another admin: deleted.
    let (status, location, _) = admin.post("/admins/jane/delete", &[]);
    assert_eq!((status, location.as_str()), (303, "/admins"));
    assert_eq!(admins_json(&d.0).len(), 1);
    // Never the last one (the command line calls the same function).
    let o = cli(&d.0, &["admin", "del", "admin"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("last admin"), "{o:?}");
    // The command line adds with the same rules.
    let o = cli(&d.0, &["admin", "add", "bob", "--password", "bob"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("password policy"), "{o:?}");
    let out = cli_ok(&d.0, &["admin", "add", "bob", "--generate"]);
    assert!(out.contains("shown once"), "{out}");
    cli_ok(&d.0, &["admin", "del", "bob"]);

    // A form without the session's CSRF token changes nothing.
    let r = admin
        .agent
        .post(format!("{}/admins", admin.base))
        .header("cookie", &admin.cookie)
        .send_form([("name", "mallory"), ("password", "Str0ng-Enough-Pass!")])
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(admins_json(&d.0).len(), 1);
}

/// A network namespace of its own, deleted even when the test panics.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("gh-{tag}-{}", std::process::id());
        let ok = Command::new("ip").args(["netns", "add", &name]).status().is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name} failed (run as root)");
        Self(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn the_firewall_page_shows_what_the_wizard_saved_and_the_ruleset() {
    require("nft");
    let d = TempDir::new("gui-fw");
    // The wizard checks and loads its ruleset with nft: in a namespace of its own, not on this host.
    let ns = Netns::new("fw");
    let o = Command::new("ip")
        .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_pbxguard"), "--data"])
        .arg(&d.0)
        .args(["firewall", "wizard", "--yes", "--ssh-from", "192.0.2.0/24", "--gui-from", "198.51.100.0/24"])
        .args(["--rtp", "12000-12999", "--rollback-after", "0"])
        // The lockout check would keep the SSH session this test may run from allowed.
        .env_remove("SSH_CONNECTION")
        .output()
        .unwrap();
    assert!(o.status.success(), "the wizard failed: {}", String::from_utf8_lossy(&o.stderr));

    let daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);
    let (status, page) = admin.get("/firewall");
    assert_eq!(status, 200, "{page}");
    for want in [
        "id=\"fw-services\"",
        "data-service=\"ssh\"",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "12000-12999",
        "id=\"fw-ruleset\"",
        "table inet pbxguard",
        "id=\"fw-last\"",
    ] {
        assert!(page.contains(want), "{want:?} not on the firewall page: {page}");
    }
    assert!(!page.contains("id=\"fw-defaults\""), "the saved services are shown as the wizard's defaults");
    assert!(!page.contains("id=\"fw-confirm\""), "a confirm offered with nothing to confirm");
    // Nothing waits for a confirm: the button's target says so and changes nothing.
    let (status, _, body) = admin.post("/firewall/confirm", &[]);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nothing to confirm"), "{body}");
}

#[test]
fn the_ssh_page_shows_sshds_facts_and_says_so_when_sshd_is_absent() {
    let d = TempDir::new("gui-ssh");
    let config = d.0.join("sshd_config");
    std::fs::write(&config, "Port 2222\nPermitRootLogin no\nPasswordAuthentication no\nAllowUsers ops@192.0.2.0/24\n")
        .unwrap();
    cli_ok(&d.0, &["settings", "set", "ssh.config", config.to_str().unwrap()]);
    // sshd's log as `sshd -E FILE` writes it: the guard follows it.
    let auth_log = d.0.join("sshd.log");
    std::fs::write(&auth_log, "").unwrap();
    cli_ok(&d.0, &["settings", "set", "ssh.guard.logs", auth_log.to_str().unwrap()]);
    let daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);
    let (status, page) = admin.get("/ssh");
    assert_eq!(status, 200, "{page}");
    for want in
        ["id=\"ssh-facts\"", "2222", "192.0.2.0/24", "id=\"ssh-guard\"", "id=\"ssh-cli-only\"", "id=\"ssh-no-bans\""]
    {
        assert!(page.contains(want), "{want:?} not on the SSH page: {page}");
    }
    assert!(page.contains(auth_log.to_str().unwrap()), "the guard's log file is not shown: {page}");
    assert!(!page.contains("action=\"/ssh"), "the SSH page offers a change: {page}");

    // Failed logins from one source: banned by the SSH guard, and listed here. The guard reads only
    // lines written after it opened the file, so one more is written on each look until the ban.
    let banned = wait_for(std::time::Duration::from_secs(15), || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&auth_log).unwrap();
        writeln!(f, "Failed password for root from 203.0.113.50 port 40022 ssh2").unwrap();
        let bans: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["bans", "list", "--json"])).unwrap();
        bans.into_iter().find(|b| b["target"].as_str().is_some_and(|t| t.starts_with("203.0.113.50")))
    });
    assert!(banned.is_some(), "the SSH guard never banned 203.0.113.50:\n{}", daemon.log());
    // A ban of another kind is not an SSH ban.
    cli_ok(&d.0, &["bans", "add", "198.51.100.9", "--reason", "scan"]);
    let listed = wait_for(std::time::Duration::from_secs(10), || {
        cli_ok(&d.0, &["bans", "list", "--json"]).contains("198.51.100.9").then_some(())
    });
    assert!(listed.is_some(), "the manual ban never appeared");
    let (_, page) = admin.get("/ssh");
    assert!(page.contains("id=\"ssh-bans\"") && page.contains("203.0.113.50"), "the SSH ban is not listed: {page}");
    assert!(!page.contains("198.51.100.9"), "a ban of another kind is listed as an SSH ban: {page}");

    // No sshd here at all: the page still answers, and says why it has no facts.
    let absent = d.0.join("no-such-dir/sshd_config");
    cli_ok(&d.0, &["settings", "set", "ssh.config", absent.to_str().unwrap()]);
    let (status, page) = admin.get("/ssh");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"ssh-unreadable\"") && page.contains("no-such-dir"), "{page}");
    assert!(page.contains("id=\"ssh-guard\""));
}

#[test]
fn the_audit_page_gives_the_same_score_and_findings_as_the_command() {
    let d = TempDir::new("gui-audit");
    // A finding or two of our own making, so the comparison is not between two empty reports.
    cli_ok(&d.0, &["settings", "set", "password_policy.enforce", "false"]);
    let daemon = Daemon::start(&d.0);
    let admin = Admin::login(&daemon);
    let (status, page) = admin.get("/audit");
    assert_eq!(status, 200, "{page}");
    // Exit 1 on a critical finding: the report is on stdout either way.
    let o = cli(&d.0, &["audit", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("audit --json");
    let findings = report["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "{report}");
    assert!(page.contains(&format!("data-score=\"{}\"", report["score"])), "score differs from {report}: {page}");
    assert!(page.contains(&format!("data-findings=\"{}\"", findings.len())), "count differs from {report}: {page}");
    assert_eq!(page.matches("class=\"finding\"").count(), findings.len(), "{page}");
    for f in findings {
        let check = f["check"].as_str().unwrap();
        assert!(page.contains(&format!("data-check=\"{check}\"")), "finding {check} missing: {page}");
        let fix = f["fix"].as_str().unwrap();
        let escaped = fix.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        assert!(page.contains(&escaped), "the fix hint of {check} is missing: {page}");
        let sev = f["severity"].as_str().unwrap();
        assert!(page.contains(&format!("id=\"audit-{sev}\"")), "no {sev} group: {page}");
    }
}
