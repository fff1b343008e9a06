//! pbxguard: a security-first SIP PBX edge. `main` only parses arguments and hands over; the daemon and
//! the operator commands live in their own modules.

mod blacklist;
mod cli;
#[macro_use]
mod commands;
mod config;
mod daemon;
mod secret;
mod security_cmd;
mod settings;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pbxguard: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
