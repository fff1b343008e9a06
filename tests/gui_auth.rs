//! The admin GUI's front door: failed logins are shield observations like any other brute force
//! (the source is banned and its next connection dropped before TLS), a trusted network is never
//! banned, an unknown name reads exactly like a wrong password, and the first login must change the
//! default password before anything else answers.

mod common;
use common::*;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// One login attempt with curl from `from`: the HTTP status, or `None` when no answer came (the
/// connection was refused or dropped).
fn login_from(from: &str, gui: SocketAddr, user: &str, password: &str) -> (Option<u16>, String) {
    let o = Command::new("curl")
        .args(["-k", "-s", "--max-time", "5", "--interface", from, "-o", "-", "-w", "\n%{http_code}"])
        .args(["--data-urlencode", &format!("user={user}"), "--data-urlencode", &format!("password={password}")])
        .arg(format!("https://{gui}/login"))
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    let code = code.trim().parse().ok().filter(|&c| c != 0);
    (code, body.to_owned())
}

#[test]
fn wrong_gui_logins_ban_the_source_but_never_a_trusted_one() {
    require("curl");
    let d = TempDir::new("gui-ban");
    cli_ok(&d.0, &["trust", "add", "127.0.0.68/32"]);
    let mut daemon = Daemon::start(&d.0);
    let gui = daemon.gui;

    // An unknown account and a wrong password read the same.
    let (unknown, unknown_body) = login_from("127.0.0.67", gui, "nobody", "guess");
    let (wrong, wrong_body) = login_from("127.0.0.67", gui, "admin", "guess");
    assert_eq!((unknown, wrong), (Some(401), Some(401)));
    let strip = |b: &str, user: &str| b.replace(&format!("value=\"{user}\""), "value=\"\"");
    assert_eq!(strip(&unknown_body, "nobody"), strip(&wrong_body, "admin"));

    // shield.brute_force is 5 in 10 minutes: three more failures make five, all answered...
    for _ in 0..3 {
        assert_eq!(login_from("127.0.0.67", gui, "admin", "guess").0, Some(401));
    }
    // ...and the next connection from that address is dropped before TLS.
    let dropped =
        wait_for(Duration::from_secs(5), || login_from("127.0.0.67", gui, "admin", "guess").0.is_none().then_some(()));
    assert!(dropped.is_some(), "127.0.0.67 still answered after five wrong logins");
    let ban = wait_for(Duration::from_secs(5), || {
        let bans: serde_json::Value = serde_json::from_str(&cli_ok(&d.0, &["bans", "list", "--json"])).unwrap();
        bans.as_array().unwrap().iter().find(|b| b["target"] == "127.0.0.67").cloned()
    });
    assert_eq!(ban.expect("no stored ban for 127.0.0.67")["reason"], "brute-force");

    // A trusted address keeps being answered, however often it gets the password wrong.
    for _ in 0..8 {
        assert_eq!(login_from("127.0.0.68", gui, "admin", "guess").0, Some(401));
    }
    // The right password still works from there, and lands on the forced change.
    let (code, _) = login_from("127.0.0.68", gui, "admin", "admin");
    assert_eq!(code, Some(303));
    // Other addresses were never affected.
    assert_eq!(login_from("127.0.0.1", gui, "admin", "guess").0, Some(401));
    daemon.stop();
}

#[test]
fn the_first_login_must_change_the_default_password_before_anything_else() {
    let d = TempDir::new("gui-first");
    let mut daemon = Daemon::start(&d.0);
    let base = format!("https://{}", daemon.gui);
    let agent = https_agent();
    // Not logged in: every page sends to the login, every API call is 401.
    let r = agent.get(format!("{base}/")).call().unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login"));
    assert_eq!(agent.get(format!("{base}/api/v1/status")).call().unwrap().status(), 401);

    let r = agent.post(format!("{base}/login")).send_form([("user", "admin"), ("password", "admin")]).unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/password"));
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    for header in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(r.headers()["set-cookie"].to_str().unwrap().contains(header), "cookie without {header}");
    }
    // Must change: the dashboard redirects to the change, the API refuses.
    let r = agent.get(format!("{base}/")).header("cookie", &cookie).call().unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/password"));
    let r = agent.get(format!("{base}/api/v1/status")).header("cookie", &cookie).call().unwrap();
    assert_eq!(r.status(), 403);

    // The change page carries the session's CSRF token; a weak password is refused with every reason.
    let page = agent
        .get(format!("{base}/password"))
        .header("cookie", &cookie)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    for h in ["content-security-policy", "strict-transport-security", "x-frame-options"] {
        let r = agent.get(format!("{base}/password")).header("cookie", &cookie).call().unwrap();
        assert!(r.headers().contains_key(h), "no {h}");
    }
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let weak = [("csrf", csrf.as_str()), ("new", "abc"), ("confirm", "abc")];
    let r = agent.post(format!("{base}/password")).header("cookie", &cookie).send_form(weak).unwrap();
    assert_eq!(r.status(), 400);
    let body = r.into_body().read_to_string().unwrap();
    for reason in ["at least 8 characters", "upper-case", "digit", "special character"] {
        assert!(body.contains(reason), "reason {reason:?} not shown: {body}");
    }
    // Without the CSRF token, even a good password is refused.
    let good = "Plenty-0f-Entropy!";
    let r = agent
        .post(format!("{base}/password"))
        .header("cookie", &cookie)
        .send_form([("new", good), ("confirm", good)])
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = agent
        .post(format!("{base}/password"))
        .header("cookie", &cookie)
        .send_form([("csrf", csrf.as_str()), ("new", good), ("confirm", good)])
        .unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/"));
    // Changed: the session goes on, the CLI sees the new password.
    assert_eq!(agent.get(format!("{base}/api/v1/status")).header("cookie", &cookie).call().unwrap().status(), 200);
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(&d.0)
        .args(["admin", "login", "admin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{good}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "the CLI does not accept the password set in the GUI");
    daemon.stop();
}
