//! The Debian package: built with `packaging/build-deb.sh` (cargo-deb) from the release binary under
//! test, installed with `dpkg -i`, checked as an operator would (`pbxguard --version`, `man pbxguard`,
//! `systemd-analyze verify` on the unit, the service user and its 0700 data directory, the shipped
//! configuration starting a daemon), then removed. Needs root, as CI runs it.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes the package however the test ends: it installs into the machine, not into a temp dir.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "pbxguard"]).stdout(Stdio::null()).status();
    }
}

/// Kills a child process on drop.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deb_installs_a_working_binary_man_page_and_a_valid_unit() {
    require("dpkg-deb");
    require("systemd-analyze");
    require("man");
    assert!(
        run(env!("CARGO"), &["deb", "--version"]).status.success(),
        "cargo-deb is not installed; scripts/test.sh installs it (cargo install cargo-deb --locked)"
    );
    assert_eq!(ok("id", &["-u"]).trim(), "0", "installing a package needs root, as on CI");
    let before = run("dpkg-query", &["-W", "-f=${Status}", "pbxguard"]);
    assert!(
        !String::from_utf8_lossy(&before.stdout).contains("installed"),
        "a pbxguard package is installed on this machine already; not replacing it"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    // The binary under test is the one packaged.
    let o = Command::new(format!("{root}/packaging/build-deb.sh"))
        .arg("--no-build")
        .env("CARGO_TARGET_DIR", std::path::Path::new(BIN).parent().unwrap().parent().unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build-deb.sh: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    let deb = std::fs::read_dir(format!("{root}/target/debian"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("pbxguard_{version}")))
        .expect("the .deb is built");

    let _installed = Installed;
    ok("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(ok("/usr/bin/pbxguard", &["--version"]).contains(version));
    let man = ok("man", &["-P", "cat", "pbxguard"]);
    assert!(man.contains("SYNOPSIS") && man.contains("restore"), "{man}");
    assert!(ok("man", &["-P", "cat", "pbxguard-backup"]).contains("pbxguard-backup"));
    ok("systemd-analyze", &["verify", "/lib/systemd/system/pbxguard.service"]);
    assert!(std::path::Path::new("/usr/share/bash-completion/completions/pbxguard").is_file());
    let unit = std::fs::read_to_string("/lib/systemd/system/pbxguard.service").unwrap();
    for line in ["Type=notify", "User=pbxguard", "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE"] {
        assert!(unit.lines().any(|l| l == line), "{line} in the unit");
    }
    // The service user and its private data directory.
    let uid: u32 = ok("id", &["-u", "pbxguard"]).trim().parse().unwrap();
    let meta = std::fs::metadata("/var/lib/pbxguard").unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (uid, 0o700));

    // The shipped configuration starts a daemon (on a scratch data directory and loopback ports).
    let data = TempDir::new("package");
    let child = Command::new("/usr/bin/pbxguard")
        .arg("--data")
        .arg(&data.0)
        .args(["run", "--config", "/etc/pbxguard/pbxguard.toml"])
        .args([
            "--sip-udp",
            "127.0.0.1:0",
            "--sip-tcp",
            "127.0.0.1:0",
            "--sip-tls",
            "127.0.0.1:0",
            "--gui",
            "127.0.0.1:0",
        ])
        .env_remove("PBXGUARD_DATA")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _daemon = Reap(child);
    let up = wait_for(Duration::from_secs(15), || data.0.join("listen.json").exists().then_some(()));
    assert!(up.is_some(), "the daemon starts with /etc/pbxguard/pbxguard.toml");
    drop(_daemon);

    ok("dpkg", &["-r", "pbxguard"]);
    assert!(!std::path::Path::new("/usr/bin/pbxguard").exists(), "removed");
}
