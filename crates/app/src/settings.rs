//! Run-time settings: one table of keys, each with its default, meaning and validation. Values live in
//! the database; `pbxguard settings` edits them and a running daemon applies them within a second.
//! Bootstrap-only options (listen addresses, data dir, TLS files) are in the TOML config instead.

use crate::{Result, invalid};
use pbxguard_pbx::RegistrarConfig;
use pbxguard_sip::Algorithm;
use pbxguard_store::Backend;

pub struct SettingDef {
    pub key: &'static str,
    /// `None`: computed when the database is created (see [`open_store`]).
    pub default: Option<&'static str>,
    pub doc: &'static str,
    validate: fn(&str) -> std::result::Result<(), String>,
}

fn seconds(min: u64, max: u64) -> impl Fn(&str) -> std::result::Result<(), String> {
    move |v| match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(format!("expected a whole number of seconds from {min} to {max}")),
    }
}

pub fn parse_algorithms(v: &str) -> std::result::Result<Vec<Algorithm>, String> {
    let mut out = Vec::new();
    for name in v.split(',').map(str::trim) {
        let a = Algorithm::from_name(name)
            .ok_or_else(|| format!("unknown digest algorithm {name:?}: use MD5, SHA-256 or SHA-512-256, comma-separated in order of preference"))?;
        if out.contains(&a) {
            return Err(format!("{name} is listed twice"));
        }
        out.push(a);
    }
    Ok(out)
}

/// Longest trunk call allowed as a limit (a week: nobody's legitimate call runs longer).
pub const MAX_TRUNK_CALL_MS: u64 = 7 * 24 * 3_600_000;

/// A longest trunk call (`calls.max_trunk_duration`, `ext limits --max-duration`), ms; 0 for `off`.
pub fn parse_max_trunk_duration(v: &str) -> std::result::Result<u64, String> {
    if v.trim() == "off" {
        return Ok(0);
    }
    match pbxguard_shield::config::parse_duration_ms(v) {
        Some(ms) if (1_000..=MAX_TRUNK_CALL_MS).contains(&ms) && ms % 1_000 == 0 => Ok(ms),
        _ => Err("expected a duration from 1s to 7d in whole seconds, such as 4h, 90m or 30s, or off".into()),
    }
}

