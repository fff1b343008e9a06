use super::*;

const INFO: &str = include_str!("../../../../tests/data/sshd/openssh-9.2-info.log");
const VERBOSE: &str = include_str!("../../../../tests/data/sshd/openssh-9.2-verbose.log");
const AUTH_LOG: &str = include_str!("../../../../tests/data/sshd/auth.log");
const RFC3339: &str = include_str!("../../../../tests/data/sshd/auth-rfc3339.log");
const JOURNAL: &str = include_str!("../../../../tests/data/sshd/journal.json");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

type Row<'a> = (&'a str, SshKind, &'a str, Option<u16>, Option<&'a str>, Option<&'a str>, bool);

/// Real OpenSSH 9.2 lines (tests/data/sshd) and what they say.
const TABLE: &[Row<'static>] = &[
    (
        "Failed password for sshtest from 10.77.0.1 port 43388 ssh2",
        SshKind::AuthFailed,
        "10.77.0.1",
        Some(43388),
        Some("sshtest"),
        Some("password"),
        false,
    ),
    (
        "Failed password for invalid user nosuchuser from 10.77.0.1 port 39288 ssh2",
        SshKind::AuthFailed,
        "10.77.0.1",
        Some(39288),
        Some("nosuchuser"),
        Some("password"),
        true,
    ),
    (
        "Failed publickey for sshtest from 10.77.0.1 port 48374 ssh2: ED25519 SHA256:Mgudn+pYZZPCRhIaT5mu2ZDhRjNz1qBWe+EvXyfHcqY",
        SshKind::AuthFailed,
        "10.77.0.1",
        Some(48374),
        Some("sshtest"),
        Some("publickey"),
        false,
    ),
    (
        "Failed keyboard-interactive/pam for invalid user nosuchuser from 10.77.0.1 port 59608 ssh2",
        SshKind::AuthFailed,
        "10.77.0.1",
        Some(59608),
        Some("nosuchuser"),
        Some("keyboard-interactive/pam"),
        true,
    ),
    (
        "Failed password for sshtest from fd77::1 port 40290 ssh2",
        SshKind::AuthFailed,
        "fd77::1",
        Some(40290),
        Some("sshtest"),
        Some("password"),
        false,
    ),
    (
        "Invalid user nosuchuser from 10.77.0.1 port 39288",
        SshKind::InvalidUser,
        "10.77.0.1",
        Some(39288),
        Some("nosuchuser"),
        None,
        true,
    ),
    (
        "PAM: Authentication failure for sshtest from 10.77.0.1",
        SshKind::PamFailed,
        "10.77.0.1",
        None,
        Some("sshtest"),
        None,
        false,
    ),
    (
        "PAM: Authentication failure for illegal user nosuchuser from 10.77.0.1",
        SshKind::PamFailed,
        "10.77.0.1",
        None,
        Some("nosuchuser"),
        None,
        true,
    ),
    (
        "maximum authentication attempts exceeded for root from 10.77.0.1 port 60846 ssh2 [preauth]",
        SshKind::TooManyAttempts,
        "10.77.0.1",
        Some(60846),
        Some("root"),
        None,
        false,
    ),
    (
        "maximum authentication attempts exceeded for invalid user nosuchuser from 10.77.0.1 port 60858 ssh2 [preauth]",
        SshKind::TooManyAttempts,
        "10.77.0.1",
        Some(60858),
        Some("nosuchuser"),
        None,
        true,
    ),
    (
        "Accepted password for sshtest from 10.77.0.1 port 33920 ssh2",
        SshKind::Accepted,
        "10.77.0.1",
        Some(33920),
        Some("sshtest"),
        Some("password"),
        false,
    ),
    (
        "Accepted publickey for sshtest from fd77::1 port 40306 ssh2: ED25519 SHA256:5kxTrHyQxlL4pM+0V1qgilR3tKs8+L3B2vOwagbsO2o",
        SshKind::Accepted,
        "fd77::1",
        Some(40306),
        Some("sshtest"),
        Some("publickey"),
        false,
    ),
    (
        "Connection closed by authenticating user sshtest 10.77.0.1 port 43388 [preauth]",
        SshKind::ClosedAfterAuth,
        "10.77.0.1",
        Some(43388),
        Some("sshtest"),
        None,
        false,
    ),
    (
        "Connection closed by invalid user nosuchuser 10.77.0.1 port 39288 [preauth]",
        SshKind::ClosedAfterAuth,
        "10.77.0.1",
        Some(39288),
        Some("nosuchuser"),
        None,
        true,
    ),
    (
        "Connection closed by 10.77.0.1 port 33936",
        SshKind::Probe(Probe::Closed),
        "10.77.0.1",
        Some(33936),
        None,
        None,
        false,
    ),
    (
        "Connection closed by fd77::1 port 40312",
        SshKind::Probe(Probe::Closed),
        "fd77::1",
        Some(40312),
        None,
        None,
        false,
    ),
    (
        "Connection closed by 10.77.0.1 port 33962 [preauth]",
        SshKind::Probe(Probe::Closed),
        "10.77.0.1",
        Some(33962),
        None,
        None,
        false,
    ),
    (
        "banner exchange: Connection from 10.77.0.1 port 33950: invalid format",
        SshKind::Probe(Probe::Banner),
        "10.77.0.1",
        Some(33950),
        None,
        None,
        false,
    ),
    (
        "Unable to negotiate with 10.77.0.1 port 33978: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,ext-info-c,kex-strict-c-v00@openssh.com [preauth]",
        SshKind::Probe(Probe::KeyExchange),
        "10.77.0.1",
        Some(33978),
        None,
        None,
        false,
    ),
    (
        "Unable to negotiate with 10.77.0.1 port 34002: no matching host key type found. Their offer: ssh-dss [preauth]",
        SshKind::Probe(Probe::KeyExchange),
        "10.77.0.1",
        Some(34002),
        None,
        None,
        false,
    ),
    // Wording of other releases and levels (OpenSSH sources, 7.x-9.x).
    (
        "fatal: Timeout before authentication for 192.0.2.7 port 51512",
        SshKind::Probe(Probe::Timeout),
        "192.0.2.7",
        Some(51512),
        None,
        None,
        false,
    ),
    (
        "Did not receive identification string from 192.0.2.7 port 40000",
        SshKind::Probe(Probe::Banner),
        "192.0.2.7",
        Some(40000),
        None,
        None,
        false,
    ),
    (
        "Bad protocol version identification 'GET / HTTP/1.1' from 192.0.2.7 port 40001",
        SshKind::Probe(Probe::Banner),
        "192.0.2.7",
        Some(40001),
        None,
        None,
        false,
    ),
    (
        "Connection reset by 192.0.2.7 port 40002 [preauth]",
        SshKind::Probe(Probe::Reset),
        "192.0.2.7",
        Some(40002),
        None,
        None,
        false,
    ),
    (
        "Disconnected from 192.0.2.7 port 40003 [preauth]",
        SshKind::Probe(Probe::Disconnected),
        "192.0.2.7",
        Some(40003),
        None,
        None,
        false,
    ),
    (
        "Disconnected from authenticating user root 192.0.2.7 port 40004 [preauth]",
        SshKind::ClosedAfterAuth,
        "192.0.2.7",
        Some(40004),
        Some("root"),
        None,
        false,
    ),
    (
        "ssh_dispatch_run_fatal: Connection from 192.0.2.7 port 40005: message authentication code incorrect [preauth]",
        SshKind::Probe(Probe::KeyExchange),
        "192.0.2.7",
        Some(40005),
        None,
        None,
        false,
    ),
    (
        "error: maximum authentication attempts exceeded for root from 192.0.2.7 port 40006 ssh2 [preauth]",
        SshKind::TooManyAttempts,
        "192.0.2.7",
        Some(40006),
        Some("root"),
        None,
        false,
    ),
    ("Invalid user  from 192.0.2.7 port 40007", SshKind::InvalidUser, "192.0.2.7", Some(40007), Some(""), None, true),
    (
        "Failed none for invalid user admin from 2001:db8::7 port 40008 ssh2",
        SshKind::AuthFailed,
        "2001:db8::7",
        Some(40008),
        Some("admin"),
        Some("none"),
        true,
    ),
    // A user name may hold anything but control characters: the address is the last one.
    (
        "Failed password for invalid user x from 6.6.6.6 port 22 ssh2 from 192.0.2.8 port 40009 ssh2",
        SshKind::AuthFailed,
        "192.0.2.8",
        Some(40009),
        Some("x from 6.6.6.6 port 22 ssh2"),
        Some("password"),
        true,
    ),
    (
        "Connection closed by invalid user a 6.6.6.6 port 1 [preauth] 192.0.2.8 port 40010 [preauth]",
        SshKind::ClosedAfterAuth,
        "192.0.2.8",
        Some(40010),
        Some("a 6.6.6.6 port 1 [preauth]"),
        None,
        true,
    ),
];

