//! `pbxguard audit`: how hardened the whole server is, in one place. Every check has a stable id, a
//! severity, the evidence and the exact command that fixes it; the score starts at 100 and loses a weight
//! per finding. What only the host can tell (the root password, sshd, the firewall) is gathered by the
//! caller and handed in as [`Host`]: this module reads the store and the data directory, nothing else.

use crate::Result;
use pbxguard_shield::{Categories, Category};
use pbxguard_store::Backend;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Points off the score of 100 for one finding of this severity.
    fn weight(self) -> u32 {
        match self {
            Self::Critical => 30,
            Self::High => 12,
            Self::Medium => 5,
            Self::Low => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

/// A change `audit --fix` may make without asking anyone for anything: it cannot lock a phone or an
/// operator out (new secrets and passwords are never invented behind the admin's back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafeFix {
    /// Put a setting back to its default.
    Reset(&'static str),
    /// Set a setting to a value.
    Set(&'static str, &'static str),
    /// Take group and other permissions off a file or directory.
    Private(PathBuf),
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identifier of the check (`admin-password`, `ssh-root-login`...).
    pub check: &'static str,
    pub severity: Severity,
    pub title: String,
    pub evidence: String,
    /// The exact command(s) that fix it.
    pub fix: String,
    /// Whether `audit --fix` applies it.
    pub auto_fix: bool,
    #[serde(skip)]
    pub safe_fix: Vec<SafeFix>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// 100 minus the weights of the findings, at least 0.
    pub score: u32,
    /// Whether any finding is critical (the command then exits non-zero).
    pub critical: bool,
    pub findings: Vec<Finding>,
    /// Checks that ran and found nothing.
    pub passed: Vec<&'static str>,
    /// Checks that could not run, and why (not counted against the score).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub check: &'static str,
    pub why: String,
}

/// The firewall as the host has it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirewallFacts {
    /// The table `inet pbxguard` is loaded in the kernel.
    pub active: bool,
}

/// What the caller found out about the host. `Err(why)`: could not be checked.
#[derive(Debug, Clone)]
pub struct Host {
    /// A well-known default password root still has (`Ok(None)`: none of them).
    pub root_default: std::result::Result<Option<String>, String>,
    pub firewall: std::result::Result<FirewallFacts, String>,
    /// SIP listening addresses (from the running daemon, else the defaults).
    pub sip_listening: Vec<std::net::SocketAddr>,
    /// The TLS certificate's facts, when there is one.
    pub certificate: Option<std::result::Result<Certificate, String>>,
    pub now_secs: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub path: PathBuf,
    pub self_signed: bool,
    pub not_after: i64,
}

/// The facts of the first certificate in a PEM file.
pub fn certificate_facts(path: &Path, pem: &[u8]) -> std::result::Result<Certificate, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("{}: not a PEM certificate ({e})", path.display()))?;
    let cert = pem.parse_x509().map_err(|e| format!("{}: not an X.509 certificate ({e})", path.display()))?;
    Ok(Certificate {
        path: path.to_owned(),
        self_signed: cert.subject() == cert.issuer(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Root passwords that ship with appliances or that scanners try first. The hardening guide's own
/// appliance ships `scopserv`.
pub const DEFAULT_ROOT_PASSWORDS: &[&str] = &[
    "scopserv",
    "root",
    "admin",
    "toor",
    "password",
    "123456",
    "12345678",
    "changeme",
    "pbx",
    "asterisk",
    "freepbx",
    "elastix",
    "palosanto",
    "voip",
    "debian",
    "ubuntu",
    "raspberry",
    "default",
    "passw0rd",
    "letmein",
];

/// Finds which of [`DEFAULT_ROOT_PASSWORDS`] root's entry in a shadow file has, using `verify(password,
/// hash)` (the system's own crypt, so yescrypt and every scheme the host knows are covered). `Ok(None)`:
/// none; locked and empty entries say so. The hash itself never leaves this function.
pub fn root_default_password(
    shadow: &str,
    verify: &mut dyn FnMut(&str, &str) -> std::result::Result<bool, String>,
) -> std::result::Result<Option<String>, String> {
    let hash = shadow
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .and_then(|rest| rest.split(':').next())
        .ok_or("the shadow file has no root entry")?;
    if hash.is_empty() {
        return Ok(Some("(empty password)".into()));
    }
    if hash.starts_with('!') || hash.starts_with('*') {
        return Ok(None);
    }
    for pw in DEFAULT_ROOT_PASSWORDS {
        if verify(pw, hash)? {
            return Ok(Some((*pw).to_owned()));
        }
    }
    Ok(None)
}

struct Audit {
    findings: Vec<Finding>,
    passed: Vec<&'static str>,
    skipped: Vec<Skipped>,
}

impl Audit {
    fn check(&mut self, id: &'static str, found: Vec<Finding>) {
        if found.is_empty() {
            self.passed.push(id);
        }
        self.findings.extend(found);
    }

    fn skip(&mut self, id: &'static str, why: impl Into<String>) {
        self.skipped.push(Skipped { check: id, why: why.into() });
    }
}

fn finding(check: &'static str, severity: Severity, title: String, evidence: String, fix: String) -> Finding {
    Finding { check, severity, title, evidence, fix, auto_fix: false, safe_fix: Vec::new() }
}

fn with_fix(mut f: Finding, fixes: Vec<SafeFix>) -> Finding {
    f.auto_fix = !fixes.is_empty();
    f.safe_fix = fixes;
    f
}

/// A few names, then how many more.
fn some_of(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// Runs every check. `data` is the data directory (for file permissions).
pub fn run(store: &dyn Backend, data: &Path, host: &Host) -> Result<Report> {
    let mut a = Audit { findings: Vec::new(), passed: Vec::new(), skipped: Vec::new() };
    a.check("admin-password", admin_passwords(store)?);
    match &host.root_default {
        Ok(found) => a.check("root-password", root_password(found.as_deref())),
        Err(why) => a.skip("root-password", why.clone()),
    }
    a.check("sip-secrets", sip_secrets(store)?);
    a.check("voicemail-pins", voicemail(store)?);
    a.check("acl-groups", acl_groups(store)?);
    a.check("class-of-service", class_of_service(store)?);
    a.check("fraud-limits", fraud_limits(store)?);
    a.check("shield-detectors", detectors(store)?);
    a.check("blacklists", blacklists(store, host.now_secs)?);
    a.check("data-permissions", permissions(data));
    // sshd as its configuration files say (`ssh.config` and its Includes), the same facts
    // `pbxguard ssh status` and the firewall's ssh service use.
    match crate::settings::ssh_paths(store).and_then(|p| crate::ssh::effective(&p)) {
        Ok(ssh) => a.check("ssh", ssh_checks(&ssh)),
        Err(e) => a.skip("ssh", format!("cannot read sshd's configuration: {e}")),
    }
    match &host.firewall {
        Ok(fw) => {
            a.check("firewall", firewall(store, fw)?);
            a.check("sip-exposure", exposure(fw, &host.sip_listening));
        }
        Err(why) => a.skip("firewall", why.clone()),
    }
    match &host.certificate {
        Some(Ok(c)) => a.check("tls-certificate", certificate(c, host.now_secs)),
        Some(Err(why)) => a.skip("tls-certificate", why.clone()),
        None => a.skip("tls-certificate", "no TLS certificate yet (the daemon makes one at first start)"),
    }
    let Audit { mut findings, passed, skipped } = a;
    findings.sort_by(|x, y| y.severity.cmp(&x.severity).then(x.check.cmp(y.check)));
    let lost: u32 = findings.iter().map(|f| f.severity.weight()).sum();
    Ok(Report {
        score: 100u32.saturating_sub(lost),
        critical: findings.iter().any(|f| f.severity == Severity::Critical),
        findings,
        passed,
        skipped,
    })
}

fn admin_passwords(store: &dyn Backend) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for admin in crate::admins::list(store)? {
        let default = crate::admins::verify("admin", &admin.hash);
        if default || admin.must_change {
            out.push(finding(
                "admin-password",
                Severity::Critical,
                format!("admin account {:?} must change its password", admin.name),
                if default {
                    "its password is still the default (admin)".into()
                } else {
                    "flagged must-change: every admin interface refuses everything but the change".into()
                },
                format!("pbxguard admin passwd {}", admin.name),
            ));
        }
    }
    Ok(out)
}

fn root_password(found: Option<&str>) -> Vec<Finding> {
    found
        .map(|pw| {
            finding(
                "root-password",
                Severity::Critical,
                "root's password is a well-known default".into(),
                format!("root's password is {pw:?}, one of the first any scanner tries"),
                "passwd root".into(),
            )
        })
        .into_iter()
        .collect()
}

fn sip_secrets(store: &dyn Backend) -> Result<Vec<Finding>> {
    let bad: Vec<String> =
        crate::extensions::list(store)?.into_iter().filter(|e| !e.compliant).map(|e| e.number).collect();
    if bad.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![finding(
        "sip-secrets",
        Severity::High,
        format!("{} SIP secret(s) break the password policy", bad.len()),
        format!("extensions {}", some_of(&bad)),
        format!(
            "pbxguard ext passwd NUMBER --generate   (each of them; or all at once: pbxguard settings set password_policy.autofix true)   e.g. pbxguard ext passwd {} --generate",
            bad[0]
        ),
    )])
}

fn voicemail(store: &dyn Backend) -> Result<Vec<Finding>> {
    let todo: Vec<String> = crate::mailboxes::list(store)?
        .into_iter()
        .filter(|m| {
            m.must_initialise || (m.force_name && !m.name_recorded) || (m.force_greeting && !m.greeting_recorded)
        })
        .map(|m| m.extension)
        .collect();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![finding(
        "voicemail-pins",
        Severity::Medium,
        format!("{} voicemail box(es) still to initialise", todo.len()),
        format!("mailboxes {} have the PIN equal to the extension or lack a forced name/greeting", some_of(&todo)),
        format!("pbxguard vm set {} --pin NEW_PIN   (or have the owner log in and initialise it)", todo[0]),
    )])
}

fn acl_groups(store: &dyn Backend) -> Result<Vec<Finding>> {
    let open: Vec<String> =
        crate::extensions::list(store)?.into_iter().filter(|e| e.acl.is_none()).map(|e| e.number).collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![finding(
        "acl-groups",
        Severity::Medium,
        format!("{} extension(s) may register from anywhere", open.len()),
        format!("extensions without an ACL group: {}", some_of(&open)),
        format!("pbxguard acl add office 192.0.2.0/24 && pbxguard ext acl {} office", open[0]),
    )])
}