pub const SETTINGS: &[SettingDef] = &[
    SettingDef {
        key: "sip.realm",
        default: None,
        doc: "Digest realm (default: the host name when the database was created). Secrets are stored as hashes bound to it, so it can only change while no extension exists.",
        validate: |v| {
            if v.is_empty() || v.len() > 128 || v.bytes().any(|b| b == b'"' || b == b'\\' || b.is_ascii_control()) {
                Err("expected 1-128 characters without quotes, backslashes or control characters".into())
            } else {
                Ok(())
            }
        },
    },
    SettingDef {
        key: "auth.algorithms",
        default: Some("MD5,SHA-256"),
        doc: "Digest algorithms offered, in order. Many phones and SIPp only answer the first challenge and only MD5, so MD5 comes first by default; put SHA-256 first when every phone supports it. Per extension: ext add --algorithms.",
        validate: |v| parse_algorithms(v).map(drop),
    },
    SettingDef {
        key: "auth.nonce_ttl",
        default: Some("300"),
        doc: "Seconds a digest nonce stays valid; answers with an older nonce get a new challenge with stale=true.",
        validate: |v| seconds(30, 3600)(v),
    },
    SettingDef {
        key: "registrar.min_expires",
        default: Some("60"),
        doc: "Shortest registration accepted, seconds; shorter requests get 423 Interval Too Brief with Min-Expires.",
        validate: |v| seconds(1, 86_400)(v),
    },
    SettingDef {
        key: "registrar.max_expires",
        default: Some("3600"),
        doc: "Longest registration granted, seconds; longer requests are shortened to it.",
        validate: |v| seconds(1, 604_800)(v),
    },
    SettingDef {
        key: "registrar.default_expires",
        default: Some("3600"),
        doc: "Registration length when the phone asks for none, seconds (then capped by registrar.max_expires).",
        validate: |v| seconds(1, 604_800)(v),
    },
    SettingDef {
        key: "registrar.max_contacts",
        default: Some("10"),
        doc: "Contacts kept per extension; one more replaces the oldest.",
        validate: |v| count(v, 1, 100),
    },
    SettingDef {
        key: "sip.tcp_auth_timeout",
        default: Some("30"),
        doc: "Seconds a TCP or TLS connection may stay open before one of its requests authenticates (a REGISTER or INVITE whose digest the registrar or proxy accepted); then it is closed, like Asterisk's tcpauthtimeout. Trusted networks and connections this daemon opened are exempt; authenticated connections are closed after sip.idle_timeout of silence.",
        validate: |v| seconds(5, 3600)(v),
    },
    SettingDef {
        key: "sip.tcp_incomplete_timeout",
        default: Some("10"),
        doc: "Seconds a TCP or TLS connection may hold an unfinished message (headers or body still missing) after its last byte; then it is closed (slow-header and slow-body attacks).",
        validate: |v| seconds(1, 600)(v),
    },
    SettingDef {
        key: "shield.connections",
        default: Some("8"),
        doc: "Most TCP/TLS connections one source may hold open that have not authenticated; the next one is refused and bans the source (detector connections). Connections that authenticated do not count; trusted networks are exempt; an address that authenticated within shield.known_good is refused the excess but not banned (phones behind one NAT reconnecting at once).",
        validate: |v| count(v, 1, 10_000),
    },
    SettingDef {
        key: "shield.connection_rate",
        default: Some("30/10s"),
        doc: "Connections (TCP, TLS) one source may open within DURATION, authenticated or not; the next one is refused and bans the source (detector connections). Same exemptions as shield.connections.",
        validate: |v| threshold(v).map(drop),
    },
    SettingDef {
        key: "shield.flood",
        default: Some("30/2s"),
        doc: "Flood: a source sending more than COUNT messages (any SIP message, valid or not) within DURATION of the first is banned by the next one. Trusted networks are exempt.",
        validate: |v| threshold(v).map(drop),
    },
    SettingDef {
        key: "shield.brute_force",
        default: Some("5/10m"),
        doc: "Brute force: COUNT failed authentications from one address within DURATION ban it. A success resets its count.",
        validate: |v| threshold(v).map(drop),
    },
    SettingDef {
        key: "shield.enumeration",
        default: Some("3/10m"),
        doc: "Enumeration: COUNT distinct unknown users tried from one address within DURATION ban it.",
        validate: |v| threshold(v).map(drop),
    },
    SettingDef {
        key: "shield.malformed",
        default: Some("10/1m"),
        doc: "Malformed messages: COUNT from one address within DURATION ban it.",
        validate: |v| threshold(v).map(drop),
    },
    SettingDef {
        key: "shield.ssh",
        default: Some("5/10m"),
        doc: "SSH guard: COUNT failed logins, invalid users and scanner connections from one address within DURATION ban it (every port, SIP included). A wrong password counts 1, an invalid user 2 (its Invalid user line and its failure), a connection dropped at the banner or failing the key exchange 1; a key the server does not know counts nothing unless the client reaches MaxAuthTries (1). A successful login resets the address's count. Trusted networks are exempt.",
        validate: |v| threshold(v).map(drop),
    },
    SettingDef {
        key: "shield.user_attack",
        default: Some("20/10m"),
        doc: "Distributed attack on one extension: COUNT failures against it within DURATION from 3 or more addresses raise an alert and throttle it for 15 minutes; addresses that authenticated as it before are never throttled.",
        validate: |v| threshold(v).map(drop),
    },
    SettingDef {
        key: "shield.ban_durations",
        default: Some("1h,6h,24h,7d"),
        doc: "Ban length for an address's 1st, 2nd, 3rd... offence within 30 days; the last one repeats.",
        validate: |v| durations(v).map(drop),
    },
    SettingDef {
        key: "shield.max_bans",
        default: Some("100000"),
        doc: "Most addresses banned by the detectors at once. A new ban past it lifts the one closest to its end (operators' bans are not counted and never lifted), so a flood from spoofed addresses cannot exhaust memory; pbxguard_bans_evicted_total counts them.",
        validate: |v| count(v, 100, 10_000_000),
    },
    SettingDef {
        key: "shield.known_good",
        default: Some("24h"),
        doc: "An address that authenticated (or holds a registration) within this long is known-good: evidence that a forged UDP datagram could carry (scanner User-Agent, malformed messages, a flood, unknown users without our nonce) never bans it; such messages are dropped and logged as suspected spoofs. Verified evidence (failed answers to our nonces, anything over TCP/TLS) still bans it.",
        validate: |v| match pbxguard_shield::config::parse_duration_ms(v) {
            Some(ms) if (60_000..=30 * 86_400_000).contains(&ms) => Ok(()),
            _ => Err("expected a duration from 1m to 30d, such as 24h".into()),
        },
    },
    SettingDef {
        key: "shield.ipv6_prefix",
        default: Some("64"),
        doc: "Detectors count, and ban, an IPv6 source's prefix of this length: a residential customer holds a /64, so an attacker rotating addresses inside it is one attacker and one ban. Known-good addresses inside a banned prefix keep working; operators' bans are exact.",
        validate: |v| count(v, 32, 128),
    },
    SettingDef {
        key: "shield.ipv4_prefix",
        default: Some("32"),
        doc: "The same for IPv4 (32: each address on its own; 24 would treat a whole /24 as one source).",
        validate: |v| count(v, 16, 32),
    },
    SettingDef {
        key: "shield.scanner_user_agents",
        default: Some(SCANNER_UAS),
        doc: "User-Agent substrings (comma-separated, case-insensitive) that mark an attack tool; a match bans the source at once. Each entry is 4 to 64 characters and not a word real phones share (sip, voip, phone, softphone, client, agent, user-agent are refused); empty: no User-Agent check.",
        validate: |v| scanner_patterns(v),
    },
    SettingDef {
        key: "shield.scanner_from",
        default: Some("\"sipvicious\",@1.1.1.1>"),
        doc: "From-header substrings (comma-separated, case-insensitive) that mark an attack tool: sipvicious' display name and its fake host. Same rules as shield.scanner_user_agents.",
        validate: |v| scanner_patterns(v),
    },
    SettingDef {
        key: "blacklist.refresh",
        default: Some("4h"),
        doc: "How often blacklists imported from a URL are downloaded again. A failed download keeps the previous entries.",
        validate: |v| match pbxguard_shield::config::parse_duration_ms(v) {
            Some(ms) if ms >= 60_000 => Ok(()),
            _ => Err("expected a duration of at least 1m, such as 30m, 4h or 1d".into()),
        },
    },
    SettingDef {
        key: "report.url",
        default: Some(""),
        doc: "Where banned attackers are reported (voipbl-style HTTP endpoint, form POST of ip, reason, evidence, time). Empty: reporting off. Only detector bans are reported, never operator bans.",
        validate: |v| {
            if v.is_empty() || crate::blacklist::is_url(v) {
                Ok(())
            } else {
                Err("expected an http:// or https:// URL, or empty to turn reporting off".into())
            }
        },
    },
    SettingDef {
        key: "report.per_minute",
        default: Some("30"),
        doc: "Most reports sent per minute; the rest wait in a bounded queue. Failed reports are retried with exponential backoff (up to 8 attempts).",
        validate: |v| count(v, 1, 6000),
    },
    SettingDef {
        key: "password_policy.enforce",
        default: Some("true"),
        doc: "Enable the password policy for SIP extensions: ext add and ext passwd refuse a secret that breaks it (8+ characters, upper and lower case, a digit, a special character, not containing the extension number, not a common password, no run of 4 identical or consecutive characters), and say why. Turning it on lists every non-compliant extension.",
        validate: bool_setting,
    },
    SettingDef {
        key: "password_policy.autofix",
        default: Some("false"),
        doc: "Automatically fix invalid passwords: while the policy is enforced, every extension whose secret breaks it gets a generated compliant secret, shown once (settings set ... --csv for provisioning), and a security event is logged.",
        validate: bool_setting,
    },
    SettingDef {
        key: "password_policy.min_length",
        default: Some("8"),
        doc: "Shortest SIP secret the policy accepts (8 to 64).",
        validate: |v| count(v, 8, 64),
    },
    SettingDef {
        key: "voicemail.pin_min_length",
        default: Some("6"),
        doc: "Shortest voicemail PIN accepted (never under 4). PINs are digits only, not the extension number, not one repeated digit, not an ascending or descending run, not a common PIN; setting the PIN to the extension number is allowed and forces initialisation.",
        validate: |v| count(v, 4, 16),
    },
    SettingDef {
        key: "calls.numbering_plan",
        default: Some("nanp"),
        doc: "Numbering plan that gives each dialled number its category for Class of Service: nanp (North America: 911, 011/00/+ international, 1-8XX toll-free, 1-900 premium, 10/11-digit national, 7-digit local) or e164 (generic: 112/911/999, 00/+ international, 09 premium, 080 toll-free, 06/07/015-017 mobile, 0 national, other local).",
        validate: |v| pbxguard_shield::NumberingPlan::by_name(v).map(drop),
    },
    SettingDef {
        key: "calls.max_duration",
        default: Some("4h"),
        doc: "A call with no in-dialog request (no BYE, no re-INVITE) for this long is dropped from the dialog table and frees its concurrent-call slot (a phone that vanished mid-call).",
        validate: |v| {
            pbxguard_shield::config::parse_duration_ms(v)
                .filter(|d| *d >= 60_000)
                .map(drop)
                .ok_or_else(|| "expected a duration of at least 1m, such as 4h".into())
        },
    },
    SettingDef {
        key: "calls.max_trunk_duration",
        default: Some("4h"),
        doc: "Toll fraud: the longest call through a trunk (outbound or inbound), counted from the answer, such as 4h or 90m: then pbxguard sends BYE to both parties, logs a `call-cut` event and ends the call in the calls log, so a hijacked call to a premium-rate number cannot run all weekend. Emergency calls and calls between extensions are never cut. `off`: no limit. From 1s to 7d; per extension: ext limits NUMBER --max-duration.",
        validate: |v| parse_max_trunk_duration(v).map(drop),
    },
    SettingDef {
        key: "fraud.max_concurrent",
        default: Some("2"),
        doc: "Toll fraud: most concurrent outbound (trunk) calls per extension; one more gets 403 and a security event.",
        validate: |v| count(v, 1, 1000),
    },
    SettingDef {
        key: "fraud.calls_per_hour",
        default: Some("20"),
        doc: "Toll fraud: most outbound (trunk) call attempts per extension in any 60 minutes.",
        validate: |v| count(v, 1, 1_000_000),
    },
    SettingDef {
        key: "fraud.international_per_hour",
        default: Some("10"),
        doc: "Toll fraud: most international call attempts in any 60 minutes, all extensions together.",
        validate: |v| count(v, 0, 1_000_000),
    },
    SettingDef {
        key: "fraud.business_hours",
        default: Some(""),
        doc: "Toll fraud: when trunk calls are expected, such as `mon-fri 08:00-18:00 +01:00` (days, span, offset from UTC); a trunk call outside them is an unusual call (an `unusual-call` event, and a suspension with fraud.suspend_on_anomaly). Empty: off.",
        validate: |v| pbxguard_shield::anomaly::BusinessHours::parse(v).map(drop),
    },
    SettingDef {
        key: "fraud.suspend_on_anomaly",
        default: Some("false"),
        doc: "Toll fraud: suspend an extension (and refuse the call) on an unusual call: its first call to a new country or to premium-rate, or a trunk call outside fraud.business_hours. Off: the call goes ahead and the `unusual-call` event is the alert.",
        validate: bool_setting,
    },
    SettingDef {
        key: "fraud.suspend",
        default: Some("true"),
        doc: "Suspend an extension's outbound calls when it goes over fraud.calls_per_hour or fraud.international_per_hour, until an operator runs `pbxguard ext enable NUMBER` (emergency calls always pass).",
        validate: bool_setting,
    },
    SettingDef {
        key: "ssh.guard.enabled",
        default: Some("true"),
        doc: "SSH guard: follow sshd's log (ssh.guard.logs) and ban sources that fail to log in or scan (threshold shield.ssh). Applied by a running daemon within a second.",
        validate: bool_setting,
    },
    SettingDef {
        key: "ssh.guard.logs",
        default: Some("auto"),
        doc: "Where the SSH guard reads sshd's log: auto (the journal through `journalctl -f -o json -u ssh -u sshd` when journald runs, else /var/log/auth.log), or a comma-separated list of absolute file paths (syslog files, or sshd -E files) and the word journald. Files are followed across rotation (rename and create) and truncation; only lines written after the guard starts are read.",
        validate: |v| crate::ssh::parse_log_sources(v).map(drop),
    },
    SettingDef {
        key: "ssh.sshd",
        default: Some("/usr/sbin/sshd"),
        doc: "The sshd binary `pbxguard ssh set` validates a change with (`sshd -t -f ssh.config`).",
        validate: absolute_path,
    },
    SettingDef {
        key: "ssh.config",
        default: Some("/etc/ssh/sshd_config"),
        doc: "sshd's main configuration file, read by `pbxguard ssh status` with the files it includes.",
        validate: absolute_path,
    },
    SettingDef {
        key: "ssh.dropin",
        default: Some("/etc/ssh/sshd_config.d/pbxguard.conf"),
        doc: "The one file `pbxguard ssh set` writes; ssh.config must include it (Debian's does: Include /etc/ssh/sshd_config.d/*.conf).",
        validate: absolute_path,
    },
    SettingDef {
        key: "ssh.pid_file",
        default: Some("/run/sshd.pid"),
        doc: "sshd's pid file: `pbxguard ssh set` reloads sshd with SIGHUP to that process, or with `systemctl reload ssh` when there is none.",
        validate: absolute_path,
    },
    SettingDef {
        key: "firewall.enabled",
        default: Some("false"),
        doc: "Enforce bans, blacklists and trusted networks in the host's nftables (table inet pbxguard, which `pbxguard firewall apply` creates): banned sources are dropped by the kernel on every port, before connection tracking. Off: bans are enforced by pbxguard itself, for its own services only.",
        validate: bool_setting,
    },
    SettingDef {
        key: "firewall.policy",
        default: Some("drop"),
        doc: "What the host firewall's input chain does with a packet no rule accepted (pbxguard firewall render/apply): drop (only the services of `pbxguard firewall wizard` are reachable) or accept (rules only count; bans and blacklists still drop). Takes effect at the next apply.",
        validate: |v| if v == "drop" || v == "accept" { Ok(()) } else { Err("expected drop or accept".into()) },
    },
    SettingDef {
        key: "acme.directory",
        default: Some(""),
        doc: "The ACME (RFC 8555) directory URL of the CA that issues the TLS certificate, such as https://acme-v02.api.letsencrypt.org/directory. With acme.domains set, the daemon obtains a certificate for them (HTTP-01) and renews it 30 days before it expires (checked hourly); `pbxguard cert acme` obtains one now. Empty: ACME off.",
        validate: |v| {
            if v.is_empty()
                || (v.starts_with("https://") && v.len() <= 2048 && !v.chars().any(|c| c.is_control() || c == ' '))
            {
                Ok(())
            } else {
                Err("expected an https:// URL (ACME servers speak HTTPS only), or empty to turn ACME off".into())
            }
        },
    },
    SettingDef {
        key: "acme.domains",
        default: Some(""),
        doc: "The DNS names the ACME certificate is for, comma-separated (the first is its subject). Each must resolve to this host, which must answer on acme.http_port from the internet. No wildcards (HTTP-01 cannot prove them).",
        validate: crate::certs::check_acme_domains,
    },
    SettingDef {
        key: "acme.email",
        default: Some(""),
        doc: "Contact address given to the ACME CA for its account (expiry warnings). Empty: none.",
        validate: |v| {
            let ok = v.is_empty()
                || (v.len() <= 254
                    && v.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.'))
                    && !v.chars().any(|c| c.is_whitespace() || c.is_control() || c == ','));
            if ok { Ok(()) } else { Err("expected an e-mail address such as admin@example.com, or empty".into()) }
        },
    },
    SettingDef {
        key: "acme.ca_file",
        default: Some(""),
        doc: "PEM file of the CA that signs the ACME server's own HTTPS certificate, trusted instead of the public roots: for a private or test ACME server (pebble). Empty: the public roots.",
        validate: |v| if v.is_empty() { Ok(()) } else { absolute_path(v) },
    },
    SettingDef {
        key: "acme.http_port",
        default: Some("80"),
        doc: "TCP port the daemon answers ACME HTTP-01 challenges on while it obtains a certificate (the CA connects to port 80; another port only behind a redirect, or for a test CA). Opened only during an order.",
        validate: |v| count(v, 1, 65535),
    },
];

