//! Operator commands: each parses its arguments, calls the application layer (`pbxguard_app`) and
//! prints what comes back. No rule lives here: the GUI and API reach the same operations. Each command
//! opens the same database as the daemon; a running daemon notices the commit and applies it within a
//! second.

mod accounts;
mod audit;
mod backup;
mod calls;
mod certs;
mod ext;
mod firewall;
mod import;
mod out;
mod security;
mod ssh;
mod tokens;

use crate::cli::{Command, ExportCommand, ImportCommand, RegCommand, SettingsCommand};
use anyhow::Result;
use out::print_json;
use pbxguard_app::{configure, open_existing};
use pbxguard_store::Store;
use std::path::Path;

/// Prints a line to stdout; a closed pipe (`pbxguard reg list | head`) ends the command quietly instead
/// of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    }};
}

/// Runs every command but `run` (the daemon), against the database in `data`.
pub(crate) fn run(data: &Path, command: Command) -> Result<()> {
    let store = || open_existing(data);
    match command {
        Command::Run(_) => unreachable!("main starts the daemon itself"),
        Command::Ext(c) => ext::ext(&store()?, c),
        Command::Reg(RegCommand::List { json }) => ext::reg_list(&store()?, json),
        Command::Settings(c) => settings(&mut store()?, c),
        Command::Bans(c) => security::bans(&store()?, c),
        Command::Trust(c) => security::trust(&store()?, c),
        Command::Acl(c) => security::acl(&store()?, c),
        Command::Blacklist(c) => security::blacklist(&mut store()?, c),
        Command::Import(ImportCommand::Asterisk { dir, dry_run }) => {
            import::print(pbxguard_app::import::asterisk(&mut store()?, &dir, dry_run)?)
        }
        Command::Import(ImportCommand::Csv { file, dry_run }) => {
            import::print(pbxguard_app::import::csv(&mut store()?, &file, dry_run)?)
        }
        Command::Export(ExportCommand::Csv) => ext::export_csv(&store()?),
        Command::Vm(c) => accounts::vm(&store()?, c),
        Command::Admin(c) => accounts::admin(&mut store()?, c),
        Command::Token(c) => tokens::token(&store()?, c),
        Command::Trunk(c) => calls::trunk(&store()?, c),
        Command::Route(c) => calls::route(&store()?, c),
        Command::Cos(c) => calls::cos(&store()?, c),
        Command::Did(c) => calls::did(&store()?, c),
        Command::Calls(c) => calls::calls(&store()?, c),
        Command::Events { follow, json, last } => security::events(&store()?, follow, json, last),
        Command::Audit(a) => audit::audit(&mut store()?, data, a),
        Command::Firewall(c) => firewall::firewall(&mut store()?, data, c),
        Command::Ssh(c) => ssh::ssh(&store()?, c),
        Command::Cert(c) => certs::cert(data, c),
        Command::Backup { file } => backup::backup(data, &file),
        Command::Restore { file, force } => backup::restore(data, &file, force),
        Command::Completions { shell } => backup::completions(shell),
        Command::Man { dir } => backup::man(dir.as_deref()),
    }
}

fn settings(store: &mut Store, cmd: SettingsCommand) -> Result<()> {
    match cmd {
        SettingsCommand::List { json } => {
            let rows = configure::list(store)?;
            if json {
                return print_json(&rows);
            }
            for s in rows {
                outln!("{} = {}    (default {})\n    {}", s.key, s.value, s.default, s.doc);
            }
        }
        SettingsCommand::Get { key } => outln!("{}", pbxguard_app::settings::get(store, &key)?),
        SettingsCommand::Reset { key } => {
            let (value, changed) = configure::reset(store, &key)?;
            outln!("{key} = {value} (default)");
            print_review(changed, false)?;
        }
        SettingsCommand::Set { key, value, csv } => {
            let changed = configure::set(store, &key, &value)?;
            if csv {
                // stdout is the CSV file for provisioning; the confirmation goes to stderr.
                eprintln!("{key} = {value}");
            } else {
                outln!("{key} = {value}");
            }
            print_review(changed, csv)?;
        }
    }
    Ok(())
}

/// What changing a password_policy setting did to the extensions' secrets (new ones shown once).
fn print_review(changed: configure::Changed, csv: bool) -> Result<()> {
    let Some(review) = changed.review else { return Ok(()) };
    let rows = review.extensions;
    if csv {
        outln!("extension,secret");
        for r in &rows {
            outln!("{},{}", r.extension, r.new_secret.as_deref().unwrap_or(""));
        }
    } else if rows.is_empty() {
        outln!("every extension's secret meets the password policy");
    } else if review.fixed {
        outln!("{} non-compliant secret(s) replaced; the new secrets are shown once:", rows.len());
        outln!("{:<12} {:<22} WAS", "EXTENSION", "NEW SECRET");
        for r in &rows {
            outln!("{:<12} {:<22} {}", r.extension, r.new_secret.as_deref().unwrap_or(""), r.violations);
        }
    } else {
        outln!(
            "{} extension(s) have a secret that breaks the policy (fix with `ext passwd NUMBER --generate`, or turn on password_policy.autofix):",
            rows.len()
        );
        for r in &rows {
            outln!("{:<12} {}", r.extension, r.violations);
        }
    }
    Ok(())
}
