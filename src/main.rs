//! pbxguard: a security-first SIP PBX edge. `main` only parses arguments and hands over: to the daemon
//! (`run`) or to the operator commands, which share the application layer (`pbxguard_app`) and never
//! import each other.

mod acme;
mod cli;
mod cmd;
mod config;
mod daemon;
mod download;
mod host;
mod nftcmd;
mod resolve;

use clap::Parser;

/// glibc's allocator spent a quarter of the daemon's CPU under load (perf, 10,000 registrations/s);
/// mimalloc's thread-local free lists cut that to a few percent.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(a) => daemon::run(
            cli.data,
            daemon::Options {
                config: a.config,
                sip_udp: a.sip_udp,
                sip_tcp: a.sip_tcp,
                sip_tls: a.sip_tls,
                gui: a.gui,
            },
        ),
        command => {
            let data = cli.data.unwrap_or_else(|| pbxguard_app::DEFAULT_DATA.into());
            cmd::run(&data, command)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pbxguard: {e:#}");
            std::process::ExitCode::from(exit_code(&e))
        }
    }
}

/// Exit codes (README, "Exit codes"): 0 done; 1 refused or failed (every `pbxguard_app::Error` kind,
/// a daemon that cannot start); 2 a usage error, which clap reports and exits with before we get here.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<pbxguard_app::Error>() {
        Some(
            pbxguard_app::Error::Invalid(_)
            | pbxguard_app::Error::NotFound(_)
            | pbxguard_app::Error::Conflict(_)
            | pbxguard_app::Error::Io(_)
            | pbxguard_app::Error::Store(_),
        )
        | None => 1,
    }
}