/// Words every phone's User-Agent or From header may contain: as a scanner pattern each would ban real
/// phones at once.
const GENERIC_PATTERNS: &[&str] =
    &["sip", "voip", "phone", "softphone", "client", "agent", "user-agent", "sip:", "<sip:"];

fn scanner_patterns(v: &str) -> std::result::Result<(), String> {
    const RULE: &str = "expected comma-separated substrings of 4 to 64 characters (at most 4096 in all), none a word real phones share (sip, voip, phone, softphone, client, agent, user-agent), or empty for no check";
    if v.len() > 4096 {
        return Err(RULE.into());
    }
    for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lower = p.to_ascii_lowercase();
        if !(4..=64).contains(&p.chars().count()) || GENERIC_PATTERNS.contains(&lower.as_str()) {
            return Err(format!("{p:?} would match real phones or is too long: {RULE}"));
        }
    }
    Ok(())
}

fn count(v: &str, min: u32, max: u32) -> std::result::Result<(), String> {
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

fn absolute_path(v: &str) -> std::result::Result<(), String> {
    if v.starts_with('/') && v.len() <= 4096 && !v.chars().any(char::is_control) {
        Ok(())
    } else {
        Err("expected an absolute path such as /etc/ssh/sshd_config".into())
    }
}

fn bool_setting(v: &str) -> std::result::Result<(), String> {
    if v == "true" || v == "false" { Ok(()) } else { Err("expected true or false".into()) }
}

fn threshold(v: &str) -> std::result::Result<(u32, u64), String> {
    let err = || format!("expected COUNT/DURATION such as 30/2s or 5/10m, not {v:?}");
    let (n, d) = v.split_once('/').ok_or_else(err)?;
    let n: u32 = n.trim().parse().ok().filter(|n| (1..=100_000).contains(n)).ok_or_else(err)?;
    let d = pbxguard_shield::config::parse_duration_ms(d).ok_or_else(err)?;
    Ok((n, d))
}

fn durations(v: &str) -> std::result::Result<Vec<u64>, String> {
    v.split(',')
        .map(|d| {
            pbxguard_shield::config::parse_duration_ms(d)
                .ok_or_else(|| format!("expected comma-separated durations such as 1h,6h,24h,7d; {d:?} is not one"))
        })
        .collect()
}

fn def(key: &str) -> Result<&'static SettingDef> {
    SETTINGS.iter().find(|d| d.key == key).ok_or_else(|| {
        let keys: Vec<&str> = SETTINGS.iter().map(|d| d.key).collect();
        invalid!("unknown setting {key:?}; known settings: {}", keys.join(", "))
    })
}

