//! Detector thresholds and ban policy, as data. The daemon fills this from stored settings; every
//! default below is the documented default (README, "Protection").

use crate::net::Prefix;
use std::net::IpAddr;

/// "`max` events within `window_ms` of the first one". Windows are fixed: one opens at the first
/// event, and the count restarts when an event arrives after it closed. O(1) state per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub max: u32,
    pub window_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShieldConfig {
    /// Flood: a source is banned by the message that exceeds `max` within the window (pike's default:
    /// more than 30 requests in 2 s). Every datagram or stream message counts, valid or not.
    pub flood: Threshold,
    /// Brute force: `max` failed authentications from one address within the window → ban.
    pub brute_force: Threshold,
    /// Enumeration: `max` distinct unknown users from one address within the window → ban.
    pub enumeration: Threshold,
    /// Malformed messages from one address within the window → ban.
    pub malformed: Threshold,
    /// SSH: failed logins, invalid users and scanner probes from one address within the window → ban.
    /// Each line sshd writes about an attempt counts 1, so an invalid user's attempt counts 2 (its
    /// `Invalid user` line and its failure); see `ssh`. Like DenyHosts (5 invalid, 10 valid) and
    /// sshguard (3 attacks of 10 against 30): 5 in 10 minutes.
    pub ssh: Threshold,
    /// Distributed attack on one extension: `max` failures against one user within the window, from at
    /// least `user_min_sources` addresses → alert, and the user is throttled for `user_throttle_ms`:
    /// only addresses that have authenticated as that user before may keep trying.
    pub user_failures: Threshold,
    pub user_min_sources: u32,
    pub user_throttle_ms: u64,
    /// Connections (TCP, TLS; IAX2 and HTTPS later): most connections one source may hold open that have
    /// not authenticated; the one past it is refused and bans the source (Asterisk's `tcpauthlimit`,
    /// per address like nginx's `limit_conn`). Authenticated connections never count.
    pub max_unauthenticated: u32,
    /// Connections one source may open within the window, authenticated or not; the one past it is
    /// refused and bans the source.
    pub connection_rate: Threshold,
    /// Ban lengths for the 1st, 2nd, 3rd... offence of an address; the last repeats.
    pub ban_durations_ms: Vec<u64>,
    /// How long past offences count towards the next ban's length.
    pub history_ms: u64,
    /// Most sources (and users) tracked at once; beyond it the oldest tracker is evicted, so a
    /// spoofed-source flood cannot grow memory.
    pub tracker_cap: usize,
    /// Most addresses banned by the detectors at once; a new ban past it lifts the one closest to its
    /// end, so a storm of spoofed sources cannot grow memory (operators' bans are not counted).
    pub max_bans: usize,
    /// An address that authenticated within this long is known-good: evidence a spoofer could forge
    /// (anything from a single UDP datagram) never bans it.
    pub known_good_ms: u64,
    /// Detectors count, and ban, a source's prefix of this length: one residential IPv6 customer holds
    /// a /64, so an attacker rotating through it is one attacker. IPv4 defaults to single addresses.
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 24 * HOUR_MS;

impl Default for ShieldConfig {
    fn default() -> Self {
        Self {
            flood: Threshold { max: 30, window_ms: 2_000 },
            brute_force: Threshold { max: 5, window_ms: 600_000 },
            enumeration: Threshold { max: 3, window_ms: 600_000 },
            malformed: Threshold { max: 10, window_ms: 60_000 },
            ssh: Threshold { max: 5, window_ms: 600_000 },
            user_failures: Threshold { max: 20, window_ms: 600_000 },
            user_min_sources: 3,
            user_throttle_ms: 900_000,
            max_unauthenticated: 8,
            connection_rate: Threshold { max: 30, window_ms: 10_000 },
            ban_durations_ms: vec![HOUR_MS, 6 * HOUR_MS, DAY_MS, 7 * DAY_MS],
            history_ms: 30 * DAY_MS,
            tracker_cap: 100_000,
            max_bans: 100_000,
            known_good_ms: DAY_MS,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

impl ShieldConfig {
    /// The prefix the detectors hold `ip` (canonical) to.
    pub fn source_of(&self, ip: IpAddr) -> Prefix {
        let len = if ip.is_ipv4() { self.ipv4_prefix.min(32) } else { self.ipv6_prefix.min(128) };
        Prefix::new(ip, len).unwrap_or_else(|_| Prefix::host(ip))
    }
}

/// Parses durations such as `90s`, `15m`, `1h`, `7d`, or a plain number of seconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&v| v > 0)
}

pub fn format_duration_ms(ms: u64) -> String {
    for (unit, size) in [("w", 7 * DAY_MS), ("d", DAY_MS), ("h", HOUR_MS), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        use super::*;
        assert_eq!(parse_duration_ms("1h"), Some(HOUR_MS));
        assert_eq!(parse_duration_ms("90"), Some(90_000));
        assert_eq!(parse_duration_ms("7d"), Some(7 * DAY_MS));
        assert_eq!(parse_duration_ms("0s"), None);
        assert_eq!(parse_duration_ms("1y"), None);
        assert_eq!(format_duration_ms(6 * HOUR_MS), "6h");
        assert_eq!(format_duration_ms(90_000), "90s");
    }
}