#[test]
fn real_openssh_lines_read_as_the_table_says() {
    for &(text, kind, addr, port, user, method, invalid_user) in TABLE {
        let got = parse(text).unwrap_or_else(|| panic!("not parsed: {text}"));
        assert_eq!(got, SshLine { kind, ip: ip(addr), port, user, method, invalid_user }, "{text}");
        assert!(
            INFO.contains(text) || VERBOSE.contains(text) || !text.contains("10.77."),
            "{text} is in the recording"
        );
    }
}

#[test]
fn lines_that_say_nothing_about_a_source_are_none() {
    for text in [
        "Server listening on :: port 2222.",
        "Received signal 15; terminating.",
        "kex_exchange_identification: Connection closed by remote host",
        "kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.0\"",
        "Received disconnect from 10.77.0.1 port 33920:11: disconnected by user",
        "Disconnected from user sshtest 10.77.0.1 port 33920",
        "Disconnecting authenticating user root 10.77.0.1 port 60846: Too many authentication failures [preauth]",
        "Postponed keyboard-interactive for sshtest from 10.77.0.1 port 42076 ssh2 [preauth]",
        "Connection from 10.77.0.1 port 43228 on 10.77.0.2 port 2222 rdomain \"\"",
        "Starting session: command for sshtest from 10.77.0.1 port 50706 id 0",
        "Accepted key ED25519 SHA256:5kxTrHyQxlL4pM+0V1qgilR3tKs8+L3B2vOwagbsO2o found at /home/sshtest/.ssh/authorized_keys:1",
        "Failed password for root from nowhere port 22 ssh2",
        "Failed password for root from 300.1.1.1 port 22 ssh2",
        "Nov 30 18:31:09 pbx sudo:   admin : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/usr/bin/true",
        "Nov 30 18:31:09 pbx CRON[812]: Failed password for root from 192.0.2.1 port 22 ssh2",
        "Nov 30 18:31:05 pbx sshd[4001]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.77.0.1  user=sshtest",
        "{\"_COMM\":\"sudo\",\"MESSAGE\":\"Failed password for root from 192.0.2.1 port 22 ssh2\"}",
        "{\"_COMM\":\"sshd\",\"MESSAGE\":[73,110,118]}",
        "",
        "Failed",
        "Connection closed by",
        "Connection closed by 10.0.0.1 port",
        "Connection closed by 10.0.0.1 port 99999 [preauth]",
    ] {
        assert_eq!(parse(text), None, "{text}");
    }
}

