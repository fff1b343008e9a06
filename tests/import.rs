//! Importing from Asterisk configs (includes, templates, weak and strong secrets) and CSV.

mod common;
use common::*;

const GOOD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/asterisk/good");
const BROKEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/asterisk/broken");
const SECRETS: [&str; 7] = ["Ql7#vRt!9zWm", "pass2002", "letmein", "Gr8!Ph0ne#Sec", "1234", "Iax!Tr0nk#77xq", "583920"];

fn row<'a>(out: &'a str, ext: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(&format!("{ext} "))).collect()
}

fn extensions(data: &std::path::Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&cli_ok(data, &["ext", "list", "--json"])).unwrap()
}

#[test]
fn asterisk_dry_run_reports_and_changes_nothing() {
    let d = TempDir::new("import-dry");
    let out = cli_ok(&d.0, &["import", "asterisk", GOOD, "--dry-run"]);
    assert!(
        row(&out, "2001")[0].contains("secret meets the policy") && row(&out, "2001")[0].contains("pjsip_users.conf"),
        "{out}"
    );
    assert!(
        row(&out, "2002")[0].contains("WEAK secret kept") && row(&out, "2002")[0].contains("contains-identity"),
        "{out}"
    );
    assert!(row(&out, "2003")[0].contains("common"), "{out}");
    assert!(row(&out, "3002")[0].contains("WEAK"), "{out}");
    assert!(
        row(&out, "3001")[0].contains("secret meets the policy") && row(&out, "4001")[0].contains("iax.conf"),
        "{out}"
    );
    assert!(
        row(&out, "2001")[1].contains("weak PIN") && row(&out, "2002")[1].contains("PIN meets the policy"),
        "{out}"
    );
    assert!(out.contains("6 extension(s) and 3 mailbox(es) would be imported (dry run: nothing changed)"), "{out}");
    assert!(extensions(&d.0).is_empty());
}

#[test]
fn asterisk_import_autofixes_weak_secrets_and_stores_none_in_clear() {
    let d = TempDir::new("import");
    cli_ok(&d.0, &["settings", "set", "password_policy.autofix", "true"]);
    let out = cli_ok(&d.0, &["import", "asterisk", GOOD]);
    assert!(out.contains("6 extension(s) and 3 mailbox(es) imported"), "{out}");
    for weak in ["2002", "2003", "3002"] {
        assert!(row(&out, weak)[0].contains("replaced by a generated one"), "{out}");
    }
    let exts = extensions(&d.0);
    assert_eq!(exts.len(), 6);
    assert!(exts.iter().all(|e| e["compliant"] == true), "{exts:?}");
    let boxes: Vec<serde_json::Value> = serde_json::from_str(&cli_ok(&d.0, &["vm", "list", "--json"])).unwrap();
    let must: Vec<bool> = boxes.iter().map(|b| b["must_initialise"].as_bool().unwrap()).collect();
    assert_eq!(must, [true, false, true], "2001 (PIN = extension) and 3001 (1234) must initialise");
    let mut disk = Vec::new();
    for f in std::fs::read_dir(&d.0).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            disk.extend(std::fs::read(p).unwrap());
        }
    }
    for s in SECRETS {
        assert!(!disk.windows(s.len()).any(|w| w == s.as_bytes()), "{s} stored in clear");
    }
    // A second import skips what exists.
    let again = cli_ok(&d.0, &["import", "asterisk", GOOD]);
    assert!(row(&again, "2001")[0].contains("already exists"), "{again}");
}

#[test]
fn a_broken_file_names_file_and_line_and_changes_nothing() {
    let d = TempDir::new("import-broken");
    let o = cli(&d.0, &["import", "asterisk", BROKEN]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("broken/pjsip.conf:4") && err.contains("expected `key = value`"),
        "{err}"
    );
    assert!(extensions(&d.0).is_empty(), "nothing from sip.conf either");
}

