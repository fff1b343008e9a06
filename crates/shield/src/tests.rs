//! Every detector's threshold, window and expiry on a virtual clock.

use super::*;

const S: u64 = 1_000;
const T0: u64 = 1_800_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn bans(sh: &mut Shield) -> Vec<Ban> {
    std::iter::from_fn(|| sh.poll_decision())
        .filter_map(|d| if let Decision::Ban(b) = d { Some(b) } else { None })
        .collect()
}

#[test]
fn flood_bans_the_31st_message_in_2s_and_the_ban_ends_after_an_hour() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("192.0.2.66");
    for i in 0..30 {
        assert_eq!(sh.admit(T0 + i * 10, a), Verdict::Allow, "message {}", i + 1);
    }
    assert_eq!(sh.admit(T0 + 1999, a), Verdict::Drop(DropReason::Banned));
    let b = bans(&mut sh);
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].reason, b[0].expires_ms, b[0].offence), (BanReason::Flood, Some(T0 + 1999 + config::HOUR_MS), 1));
    assert!(b[0].evidence.contains("31 messages within 2s"), "{}", b[0].evidence);
    // Another address is unaffected.
    assert_eq!(sh.admit(T0 + 2000, ip("192.0.2.2")), Verdict::Allow);
    // The ban holds until t + ttl, then expires with an Unban decision.
    assert_eq!(sh.admit(T0 + 1999 + config::HOUR_MS - 1, a), Verdict::Drop(DropReason::Banned));
    sh.handle_timeout(T0 + 1999 + config::HOUR_MS);
    assert!(matches!(sh.poll_decision(), Some(Decision::Unban { why: Lifted::Expired, .. })));
    assert_eq!(sh.admit(T0 + 1999 + config::HOUR_MS, a), Verdict::Allow);
}

#[test]
fn flood_window_restarts_so_a_steady_slow_source_is_never_banned() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("192.0.2.7");
    // 15 per second for a minute: 30 per 2-second window at most.
    for i in 0..900 {
        assert_eq!(sh.admit(T0 + i * 1000 / 15, a), Verdict::Allow);
    }
    assert!(bans(&mut sh).is_empty());
}

#[test]
fn progressive_durations_for_repeat_offenders() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("192.0.2.66");
    let mut t = T0;
    let mut lengths = Vec::new();
    for _ in 0..5 {
        sh.observe(t, Observation::Scanner { ip: a, evidence: "ua" });
        let b = bans(&mut sh).pop().unwrap();
        lengths.push(b.expires_ms.unwrap() - t);
        t = b.expires_ms.unwrap();
        sh.handle_timeout(t);
    }
    let h = config::HOUR_MS;
    assert_eq!(lengths, [h, 6 * h, 24 * h, 168 * h, 168 * h]);
    // After 30 days without offence, the count starts over.
    let later = t + 31 * config::DAY_MS;
    sh.handle_timeout(later);
    sh.observe(later, Observation::Scanner { ip: a, evidence: "ua" });
    assert_eq!(bans(&mut sh)[0].offence, 1);
}

#[test]
fn brute_force_five_failures_in_ten_minutes() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("198.51.100.9");
    for i in 0..4 {
        sh.observe(T0 + i * 60 * S, Observation::AuthFailed { ip: a, user: "1001" });
    }
    assert!(bans(&mut sh).is_empty());
    // The 5th, but 10 minutes after the first: a new window.
    sh.observe(T0 + 600 * S, Observation::AuthFailed { ip: a, user: "1001" });
    assert!(bans(&mut sh).is_empty());
    for i in 1..5 {
        sh.observe(T0 + 600 * S + i, Observation::AuthFailed { ip: a, user: "1001" });
    }
    let b = bans(&mut sh);
    assert_eq!((b.len(), b[0].reason), (1, BanReason::BruteForce));
    // A success resets an address's failures (a phone with a typo that is then fixed).
    let p = ip("198.51.100.10");
    for _ in 0..4 {
        sh.observe(T0, Observation::AuthFailed { ip: p, user: "1002" });
    }
    sh.observe(T0, Observation::AuthSucceeded { ip: p, user: "1002" });
    sh.observe(T0, Observation::AuthFailed { ip: p, user: "1002" });
    assert!(bans(&mut sh).is_empty());
}