pub fn get(store: &dyn Backend, key: &str) -> Result<String> {
    let d = def(key)?;
    match store.setting(key)? {
        Some(v) => Ok(v),
        None => d.default.map(str::to_owned).ok_or_else(|| invalid!("setting {key} is not initialised")),
    }
}

/// A setting's default value (for a computed one, what it would be computed as now).
pub fn default_value(key: &str) -> Result<String> {
    let d = def(key)?;
    Ok(d.default.map_or_else(host_name, str::to_owned))
}

/// The values a setting takes, as its validation words them (what it says of an empty value);
/// `None` when an empty value is allowed too.
pub fn allowed(key: &str) -> Result<Option<String>> {
    let d = def(key)?;
    Ok((d.validate)("").err().map(|e| e.trim_start_matches("\"\": ").trim_start_matches("\"\" ").to_owned()))
}

fn get_num<T: std::str::FromStr>(store: &dyn Backend, key: &str) -> Result<T> {
    get(store, key)?
        .parse()
        .map_err(|_| invalid!("stored value of {key} is invalid; fix it with `pbxguard settings set {key} VALUE`"))
}

/// Validates and stores a setting, or explains what is wrong and changes nothing.
pub fn set(store: &dyn Backend, key: &str, value: &str) -> Result<()> {
    let d = def(key)?;
    (d.validate)(value).map_err(|e| invalid!("invalid value for {key}: {e}"))?;
    if key == "sip.realm" {
        let n = store.extension_count()?;
        if n > 0 && get(store, key)? != value {
            return Err(crate::conflict!(
                "cannot change sip.realm while {n} extension(s) exist: their secrets are stored as hashes bound to the realm. \
                 Delete the extensions, change the realm, then add them again with their secrets (or --generate new ones)"
            ));
        }
    }
    let probe = |k: &str| -> Result<u64> {
        if k == key {
            value.parse().map_err(|_| invalid!("invalid value for {key}: expected a whole number"))
        } else {
            get_num(store, k)
        }
    };
    if key.starts_with("registrar.") && key != "registrar.max_contacts" {
        let (min, def_, max) =
            (probe("registrar.min_expires")?, probe("registrar.default_expires")?, probe("registrar.max_expires")?);
        if !(min <= def_ && def_ <= max) {
            return Err(invalid!(
                "registrar.min_expires ({min}) <= registrar.default_expires ({def_}) <= registrar.max_expires ({max}) must hold; change the others first"
            ));
        }
    }
    store.set_setting(key, value)?;
    Ok(())
}

