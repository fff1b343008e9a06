//! SSH: where the guard reads sshd's log, and sshd's configuration as pbxguard manages it.
//!
//! pbxguard owns one drop-in file (setting `ssh.dropin`, included by sshd's main configuration) and
//! rewrites it whole. What sshd will do is read from its configuration files ([`effective`]): the ports
//! and the sources allowed to log in are the firewall's SSH service too (one source of truth).
//!
//! Running sshd (`sshd -t`, the reload) and probing ports are the caller's, behind [`Sshd`]: this module
//! only reads and writes files.

use crate::{Result, conflict, invalid};
use pbxguard_shield::Prefix;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where the guard reads sshd's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// `journalctl -f -o json -u ssh -u sshd`
    Journald,
    /// A syslog file or an `sshd -E` file.
    File(PathBuf),
}

/// As `ssh.guard.logs` writes it: `journald` or the file's path.
impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Journald => f.write_str("journald"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// `ssh.guard.logs`: `auto` (`None`: the caller picks journald or /var/log/auth.log), or
/// comma-separated absolute paths and `journald`.
pub fn parse_log_sources(v: &str) -> std::result::Result<Option<Vec<LogSource>>, String> {
    const RULE: &str = "expected auto, or comma-separated absolute paths (such as /var/log/auth.log) and the word journald, at most 16";
    let v = v.trim();
    if v == "auto" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim) {
        let s = match item {
            "journald" => LogSource::Journald,
            p if p.starts_with('/') && p.len() <= 4096 && !p.chars().any(char::is_control) => LogSource::File(p.into()),
            _ => return Err(format!("{item:?} is neither an absolute path nor journald: {RULE}")),
        };
        if out.contains(&s) {
            return Err(format!("{item} is listed twice: {RULE}"));
        }
        out.push(s);
    }
    if out.is_empty() || out.len() > 16 {
        return Err(RULE.into());
    }
    Ok(Some(out))
}

/// The guard's settings as stored (read by `settings::ssh_guard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSettings {
    pub enabled: bool,
    /// `None`: auto.
    pub logs: Option<Vec<LogSource>>,
}

/// The files and binary of the sshd pbxguard manages (settings `ssh.*`, read by `settings::ssh_paths`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPaths {
    pub sshd: PathBuf,
    pub config: PathBuf,
    pub dropin: PathBuf,
    pub pid_file: PathBuf,
}

/// What sshd does, as its configuration says (global settings; `Match` blocks are not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshFacts {
    /// Ports sshd listens on (22 when none is configured).
    pub ports: Vec<u16>,
    /// Sources that may log in (`AllowUsers USER@CIDR`); `None`: everyone.
    pub allowed: Option<Vec<Prefix>>,
    /// `PermitRootLogin`: yes, prohibit-password, forced-commands-only or no.
    pub root_login: String,
    pub password_auth: bool,
    /// A port change waiting for `pbxguard ssh confirm`: this old port is still open.
    pub pending_old_port: Option<u16>,
    /// Where a `Port` is set outside pbxguard's drop-in (`FILE:LINE`): such a port cannot be closed by it.
    pub ports_set_elsewhere: Vec<String>,
    /// `AllowUsers` host patterns that are no address or CIDR (host names, wildcards): sshd applies
    /// them, the firewall cannot, so the firewall lets everyone reach SSH.
    pub unresolved_allow: Vec<String>,
}

/// What sshd's configuration files say, starting at `paths.config` and following `Include`.
pub fn effective(paths: &SshPaths) -> Result<SshFacts> {
    let mut acc = Acc::default();
    read_config(&paths.config, paths, &mut acc, 0)?;
    let pending_old_port = std::fs::read_to_string(&paths.dropin).ok().and_then(|t| DropIn::parse(&t).old_port);
    Ok(acc.facts(pending_old_port))
}

#[derive(Default)]
struct Acc {
    ports: Vec<u16>,
    root_login: Option<String>,
    password_auth: Option<String>,
    allow: Vec<String>,
    elsewhere: Vec<String>,
}

impl Acc {
    fn facts(self, pending_old_port: Option<u16>) -> SshFacts {
        let mut ports = self.ports;
        if ports.is_empty() {
            ports.push(22);
        }
        let mut dedup = Vec::new();
        for p in ports {
            if !dedup.contains(&p) {
                dedup.push(p);
            }
        }
        let (allowed, unresolved_allow) = allowed_sources(&self.allow);
        SshFacts {
            ports: dedup,
            allowed,
            root_login: self.root_login.unwrap_or_else(|| "prohibit-password".into()),
            password_auth: self.password_auth.is_none_or(|v| v == "yes"),
            pending_old_port,
            ports_set_elsewhere: self.elsewhere,
            unresolved_allow,
        }
    }
}