#[test]
fn syslog_journal_and_plain_forms_read_alike() {
    let lines = |text: &'static str| -> Vec<SshLine<'static>> { text.lines().filter_map(parse).collect() };
    let info = lines(INFO);
    // auth.log: the INFO recording as rsyslog writes it, among other programs' lines.
    assert_eq!(lines(AUTH_LOG), info);
    // The journal: the same, plus one entry whose MESSAGE is not UTF-8 (skipped).
    assert_eq!(lines(JOURNAL), info);
    assert_eq!(lines(RFC3339), lines(VERBOSE));
    assert_eq!(
        message("Nov  3 09:22:39 rtest sshd[1]: Invalid user a from 192.0.2.1 port 1"),
        Some("Invalid user a from 192.0.2.1 port 1")
    );
    assert_eq!(message("Nov 3 09:22:39 host sshd-session[77]: x"), Some("x"));
    assert_eq!(message("2026-11-30T18:31:00+01:00 host sshd: x"), Some("x"));
}

#[test]
fn an_attempt_costs_the_same_at_info_and_verbose() {
    // What each recording counts per source: INFO and VERBOSE differ only in lines that count nothing.
    let count = |text: &str| {
        let (mut failed, mut unknown, mut ok, mut probes) = (0, 0, 0, 0);
        for l in text.lines().filter_map(parse) {
            match l.observation() {
                Some(Observation::AuthFailed { .. }) => failed += 1,
                Some(Observation::UnknownUser { .. }) => unknown += 1,
                Some(Observation::AuthSucceeded { .. }) => ok += 1,
                Some(Observation::Probe { .. }) => probes += 1,
                _ => {}
            }
        }
        (failed, unknown, ok, probes)
    };
    // 12 failed attempts (by password, keyboard-interactive, too many keys), 5 invalid users, 4
    // logins, 13 scanner connections (banner, key exchange, keyscan, nc -z).
    assert_eq!(count(INFO), (12, 5, 4, 13));
    assert_eq!(count(VERBOSE), count(INFO));
}

