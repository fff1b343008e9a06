//! `pbxguard backup` while SIPp registers 1,000 extensions, restored into a new data directory whose
//! daemon accepts the same registrations; and what a restore refuses.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const N: usize = 1000;

/// N extensions with formulaic secrets (imported in one command), and SIPp's users file for them.
fn add_extensions(data: &Path) -> std::path::PathBuf {
    cli_ok(data, &["settings", "set", "password_policy.enforce", "false"]);
    let (mut import, mut users) = (String::from("number,secret\n"), String::from("SEQUENTIAL\n"));
    for i in 0..N {
        let ext = 30_000 + i;
        let pw = format!("Pw{ext}!bk");
        import.push_str(&format!("{ext},{pw}\n"));
        users.push_str(&format!("{ext};[authentication username={ext} password={pw}]\n"));
    }
    std::fs::write(data.join("import.csv"), import).unwrap();
    cli_ok(data, &["import", "csv", data.join("import.csv").to_str().unwrap()]);
    let path = data.with_extension("users.csv");
    std::fs::write(&path, users).unwrap();
    path
}

fn sipp(users: &Path, target: std::net::SocketAddr, rate: &str) -> Command {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/reg_auth.xml");
    let mut c = Command::new("timeout");
    c.args(["120", "sipp", "-sf", scenario, "-inf"])
        .arg(users)
        .arg(target.to_string())
        .args(["-t", "u1", "-i", "127.0.0.1", "-p", "0", "-m", &N.to_string(), "-r", rate, "-l", "200"])
        .args(["-nostdin", "-timeout", "90s", "-timeout_error"])
        .current_dir(users.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Every one of the N registrations succeeded (SIPp's final statistics).
fn assert_all_registered(o: &std::process::Output, what: &str) {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = |label: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split('|').nth(2))
            .map(|v| v.trim().to_owned())
    };
    assert_eq!(
        (o.status.code(), line("Successful call").as_deref(), line("Failed call").as_deref()),
        (Some(0), Some("1000"), Some("0")),
        "{what}: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Kills a child process on drop, so a failed assertion leaves no SIPp behind.
struct Reap(Option<std::process::Child>);

impl Reap {
    fn output(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn backup_during_1000_registrations_restores_into_a_daemon_that_accepts_them() {
    require("sipp");
    let a = TempDir::new("backup-a");
    let users = add_extensions(&a.0);
    let daemon = Daemon::start(&a.0);
    let load = Reap(Some(sipp(&users, daemon.udp, "200").spawn().expect("run sipp")));
    // Taken once registrations are being written, while SIPp is still registering.
    let first = wait_for(Duration::from_secs(15), || (!registrations(&a.0).is_empty()).then_some(()));
    assert!(first.is_some(), "registrations are being stored");
    let file = a.0.with_extension("backup.db");
    let _ = std::fs::remove_file(&file);
    let said = cli_ok(&a.0, &["backup", file.to_str().unwrap()]);
    assert!(said.contains("backed up 1000 extension(s)"), "{said}");
    let o = load.output();
    assert_all_registered(&o, "registering at the original daemon");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions()) & 0o777,
        0o600,
        "a backup holds HA1 hashes"
    );

    // A running daemon's data directory is never restored over.
    let o = cli(&a.0, &["restore", file.to_str().unwrap(), "--force"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(1) && e.contains(&format!("PID {}", daemon.pid())), "{e}");

    let b = TempDir::new("backup-b");
    let restored = b.0.join("data");
    let said = cli_ok(&restored, &["restore", file.to_str().unwrap()]);
    assert!(said.contains("restored 1000 extension(s)"), "{said}");
    let second = Daemon::start(&restored);
    let o = sipp(&users, second.udp, "500").output().expect("run sipp");
    assert_all_registered(&o, "registering at the daemon on the restored data");
    let _ = std::fs::remove_file(users);
    let _ = std::fs::remove_file(file);
}

#[test]
fn restore_refuses_a_newer_schema_and_files_that_are_not_pbxguard_databases() {
    require("sqlite3");
    let a = TempDir::new("restore-bad");
    cli_ok(&a.0, &["settings", "get", "sip.realm"]);
    let file = a.0.join("copy.db");
    cli_ok(&a.0, &["backup", file.to_str().unwrap()]);
    let o = cli(&a.0, &["backup", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"), "{o:?}");
    let st = Command::new("sqlite3").arg(&file).arg("PRAGMA user_version = 999").status().unwrap();
    assert!(st.success());
    let target = a.0.join("new");
    let o = cli(&target, &["restore", file.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(1) && e.contains("written by a newer pbxguard") && e.contains("999"), "{e}");
    assert!(!target.exists(), "a refused restore creates nothing");
    let other = a.0.join("other.db");
    let st = Command::new("sqlite3").arg(&other).arg("CREATE TABLE t(x); INSERT INTO t VALUES ('private');").status();
    assert!(st.unwrap().success());
    let o = cli(&target, &["restore", other.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("is not a pbxguard database") && !e.contains("private"), "{e}");
}
