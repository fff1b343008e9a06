//! `pbxguard audit`: what only the host can tell (root's password, the firewall, the listeners, the
//! certificate: `crate::host`, shared with the GUI's audit page) handed to `pbxguard_app::audit`, and
//! the report printed.

use super::out::print_json;
use crate::cli::AuditArgs;
use crate::outln;
use anyhow::{Result, bail};
use pbxguard_app::audit::{self, Report};
use pbxguard_store::Store;
use std::io::Write;
use std::path::Path;

pub(super) fn audit(store: &mut Store, data: &Path, args: AuditArgs) -> Result<()> {
    let host = crate::host::audit_facts(data, &args.shadow);
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
