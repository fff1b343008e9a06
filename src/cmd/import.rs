//! `pbxguard import`: prints the application layer's import report.

use crate::outln;
use anyhow::Result;
use pbxguard_app::import::Report;

pub(super) fn print(r: Report) -> Result<()> {
    outln!("{:<12} {:<8} DETAILS", "EXTENSION", if r.dry_run { "WOULD" } else { "ACTION" });
    for l in &r.lines {
        outln!("{:<12} {:<8} {}", l.number, l.action, l.detail);
    }
    let shown: Vec<_> = r.lines.iter().filter(|l| l.new_secret.is_some()).collect();
    if !r.dry_run && !shown.is_empty() {
        outln!("\nnew secrets (shown once):");
        for l in shown {
            outln!("{:<12} {}", l.number, l.new_secret.as_deref().unwrap_or(""));
        }
    }
    outln!(
        "\n{} extension(s) and {} mailbox(es) {}",
        r.extensions,
        r.mailboxes,
        if r.dry_run { "would be imported (dry run: nothing changed)" } else { "imported" }
    );
    Ok(())
}