fn class_of_service(store: &dyn Backend) -> Result<Vec<Finding>> {
    let classes = store.cos_list()?;
    let costly = |allow: &str| {
        let c = Categories::parse(allow).unwrap_or_default();
        [Category::International, Category::Premium].into_iter().filter(|x| c.contains(*x)).collect::<Vec<_>>()
    };
    let default = classes.iter().find(|c| c.name == "default");
    let exts = crate::extensions::list(store)?;
    let mut out = Vec::new();
    if let Some(d) = default {
        let cats = costly(&d.allow);
        let users = exts.iter().filter(|e| e.cos.is_none()).count();
        if !cats.is_empty() && users > 0 {
            let names: Vec<_> = cats.iter().map(|c| c.as_str()).collect();
            out.push(finding(
                "class-of-service",
                Severity::High,
                format!("the default Class of Service allows {}", names.join(" and ")),
                format!("{users} extension(s) without a CoS of their own get it"),
                "pbxguard cos del default && pbxguard cos add default --allow internal,local,national,toll-free   (then give a CoS with international to those who need it: pbxguard ext cos NUMBER NAME)".into(),
            ));
        }
    }
    for c in &classes {
        let cats = costly(&c.allow);
        if cats.contains(&Category::International) && c.countries.is_none() {
            out.push(finding(
                "class-of-service",
                Severity::Low,
                format!("Class of Service {:?} allows international calls to every country", c.name),
                "no country allow-list: a stolen extension can call the most expensive destinations".into(),
                format!("pbxguard cos del {0} && pbxguard cos add {0} --allow {1} --countries CC,...", c.name, c.allow),
            ));
        }
    }
    Ok(out)
}