/// `AllowUsers` entries to the sources they admit. An entry without `@HOST` admits its user from
/// anywhere, so then everyone may reach SSH; so does a host pattern that is no CIDR (fail-open: the
/// firewall must never lock out what sshd lets in).
fn allowed_sources(entries: &[String]) -> (Option<Vec<Prefix>>, Vec<String>) {
    if entries.is_empty() {
        return (None, Vec::new());
    }
    let mut nets = Vec::new();
    let mut unresolved = Vec::new();
    let mut everyone = false;
    for e in entries {
        match e.rsplit_once('@') {
            None => everyone = true,
            Some((_, host)) => match Prefix::parse_lenient(host) {
                Ok(p) if !nets.contains(&p) => nets.push(p),
                Ok(_) => {}
                Err(_) => {
                    everyone = true;
                    unresolved.push(host.to_owned());
                }
            },
        }
    }
    (if everyone { None } else { Some(nets) }, unresolved)
}

const MAX_INCLUDE_DEPTH: usize = 16;

fn read_config(path: &Path, paths: &SshPaths, acc: &mut Acc, depth: usize) -> Result<()> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(invalid!("{}: Include nested more than {MAX_INCLUDE_DEPTH} deep", path.display()));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // An include glob's file may vanish between listing and reading; the main file must exist.
        Err(_) if depth > 0 => return Ok(()),
        Err(e) => {
            return Err(crate::Error::Io(format!(
                "cannot read sshd's configuration {}: {e}; set its path with `pbxguard settings set ssh.config PATH`",
                path.display()
            )));
        }
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, args) = split_keyword(line);
        match key.to_ascii_lowercase().as_str() {
            // Global settings only: the rest of this file is conditional.
            "match" => return Ok(()),
            "include" => {
                for pattern in args.split_whitespace() {
                    for f in expand(pattern, &paths.config) {
                        read_config(&f, paths, acc, depth + 1)?;
                    }
                }
            }
            "port" => {
                if let Ok(p) = args.trim().parse::<u16>() {
                    acc.ports.push(p);
                    if path != paths.dropin {
                        acc.elsewhere.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
            // `ListenAddress host:port` opens that port too (`[v6]:port`; a bare IPv6 address has no port).
            "listenaddress" => {
                let a = args.split_whitespace().next().unwrap_or("");
                let port = match a.strip_prefix('[') {
                    Some(v6) => v6.split_once("]:").map(|(_, p)| p),
                    None if a.matches(':').count() == 1 => a.split_once(':').map(|(_, p)| p),
                    None => None,
                };
                if let Some(p) = port.and_then(|p| p.parse::<u16>().ok()) {
                    acc.ports.push(p);
                    acc.elsewhere.push(format!("{}:{}", path.display(), n + 1));
                }
            }
            // sshd keeps the first value it reads of these.
            "permitrootlogin" if acc.root_login.is_none() => acc.root_login = Some(args.trim().to_ascii_lowercase()),
            "passwordauthentication" if acc.password_auth.is_none() => {
                acc.password_auth = Some(args.trim().to_ascii_lowercase());
            }
            "allowusers" => acc.allow.extend(args.split_whitespace().map(str::to_owned)),
            _ => {}
        }
    }
    Ok(())
}

fn split_keyword(line: &str) -> (&str, &str) {
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let rest = line[end..].trim_start();
    (&line[..end], rest.strip_prefix('=').unwrap_or(rest).trim_start())
}

/// An `Include` pattern to files, sorted as glob(3) returns them. Relative patterns are relative to
/// the main file's directory (sshd: /etc/ssh). Only `*` and `?` in the last component are expanded.
fn expand(pattern: &str, main: &Path) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let p = if p.is_absolute() { p.to_path_buf() } else { main.parent().unwrap_or(Path::new("/")).join(p) };
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else { return Vec::new() };
    if !name.contains(['*', '?']) {
        return vec![p];
    }
    let dir = p.parent().unwrap_or(Path::new("/"));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_str().is_some_and(|f| !f.starts_with('.') && glob_match(name, f)))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// pbxguard's drop-in: what it sets, nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropIn {
    pub port: Option<u16>,
    /// The port being left: open beside `port` until `pbxguard ssh confirm`.
    pub old_port: Option<u16>,
    pub allow: Vec<Prefix>,
    pub root_login: Option<String>,
    pub password_auth: Option<bool>,
}

const PENDING: &str = "# pbxguard: pending port change, old port kept open until `pbxguard ssh confirm`: ";