/// The registrar configuration as currently stored.
pub fn registrar_config(store: &dyn Backend) -> Result<RegistrarConfig> {
    Ok(RegistrarConfig {
        realm: get(store, "sip.realm")?,
        algorithms: parse_algorithms(&get(store, "auth.algorithms")?).map_err(|e| invalid!("auth.algorithms: {e}"))?,
        nonce_ttl: get_num(store, "auth.nonce_ttl")?,
        min_expires: get_num(store, "registrar.min_expires")?,
        max_expires: get_num(store, "registrar.max_expires")?,
        default_expires: get_num(store, "registrar.default_expires")?,
        max_contacts: get_num(store, "registrar.max_contacts")?,
    })
}

/// The protection engine's configuration as currently stored.
pub fn shield_config(store: &dyn Backend) -> Result<pbxguard_shield::ShieldConfig> {
    let t = |k: &str| -> Result<pbxguard_shield::Threshold> {
        let (max, window_ms) = threshold(&get(store, k)?).map_err(|e| invalid!("{k}: {e}"))?;
        Ok(pbxguard_shield::Threshold { max, window_ms })
    };
    Ok(pbxguard_shield::ShieldConfig {
        flood: t("shield.flood")?,
        brute_force: t("shield.brute_force")?,
        enumeration: t("shield.enumeration")?,
        malformed: t("shield.malformed")?,
        ssh: t("shield.ssh")?,
        user_failures: t("shield.user_attack")?,
        max_unauthenticated: get_num(store, "shield.connections")?,
        connection_rate: t("shield.connection_rate")?,
        ban_durations_ms: durations(&get(store, "shield.ban_durations")?)
            .map_err(|e| invalid!("shield.ban_durations: {e}"))?,
        max_bans: get_num(store, "shield.max_bans")?,
        ipv4_prefix: get_num(store, "shield.ipv4_prefix")?,
        ipv6_prefix: get_num(store, "shield.ipv6_prefix")?,
        known_good_ms: pbxguard_shield::config::parse_duration_ms(&get(store, "shield.known_good")?)
            .ok_or_else(|| invalid!("shield.known_good: stored value is not a duration"))?,
        ..Default::default()
    })
}