/// Whether a `COUNT/DURATION` threshold is more than ten times laxer than its default: as good as off.
fn lax(value: &str, default: &str) -> bool {
    let rate = |v: &str| {
        let (n, d) = v.split_once('/')?;
        let n: f64 = n.trim().parse().ok()?;
        let d = pbxguard_shield::config::parse_duration_ms(d)? as f64;
        (d > 0.0).then_some(n / d)
    };
    matches!((rate(value), rate(default)), (Some(v), Some(d)) if v > d * 10.0)
}

fn get(store: &dyn Backend, key: &str) -> Result<String> {
    crate::settings::get(store, key)
}

fn default_of(key: &str) -> Result<String> {
    crate::settings::default_value(key)
}

fn fraud_limits(store: &dyn Backend) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    if get(store, "fraud.suspend")? != "true" {
        out.push(with_fix(
            finding(
                "fraud-limits",
                Severity::High,
                "extensions over a toll-fraud limit are not suspended".into(),
                "fraud.suspend = false: a stolen extension keeps calling after every limit is hit".into(),
                "pbxguard settings set fraud.suspend true".into(),
            ),
            vec![SafeFix::Set("fraud.suspend", "true")],
        ));
    }
    // Ten times the default is no longer a limit a fraudster notices.
    for key in ["fraud.max_concurrent", "fraud.calls_per_hour", "fraud.international_per_hour"] {
        let (v, d) = (get(store, key)?, default_of(key)?);
        if let (Ok(v), Ok(d)) = (v.parse::<u64>(), d.parse::<u64>())
            && v > d.max(1) * 10
        {
            out.push(with_fix(
                finding(
                    "fraud-limits",
                    Severity::Medium,
                    format!("toll-fraud limit {key} is as good as off"),
                    format!("{key} = {v}, more than ten times its default of {d}"),
                    format!("pbxguard settings reset {key}"),
                ),
                vec![SafeFix::Reset(key)],
            ));
        }
    }
    Ok(out)
}

