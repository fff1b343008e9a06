//! Operator safety (issue 14): guards against one-typo disasters, file modes, missing or wrong data
//! directories, one daemon per data directory and per UDP address, exit codes.

mod common;
use common::*;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Refused, with exit code 1 and `why` on stderr.
fn refused(data: &std::path::Path, args: &[&str], why: &str) -> String {
    let o = cli(data, args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
    let e = stderr(&o);
    assert!(e.contains(why), "{args:?}: {e}");
    e
}

fn answered(from: &str, to: std::net::SocketAddr) -> bool {
    let s = UdpSocket::bind((from, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let me = s.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{p}\r\nFrom: <sip:a@{from}>;tag=1\r\n\
         To: <sip:{to}>\r\nCall-ID: {p}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        p = me.port()
    );
    exchange(&s, to, msg.as_bytes()).is_some()
}

#[test]
fn over_broad_networks_and_endless_bans_need_force_or_are_refused() {
    let d = TempDir::new("broad");
    refused(&d.0, &["trust", "add", "0.0.0.0/0"], "add --force");
    refused(&d.0, &["trust", "add", "::/0"], "wider than /32");
    refused(&d.0, &["bans", "add", "0.0.0.0/0", "--reason", "typo"], "wider than /8");
    refused(&d.0, &["bans", "add", "2000::/3", "--reason", "typo"], "--force");
    refused(&d.0, &["acl", "add", "office", "0.0.0.0/0"], "--force");
    refused(&d.0, &["bans", "add", "203.0.113.9", "--reason", "x", "--for", "99999999d"], "10 years");
    assert!(cli_ok(&d.0, &["trust", "list"]).trim().is_empty());
    assert!(cli_ok(&d.0, &["acl", "list"]).trim().is_empty());
    let bans: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["bans", "list", "--json"])).unwrap();
    assert!(bans.is_empty(), "{bans:?}");
    // Deny rules may be wide; /8 and /32 are fine; --force says the operator means it.
    cli_ok(&d.0, &["acl", "add", "office", "10.0.0.0/8", "!0.0.0.0/0"]);
    cli_ok(&d.0, &["bans", "add", "2001:db8::/32", "--reason", "test", "--for", "3650d"]);
    cli_ok(&d.0, &["bans", "add", "0.0.0.0/1", "--reason", "lab", "--force"]);
    cli_ok(&d.0, &["trust", "add", "::/0", "--force"]);
    cli_ok(&d.0, &["acl", "add", "lab", "0.0.0.0/0", "--force"]);
    // A usage error is exit code 2.
    assert_eq!(cli(&d.0, &["bans", "add"]).status.code(), Some(2));
}

#[test]
fn trusting_a_range_overrides_its_bans_and_untrusting_brings_them_back() {
    let d = TempDir::new("override");
    cli_ok(&d.0, &["bans", "add", "127.0.0.77", "--reason", "scanner"]);
    let daemon = Daemon::start(&d.0);
    assert!(answered("127.0.0.78", daemon.udp), "a neighbour gets a reply");
    assert!(!answered("127.0.0.77", daemon.udp), "the banned address gets none");
    let out = cli_ok(&d.0, &["trust", "add", "127.0.0.64/26"]);
    assert!(out.contains("the ban on 127.0.0.77 (manual) is overridden while 127.0.0.64/26 is trusted"), "{out}");
    assert!(wait_for(Duration::from_secs(3), || answered("127.0.0.77", daemon.udp).then_some(())).is_some());
    let list = cli_ok(&d.0, &["bans", "list"]);
    assert!(list.contains("127.0.0.77") && list.contains("[overridden: 127.0.0.64/26 is trusted]"), "{list}");
    let json: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["bans", "list", "--json"])).unwrap();
    assert_eq!(json[0]["overridden_by"], "127.0.0.64/26");
    // Banning a trusted address still refuses.
    refused(&d.0, &["bans", "add", "127.0.0.80", "--reason", "x"], "trusted network 127.0.0.64/26");
    cli_ok(&d.0, &["trust", "del", "127.0.0.64/26"]);
    assert!(wait_for(Duration::from_secs(3), || (!answered("127.0.0.77", daemon.udp)).then_some(())).is_some());
    assert!(answered("127.0.0.78", daemon.udp), "the neighbour still gets a reply");
    assert!(!cli_ok(&d.0, &["bans", "list"]).contains("overridden"));
}

#[test]
fn a_blacklist_never_takes_an_over_broad_network() {
    let d = TempDir::new("broadlist");
    let file = d.0.join("list.txt");
    std::fs::write(&file, "0.0.0.0/0\n::/0\n203.0.113.5\n1.0.0.0/7\n").unwrap();
    let out = cli_ok(&d.0, &["blacklist", "import", file.to_str().unwrap(), "--name", "evil"]);
    assert!(out.contains("1 entries") && out.contains("3 unreadable lines"), "{out}");
    assert!(out.contains("3 of them refused: networks wider than /8"), "{out}");
    assert!(cli_ok(&d.0, &["blacklist", "check", "192.0.2.1"]).contains("not in any blacklist"));
    assert!(cli_ok(&d.0, &["blacklist", "check", "203.0.113.5"]).contains("listed in evil"));
    std::fs::write(&file, "0.0.0.0/0\n").unwrap();
    refused(&d.0, &["blacklist", "import", file.to_str().unwrap(), "--name", "evil"], "1 networks wider than /8");
}

