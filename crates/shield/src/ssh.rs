//! OpenSSH's log, read for attacks: one sshd line (syslog, journald JSON, or `sshd -E FILE`) to what it
//! says about a source address. Pure and allocation-free: the result borrows from the line.
//!
//! Wording is OpenSSH 8.x/9.x (9.2 in `tests/data/sshd/`, recorded from a real sshd). sshd escapes
//! control characters in what it logs (`strnvis`), so a user name cannot forge a line of its own; a
//! user name can still contain " from 1.2.3.4 port 22", so every line is read from its right end,
//! where sshd (not the client) wrote the address.
//!
//! What counts towards a ban, and how much (see [`SshLine::observation`]), is chosen so that one
//! attempt costs the same at every `LogLevel`: a failed login 1, an invalid user 2 (its `Invalid user`
//! line and its failure), a scanner's connection 1 (dropped at the banner, no common key exchange,
//! timed out before authenticating). The lines sshd writes beside those (`Connection closed by
//! authenticating user`, `Received disconnect`, `Disconnecting ...: Too many authentication failures`)
//! count nothing, or one attempt would count twice.

use crate::Observation;
use std::net::IpAddr;

/// One sshd line that says something about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshLine<'a> {
    pub kind: SshKind,
    pub ip: IpAddr,
    /// Port of the client's connection, when the line gives it.
    pub port: Option<u16>,
    /// The user name as logged (an attacker's choice: display it escaped).
    pub user: Option<&'a str>,
    /// `password`, `publickey`, `keyboard-interactive/pam`...
    pub method: Option<&'a str>,
    /// sshd said the user does not exist.
    pub invalid_user: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshKind {
    /// `Failed METHOD for [invalid user ]USER from IP port N ssh2`
    AuthFailed,
    /// `PAM: Authentication failure for [illegal user ]USER from IP` (keyboard-interactive, every level).
    PamFailed,
    /// `Invalid user USER from IP port N`
    InvalidUser,
    /// `maximum authentication attempts exceeded for [invalid user ]USER from IP port N ssh2 [preauth]`
    TooManyAttempts,
    /// `Accepted METHOD for USER from IP port N ssh2`
    Accepted,
    /// `Connection closed by|Disconnected from|Connection reset by authenticating|invalid user USER IP
    /// port N [preauth]`: the end of a connection whose attempts are counted by their own lines.
    ClosedAfterAuth,
    /// A connection that ended before anyone tried to log in, the way scanners end them.
    Probe(Probe),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `Connection closed by IP port N [preauth]`, or without `[preauth]` right after the banner.
    Closed,
    /// `Connection reset by IP port N [preauth]`
    Reset,
    /// `Disconnected from IP port N [preauth]`
    Disconnected,
    /// `banner exchange: Connection from IP port N: invalid format`, `Did not receive identification
    /// string from IP`, `Bad protocol version identification ... from IP` (before 8.x).
    Banner,
    /// `Unable to negotiate with IP port N: no matching ...`, `ssh_dispatch_run_fatal: Connection from
    /// IP port N: ...`
    KeyExchange,
    /// `Timeout before authentication for IP port N` (LoginGraceTime).
    Timeout,
}

impl Probe {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "connection closed before authenticating",
            Self::Reset => "connection reset before authenticating",
            Self::Disconnected => "disconnected before authenticating",
            Self::Banner => "no valid SSH banner",
            Self::KeyExchange => "key exchange failed",
            Self::Timeout => "no login within the grace time",
        }
    }
}

impl<'a> SshLine<'a> {
    /// What the line tells the shield, for [`crate::Shield::observe_on`] with [`crate::Service::Ssh`];
    /// `None` for lines that count nothing (see the module's comment).
    pub fn observation(&self) -> Option<Observation<'a>> {
        let ip = self.ip;
        let user = self.user.unwrap_or("");
        match self.kind {
            // With PAM the `PAM: Authentication failure` line is there at every LogLevel, this one only
            // at VERBOSE (valid users): the PAM line is the one that counts. A key the server does not
            // know is no guess (an agent offers all it holds, and only VERBOSE logs each one); a client
            // offering key after key ends with `maximum authentication attempts exceeded`, which counts.
            SshKind::AuthFailed
                if self.method.is_some_and(|m| m.starts_with("keyboard-interactive") || m == "publickey") =>
            {
                None
            }
            SshKind::AuthFailed | SshKind::PamFailed | SshKind::TooManyAttempts => {
                Some(Observation::AuthFailed { ip, user })
            }
            SshKind::InvalidUser => Some(Observation::UnknownUser { ip, user }),
            SshKind::Accepted => Some(Observation::AuthSucceeded { ip, user }),
            SshKind::ClosedAfterAuth => None,
            SshKind::Probe(p) => Some(Observation::Probe { ip, evidence: p.as_str() }),
        }
    }
}