fn detectors(store: &dyn Backend) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for key in ["shield.flood", "shield.brute_force", "shield.enumeration", "shield.malformed", "shield.user_attack"] {
        let (v, d) = (get(store, key)?, default_of(key)?);
        if lax(&v, &d) {
            out.push(with_fix(
                finding(
                    "shield-detectors",
                    Severity::High,
                    format!("shield detector {key} is as good as off"),
                    format!("{key} = {v}: more than ten times laxer than its default of {d}"),
                    format!("pbxguard settings reset {key}"),
                ),
                vec![SafeFix::Reset(key)],
            ));
        }
    }
    if get(store, "shield.scanner_user_agents")?.trim().is_empty() {
        out.push(with_fix(
            finding(
                "shield-detectors",
                Severity::High,
                "scanner User-Agent blocking is off".into(),
                "shield.scanner_user_agents is empty: sipvicious and friends are not recognised".into(),
                "pbxguard settings reset shield.scanner_user_agents".into(),
            ),
            vec![SafeFix::Reset("shield.scanner_user_agents")],
        ));
    }
    if let Ok(enabled) = get(store, "ssh.guard.enabled")
        && enabled != "true"
    {
        out.push(with_fix(
            finding(
                "shield-detectors",
                Severity::High,
                "the SSH guard is off".into(),
                "ssh.guard.enabled = false: SSH password guessing is never banned".into(),
                "pbxguard settings set ssh.guard.enabled true".into(),
            ),
            vec![SafeFix::Set("ssh.guard.enabled", "true")],
        ));
    }
    Ok(out)
}

fn blacklists(store: &dyn Backend, now: i64) -> Result<Vec<Finding>> {
    let lists = crate::blacklist::stats(store)?;
    if lists.is_empty() {
        return Ok(vec![finding(
            "blacklists",
            Severity::Low,
            "no VoIP blacklist is loaded".into(),
            "known SIP attackers are only banned after they attack".into(),
            "pbxguard blacklist import https://voipbl.org/update/".into(),
        )]);
    }
    let mut out = Vec::new();
    for l in lists {
        let age_h = (now - l.refreshed_at) / 3600;
        if age_h >= 24 || l.last_error.is_some() {
            out.push(finding(
                "blacklists",
                Severity::Medium,
                format!("blacklist {:?} is out of date", l.name),
                match &l.last_error {
                    Some(e) => format!("last refreshed {age_h} h ago; the last refresh failed: {e}"),
                    None => format!("last refreshed {age_h} h ago"),
                },
                format!("pbxguard blacklist import {}", l.source),
            ));
        }
    }
    Ok(out)
}

