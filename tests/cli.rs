//! Operator commands against a real database: extensions, settings, config errors, secrets at rest.

mod common;
use common::*;

#[test]
fn extensions_lifecycle_and_no_clear_secret_on_disk() {
    let d = TempDir::new("cli");
    let secret = "Cl3ar-Text!Secret";
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", secret]);
    let shown = cli_ok(&d.0, &["ext", "add", "1002", "--generate"]);
    let generated = shown.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(generated.len(), 20, "{shown}");
    let dup = cli(&d.0, &["ext", "add", "1001", "--secret", "x"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("extension 1001 already exists"));
    let list: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["ext", "list", "--json"])).unwrap();
    assert_eq!(list.iter().map(|e| e["number"].as_str().unwrap()).collect::<Vec<_>>(), ["1001", "1002"]);
    let one: serde_json::Value = serde_json::from_str(&cli_ok(&d.0, &["ext", "show", "1002", "--json"])).unwrap();
    assert_eq!((one["number"].as_str(), one["compliant"].as_bool()), (Some("1002"), Some(true)));
    let missing = cli(&d.0, &["ext", "show", "1009"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("extension 1009 does not exist"), "{missing:?}");
    cli_ok(&d.0, &["ext", "passwd", "1001", "--secret", "An0ther!Secret"]);
    // Neither the database nor its WAL holds a secret in clear.
    let mut disk = Vec::new();
    for f in std::fs::read_dir(&d.0).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            disk.extend(std::fs::read(&p).unwrap());
        }
    }
    for s in [secret, "An0ther!Secret", generated.as_str()] {
        assert!(!disk.windows(s.len()).any(|w| w == s.as_bytes()), "{s} found on disk");
    }
    cli_ok(&d.0, &["ext", "del", "1002"]);
    let bad = cli(&d.0, &["ext", "del", "1002"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("extension 1002 does not exist"));
    let bad = cli(&d.0, &["ext", "add", "10 01", "--secret", "x"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid extension number"));
}

#[test]
fn settings_are_validated_and_realm_is_locked_by_extensions() {
    let d = TempDir::new("settings");
    cli_ok(&d.0, &["settings", "set", "sip.realm", "pbx.example.com"]);
    assert_eq!(cli_ok(&d.0, &["settings", "get", "sip.realm"]).trim(), "pbx.example.com");
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "S3cret!pw"]);
    let o = cli(&d.0, &["settings", "set", "sip.realm", "other.example.com"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("cannot change sip.realm while 1 extension(s) exist"), "{err}");
    assert_eq!(cli_ok(&d.0, &["settings", "get", "sip.realm"]).trim(), "pbx.example.com");
    for (k, v, msg) in [
        ("auth.algorithms", "MD5,SHA1", "unknown digest algorithm \"SHA1\""),
        ("registrar.min_expires", "0", "expected a whole number of seconds"),
        ("registrar.min_expires", "7200", "must hold"),
        ("no.such", "1", "unknown setting \"no.such\""),
    ] {
        let o = cli(&d.0, &["settings", "set", k, v]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(msg), "{k}={v}: {err}");
    }
    cli_ok(&d.0, &["settings", "set", "auth.algorithms", "SHA-256,MD5"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["settings", "list", "--json"])).unwrap();
    let algs = list.iter().find(|s| s["key"] == "auth.algorithms").unwrap();
    assert_eq!((algs["value"].as_str(), algs["default"].as_str()), (Some("SHA-256,MD5"), Some("MD5,SHA-256")));
}

#[test]
fn config_errors_are_clear() {
    let d = TempDir::new("config");
    let cfg = d.0.join("bad.toml");
    std::fs::write(&cfg, "[sip]\nudp_port = 5060\n").unwrap();
    let o = cli(&d.0, &["run", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("unknown field `udp_port`") && err.contains("bad.toml"), "{err}");
    let o = cli(&d.0, &["run", "--sip-udp", "localhost:5060"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected IP:PORT"));
}
