//! Signals and the service manager. SIGTERM and SIGINT stop the daemon gracefully; SIGHUP reloads
//! what can change without a restart: the TLS certificate and key (new handshakes present the new
//! pair; connections, calls and registrations already up are untouched) and the configuration file's
//! `log.level` and `tls.*`. A new file or certificate that does not load is logged and the old one
//! stays in use: a typo during a reload never takes the daemon down.
//!
//! systemd (`Type=notify`): READY=1 once every listener is bound, RELOADING=1/READY=1 around a reload,
//! STOPPING=1 on the way out, and WATCHDOG=1 while the core answers (sd_notify(3): a datagram to
//! `$NOTIFY_SOCKET`; without it, as when run by hand, nothing is sent).

use super::state::State;
use super::tls::ServerCert;
use crate::config::Config;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Changes the log filter of the running subscriber.
pub(crate) type LogLevel = reload::Handle<EnvFilter, Registry>;

/// What a SIGHUP reloads, and what it was loaded from.
pub(crate) struct Reloader {
    pub(crate) config_path: Option<PathBuf>,
    pub(crate) data: PathBuf,
    /// The configuration in force (the file as last loaded successfully).
    pub(crate) config: Config,
    /// `None` when no TLS listener runs.
    pub(crate) cert: Option<Arc<ServerCert>>,
    pub(crate) log: LogLevel,
}

impl Reloader {
    /// Loads everything first and applies only what loaded: a bad file changes nothing, a bad
    /// certificate keeps the old one.
    fn reload(&mut self) {
        tracing::info!("SIGHUP: reloading the configuration and the TLS certificate");
        let new = match &self.config_path {
            Some(p) => match Config::load(p) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "reload refused; the configuration in force is kept");
                    return;
                }
            },
            None => self.config.clone(),
        };
        let mut restart = Vec::new();
        if new.data_dir != self.config.data_dir {
            restart.push("data_dir");
        }
        if new.sip != self.config.sip {
            restart.push("sip.*");
        }
        if new.log.format != self.config.log.format {
            restart.push("log.format");
        }
        if !restart.is_empty() {
            tracing::warn!(keys = restart.join(", "), "changed in the configuration file; applied at the next restart");
        }
        if new.log.level != self.config.log.level {
            self.set_level(&new.log.level);
        }
        if let Some(cert) = &self.cert {
            match cert.reload(&self.data, &new.tls) {
                Ok(()) => tracing::info!("TLS certificate reloaded; new connections use it"),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "TLS certificate not reloaded; the one in force is kept")
                }
            }
        }
        // What did not apply above is kept as it was, so the next reload compares against what runs.
        let restart_only = (self.config.data_dir.clone(), self.config.sip.clone(), self.config.log.format.clone());
        self.config = new;
        (self.config.data_dir, self.config.sip, self.config.log.format) = restart_only;
    }

    fn set_level(&mut self, level: &str) {
        if std::env::var_os("RUST_LOG").is_some() {
            tracing::info!("log.level changed, but RUST_LOG is set and wins");
            return;
        }
        match filter(level) {
            Ok(f) => match self.log.reload(f) {
                Ok(()) => tracing::info!(level, "log level changed"),
                Err(e) => tracing::error!(error = %e, "log level not changed"),
            },
            Err(e) => tracing::error!(level, error = %e, "log.level is not a valid filter; the level in force is kept"),
        }
    }
}

/// The log filter for `log.level`. rustls warns once per handshake about what a client sent (an IP
/// address as SNI, as curl and wrk do): anyone connecting could fill the log, so its warnings are
/// left out unless the level names rustls itself.
pub(crate) fn filter(level: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    let f = EnvFilter::try_new(level)?;
    if level.contains("rustls") { Ok(f) } else { Ok(f.add_directive("rustls=error".parse()?)) }
}

/// The signals the daemon handles, caught from the moment this is built (SIGHUP's default action
/// would end the process): built before the daemon says it is ready, so a reload sent at once is
/// never fatal.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn catch(rt: &tokio::runtime::Runtime) -> Result<Self> {
        let _in_runtime = rt.enter();
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Tells the service manager the daemon is ready, then runs until SIGTERM or SIGINT, reloading on
/// every SIGHUP.
pub(crate) async fn run_until_stopped(signals: Signals, mut reloader: Reloader) -> Result<()> {
    let Signals { mut term, mut int, mut hup } = signals;
    notify("READY=1");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                notify("RELOADING=1");
                reloader.reload();
                notify("READY=1");
            }
        }
    }
    notify("STOPPING=1");
    Ok(())
}

/// Sends one sd_notify(3) message; a no-op when not started by systemd. Errors are logged, never
/// fatal: the daemon works the same without a service manager listening.
pub(crate) fn notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send(&path, msg) {
        tracing::warn!(error = %e, socket = ?path, "sd_notify failed");
    }
}

fn send(path: &std::ffi::OsStr, msg: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        // An abstract socket: systemd writes its leading NUL as '@'.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg.as_bytes(), &addr)?;
        }
        None => {
            sock.send_to(msg.as_bytes(), path)?;
        }
    }
    Ok(())
}

/// With `WatchdogSec=` set, pings at half the interval for as long as the gate and the SIP service
/// can be locked: a deadlocked or wedged core stops the pings and systemd restarts the daemon.
pub(crate) fn start_watchdog(state: Arc<State>) -> Result<()> {
    let Some(usec) = std::env::var("WATCHDOG_USEC").ok().and_then(|v| v.parse::<u64>().ok()).filter(|&u| u > 0) else {
        return Ok(());
    };
    // The variable may have been inherited from a parent that systemd watches; it names its target.
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse() != Ok(std::process::id())
    {
        return Ok(());
    }
    let every = Duration::from_micros(usec / 2);
    std::thread::Builder::new().name("pbxguard-watchdog".into()).spawn(move || {
        loop {
            drop(state.sip());
            state.with_gate(|_| ());
            notify("WATCHDOG=1");
            std::thread::sleep(every);
        }
    })?;
    Ok(())
}