/// The SSH guard's settings as stored.
pub fn ssh_guard(store: &dyn Backend) -> Result<crate::ssh::GuardSettings> {
    let logs =
        crate::ssh::parse_log_sources(&get(store, "ssh.guard.logs")?).map_err(|e| invalid!("ssh.guard.logs: {e}"))?;
    Ok(crate::ssh::GuardSettings { enabled: get(store, "ssh.guard.enabled")? == "true", logs })
}

/// The sshd `pbxguard ssh` manages.
pub fn ssh_paths(store: &dyn Backend) -> Result<crate::ssh::SshPaths> {
    Ok(crate::ssh::SshPaths {
        sshd: get(store, "ssh.sshd")?.into(),
        config: get(store, "ssh.config")?.into(),
        dropin: get(store, "ssh.dropin")?.into(),
        pid_file: get(store, "ssh.pid_file")?.into(),
    })
}

/// How long a TCP or TLS connection may go without authenticating, and hold an unfinished message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTimeouts {
    pub auth_s: u64,
    pub incomplete_s: u64,
}

pub fn stream_timeouts(store: &dyn Backend) -> Result<StreamTimeouts> {
    Ok(StreamTimeouts {
        auth_s: get_num(store, "sip.tcp_auth_timeout")?,
        incomplete_s: get_num(store, "sip.tcp_incomplete_timeout")?,
    })
}