#[test]
fn arbitrary_input_never_panics() {
    // Every prefix and suffix of every recorded line, and the lines with bytes flipped.
    for text in [INFO, VERBOSE, AUTH_LOG, RFC3339, JOURNAL] {
        for l in text.lines() {
            for (i, _) in l.char_indices() {
                let _ = parse(&l[..i]);
                let _ = parse(&l[i..]);
            }
        }
    }
    let mut x: u32 = 0x9e37_79b9;
    let seeds: Vec<&str> = TABLE.iter().map(|r| r.0).collect();
    for round in 0..20_000 {
        let mut b = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % b.len();
            let alphabet = b" :[]{}\"\\.0123456789abcdef";
            b[at] = alphabet[(x >> 8) as usize % alphabet.len()];
        }
        if let Ok(s) = std::str::from_utf8(&b) {
            let _ = parse(s).map(|l| l.observation());
        }
    }
}

mod guard {
    use super::super::parse;
    use crate::{BanReason, Decision, Prefix, Service, Shield, ShieldConfig, Verdict};

    const T0: u64 = 1_800_000_000_000;
    const MIN: u64 = 60_000;

    /// Feeds sshd lines to the shield as the daemon's guard does; returns the bans decided.
    fn feed(sh: &mut Shield, t: u64, lines: &[String]) -> Vec<crate::Ban> {
        for l in lines {
            if let Some(obs) = parse(l).and_then(|l| l.observation()) {
                sh.observe_on(t, Service::Ssh, obs);
            }
        }
        std::iter::from_fn(|| sh.poll_decision())
            .filter_map(|d| if let Decision::Ban(b) = d { Some(b) } else { None })
            .collect()
    }

    fn wrong_password(user: &str, from: &str, port: u16) -> Vec<String> {
        vec![
            format!("Failed password for {user} from {from} port {port} ssh2"),
            format!("Connection closed by authenticating user {user} {from} port {port} [preauth]"),
        ]
    }

    fn invalid_user(user: &str, from: &str, port: u16) -> Vec<String> {
        vec![
            format!("Invalid user {user} from {from} port {port}"),
            format!("Failed password for invalid user {user} from {from} port {port} ssh2"),
            format!("Connection closed by invalid user {user} {from} port {port} [preauth]"),
        ]
    }