#[test]
fn enumeration_three_distinct_unknown_users() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("203.0.113.5");
    for u in ["100", "100", "101", "101"] {
        sh.observe(T0, Observation::UnknownUser { ip: a, user: u });
    }
    assert!(bans(&mut sh).is_empty());
    sh.observe(T0 + 599 * S, Observation::UnknownUser { ip: a, user: "102" });
    assert_eq!(bans(&mut sh)[0].reason, BanReason::Enumeration);
}

#[test]
fn malformed_ten_per_minute() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("203.0.113.6");
    for i in 0..9 {
        sh.observe(T0 + i * S, Observation::Malformed { ip: a, reason: "x" });
    }
    assert!(bans(&mut sh).is_empty());
    sh.observe(T0 + 59 * S, Observation::Malformed { ip: a, reason: "x" });
    assert_eq!(bans(&mut sh)[0].reason, BanReason::Malformed);
}

#[test]
fn trusted_networks_are_never_banned_and_mapped_addresses_are_canonical() {
    let mut sh = Shield::new(ShieldConfig::default());
    sh.set_trusted(vec!["10.0.0.0/8".parse().unwrap()]);
    for i in 0..1000 {
        assert_eq!(sh.admit(T0 + i, ip("::ffff:10.1.2.3")), Verdict::Allow);
    }
    sh.observe(T0, Observation::Scanner { ip: ip("10.1.2.3"), evidence: "ua" });
    assert!(bans(&mut sh).is_empty());
    assert!(sh.ban(T0, "10.0.0.0/24".parse().unwrap(), None, None).is_err());
    // A ban on the IPv4 address also drops its IPv4-mapped IPv6 form.
    sh.ban(T0, "192.0.2.1".parse().unwrap(), None, None).unwrap();
    assert_eq!(sh.admit(T0, ip("::ffff:192.0.2.1")), Verdict::Drop(DropReason::Banned));
}

#[test]
fn operator_bans_prefixes_and_unbans() {
    let mut sh = Shield::new(ShieldConfig::default());
    sh.ban(T0, "198.51.100.0/24".parse().unwrap(), Some(60 * S), Some("abuse".into())).unwrap();
    assert_eq!(sh.admit(T0, ip("198.51.100.77")), Verdict::Drop(DropReason::Banned));
    assert!(sh.is_blocked(T0, ip("198.51.100.77")));
    assert!(sh.bans().any(|b| b.target.to_string() == "198.51.100.0/24" && b.reason == BanReason::Manual));
    assert!(sh.unban("198.51.100.0/24".parse().unwrap()));
    assert!(!sh.unban("198.51.100.0/24".parse().unwrap()));
    assert_eq!(sh.admit(T0, ip("198.51.100.77")), Verdict::Allow);
    assert!(!sh.is_blocked(T0, ip("198.51.100.77")));
}

#[test]
fn blacklist_drops_and_trust_wins_over_it() {
    let mut sh = Shield::new(ShieldConfig::default());
    let list: ListName = Arc::from("voipbl");
    sh.set_blacklist(Arc::new(PrefixSet::new(vec![("203.0.113.0/24".parse().unwrap(), list)])));
    assert_eq!(sh.admit(T0, ip("203.0.113.9")), Verdict::Drop(DropReason::Blacklisted));
    assert!(sh.is_blocked(T0, ip("203.0.113.9")));
    assert_eq!(&*sh.blacklist().lookup(ip("203.0.113.9")).unwrap().1, "voipbl");
    sh.set_trusted(vec!["203.0.113.9".parse().unwrap()]);
    assert_eq!(sh.admit(T0, ip("203.0.113.9")), Verdict::Allow);
    assert!(!sh.is_blocked(T0, ip("203.0.113.9")));
}

