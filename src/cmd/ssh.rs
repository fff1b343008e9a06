//! `pbxguard ssh`: sshd's state, and changes through pbxguard's drop-in. Running sshd (`sshd -t`, the
//! reload) and probing a port happen here, for `pbxguard_app::ssh`, which decides everything else.

use super::out::print_json;
use crate::cli::SshCommand;
use crate::outln;
use anyhow::Result;
use pbxguard_app::ssh::{self, Change, SshFacts, SshPaths, Sshd};
use pbxguard_store::Store;
use serde_json::json;
use std::process::Command;

pub(super) fn ssh(store: &Store, cmd: SshCommand) -> Result<()> {
    let paths = pbxguard_app::settings::ssh_paths(store)?;
    match cmd {
        SshCommand::Status { json } => status(store, &paths, json),
        SshCommand::Set { port, allow, root_login, password_auth } => {
            let change = Change { port, allow, root_login, password_auth };
            let a = ssh::set(&paths, &change, admin_source(), &System)?;
            outln!("{} written, checked by sshd and sshd reloaded", a.dropin.display());
            print_facts(&a.after)?;
            if let Some(old) = a.after.pending_old_port {
                outln!(
                    "port {old} stays open too: log in on port {} and run `pbxguard ssh confirm` to close it",
                    a.after.ports.first().copied().unwrap_or(22)
                );
            }
            Ok(())
        }
        SshCommand::Confirm => {
            let a = ssh::confirm(&paths, &System)?;
            outln!("port change confirmed; sshd reloaded");
            print_facts(&a.after)
        }
    }
}

fn status(store: &Store, paths: &SshPaths, json: bool) -> Result<()> {
    let facts = ssh::effective(paths)?;
    let guard = pbxguard_app::settings::ssh_guard(store)?;
    let logs: Vec<String> = match &guard.logs {
        None => vec!["auto".into()],
        Some(l) => l.iter().map(ToString::to_string).collect(),
    };
    if json {
        return print_json(&json!({
            "ports": facts.ports,
            "pending_old_port": facts.pending_old_port,
            "root_login": facts.root_login,
            "password_auth": facts.password_auth,
            "allowed": facts.allowed.as_ref().map(|a| a.iter().map(ToString::to_string).collect::<Vec<_>>()),
            "unresolved_allow": facts.unresolved_allow,
            "ports_set_elsewhere": facts.ports_set_elsewhere,
            "config": paths.config,
            "dropin": paths.dropin,
            "guard": { "enabled": guard.enabled, "logs": logs },
        }));
    }
    print_facts(&facts)?;
    outln!("guard:          {} (logs: {})", if guard.enabled { "on" } else { "off" }, logs.join(", "));
    Ok(())
}

fn print_facts(f: &SshFacts) -> Result<()> {
    let ports: Vec<String> = f.ports.iter().map(ToString::to_string).collect();
    let pending = f.pending_old_port.map_or(String::new(), |p| format!(" (port {p} kept until `ssh confirm`)"));
    outln!("ports:          {}{pending}", ports.join(", "));
    outln!("root login:     {}", f.root_login);
    outln!("password auth:  {}", if f.password_auth { "yes" } else { "no" });
    let allowed = match &f.allowed {
        None => "everyone".to_owned(),
        Some(a) => a.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    };
    outln!("allowed from:   {allowed}");
    Ok(())
}

/// The address this command's operator is logged in from over SSH, if any (sshd sets SSH_CONNECTION).
fn admin_source() -> Option<std::net::IpAddr> {
    std::env::var("SSH_CONNECTION").ok()?.split_whitespace().next()?.parse().ok()
}

struct System;

impl Sshd for System {
    fn test(&self, paths: &SshPaths) -> std::result::Result<(), String> {
        let o = Command::new(&paths.sshd)
            .arg("-t")
            .arg("-f")
            .arg(&paths.config)
            .output()
            .map_err(|e| format!("cannot run {}: {e} (set ssh.sshd to sshd's path)", paths.sshd.display()))?;
        if o.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&o.stderr).into_owned()) }
    }

    fn reload(&self, paths: &SshPaths) -> std::result::Result<(), String> {
        // sshd re-executes itself on SIGHUP and reads its configuration again; connections stay up.
        if let Some(pid) = std::fs::read_to_string(&paths.pid_file).ok().and_then(|t| t.trim().parse::<u32>().ok())
            && std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let ok = Command::new("kill").args(["-HUP", &pid.to_string()]).status().is_ok_and(|s| s.success());
            return if ok { Ok(()) } else { Err(format!("kill -HUP {pid} failed")) };
        }
        let ok = Command::new("systemctl").args(["reload", "ssh"]).status().is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err(format!(
                "no sshd process in {} and `systemctl reload ssh` failed; is sshd running? (set ssh.pid_file)",
                paths.pid_file.display()
            ))
        }
    }

    fn port_in_use(&self, port: u16) -> bool {
        let busy = |addr: &str| matches!(std::net::TcpListener::bind((addr, port)), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse);
        busy("0.0.0.0") || busy("::")
    }
}