#[test]
fn csv_import_with_dry_run() {
    let d = TempDir::new("import-csv");
    let f = d.0.join("phones.csv");
    std::fs::write(&f, "number,secret,pin\n5001,Csv!Imp0rt#1,583920\n5002,,\nbad number,x,\n").unwrap();
    let out = cli_ok(&d.0, &["import", "csv", f.to_str().unwrap(), "--dry-run"]);
    assert!(out.contains("2 extension(s) and 1 mailbox(es) would be imported"), "{out}");
    let out = cli_ok(&d.0, &["import", "csv", f.to_str().unwrap()]);
    assert!(row(&out, "5002")[0].contains("generated one") && out.contains("new secrets (shown once)"), "{out}");
    assert_eq!(extensions(&d.0).len(), 2);
    let export = cli_ok(&d.0, &["export", "csv"]);
    assert_eq!(export.lines().next(), Some("number,acl,algorithms,compliant,mailbox,must_initialise"));
    assert!(export.contains("5001,,,true,true,false") && export.contains("5002,,,true,false,false"), "{export}");
    let bad = d.0.join("bad.csv");
    std::fs::write(&bad, "ext,secret\n1,2\n").unwrap();
    let o = cli(&d.0, &["import", "csv", bad.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.csv:1: the header must name a `number` column"));
}

/// svcrack with the weak secrets the configs held (and its typical defaults, -D): none of
/// them opens an extension imported with auto-fix on.
#[test]
fn svcrack_cracks_no_extension_imported_with_autofix() {
    require("svcrack");
    let d = TempDir::new("import-crack");
    cli_ok(&d.0, &["settings", "set", "password_policy.autofix", "true"]);
    cli_ok(&d.0, &["import", "asterisk", GOOD]);
    // Let every guess through to the password check: no fingerprint bans, no brute-force bans.
    cli_ok(&d.0, &["settings", "set", "shield.scanner_user_agents", ""]);
    cli_ok(&d.0, &["settings", "set", "shield.scanner_from", ""]);
    cli_ok(&d.0, &["settings", "set", "shield.brute_force", "100000/1m"]);
    let words = d.0.join("old-secrets.txt");
    // The weak secrets the configs held (the strong ones were kept, and are not in any attacker's list).
    std::fs::write(&words, ["pass2002", "letmein", "1234", "583920", "2001", "3001"].join("\n")).unwrap();
    let daemon = Daemon::start(&d.0);
    let home = d.0.join("svhome");
    std::fs::create_dir_all(&home).unwrap();
    let wrapper = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sv/bindwrap.py");
    let runs: Vec<_> = ["2001", "2002", "2003", "3001", "3002", "4001"]
        .iter()
        .enumerate()
        .map(|(i, ext)| {
            let mut cmd = std::process::Command::new("timeout");
            cmd.args([
                "90",
                "/usr/bin/python3",
                wrapper,
                &format!("127.0.0.{}", 101 + i),
                "svcrack",
                "-u",
                ext,
                "-D",
                "-r",
                "1-30",
            ])
            .args(["-d", words.to_str().unwrap(), &daemon.udp.ip().to_string(), "-p", &daemon.udp.port().to_string()])
            .env("HOME", &home);
            let ext = ext.to_string();
            std::thread::spawn(move || (ext, String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()))
        })
        .collect();
    for r in runs {
        let (ext, out) = r.join().unwrap();
        assert!(!out.contains(&format!("| {ext} ")), "svcrack cracked {ext}:\n{out}");
    }
    // Every guess was really checked: the old secrets and the defaults failed against each extension.
    let events = cli_ok(&d.0, &["events", "--json", "--last", "100000"]);
    for ext in ["2001", "2002", "2003", "3001", "3002", "4001"] {
        let tried =
            events.lines().filter(|l| l.contains("auth-failed") && l.contains(&format!("\"user\":\"{ext}\""))).count();
        assert!(tried >= 6, "{ext}: only {tried} guesses reached the password check");
    }
}