/// Reads one log line (without its newline) in any of the three forms. `None`: not sshd, or nothing
/// about a source. Never panics, whatever the bytes.
pub fn parse(line: &str) -> Option<SshLine<'_>> {
    parse_message(message(line)?)
}

/// The sshd message inside a line: a journald JSON object's `MESSAGE` (as `journalctl -o json`
/// prints it), a syslog line's text after `sshd[PID]: `, or the line itself (`sshd -E FILE`).
pub fn message(line: &str) -> Option<&str> {
    let line = line.trim_end_matches(['\r', '\n']);
    let b = line.as_bytes();
    match b.first() {
        Some(b'{') => journal_message(line),
        Some(c) if c.is_ascii_digit() && b.get(4) == Some(&b'-') => syslog_message(skip_tokens(line, 1)?),
        Some(c)
            if c.is_ascii_uppercase()
                && b.get(3) == Some(&b' ')
                && b.get(4).is_some_and(|c| *c == b' ' || c.is_ascii_digit()) =>
        {
            syslog_message(skip_tokens(line, 3)?)
        }
        _ => Some(line),
    }
}

/// Skips `n` space-separated tokens (runs of spaces count as one: "Nov  3").
fn skip_tokens(mut s: &str, n: usize) -> Option<&str> {
    for _ in 0..n {
        s = s.trim_start_matches(' ');
        s = &s[s.find(' ')?..];
    }
    Some(s.trim_start_matches(' '))
}

/// `HOST TAG: MESSAGE`, kept only when the program is sshd (9.8 and later log logins as sshd-session).
fn syslog_message(s: &str) -> Option<&str> {
    let rest = skip_tokens(s, 1)?;
    let (tag, msg) = rest.split_once(": ")?;
    let name = tag.split('[').next().unwrap_or(tag);
    is_sshd(name).then_some(msg)
}

fn is_sshd(name: &str) -> bool {
    matches!(name, "sshd" | "sshd-session" | "sshd-auth")
}

/// The raw `MESSAGE` of a journal entry. JSON escapes stay as they are: the parts that matter (the
/// address, the keywords) never contain any, and a user name is only displayed. A `MESSAGE` that is not
/// UTF-8 comes as an array of bytes and is skipped.
fn journal_message(line: &str) -> Option<&str> {
    if let Some(id) = json_string(line, "\"SYSLOG_IDENTIFIER\":\"").or_else(|| json_string(line, "\"_COMM\":\""))
        && !is_sshd(id)
    {
        return None;
    }
    json_string(line, "\"MESSAGE\":\"")
}

fn json_string<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let b = line.as_bytes();
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return line.get(start..i),
            _ => i += 1,
        }
    }
    None
}

fn parse_message(msg: &str) -> Option<SshLine<'_>> {
    // In syslog sshd marks errors and fatal errors so; `-E` files and the journal carry the bare text.
    let msg = msg.strip_prefix("error: ").or_else(|| msg.strip_prefix("fatal: ")).unwrap_or(msg);
    let (first, rest) = msg.split_once(' ')?;
    match first {
        "Failed" => for_user_from(rest, SshKind::AuthFailed),
        "Accepted" => for_user_from(rest, SshKind::Accepted),
        "Invalid" => {
            let rest = rest.strip_prefix("user ")?;
            let (user, ip, port) = user_from(rest)?;
            Some(line(SshKind::InvalidUser, ip, port, Some(user), None, true))
        }
        "maximum" => {
            let rest = rest.strip_prefix("authentication attempts exceeded for ")?;
            for_user_from_rest(rest, SshKind::TooManyAttempts, None)
        }
        "PAM:" => {
            let rest = rest.strip_prefix("Authentication failure for ")?;
            let (rest, invalid) = match rest.strip_prefix("illegal user ") {
                Some(r) => (r, true),
                None => (rest, false),
            };
            let at = rest.rfind(" from ")?;
            let ip = rest[at + 6..].parse().ok()?;
            Some(line(SshKind::PamFailed, ip, None, Some(&rest[..at]), None, invalid))
        }
        "Connection" => {
            if let Some(r) = rest.strip_prefix("closed by ") {
                closed(r, Probe::Closed)
            } else {
                closed(rest.strip_prefix("reset by ")?, Probe::Reset)
            }
        }
        "Disconnected" => closed(rest.strip_prefix("from ")?, Probe::Disconnected),
        "banner" => probe_from(rest.strip_prefix("exchange: Connection from ")?, Probe::Banner),
        "Unable" => probe_from(rest.strip_prefix("to negotiate with ")?, Probe::KeyExchange),
        "ssh_dispatch_run_fatal:" => probe_from(rest.strip_prefix("Connection from ")?, Probe::KeyExchange),
        "Timeout" => probe_from(rest.strip_prefix("before authentication for ")?, Probe::Timeout),
        "Did" => {
            let r = rest.strip_prefix("not receive identification string from ")?;
            probe_from(r, Probe::Banner)
        }
        "Bad" => {
            let r = rest.strip_prefix("protocol version identification ")?;
            let at = r.rfind(" from ")?;
            probe_from(&r[at + 6..], Probe::Banner)
        }
        _ => None,
    }
}

