//! Bootstrap configuration (TOML). Every key is optional; unknown keys are refused so a typo never
//! silently falls back to a default. Everything an operator changes at run time is a setting in the
//! database instead (see `settings.rs`).

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Data directory; the `--data` option and `PBXGUARD_DATA` take precedence when given.
    pub(crate) data_dir: Option<PathBuf>,
    #[serde(default)]
    pub(crate) sip: SipConfig,
    #[serde(default)]
    pub(crate) tls: TlsConfig,
    #[serde(default)]
    pub(crate) log: LogConfig,
    #[serde(default)]
    pub(crate) gui: GuiConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct GuiConfig {
    /// HTTPS listen address of the admin GUI and REST API, or `off`; `--gui` takes precedence.
    /// Default `0.0.0.0:5555`, the hardening guide's port.
    pub(crate) listen: String,
    /// Most simultaneous HTTPS connections; more wait in the kernel's backlog. Default 512.
    pub(crate) max_connections: usize,
}

/// The GUI's listen address from `--gui` or `gui.listen`: `None` when it is `off`.
pub(crate) fn gui_listen(text: &str, what: &str) -> Result<Option<SocketAddr>, String> {
    if text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{what} {text:?}: expected IP:PORT such as 0.0.0.0:5555 or [::]:5555, or \"off\""))
}

impl Default for GuiConfig {
    fn default() -> Self {
        Self { listen: "0.0.0.0:5555".into(), max_connections: 512 }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SipConfig {
    /// UDP listen addresses. Default `["0.0.0.0:5060"]`; `[]` disables UDP.
    pub(crate) udp: Vec<SocketAddr>,
    /// TCP listen addresses. Default `["0.0.0.0:5060"]`.
    pub(crate) tcp: Vec<SocketAddr>,
    /// TLS listen addresses. Default `["0.0.0.0:5061"]`.
    pub(crate) tls: Vec<SocketAddr>,
    /// Sockets (SO_REUSEPORT) and threads per UDP address. Default: 1 on a host with one or two CPUs,
    /// else 2 ([`default_udp_workers`]).
    pub(crate) udp_workers: usize,
    /// Most simultaneous TCP+TLS connections; more are refused. Default 10000.
    pub(crate) max_connections: usize,
    /// Seconds a TCP/TLS connection may stay silent before it is closed. Default 900.
    pub(crate) idle_timeout: u64,
    /// Address put in Via and Record-Route when proxying calls. Default: the listen address if it is
    /// specific, else the host's primary address.
    pub(crate) advertise: Option<std::net::IpAddr>,
}

/// The SIP service runs under one lock, so a second UDP worker adds only parallel system calls. On a
/// host with two CPUs it costs more than it gives: the two workers pass the service's state between their
/// caches and wake each other on the lock, while the kernel's network path needs the other CPU. With
/// one worker, 10,000 registrations/s cost 19-21 µs of user CPU each instead of 25-26
/// (`bench/threadcpu.sh`, docs/benchmarks.md, eleventh session).
pub(crate) fn default_udp_workers() -> usize {
    if std::thread::available_parallelism().map_or(1, usize::from) <= 2 { 1 } else { 2 }
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            udp: vec![SocketAddr::from(([0, 0, 0, 0], 5060))],
            tcp: vec![SocketAddr::from(([0, 0, 0, 0], 5060))],
            tls: vec![SocketAddr::from(([0, 0, 0, 0], 5061))],
            udp_workers: default_udp_workers(),
            max_connections: 10_000,
            idle_timeout: 900,
            advertise: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsConfig {
    /// PEM certificate chain. Without `cert` and `key`, a self-signed certificate is generated at first
    /// start into `<data>/tls/`.
    pub(crate) cert: Option<PathBuf>,
    /// PEM private key.
    pub(crate) key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    /// `text` or `json`. Default `text`.
    pub(crate) format: String,
    /// A tracing filter such as `info` or `pbxguard=debug`. Default `info`; `RUST_LOG` overrides it.
    pub(crate) level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

impl Config {
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))
    }

    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let c: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        if !matches!(c.log.format.as_str(), "text" | "json") {
            return Err(format!("log.format must be \"text\" or \"json\", not {:?}", c.log.format));
        }
        if c.tls.cert.is_some() != c.tls.key.is_some() {
            return Err(
                "tls.cert and tls.key go together: set both, or neither for a generated self-signed certificate".into(),
            );
        }
        gui_listen(&c.gui.listen, "gui.listen")?;
        if c.gui.max_connections == 0 {
            return Err("gui.max_connections must be at least 1".into());
        }
        if c.sip.udp_workers == 0 || c.sip.udp_workers > 64 {
            return Err("sip.udp_workers must be from 1 to 64".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn empty_is_defaults_and_unknown_keys_are_refused() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let e = Config::parse("[sip]\nudpp = []\n").unwrap_err();
        assert!(e.contains("unknown field `udpp`"), "{e}");
        assert!(Config::parse("[log]\nformat = \"xml\"\n").is_err());
        assert!(Config::parse("[tls]\ncert = \"a.pem\"\n").is_err());
    }

    #[test]
    fn shipped_example_loads() {
        let text = include_str!("../docs/pbxguard.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.sip.tls[0].port(), 5061);
    }
}