#[test]
fn distributed_attack_on_one_extension_alerts_and_throttles() {
    let mut sh = Shield::new(ShieldConfig::default());
    sh.observe(T0, Observation::AuthSucceeded { ip: ip("192.0.2.10"), user: "1001" });
    for i in 0..20u64 {
        // Four failures per address, never enough to ban any one of them.
        let a = IpAddr::from([198, 51, 100, (i / 4) as u8]);
        sh.observe(T0 + i, Observation::AuthFailed { ip: a, user: "1001" });
    }
    let d: Vec<Decision> = std::iter::from_fn(|| sh.poll_decision()).collect();
    assert!(d.iter().any(|d| matches!(d, Decision::Alert { .. })));
    assert!(d.iter().any(
        |d| matches!(d, Decision::ThrottleUser { user, until_ms } if user == "1001" && *until_ms == T0 + 19 + 900 * S)
    ));
    assert!(!d.iter().any(|d| matches!(d, Decision::Ban(_))));
    assert!(sh.authenticated_before(ip("192.0.2.10"), "1001"));
    assert!(!sh.authenticated_before(ip("198.51.100.0"), "1001"));
}

#[test]
fn per_user_trackers_are_kept_per_service_and_bans_cover_every_service() {
    let mut sh = Shield::new(ShieldConfig::default());
    // "root" fails 10 times over SSH and 10 times over SIP, from 3+ addresses each: neither service's
    // count reaches the 20 of a distributed attack, so nothing is said about either account.
    for i in 0..20u64 {
        let a = IpAddr::from([198, 51, 100, (i / 4) as u8]);
        let service = if i % 2 == 0 { Service::Ssh } else { Service::Sip };
        sh.observe_on(T0 + i, service, Observation::AuthFailed { ip: a, user: "root" });
    }
    let d: Vec<Decision> = std::iter::from_fn(|| sh.poll_decision()).collect();
    assert!(d.is_empty(), "{d:?}");
    // 20 SSH failures on it alone raise the alert, worded for SSH, and throttle no SIP extension.
    for i in 0..10u64 {
        let a = IpAddr::from([203, 0, 113, (i / 4) as u8]);
        sh.observe_on(T0 + 100 + i, Service::Ssh, Observation::AuthFailed { ip: a, user: "root" });
    }
    let d: Vec<Decision> = std::iter::from_fn(|| sh.poll_decision()).collect();
    assert!(
        d.iter().any(|d| matches!(d, Decision::Alert { message } if message.starts_with("ssh user \"root\""))),
        "{d:?}"
    );
    assert!(!d.iter().any(|d| matches!(d, Decision::ThrottleUser { .. })), "{d:?}");
    // A success over SSH makes the address known-good for SSH only.
    sh.observe_on(T0, Service::Ssh, Observation::AuthSucceeded { ip: ip("192.0.2.10"), user: "root" });
    assert!(sh.authenticated_before_on(Service::Ssh, ip("192.0.2.10"), "root"));
    assert!(!sh.authenticated_before(ip("192.0.2.10"), "root"));
    // One source address is one attacker whatever door it uses: SSH failures ban it for SIP too.
    for i in 0..5 {
        sh.observe_on(T0 + 200 + i, Service::Ssh, Observation::AuthFailed { ip: ip("192.0.2.99"), user: "admin" });
    }
    assert_eq!(sh.admit(T0 + 300, ip("192.0.2.99")), Verdict::Drop(DropReason::Banned));
}

#[test]
fn a_million_spoofed_sources_stay_under_the_tracker_cap() {
    let cfg = ShieldConfig { tracker_cap: 10_000, ..Default::default() };
    let mut sh = Shield::new(cfg);
    for i in 0..1_000_000u32 {
        sh.admit(T0 + u64::from(i / 1000), IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()));
    }
    let (sources, users, evicted) = sh.tracker_stats();
    assert_eq!((sources, users), (10_000, 0));
    assert_eq!(evicted, 990_000);
    sh.handle_timeout(T0);
    assert!(sh.sources.order.len() <= 2 * 10_000 + 1024);
}