#[test]
fn settings_reset_restores_the_default_and_errors_name_the_allowed_values() {
    let d = TempDir::new("reset");
    cli_ok(&d.0, &["settings", "set", "shield.flood", "10/1s"]);
    assert_eq!(cli_ok(&d.0, &["settings", "get", "shield.flood"]).trim(), "10/1s");
    assert_eq!(cli_ok(&d.0, &["settings", "reset", "shield.flood"]).trim(), "shield.flood = 30/2s (default)");
    assert_eq!(cli_ok(&d.0, &["settings", "get", "shield.flood"]).trim(), "30/2s");
    refused(&d.0, &["settings", "reset", "shield.nope"], "known settings: sip.realm");
    refused(
        &d.0,
        &["settings", "set", "shield.scanner_user_agents", "sipvicious,sip"],
        "\"sip\" would match real phones",
    );
    refused(&d.0, &["settings", "set", "fraud.suspend", "yes"], "expected true or false");
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[test]
fn secrets_are_0600_whatever_the_directory_and_metrics_stay_readable() {
    let d = TempDir::new("modes");
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    cli_ok(&d.0, &["ext", "add", "1001", "--generate"]);
    assert_eq!(mode(&d.0.join("pbxguard.db")), 0o600);
    let mut daemon = Daemon::start(&d.0);
    let files = ["pbxguard.db", "pbxguard.db-wal", "pbxguard.db-shm", "nonce.key", "tls/key.pem"];
    for f in files {
        assert_eq!(mode(&d.0.join(f)), 0o600, "{f}");
    }
    let metrics = d.0.join("metrics.prom");
    assert!(wait_for(Duration::from_secs(5), || metrics.exists().then_some(())).is_some(), "{}", daemon.log());
    assert_eq!(mode(&metrics) & 0o044, 0o044, "a metrics collector may read metrics.prom");
    daemon.stop();
    // A database made 0644 by an older release is tightened when next opened.
    std::fs::set_permissions(d.0.join("pbxguard.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    cli_ok(&d.0, &["ext", "list"]);
    assert_eq!(mode(&d.0.join("pbxguard.db")), 0o600);
}

#[test]
fn only_run_creates_a_data_directory_and_wrong_paths_are_named_plainly() {
    let d = TempDir::new("paths");
    let missing = d.0.join("typo/data");
    let e = refused(&missing, &["bans", "list"], "no data directory at");
    assert!(e.contains(missing.to_str().unwrap()) && e.contains("pbxguard run") && e.contains("--data DIR"), "{e}");
    assert!(!missing.exists() && !d.0.join("typo").exists());
    // Without --data, in a directory with no data: nothing is created either.
    let o = Command::new(BIN).args(["ext", "list"]).current_dir(&d.0).env_remove("PBXGUARD_DATA").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(!d.0.join("pbxguard-data").exists());
    // --data at a file.
    let file = d.0.join("notes.txt");
    std::fs::write(&file, "root password: hunter2\n").unwrap();
    let e = refused(&file, &["ext", "list"], "is not a directory");
    assert!(!e.contains("hunter2"), "{e}");
    // A file in place of the database that is not one: said plainly, content never echoed.
    let dir = d.0.join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("pbxguard.db"), "root password: hunter2\n").unwrap();
    let e = refused(&dir, &["ext", "list"], "is not a pbxguard database");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn one_daemon_per_data_directory_and_per_udp_address() {
    let d = TempDir::new("twice");
    let first = Daemon::start(&d.0);
    let listen = std::fs::read_to_string(d.0.join("listen.json")).unwrap();
    let o = Command::new(BIN)
        .arg("--data")
        .arg(&d.0)
        .args(["run", "--sip-udp", "127.0.0.1:0", "--sip-tcp", "off", "--sip-tls", "off", "--gui", "off"])
        .env_remove("PBXGUARD_DATA")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let e = stderr(&o);
    assert!(e.contains("already running") && e.contains(&format!("PID {}", first.pid())), "{e}");
    assert_eq!(
        std::fs::read_to_string(d.0.join("listen.json")).unwrap(),
        listen,
        "the first one's listen.json is kept"
    );
    // Another data directory, the same UDP address: refused, SO_REUSEPORT notwithstanding.
    let other = TempDir::new("twice-other");
    let o = Command::new(BIN)
        .arg("--data")
        .arg(&other.0)
        .args(["run", "--sip-udp", &first.udp.to_string(), "--sip-tcp", "off", "--sip-tls", "off", "--gui", "off"])
        .env_remove("PBXGUARD_DATA")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains(&format!("binding SIP UDP {}", first.udp)), "{}", stderr(&o));
    assert!(answered("127.0.0.1", first.udp), "the first daemon still serves its address");
}

/// A self-signed certificate and key for localhost with a chosen serial (hex), written by openssl.
fn openssl_cert(dir: &std::path::Path, serial: &str) {
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", "/CN=localhost", "-days", "2", "-set_serial", &format!("0x{serial}")])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl req: {o:?}");
}

/// The serial of the certificate a new TLS connection to `to` is shown (openssl s_client, a real peer).
fn served_serial(to: std::net::SocketAddr) -> Option<String> {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "timeout 5 openssl s_client -connect {to} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial"
        ))
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    out.trim().strip_prefix("serial=").map(|s| s.trim_start_matches('0').to_ascii_uppercase())
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