fn permissions(data: &Path) -> Vec<Finding> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777);
    let mut out = Vec::new();
    if let Some(m) = mode(data)
        && m & 0o077 != 0
    {
        out.push(with_fix(
            finding(
                "data-permissions",
                Severity::Medium,
                "the data directory is open to other users".into(),
                format!("{} has mode {m:o}", data.display()),
                format!("chmod 700 {}", data.display()),
            ),
            vec![SafeFix::Private(data.to_owned())],
        ));
    }
    let secret = ["pbxguard.db", "pbxguard.db-wal", "pbxguard.db-shm", "nonce.key", "tls/key.pem"];
    let open: Vec<(PathBuf, u32)> = secret
        .iter()
        .map(|f| data.join(f))
        .filter_map(|p| mode(&p).filter(|m| m & 0o077 != 0).map(|m| (p, m)))
        .collect();
    if !open.is_empty() {
        let list: Vec<String> = open.iter().map(|(p, m)| format!("{} ({m:o})", p.display())).collect();
        let paths: Vec<String> = open.iter().map(|(p, _)| p.display().to_string()).collect();
        out.push(with_fix(
            finding(
                "data-permissions",
                Severity::Critical,
                "secrets are readable by other users".into(),
                format!("{}: SIP HA1 hashes are as good as passwords for digest authentication", list.join(", ")),
                format!("chmod 600 {}", paths.join(" ")),
            ),
            open.into_iter().map(|(p, _)| SafeFix::Private(p)).collect(),
        ));
    }
    out
}

fn ssh_checks(ssh: &crate::ssh::SshFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    if ssh.ports.contains(&22) {
        out.push(finding(
            "ssh",
            Severity::Low,
            "SSH listens on port 22".into(),
            "every scanner on the Internet tries port 22 first".into(),
            "pbxguard ssh set --port 2222   (then, from a new session: pbxguard ssh confirm)".into(),
        ));
    }
    if ssh.root_login == "yes" {
        out.push(finding(
            "ssh",
            Severity::High,
            "root may log in over SSH with a password".into(),
            "sshd: PermitRootLogin yes".into(),
            "pbxguard ssh set --root-login prohibit-password".into(),
        ));
    }
    if ssh.password_auth {
        out.push(finding(
            "ssh",
            Severity::Medium,
            "SSH accepts passwords".into(),
            "sshd: PasswordAuthentication yes: passwords can be guessed, keys cannot".into(),
            "pbxguard ssh set --password-auth no   (after installing your public key)".into(),
        ));
    }
    if ssh.allowed.is_none() {
        out.push(finding(
            "ssh",
            Severity::Medium,
            "anyone may connect to SSH".into(),
            "no allowed-sources limit (sshd AllowUsers USER@CIDR; the firewall's ssh service follows it)".into(),
            "pbxguard ssh set --allow 203.0.113.0/24   (your admin network)".into(),
        ));
    }
    out
}

fn firewall(store: &dyn Backend, fw: &FirewallFacts) -> Result<Vec<Finding>> {
    let enabled = get(store, "firewall.enabled").map(|v| v == "true").unwrap_or(false);
    let mut out = Vec::new();
    if !enabled || !fw.active {
        out.push(finding(
            "firewall",
            Severity::High,
            "the firewall is not enabled".into(),
            if fw.active {
                "the table inet pbxguard is loaded but firewall.enabled is false: bans are not in the kernel".into()
            } else {
                "no table inet pbxguard: every port is open and bans hold only for SIP".into()
            },
            "pbxguard firewall wizard".into(),
        ));
    }
    // Services only admins need, open to any source in the stored plan (the wizard's --ssh-from,
    // --gui-from), while the firewall is in force.
    let open_to_all: Vec<String> = if fw.active {
        store
            .firewall_services()?
            .into_iter()
            .filter(|s| (s.name == "ssh" || s.name == "gui") && s.sources.trim().is_empty())
            .map(|s| s.name)
            .collect()
    } else {
        Vec::new()
    };
    for s in &open_to_all {
        out.push(finding(
            "firewall",
            Severity::Medium,
            format!("the firewall opens {s} to everyone"),
            format!("service {s} allows any source; only admins need it"),
            format!("pbxguard firewall wizard --{s}-from 203.0.113.0/24   (your admin network)"),
        ));
    }
    Ok(out)
}