fn line<'a>(
    kind: SshKind,
    ip: IpAddr,
    port: Option<u16>,
    user: Option<&'a str>,
    method: Option<&'a str>,
    invalid_user: bool,
) -> SshLine<'a> {
    SshLine { kind, ip, port, user, method, invalid_user }
}

/// `METHOD for [invalid user ]USER from IP port N ...`
fn for_user_from(rest: &str, kind: SshKind) -> Option<SshLine<'_>> {
    let (method, rest) = rest.split_once(" for ")?;
    if method.contains(' ') {
        return None;
    }
    for_user_from_rest(rest, kind, Some(method))
}

fn for_user_from_rest<'a>(rest: &'a str, kind: SshKind, method: Option<&'a str>) -> Option<SshLine<'a>> {
    let (rest, invalid) = match rest.strip_prefix("invalid user ") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (user, ip, port) = user_from(rest)?;
    Some(line(kind, ip, port, Some(user), method, invalid))
}

/// `USER from IP[ port N[ ...]]`, read from the right: the last " from " is sshd's (an empty user
/// name is logged as `Invalid user  from ...`).
fn user_from(s: &str) -> Option<(&str, IpAddr, Option<u16>)> {
    let at = s.rfind(" from ")?;
    let (ip, port) = addr_port(&s[at + 6..])?;
    Some((&s[..at], ip, port))
}

/// `IP[ port N]` followed by anything (` ssh2`, `: ...`, ` [preauth]`).
fn addr_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let end = s.find(' ').unwrap_or(s.len());
    let ip = s[..end].parse().ok()?;
    let port = s[end..].strip_prefix(" port ").and_then(|r| {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        r[..end].parse().ok()
    });
    Some((ip, port))
}

fn probe_from(s: &str, p: Probe) -> Option<SshLine<'_>> {
    let (ip, port) = addr_port(s)?;
    Some(line(SshKind::Probe(p), ip, port, None, None, false))
}

/// After `Connection closed by ` and the like: `[authenticating |invalid ]user USER IP port N [preauth]`
/// or `IP port N[ [preauth]]`. Only pre-authentication ends count: a finished session's
/// `Disconnected from user USER IP port N` is nothing to us.
fn closed(s: &str, p: Probe) -> Option<SshLine<'_>> {
    let (s, preauth) = match s.strip_suffix(" [preauth]") {
        Some(s) => (s, true),
        None => (s, false),
    };
    let at = s.rfind(" port ")?;
    let port: u16 = s[at + 6..].parse().ok()?;
    let head = &s[..at];
    let (who, ip) = match head.rfind(' ') {
        Some(sp) => (Some(&head[..sp]), &head[sp + 1..]),
        None => (None, head),
    };
    let ip: IpAddr = ip.parse().ok()?;
    match who {
        None if preauth || p == Probe::Closed => Some(line(SshKind::Probe(p), ip, Some(port), None, None, false)),
        None => None,
        Some(who) if preauth => {
            let (user, invalid) = if let Some(u) = who.strip_prefix("authenticating user ") {
                (u, false)
            } else {
                (who.strip_prefix("invalid user ")?, true)
            };
            Some(line(SshKind::ClosedAfterAuth, ip, Some(port), Some(user), None, invalid))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests;
