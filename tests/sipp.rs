//! SIPp registers 1,000 distinct extensions with digest authentication over UDP and over TCP.

mod common;
use common::*;
use std::process::Command;

fn add_extensions(data: &std::path::Path, n: usize) -> std::path::PathBuf {
    // Load-test accounts with formulaic secrets: the password policy is not what this test is about.
    cli_ok(data, &["settings", "set", "password_policy.enforce", "false"]);
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..n {
        let ext = 20_000 + i;
        let pw = format!("Pw{ext}!x");
        cli_ok(data, &["ext", "add", &ext.to_string(), "--secret", &pw]);
        csv.push_str(&format!("{ext};[authentication username={ext} password={pw}]\n"));
    }
    let path = data.join("users.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn sipp(csv: &std::path::Path, target: std::net::SocketAddr, transport: &str, n: usize) -> std::process::Output {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/reg_auth.xml");
    Command::new("timeout")
        .args(["120", "sipp", "-sf", scenario, "-inf"])
        .arg(csv)
        .arg(target.to_string())
        .args(["-t", transport, "-i", "127.0.0.1", "-p", "0", "-m", &n.to_string(), "-r", "500", "-l", "200"])
        .args(["-nostdin", "-timeout", "90s", "-timeout_error", "-max_socket", "100"])
        .current_dir(csv.parent().unwrap())
        .output()
        .expect("run sipp")
}

#[test]
fn sipp_registers_1000_extensions_over_udp_and_tcp() {
    require("sipp");
    let d = TempDir::new("sipp");
    let csv = add_extensions(&d.0, 1000);
    let daemon = Daemon::start(&d.0);
    for (transport, target) in [("u1", daemon.udp), ("t1", daemon.tcp)] {
        let o = sipp(&csv, target, transport, 1000);
        let out = String::from_utf8_lossy(&o.stdout);
        let line = |label: &str| {
            out.lines()
                .find(|l| l.trim_start().starts_with(label))
                .map(|l| l.split('|').nth(2).unwrap().trim().to_owned())
        };
        assert_eq!(
            (o.status.code(), line("Successful call").as_deref(), line("Failed call").as_deref()),
            (Some(0), Some("1000"), Some("0")),
            "{transport}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Every extension has a UDP and a TCP binding, persisted where the CLI can see them.
    let regs = wait_for(std::time::Duration::from_secs(5), || {
        let r = registrations(&d.0);
        (r.len() == 2000).then_some(r)
    })
    .expect("2000 bindings listed");
    let tcp = regs.iter().filter(|r| r["transport"] == "tcp").count();
    assert_eq!(tcp, 1000);
    assert!(regs.iter().all(|r| r["user_agent"] == "SIPp-pbxguard-test" && r["expires_in"].as_i64().unwrap() > 3500));
}