/// Toll-fraud limits as currently stored.
pub fn call_limits(store: &dyn Backend) -> Result<pbxguard_shield::CallLimits> {
    Ok(pbxguard_shield::CallLimits {
        max_concurrent: get_num(store, "fraud.max_concurrent")?,
        per_hour: get_num(store, "fraud.calls_per_hour")?,
        international_per_hour: get_num(store, "fraud.international_per_hour")?,
        suspend: get(store, "fraud.suspend")? == "true",
        business_hours: pbxguard_shield::anomaly::BusinessHours::parse(&get(store, "fraud.business_hours")?)
            .map_err(|e| invalid!("stored fraud.business_hours: {e}"))?,
        suspend_on_anomaly: get(store, "fraud.suspend_on_anomaly")? == "true",
    })
}

pub fn fingerprints(store: &dyn Backend) -> Result<pbxguard_shield::Fingerprints> {
    let uas = get(store, "shield.scanner_user_agents")?;
    let from = get(store, "shield.scanner_from")?;
    Ok(pbxguard_shield::Fingerprints::new(uas.split(','), from.split(',')))
}

/// The built-in scanner list as the setting's default (kept in one place: the shield crate).
const SCANNER_UAS: &str = "friendly-scanner,sipvicious,sipcli,sip-scan,sipsak,sundayddr,iwar,sivus,siparmyknife,smap,vaxsipuseragent,pplsip,sipptk,cesar,nmap nse,nessus";

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && (def("sip.realm").map(|d| (d.validate)(s).is_ok()).unwrap_or(false)))
        .unwrap_or_else(|| "pbxguard".to_owned())
}

