//! `backup`, `restore`, and the documents generated from the CLI definition (shell completions, man
//! pages), which need no data directory.

use crate::outln;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

pub(super) fn backup(data: &Path, file: &Path) -> Result<()> {
    let s = pbxguard_app::backup::backup(data, file)?;
    outln!(
        "backed up {} extension(s), {} registration(s) (database schema {}, {}) to {}",
        s.extensions,
        s.registrations,
        s.schema,
        human_bytes(s.bytes),
        s.path.display()
    );
    Ok(())
}

pub(super) fn restore(data: &Path, file: &Path, force: bool) -> Result<()> {
    let s = pbxguard_app::backup::restore(data, file, force)?;
    if let Some(old) = &s.replaced {
        outln!("the previous database is kept as {}", old.display());
    }
    outln!(
        "restored {} extension(s), {} registration(s) (database schema {}) into {}; start the daemon with `pbxguard run`",
        s.extensions,
        s.registrations,
        s.schema,
        s.path.display()
    );
    Ok(())
}

pub(super) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(shell, &mut cmd, "pbxguard", &mut std::io::stdout());
    Ok(())
}

pub(super) fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = crate::cli::Cli::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir).with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(())
}

fn human_bytes(n: u64) -> String {
    match n {
        0..1_024 => format!("{n} B"),
        1_024..1_048_576 => format!("{:.1} KiB", n as f64 / 1_024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The man page and `--help` are generated from these texts: a subcommand or argument without one
    /// is an undocumented corner of the CLI.
    #[test]
    fn every_subcommand_and_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} <{}>", a.get_id()));
                }
            }
            for sc in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let p = format!("{path} {}", sc.get_name());
                if sc.get_about().is_none() && sc.get_long_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sc, &p, missing);
            }
        }
        let mut cmd = crate::cli::Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "pbxguard", &mut missing);
        assert!(missing.is_empty(), "without help text (add a /// doc comment):\n{}", missing.join("\n"));
    }

    #[test]
    fn man_page_and_completions_are_generated_from_the_cli() {
        let mut man = Vec::new();
        clap_mangen::Man::new(crate::cli::Cli::command()).render(&mut man).unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.contains(".TH pbxguard 1") && man.contains("backup"), "{man}");
        let mut bash = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut crate::cli::Cli::command(), "pbxguard", &mut bash);
        assert!(String::from_utf8(bash).unwrap().contains("restore"));
    }
}