impl DropIn {
    pub fn parse(text: &str) -> Self {
        let mut d = Self::default();
        for line in text.lines().map(str::trim) {
            if let Some(p) = line.strip_prefix(PENDING) {
                d.old_port = p.trim().parse().ok();
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (key, args) = split_keyword(line);
            match key.to_ascii_lowercase().as_str() {
                "port" => {
                    let p = args.trim().parse().ok();
                    if d.port.is_none() {
                        d.port = p;
                    }
                }
                "permitrootlogin" => d.root_login = Some(args.trim().to_owned()),
                "passwordauthentication" => d.password_auth = Some(args.trim() == "yes"),
                "allowusers" => d.allow.extend(
                    args.split_whitespace()
                        .filter_map(|e| e.strip_prefix("*@"))
                        .filter_map(|h| Prefix::parse_lenient(h).ok()),
                ),
                _ => {}
            }
        }
        d
    }

    pub fn render(&self) -> String {
        let mut s =
            String::from("# Written by `pbxguard ssh set`, which rewrites it whole: change it with that command.\n");
        if let Some(p) = self.port {
            if let Some(old) = self.old_port.filter(|o| *o != p) {
                s += &format!("{PENDING}{old}\nPort {p}\nPort {old}\n");
            } else {
                s += &format!("Port {p}\n");
            }
        }
        if let Some(r) = &self.root_login {
            s += &format!("PermitRootLogin {r}\n");
        }
        if let Some(p) = self.password_auth {
            s += &format!("PasswordAuthentication {}\n", if p { "yes" } else { "no" });
        }
        if !self.allow.is_empty() {
            let list: Vec<String> = self.allow.iter().map(|p| format!("*@{p}")).collect();
            s += &format!("AllowUsers {}\n", list.join(" "));
        }
        s
    }
}

/// What `pbxguard ssh set` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub port: Option<u16>,
    pub allow: Vec<String>,
    pub root_login: Option<String>,
    pub password_auth: Option<String>,
}

/// The drop-in that carries out `change` over the current one, or why not (nothing is written).
/// `admin`: the address the operator is connected from over SSH, which `--allow` must keep in.
pub fn plan(facts: &SshFacts, current: &DropIn, change: &Change, admin: Option<IpAddr>) -> Result<DropIn> {
    if change == &Change::default() {
        return Err(invalid!("nothing to change: give --port, --allow, --root-login or --password-auth"));
    }
    let mut next = current.clone();
    if let Some(port) = change.port {
        if port == 0 {
            return Err(invalid!("--port 0: expected a port from 1 to 65535"));
        }
        match current.old_port {
            // Back to the old port before confirming: the new one closes.
            Some(old) if port == old => next.old_port = None,
            Some(_) if current.port == Some(port) => {}
            Some(old) => {
                return Err(conflict!(
                    "a change from port {old} to {} is waiting for `pbxguard ssh confirm`; confirm it (or set --port {old} to go back) first",
                    current.port.unwrap_or(old)
                ));
            }
            None => {
                if !facts.ports_set_elsewhere.is_empty() && !facts.ports.contains(&port) {
                    return Err(conflict!(
                        "sshd's Port is also set at {}: pbxguard's drop-in could never close that port; remove the line, then try again",
                        facts.ports_set_elsewhere.join(", ")
                    ));
                }
                // Both stay open until confirmed, so a new port the operator cannot reach locks nobody
                // out.
                if !facts.ports.contains(&port) {
                    next.old_port = facts.ports.first().copied();
                }
            }
        }
        next.port = Some(port);
    }
    if !change.allow.is_empty() {
        let mut nets = Vec::new();
        for a in &change.allow {
            let p = Prefix::parse_strict(a).map_err(|e| invalid!("--allow {a}: {e}"))?;
            if !nets.contains(&p) {
                nets.push(p);
            }
        }
        if let Some(ip) = admin
            && !nets.iter().any(|n| n.contains(ip))
        {
            return Err(conflict!(
                "you are connected over SSH from {ip}, which --allow leaves out: this change would lock you out; add --allow {ip} (or your network)"
            ));
        }
        next.allow = nets;
    }
    if let Some(r) = &change.root_login {
        if r != "no" && r != "prohibit-password" {
            return Err(invalid!("--root-login {r}: expected no or prohibit-password"));
        }
        next.root_login = Some(r.clone());
    }
    if let Some(p) = &change.password_auth {
        next.password_auth = Some(match p.as_str() {
            "yes" => true,
            "no" => false,
            _ => return Err(invalid!("--password-auth {p}: expected yes or no")),
        });
    }
    Ok(next)
}