fn exposure(fw: &FirewallFacts, listening: &[std::net::SocketAddr]) -> Vec<Finding> {
    let all: Vec<String> = listening.iter().filter(|a| a.ip().is_unspecified()).map(|a| a.to_string()).collect();
    if all.is_empty() || fw.active {
        return Vec::new();
    }
    vec![finding(
        "sip-exposure",
        Severity::Medium,
        "SIP listens on every address with no firewall".into(),
        format!("listening on {}", all.join(", ")),
        "pbxguard firewall wizard   (or listen on one address: pbxguard run --sip-udp 192.0.2.10:5060 ...)".into(),
    )]
}

fn certificate(c: &Certificate, now: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let days = (c.not_after - now) / 86_400;
    if days < 30 {
        out.push(finding(
            "tls-certificate",
            if days < 0 { Severity::Critical } else { Severity::High },
            if days < 0 {
                "the TLS certificate has expired".into()
            } else {
                format!("the TLS certificate expires in {days} days")
            },
            format!("{}", c.path.display()),
            "pbxguard cert import CHAIN.pem KEY.pem   (or pbxguard cert acme); a running daemon serves it within two seconds".into(),
        ));
    }
    if c.self_signed {
        out.push(finding(
            "tls-certificate",
            Severity::Low,
            "the TLS certificate is self-signed".into(),
            format!("{}: phones cannot verify it is this server", c.path.display()),
            "use a certificate from a CA: pbxguard cert acme, or pbxguard cert csr then pbxguard cert import".into(),
        ));
    }
    out
}

/// Applies the safe fixes of `report`; returns what changed, one line each.
pub fn fix(store: &mut dyn Backend, report: &Report) -> Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut done = Vec::new();
    for f in report.findings.iter().filter(|f| f.auto_fix) {
        for s in &f.safe_fix {
            match s {
                SafeFix::Reset(key) => {
                    let (value, _) = crate::configure::reset(store, key)?;
                    done.push(format!("{key} = {value} (its default)"));
                }
                SafeFix::Set(key, value) => {
                    crate::configure::set(store, key, value)?;
                    done.push(format!("{key} = {value}"));
                }
                SafeFix::Private(path) => {
                    let meta =
                        std::fs::metadata(path).map_err(|e| crate::Error::Io(format!("{}: {e}", path.display())))?;
                    let mode = meta.permissions().mode() & 0o700;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| crate::Error::Io(format!("chmod {}: {e}", path.display())))?;
                    done.push(format!("{} is now mode {mode:o}", path.display()));
                }
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_default_found_through_the_verifier_and_locked_accounts_pass() {
        let shadow = "daemon:*:19000:0:99999:7:::\nroot:$y$j9T$salt$hash:19000:0:99999:7:::\n";
        let mut tried = Vec::new();
        let mut verify = |pw: &str, h: &str| {
            assert_eq!(h, "$y$j9T$salt$hash");
            tried.push(pw.to_owned());
            Ok(pw == "scopserv")
        };
        assert_eq!(root_default_password(shadow, &mut verify), Ok(Some("scopserv".into())));
        assert_eq!(tried, ["scopserv"]);
        let mut never = |_: &str, _: &str| Ok(false);
        assert_eq!(root_default_password("root:!:19000::::::\n", &mut never), Ok(None));
        assert_eq!(root_default_password("root::19000::::::\n", &mut never), Ok(Some("(empty password)".into())));
        assert!(root_default_password("daemon:*:1::::::\n", &mut never).is_err());
    }

    #[test]
    fn laxness_compares_rates() {
        assert!(!lax("30/2s", "30/2s"));
        assert!(!lax("60/2s", "30/2s"));
        assert!(lax("100000/1s", "30/2s"));
        assert!(lax("5/1s", "5/10m"));
        assert!(!lax("garbage", "5/10m"));
    }
}