#[test]
fn a_storm_of_banned_sources_stays_under_the_ban_cap_and_lifts_the_ban_closest_to_its_end() {
    let cfg = ShieldConfig { max_bans: 1_000, tracker_cap: 1_000, ..Default::default() };
    let mut sh = Shield::new(cfg);
    let op = ip("198.51.100.1");
    // It ends before every storm ban, so it is first in line: eviction must pass over it.
    sh.ban(T0, Prefix::host(op), Some(2 * config::HOUR_MS), None).unwrap();
    // A repeat offender's ban is the longest: it must outlive the storm.
    let repeat = ip("192.0.2.99");
    sh.observe(T0, Observation::Scanner { ip: repeat, evidence: "ua" });
    sh.handle_timeout(T0 + config::HOUR_MS);
    sh.observe(T0 + config::HOUR_MS, Observation::Scanner { ip: repeat, evidence: "ua" });
    let t = T0 + config::HOUR_MS;
    let _ = std::iter::from_fn(|| sh.poll_decision()).count();
    let (mut banned, mut evicted) = (0, Vec::new());
    for i in 0..100_000u32 {
        let src = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
        sh.observe(t + u64::from(i), Observation::Scanner { ip: src, evidence: "ua" });
        for d in std::iter::from_fn(|| sh.poll_decision()) {
            match d {
                Decision::Ban(_) => banned += 1,
                Decision::Unban { ban, why: Lifted::Evicted } => evicted.push(ban),
                _ => {}
            }
        }
    }
    assert_eq!(banned, 100_000);
    assert_eq!(evicted.len(), 100_000 - 999);
    assert_eq!(sh.ban_count(), 1_000 + 1, "the cap, plus the operator's ban");
    assert_eq!(sh.counters().evicted_bans, 99_001);
    // The oldest storm ban went first, and it ends when it is lifted (so it is not restored later).
    assert_eq!(evicted[0].target, Prefix::host(ip("10.0.0.0")));
    assert_eq!(evicted[0].expires_ms, Some(t + 999));
    let last = t + 99_999;
    assert!(sh.ledger.cover(last, IpAddr::from((0x0a00_0000u32 + 99_999).to_be_bytes())).is_some());
    assert!(sh.ledger.cover(last, repeat).is_some(), "the 6-hour ban outlives 1-hour ones");
    assert!(sh.ledger.cover(last, op).is_some(), "operators' bans are never evicted");
    // Restored with a lower cap: the bans closest to their end are lifted, and said to be.
    let stored: Vec<Ban> = sh.bans().cloned().collect();
    let mut lower = Shield::new(ShieldConfig { max_bans: 10, ..Default::default() });
    lower.restore(last, stored);
    let lifted = std::iter::from_fn(|| lower.poll_decision())
        .filter(|d| matches!(d, Decision::Unban { why: Lifted::Evicted, .. }))
        .count();
    assert_eq!((lower.ban_count(), lifted), (10 + 1, 990));
    assert!(lower.ledger.cover(last, repeat).is_some(), "the latest-ending bans are kept");
    assert!(lower.ledger.cover(last, IpAddr::from((0x0a00_0000u32 + 99_999).to_be_bytes())).is_some());
    // Expiry costs what ends: only the repeat offender's ban is left.
    sh.handle_timeout(last + config::HOUR_MS);
    assert_eq!(sh.ban_count(), 1);
}

fn decisions(sh: &mut Shield) -> Vec<Decision> {
    std::iter::from_fn(|| sh.poll_decision()).collect()
}

#[test]
fn forged_datagrams_never_ban_a_known_good_address_but_its_own_brute_force_does() {
    let mut sh = Shield::new(ShieldConfig::default());
    let phone = ip("192.0.2.20");
    sh.observe(T0, Observation::AuthSucceeded { ip: phone, user: "5001" });
    assert!(sh.is_known_good(T0, phone));
    let sip = Service::Sip;
    // One forged scanner datagram, 20 forged malformed ones: dropped, said once, never a ban.
    assert!(sh.observe_with(T0 + 1, sip, Evidence::Unverified, Observation::Scanner { ip: phone, evidence: "ua" }));
    for i in 0..20 {
        sh.observe_with(T0 + 2 + i, sip, Evidence::Unverified, Observation::Malformed { ip: phone, reason: "x" });
    }
    // A forged 200-datagram flood within 2 s: the excess is dropped, the rest heard, no ban.
    let verdicts: Vec<Verdict> = (0..200).map(|i| sh.admit(T0 + 100 + i * 9, phone)).collect();
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Allow).count(), 30);
    assert!(verdicts.iter().all(|v| matches!(v, Verdict::Allow | Verdict::Drop(DropReason::RateLimited))));
    let d = decisions(&mut sh);
    assert!(!d.iter().any(|d| matches!(d, Decision::Ban(_) | Decision::Report { .. })), "{d:?}");
    let spoofs: Vec<_> = d.iter().filter(|d| matches!(d, Decision::SuspectedSpoof { .. })).collect();
    assert_eq!(spoofs.len(), 1, "said once a minute: {d:?}");
    assert_eq!(sh.counters().spoofs_dropped, 1 + 20 + 170);
    assert_eq!(sh.admit(T0 + 5_000, phone), Verdict::Allow);
    // Its own brute force answers our nonces: verified, and banned as ever.
    for i in 0..5 {
        sh.observe(T0 + 6_000 + i, Observation::AuthFailed { ip: phone, user: "5001" });
    }
    assert_eq!(sh.admit(T0 + 7_000, phone), Verdict::Drop(DropReason::Banned));
    assert!(decisions(&mut sh).iter().any(|d| matches!(d, Decision::Ban(b) if b.verified())));
}