/// What running sshd takes: the caller's (processes, signals, sockets).
pub trait Sshd {
    /// `sshd -t -f CONFIG`: `Err` carries sshd's own message.
    fn test(&self, paths: &SshPaths) -> std::result::Result<(), String>;
    fn reload(&self, paths: &SshPaths) -> std::result::Result<(), String>;
    /// Whether another program listens on `port` (sshd's own ports are not asked about).
    fn port_in_use(&self, port: u16) -> bool;
}

/// What `set` or `confirm` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub dropin: PathBuf,
    pub before: SshFacts,
    pub after: SshFacts,
}

/// Writes the drop-in for `change`, validated by sshd, and reloads sshd. Anything wrong (a bad value,
/// a port in use, sshd refusing the result, sshd not applying a value because another file sets it
/// first) puts the previous drop-in back and says why.
pub fn set(paths: &SshPaths, change: &Change, admin: Option<IpAddr>, sshd: &dyn Sshd) -> Result<Applied> {
    let before = effective(paths)?;
    let old_text = std::fs::read_to_string(&paths.dropin).ok();
    let current = old_text.as_deref().map(DropIn::parse).unwrap_or_default();
    let next = plan(&before, &current, change, admin)?;
    if let Some(p) = change.port
        && !before.ports.contains(&p)
        && sshd.port_in_use(p)
    {
        return Err(conflict!(
            "port {p} is already in use by another program (see `ss -ltnp sport = :{p}`); choose another port"
        ));
    }
    install(paths, &next, old_text.as_deref(), sshd, |after| {
        let mut wrong = Vec::new();
        if let Some(p) = next.port
            && !after.ports.contains(&p)
        {
            wrong.push(format!("Port {p}"));
        }
        if let Some(r) = &next.root_login
            && &after.root_login != r
        {
            wrong.push(format!("PermitRootLogin {r} (sshd keeps {})", after.root_login));
        }
        if let Some(p) = next.password_auth
            && after.password_auth != p
        {
            wrong.push(format!("PasswordAuthentication {}", if p { "yes" } else { "no" }));
        }
        wrong
    })
    .map(|after| Applied { dropin: paths.dropin.clone(), before, after })
}

/// Ends a port change: the old port is closed.
pub fn confirm(paths: &SshPaths, sshd: &dyn Sshd) -> Result<Applied> {
    let before = effective(paths)?;
    let old_text = std::fs::read_to_string(&paths.dropin).ok();
    let mut next = old_text.as_deref().map(DropIn::parse).unwrap_or_default();
    let Some(old) = next.old_port.take() else {
        return Err(crate::not_found!("no port change is waiting for confirmation"));
    };
    let after = install(paths, &next, old_text.as_deref(), sshd, |after| {
        if after.ports.contains(&old) { vec![format!("closing port {old}")] } else { Vec::new() }
    })?;
    Ok(Applied { dropin: paths.dropin.clone(), before, after })
}

fn install(
    paths: &SshPaths,
    next: &DropIn,
    old_text: Option<&str>,
    sshd: &dyn Sshd,
    check: impl Fn(&SshFacts) -> Vec<String>,
) -> Result<SshFacts> {
    let io = |e: std::io::Error| crate::Error::Io(format!("writing {}: {e}", paths.dropin.display()));
    let restore = || -> Result<()> {
        match old_text {
            Some(t) => write_atomic(&paths.dropin, t).map_err(io),
            None => std::fs::remove_file(&paths.dropin)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
                .map_err(io),
        }
    };
    if let Some(dir) = paths.dropin.parent()
        && !dir.is_dir()
    {
        return Err(crate::not_found!(
            "{} does not exist: is sshd installed? (set ssh.dropin to a directory sshd's configuration includes)",
            dir.display()
        ));
    }
    write_atomic(&paths.dropin, &next.render()).map_err(io)?;
    if let Err(msg) = sshd.test(paths) {
        restore()?;
        return Err(invalid!("sshd refused the change, nothing was changed: {}", msg.trim()));
    }
    let after = match effective(paths) {
        Ok(a) => a,
        Err(e) => {
            restore()?;
            return Err(e);
        }
    };
    let wrong = check(&after);
    if !wrong.is_empty() {
        restore()?;
        return Err(conflict!(
            "sshd would not apply {} (another file of {} sets it first); nothing was changed",
            wrong.join(", "),
            paths.config.display()
        ));
    }
    if let Err(msg) = sshd.reload(paths) {
        restore()?;
        return Err(crate::Error::Io(format!("reloading sshd failed, the previous drop-in is back: {msg}")));
    }
    Ok(after)
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("pbxguard-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests;