/// Fixes the computed defaults when the database is created, so that every later command sees the
/// same realm.
pub fn initialise(store: &dyn Backend) -> Result<()> {
    if store.setting("sip.realm")?.is_none() {
        store.set_setting("sip.realm", &host_name())?;
    }
    Ok(())
}

/// The ACME settings, read together.
pub fn acme(store: &pbxguard_store::Store) -> Result<crate::certs::AcmeSettings> {
    let get = |k| get(store, k);
    let ca = get("acme.ca_file")?;
    Ok(crate::certs::AcmeSettings {
        directory: get("acme.directory")?,
        domains: get("acme.domains")?.split(',').map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()).collect(),
        email: get("acme.email")?,
        ca_file: (!ca.is_empty()).then(|| std::path::PathBuf::from(ca)),
        http_port: get("acme.http_port")?.parse().map_err(|_| invalid!("acme.http_port is invalid; set it again"))?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_setting_is_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        for d in super::SETTINGS {
            assert!(readme.contains(&format!("| `{}` |", d.key)), "README lacks a row for {}", d.key);
        }
    }

    #[test]
    fn every_validation_message_names_the_allowed_values() {
        for d in super::SETTINGS {
            let e = (d.validate)(&"x".repeat(5000)).expect_err(d.key);
            assert!(e.contains("expected") || e.contains("use "), "{}: {e}", d.key);
        }
        let e = (super::def("shield.scanner_user_agents").unwrap().validate)("friendly-scanner, sip").unwrap_err();
        assert!(e.contains("\"sip\" would match real phones"), "{e}");
        assert!((super::def("shield.scanner_user_agents").unwrap().validate)("").is_ok());
    }

    #[test]
    fn scanner_default_matches_the_shield_list() {
        assert_eq!(super::SCANNER_UAS, pbxguard_shield::fingerprint::DEFAULT_USER_AGENTS.join(","));
        let d = super::SETTINGS.iter().find(|d| d.key == "shield.scanner_from").unwrap();
        assert_eq!(d.default.unwrap(), pbxguard_shield::fingerprint::DEFAULT_FROM_PATTERNS.join(","));
    }
}
