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

/// What issue 14 found stale in the README stays fixed: the introduction's count matches its list, the
/// quick start puts the binary on the PATH before calling `pbxguard`, and every `pbxguard` command the
/// README shows exists.
#[test]
fn readme_counts_its_parts_and_every_command_it_shows_exists() {
    let readme = include_str!("../README.md");
    let intro = readme.split("This release has ").nth(1).expect("the introduction");
    let (word, list) = intro.split_once(" parts:").expect("\"This release has N parts:\"");
    let bullets =
        list.trim_start().lines().take_while(|l| !l.trim().is_empty()).filter(|l| l.starts_with("- ")).count();
    let words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
    assert_eq!(words.get(bullets), Some(&word), "\"{word} parts\" but {bullets} listed");
    assert!(!readme.contains("until the proxy lands"), "the registrar no longer answers INVITE with 405");

    let quick = readme.split("## Five-minute quick start").nth(1).unwrap();
    let first_call = quick.find("\npbxguard ").expect("the quick start calls pbxguard");
    assert!(quick[..first_call].contains("export PATH="), "the quick start calls pbxguard before it is on the PATH");

    let mut checked = std::collections::BTreeSet::new();
    for block in readme.split("```").skip(1).step_by(2) {
        for line in block.lines().filter(|l| l.starts_with("pbxguard ")) {
            let mut words = line.split_whitespace().skip(1).filter(|w| !w.starts_with('-') && !w.starts_with('/'));
            let Some(sub) = words.next() else { continue };
            let sub2 = words.next().filter(|w| w.chars().all(|c| c.is_ascii_lowercase()));
            if !checked.insert((sub.to_owned(), sub2.map(str::to_owned))) {
                continue;
            }
            let help = std::process::Command::new(BIN).args([sub, "--help"]).output().unwrap();
            assert!(help.status.success(), "README shows `{line}`, but `pbxguard {sub}` does not exist");
            let text = String::from_utf8_lossy(&help.stdout);
            if let (true, Some(sub2)) = (text.contains("Commands:"), sub2) {
                let o = std::process::Command::new(BIN).args([sub, sub2, "--help"]).output().unwrap();
                assert!(o.status.success(), "README shows `{line}`, but `pbxguard {sub} {sub2}` does not exist");
            }
        }
    }
    assert!(checked.len() > 20, "{checked:?}");
}
