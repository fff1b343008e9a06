//! What only the host can tell, gathered once for every caller (the `audit` and `firewall` commands,
//! the admin GUI's audit and firewall pages): root's password against the shadow file, whether the
//! firewall table is loaded, what pbxguard and sshd listen on, the certificate in use. It runs
//! programs and reads files, so it blocks: the daemon calls it off its async threads.

use anyhow::Result;
use pbxguard_app::audit::{self, FirewallFacts, Host};
use pbxguard_app::firewall::HostPorts;
use pbxguard_store::Store;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// The GUI's port when no running daemon says otherwise.
const GUI_PORT: u16 = 5555;
const IAX2_PORT: u16 = 4569;
/// The shadow file the audit reads root's entry from, unless told another.
pub(crate) const SHADOW: &str = "/etc/shadow";

/// Everything `pbxguard_app::audit::run` needs from the host.
pub(crate) fn audit_facts(data: &Path, shadow: &Path) -> Host {
    Host {
        root_default: root_default(shadow),
        firewall: firewall_facts(),
        sip_listening: listening(data),
        // The pair the daemon serves (a configured tls.cert, or the one pbxguard keeps), not a fixed path.
        certificate: {
            let path = pbxguard_app::certs::files(data).cert;
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

/// Whether table `inet pbxguard` is loaded in the kernel, or why that cannot be told.
pub(crate) fn firewall_loaded() -> std::result::Result<bool, String> {
    firewall_facts().map(|f| f.active)
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

/// A running daemon's `listen.json`, if there is one it can be read from.
fn listen_json(data: &Path) -> Option<serde_json::Value> {
    std::fs::read_to_string(data.join("listen.json")).ok().and_then(|t| serde_json::from_str(&t).ok())
}

fn addresses(v: &serde_json::Value, key: &str) -> Vec<SocketAddr> {
    v[key].as_array().into_iter().flatten().filter_map(|a| a.as_str()?.parse().ok()).collect()
}

/// What the running daemon listens on for SIP (listen.json), else what `run` would listen on by default.
fn listening(data: &Path) -> Vec<SocketAddr> {
    match listen_json(data) {
        Some(v) => ["udp", "tcp", "tls"].iter().flat_map(|k| addresses(&v, k)).collect(),
        None => ["0.0.0.0:5060", "0.0.0.0:5061"].iter().filter_map(|a| a.parse().ok()).collect(),
    }
}

/// What pbxguard and sshd listen on: a running daemon's `listen.json` (the ports it actually serves),
/// else the configuration `run` would use (`config`, or the defaults); sshd's own configuration for
/// SSH (`sshd_config`, else the setting `ssh.config`).
pub(crate) fn ports(
    store: &Store,
    data: &Path,
    config: Option<&Path>,
    sshd_config: Option<&Path>,
) -> Result<HostPorts> {
    let mut p = HostPorts { gui: vec![GUI_PORT], iax2: vec![IAX2_PORT], ..Default::default() };
    if let Some(v) = listen_json(data) {
        let ports = |k: &str| addresses(&v, k).iter().map(SocketAddr::port).collect::<Vec<u16>>();
        (p.sip_udp, p.sip_tcp, p.sip_tls) = (ports("udp"), ports("tcp"), ports("tls"));
        if v.get("gui").is_some() {
            p.gui = ports("gui");
        }
        if v.get("iax").is_some() {
            p.iax2 = ports("iax");
        }
    } else {
        let cfg = match config {
            Some(path) => crate::config::Config::load(path)?,
            None => crate::config::Config::default(),
        };
        let ports = |a: &[SocketAddr]| a.iter().map(SocketAddr::port).collect();
        (p.sip_udp, p.sip_tcp, p.sip_tls) = (ports(&cfg.sip.udp), ports(&cfg.sip.tcp), ports(&cfg.sip.tls));
    }
    p.ssh = ssh_ports(store, sshd_config);
    Ok(p)
}

/// sshd's ports as `pbxguard ssh status` reads them (`pbxguard_app::ssh::effective`: the file in setting
/// `ssh.config`, or `config`, with its Includes): one reading of sshd for the firewall, `ssh set` and
/// `audit`. 22 when it cannot be read.
fn ssh_ports(store: &Store, config: Option<&Path>) -> Vec<u16> {
    let Ok(mut paths) = pbxguard_app::settings::ssh_paths(store) else { return vec![22] };
    if let Some(c) = config {
        paths.config = c.to_owned();
    }
    let mut ports = pbxguard_app::ssh::effective(&paths).map(|f| f.ports).unwrap_or_default();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() { vec![22] } else { ports }
}