    #[test]
    fn the_5th_wrong_password_within_10_minutes_bans_for_every_service() {
        let mut sh = Shield::new(ShieldConfig::default());
        for i in 0..4 {
            assert!(
                feed(&mut sh, T0 + i * 2 * MIN, &wrong_password("root", "192.0.2.50", 40000)).is_empty(),
                "attempt {i}"
            );
        }
        let bans = feed(&mut sh, T0 + 9 * MIN, &wrong_password("root", "192.0.2.50", 40001));
        assert_eq!(bans.len(), 1);
        assert_eq!(
            (bans[0].target, bans[0].reason),
            (Prefix::host("192.0.2.50".parse().unwrap()), BanReason::BruteForce)
        );
        assert_eq!(
            bans[0].evidence,
            "ssh: 5 failed logins, invalid users or scanner probes within 600s, last: failed authentication as \"root\""
        );
        assert_eq!(sh.admit(T0 + 9 * MIN + 1, "192.0.2.50".parse().unwrap()), Verdict::Drop(crate::DropReason::Banned));
        // Spread over more than the window, 5 attempts are not an attack.
        for i in 0..20 {
            assert!(feed(&mut sh, T0 + i * 3 * MIN, &wrong_password("root", "192.0.2.51", 40000)).is_empty());
        }
    }

    #[test]
    fn an_invalid_user_counts_double_and_a_login_resets_the_count() {
        let mut sh = Shield::new(ShieldConfig::default());
        assert!(feed(&mut sh, T0, &invalid_user("admin", "2001:db8::9", 1)).is_empty());
        assert!(feed(&mut sh, T0 + 1, &invalid_user("oracle", "2001:db8::9", 2)).is_empty());
        let bans = feed(&mut sh, T0 + 2, &invalid_user("test", "2001:db8::9", 3));
        assert_eq!(bans.len(), 1, "2 + 2 + 1: banned by the 3rd attempt's Invalid user line");
        assert_eq!(bans[0].target.to_string(), "2001:db8::/64");

        // An admin who mistypes 4 times, then logs in, starts again from zero.
        for i in 0..4 {
            feed(&mut sh, T0 + i, &wrong_password("admin", "198.51.100.7", 1));
        }
        feed(&mut sh, T0 + 5, &["Accepted password for admin from 198.51.100.7 port 9 ssh2".to_owned()]);
        for i in 0..4 {
            assert!(feed(&mut sh, T0 + 10 + i, &wrong_password("admin", "198.51.100.7", 1)).is_empty());
        }
    }

    #[test]
    fn a_scanner_dropping_at_the_banner_is_banned_by_its_5th_connection() {
        let mut sh = Shield::new(ShieldConfig::default());
        let probe = |port: u16| {
            vec![
                "kex_exchange_identification: Connection closed by remote host".to_owned(),
                format!("Connection closed by 203.0.113.5 port {port}"),
            ]
        };
        for p in 0..4 {
            assert!(feed(&mut sh, T0 + u64::from(p), &probe(p)).is_empty());
        }
        let bans = feed(&mut sh, T0 + 5, &probe(5));
        assert_eq!((bans.len(), bans[0].reason), (1, BanReason::Scanner));
        assert!(
            bans[0].evidence.ends_with("last: probe: connection closed before authenticating"),
            "{}",
            bans[0].evidence
        );
    }

    #[test]
    fn trusted_networks_are_never_banned_by_the_guard() {
        let mut sh = Shield::new(ShieldConfig::default());
        sh.set_trusted(vec![Prefix::parse_lenient("10.9.0.0/16").unwrap()]);
        for i in 0..50 {
            assert!(feed(&mut sh, T0 + i, &invalid_user("root", "10.9.1.1", 1)).is_empty());
        }
    }
}
