//! `pbxguard audit`: gathers what only the host can tell (root's password, sshd, the firewall, the
//! listeners, the certificate), hands it to `pbxguard_app::audit` and prints the report.

use super::out::print_json;
use crate::cli::AuditArgs;
use crate::outln;
use anyhow::{Result, bail};
use pbxguard_app::audit::{self, FirewallFacts, Host, Report};
use pbxguard_store::Store;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

pub(super) fn audit(store: &mut Store, data: &Path, args: AuditArgs) -> Result<()> {
    let host = gather(data, &args.shadow);
    let report = audit::run(store, data, &host)?;
    if args.json {
        print_json(&report)?;
    } else {
        print(&report)?;
    }
    if args.fix {
        let fixes: Vec<_> = report.findings.iter().filter(|f| f.auto_fix).collect();
        if fixes.is_empty() {
            outln!("\nNothing audit --fix can change by itself; the commands above fix the rest.");
        } else {
            if !args.yes && !confirm(fixes.len())? {
                outln!("Nothing changed.");
                return verdict(&report);
            }
            for line in audit::fix(store, &report)? {
                outln!("fixed: {line}");
            }
            let after = audit::run(store, data, &host)?;
            outln!("score now {}/100", after.score);
            return verdict(&after);
        }
    }
    verdict(&report)
}

fn verdict(report: &Report) -> Result<()> {
    let critical = report.findings.iter().filter(|f| f.severity == audit::Severity::Critical).count();
    if critical > 0 {
        bail!("{critical} critical finding(s): fix them first (see above)");
    }
    Ok(())
}

fn confirm(n: usize) -> Result<bool> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("audit --fix would change {n} thing(s); run it on a terminal to confirm, or add --yes");
    }
    print!("\nApply the {n} safe fix(es) marked [auto]? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn print(r: &Report) -> Result<()> {
    outln!("pbxguard audit: score {}/100", r.score);
    for f in &r.findings {
        outln!(
            "\n[{}] {}{}\n    {}\n    fix: {}",
            f.severity.as_str().to_uppercase(),
            f.title,
            if f.auto_fix { "  [auto]" } else { "" },
            f.evidence,
            f.fix
        );
    }
    if !r.passed.is_empty() {
        outln!("\npassed: {}", r.passed.join(", "));
    }
    for s in &r.skipped {
        outln!("not checked: {} ({})", s.check, s.why);
    }
    Ok(())
}

fn gather(data: &Path, shadow: &Path) -> Host {
    Host {
        root_default: root_default(shadow),
        firewall: firewall_facts(),
        sip_listening: listening(data),
        certificate: {
            let path = data.join("tls/cert.pem");
            std::fs::read(&path).ok().map(|pem| audit::certificate_facts(&path, &pem))
        },
        now_secs: pbxguard_app::clock::now_secs(),
    }
}

fn root_default(shadow: &Path) -> std::result::Result<Option<String>, String> {
    let text = std::fs::read_to_string(shadow).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!("cannot read {} (run audit as root)", shadow.display()),
        _ => format!("cannot read {}: {e}", shadow.display()),
    })?;
    audit::root_default_password(&text, &mut system_crypt)
}

/// Checks `password` against a crypt(3) `hash` with the system's own crypt (libxcrypt: yescrypt, SHA-512,
/// bcrypt...), through perl, which every Debian system has. Both go over stdin, never the command line.
fn system_crypt(password: &str, hash: &str) -> std::result::Result<bool, String> {
    let mut child = Command::new("perl")
        .args(["-e", "my $p = <STDIN>; my $h = <STDIN>; chomp($p, $h); my $c = crypt($p, $h); print defined($c) && $c eq $h ? 1 : 0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run perl for the system's crypt: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}\n{hash}").map_err(|e| format!("perl: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("perl: {e}"))?;
    Ok(out.stdout == b"1")
}

fn firewall_facts() -> std::result::Result<FirewallFacts, String> {
    let out = Command::new("nft")
        .args(["-t", "list", "table", "inet", pbxguard_firewall::TABLE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|_| "nft is not installed (Debian: apt-get install nftables)".to_string())?;
    Ok(FirewallFacts { active: out.success() })
}

/// What the running daemon listens on (listen.json), else what `run` would listen on by default.
fn listening(data: &Path) -> Vec<SocketAddr> {
    let from_file = std::fs::read_to_string(data.join("listen.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|v| {
            ["udp", "tcp", "tls"]
                .iter()
                .flat_map(|k| v[k].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().and_then(|s| s.parse().ok()))
                .collect::<Vec<SocketAddr>>()
        });
    from_file.unwrap_or_else(|| ["0.0.0.0:5060", "0.0.0.0:5061"].iter().filter_map(|a| a.parse().ok()).collect())
}