#[test]
fn sighup_reloads_the_certificate_keeps_registrations_and_survives_bad_files() {
    require("openssl");
    let d = TempDir::new("hup");
    let certs = TempDir::new("hup-certs");
    openssl_cert(&certs.0, "1111AAAA");
    let cfg = d.0.with_extension("toml");
    let config =
        format!("[tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n[log]\nlevel = \"info\"\n", certs.0.display());
    std::fs::write(&cfg, &config).unwrap();
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Hup-Reload!2026", "--algorithms", "MD5"]);
    let daemon = Daemon::start_with(&d.0, &["--config", cfg.to_str().unwrap()]);
    let realm = cli_ok(&d.0, &["settings", "get", "sip.realm"]).trim().to_owned();
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    phone.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(digest_register(&phone, daemon.udp, &realm, "1001", "Hup-Reload!2026"), 200);
    assert_eq!(served_serial(daemon.tls).as_deref(), Some("1111AAAA"));
    let listed = || registrations(&d.0).iter().any(|r| r["extension"] == "1001").then_some(());
    assert!(wait_for(Duration::from_secs(5), listed).is_some(), "the registration is stored");

    openssl_cert(&certs.0, "2222BBBB");
    signal(daemon.pid(), "-HUP");
    let seen = wait_for(Duration::from_secs(10), || served_serial(daemon.tls).filter(|s| s == "2222BBBB"));
    assert!(seen.is_some(), "a new TLS connection sees the new certificate: {}", daemon.log());
    assert!(listed().is_some(), "the registration made before is kept");
    assert!(answered("127.0.0.1", daemon.udp), "still serving after SIGHUP");

    // A broken certificate: logged, the one in force stays.
    std::fs::write(certs.0.join("cert.pem"), "not a certificate\n").unwrap();
    signal(daemon.pid(), "-HUP");
    let logged =
        wait_for(Duration::from_secs(10), || daemon.log().contains("TLS certificate not reloaded").then_some(()));
    assert!(logged.is_some(), "{}", daemon.log());
    assert_eq!(served_serial(daemon.tls).as_deref(), Some("2222BBBB"));
    // A broken configuration file: logged, the configuration in force stays.
    std::fs::write(&cfg, "[tls\n").unwrap();
    signal(daemon.pid(), "-HUP");
    let logged = wait_for(Duration::from_secs(10), || daemon.log().contains("reload refused").then_some(()));
    assert!(logged.is_some(), "{}", daemon.log());
    assert_eq!(served_serial(daemon.tls).as_deref(), Some("2222BBBB"));
    assert!(digest_register(&phone, daemon.udp, &realm, "1001", "Hup-Reload!2026") == 200, "registrations still work");
    let _ = std::fs::remove_file(cfg);
}

/// Kills the child on drop (a failed assertion must not leave a daemon behind).
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn systemd_notify_ready_watchdog_reload_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let d = TempDir::new("notify");
    let sock_path = d.0.with_extension("sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let log = d.0.with_extension("notify.log");
    let child = Command::new(BIN)
        .arg("--data")
        .arg(&d.0)
        .args(["run", "--sip-udp", "127.0.0.1:0", "--sip-tcp", "off", "--sip-tls", "off", "--gui", "off"])
        .env_remove("PBXGUARD_DATA")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let pid = child.0.id();
    // Waits (bounded by the socket's timeout) for a message starting with `what`.
    let expect = |what: &str| loop {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap_or_else(|e| {
            panic!("no {what} from the daemon: {e}; log: {}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        if buf[..n].starts_with(what.as_bytes()) {
            break;
        }
    };
    expect("READY=1");
    assert!(std::fs::read_to_string(d.0.join("listen.json")).unwrap().contains(&pid.to_string()));
    expect("WATCHDOG=1");
    expect("WATCHDOG=1");
    signal(pid, "-HUP");
    expect("RELOADING=1");
    expect("READY=1");
    signal(pid, "-TERM");
    expect("STOPPING=1");
    let status = wait_for(Duration::from_secs(10), || child.0.try_wait().unwrap()).expect("the daemon stops");
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("pbxguard configuration") && text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    let _ = std::fs::remove_file(log);
    let _ = std::fs::remove_file(sock_path);
}