#[test]
fn unverified_evidence_bans_an_unknown_address_briefly_without_escalating_or_reporting() {
    let mut sh = Shield::new(ShieldConfig::default());
    let scanner = ip("203.0.113.66");
    let mut t = T0;
    for _ in 0..3 {
        assert!(sh.observe_with(
            t,
            Service::Sip,
            Evidence::Unverified,
            Observation::Scanner { ip: scanner, evidence: "ua" }
        ));
        let d = decisions(&mut sh);
        assert!(!d.iter().any(|d| matches!(d, Decision::Report { .. })), "{d:?}");
        let b = d.iter().find_map(|d| if let Decision::Ban(b) = d { Some(b.clone()) } else { None }).unwrap();
        assert_eq!((b.offence, b.expires_ms, b.verified()), (1, Some(t + config::HOUR_MS), false));
        assert_eq!(b.note.as_deref(), Some(UNVERIFIED_NOTE));
        t = b.expires_ms.unwrap();
        sh.handle_timeout(t);
    }
    // Verified evidence from it later starts its offence count at 1: unverified bans never counted.
    sh.observe(t, Observation::Scanner { ip: scanner, evidence: "ua" });
    let b = bans(&mut sh).pop().unwrap();
    assert_eq!((b.offence, b.verified()), (1, true));
}

#[test]
fn an_ipv6_attacker_is_its_slash_64_and_a_good_neighbour_inside_it_keeps_working() {
    let mut sh = Shield::new(ShieldConfig::default());
    let phone_elsewhere = ip("fd00:1:2:4::20");
    let good_neighbour = ip("fd00:1:2:3::20");
    sh.observe(T0, Observation::AuthSucceeded { ip: phone_elsewhere, user: "5001" });
    sh.observe(T0, Observation::AuthSucceeded { ip: good_neighbour, user: "5002" });
    // A scanner sending each datagram from a new address of its /64 is banned as the /64 by the first.
    let scan = |i: u32| IpAddr::from(std::net::Ipv6Addr::new(0xfd00, 1, 2, 3, 0xdead, 0, (i >> 16) as u16, i as u16));
    assert!(sh.observe_with(
        T0,
        Service::Sip,
        Evidence::Unverified,
        Observation::Scanner { ip: scan(1), evidence: "ua" }
    ));
    let b = bans(&mut sh);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].target.to_string(), "fd00:1:2:3::/64");
    for i in 2..1000 {
        assert_eq!(sh.admit(T0 + u64::from(i), scan(i)), Verdict::Drop(DropReason::Banned), "address {i}");
    }
    assert_eq!(sh.ban_count(), 1, "one ban for the whole /64");
    // A phone in another /64, and a known-good one inside the banned /64, keep working.
    assert_eq!(sh.admit(T0 + 2_000, phone_elsewhere), Verdict::Allow);
    assert_eq!(sh.admit(T0 + 2_000, good_neighbour), Verdict::Allow);
    assert!(!sh.is_blocked(T0 + 2_000, good_neighbour));
    // Failures rotating through a /64 count towards one brute force.
    for i in 0..5u16 {
        sh.observe(
            T0 + 3_000,
            Observation::AuthFailed { ip: IpAddr::from([0xfd00, 9, 9, 9, 0, 0, 0, i]), user: "5001" },
        );
    }
    assert_eq!(sh.admit(T0 + 3_001, ip("fd00:9:9:9::77")), Verdict::Drop(DropReason::Banned));
    // The operator lifts a /64 ban by its CIDR; IPv4 stays per address by default.
    assert!(sh.unban(Prefix::parse_strict("fd00:1:2:3::/64").unwrap()));
    assert_eq!(sh.admit(T0 + 4_000, scan(5)), Verdict::Allow);
    sh.observe(T0, Observation::Scanner { ip: ip("192.0.2.1"), evidence: "ua" });
    assert_eq!(sh.admit(T0 + 1, ip("192.0.2.2")), Verdict::Allow);
}

