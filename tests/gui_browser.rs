//! The admin GUI end to end in a real browser: Playwright for Python driving Debian's chromium runs
//! tests/gui/e2e.py against a daemon started here (login, forced password change, an extension, a
//! sipvicious scan seen live on the dashboard, an unban, screenshots of every page).
//!
//! Screenshots go to `$PBXGUARD_SCREENSHOTS` when set (`docs/screenshots` to refresh the README's),
//! otherwise to a temporary directory, so a CI run leaves the tree clean.

mod common;
use common::*;
use std::process::Command;

#[test]
fn the_admin_gui_in_a_real_browser() {
    require("chromium");
    require("svmap");
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    assert!(
        std::path::Path::new(python).is_file(),
        "{python} is missing: run scripts/test.sh, which creates the venv with playwright 1.65.2"
    );
    let d = TempDir::new("gui-browser");
    let daemon = Daemon::start(&d.0);
    let shots = match std::env::var("PBXGUARD_SCREENSHOTS") {
        Ok(dir) if !dir.is_empty() => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        _ => d.0.join("screenshots"),
    };
    let out = Command::new("timeout")
        .arg("240")
        .arg(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gui/e2e.py"))
        .arg(format!("https://{}", daemon.gui))
        .arg(daemon.udp.ip().to_string())
        .arg(daemon.udp.port().to_string())
        .arg(&shots)
        .output()
        .expect("run tests/gui/e2e.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "the browser test failed ({}):\n{text}\n{}", out.status, daemon.log());
}