#[test]
fn changing_the_aggregation_keeps_every_ban_enforced() {
    let mut sh = Shield::new(ShieldConfig::default());
    sh.observe(T0, Observation::Scanner { ip: ip("fd00:1:2:3::1"), evidence: "ua" });
    sh.set_config(ShieldConfig { ipv6_prefix: 128, ..ShieldConfig::default() });
    assert_eq!(sh.admit(T0 + 1, ip("fd00:1:2:3::99")), Verdict::Drop(DropReason::Banned));
    sh.observe(T0, Observation::Scanner { ip: ip("fd00:5::1"), evidence: "ua" });
    assert_eq!(sh.admit(T0 + 1, ip("fd00:5::2")), Verdict::Allow, "single addresses now");
    assert_eq!(sh.ban_count(), 2);
}

fn opened(sh: &mut Shield, t: u64, a: IpAddr, unauthenticated: u32) -> bool {
    sh.observe(t, Observation::ConnectionOpened { ip: a, unauthenticated })
}

#[test]
fn the_9th_unauthenticated_connection_is_refused_and_bans_with_its_evidence() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("192.0.2.66");
    for n in 1..=8 {
        assert!(!opened(&mut sh, T0 + u64::from(n), a, n), "connection {n}");
    }
    assert!(opened(&mut sh, T0 + 9, a, 9));
    let b = bans(&mut sh);
    assert_eq!((b.len(), b[0].reason, b[0].note.as_deref()), (1, BanReason::Connections, None));
    assert_eq!(b[0].evidence, "9 unauthenticated connections open at once (limit 8), 9 opened within 10s (limit 30)");
    assert!(sh.is_blocked(T0 + 10, a));
    assert_eq!(BanReason::parse("connections"), Some(BanReason::Connections));
}

#[test]
fn the_31st_connection_in_10s_bans_even_when_the_others_authenticated() {
    let mut sh = Shield::new(ShieldConfig::default());
    let a = ip("192.0.2.67");
    for i in 0..30 {
        assert!(!opened(&mut sh, T0 + i * 300, a, 1), "connection {}", i + 1);
    }
    assert!(opened(&mut sh, T0 + 9_999, a, 1));
    assert!(bans(&mut sh)[0].evidence.contains("31 opened within 10s"));
    // A steady slow source (one connection every 400 ms, 25 per window) never is.
    let b = ip("192.0.2.68");
    for i in 0..1_000 {
        assert!(!opened(&mut sh, T0 + i * 400, b, 1));
    }
}

#[test]
fn trusted_and_known_good_sources_are_held_to_the_connection_limits_without_a_ban() {
    let mut sh = Shield::new(ShieldConfig::default());
    let (trusted, office) = (ip("10.1.1.1"), ip("198.51.100.20"));
    sh.set_trusted(vec![Prefix::host(trusted)]);
    for n in 1..=200 {
        assert!(!opened(&mut sh, T0, trusted, n));
    }
    // An office behind one NAT whose phones all reconnect at once after a restart: the excess is
    // refused (they retry), the office is not cut off.
    sh.observe(T0, Observation::AuthSucceeded { ip: office, user: "1001" });
    assert!(!opened(&mut sh, T0 + 1, office, 8));
    assert!(opened(&mut sh, T0 + 2, office, 9));
    assert!(bans(&mut sh).is_empty());
    assert!(!sh.is_blocked(T0 + 3, office));
}
