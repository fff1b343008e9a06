//! `Shield::admit` on the fast path with 200,000 blacklist entries and 100,000 active bans: a clean
//! source (counted for flood detection), a banned one, a blacklisted one. Results: docs/benchmarks.md.

use criterion::{Criterion, criterion_group, criterion_main};
use pbxguard_shield::{Ban, BanReason, ListName, Prefix, PrefixSet, Shield, ShieldConfig, Verdict};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

const NOW: u64 = 1_800_000_000_000;

fn xorshift(x: &mut u32) -> u32 {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    *x
}

fn shield() -> (Shield, Vec<IpAddr>, Vec<IpAddr>) {
    let mut sh = Shield::new(ShieldConfig::default());
    let list: ListName = Arc::from("voipbl");
    let mut x = 0x1234_5678;
    let listed: Vec<IpAddr> =
        (0..200_000).map(|_| IpAddr::V4(Ipv4Addr::from(0x0b00_0000 | (xorshift(&mut x) & 0x3fff_ffff)))).collect();
    sh.set_blacklist(Arc::new(PrefixSet::new(listed.iter().map(|ip| (Prefix::host(*ip), list.clone())).collect())));
    let banned: Vec<IpAddr> = (0..100_000u32).map(|i| IpAddr::V4(Ipv4Addr::from(0xc000_0000 | i))).collect();
    sh.restore(
        NOW,
        banned.iter().map(|ip| Ban {
            target: Prefix::host(*ip),
            reason: BanReason::Scanner,
            evidence: String::new(),
            first_seen_ms: NOW,
            created_ms: NOW,
            expires_ms: Some(NOW + 3_600_000),
            offence: 1,
            note: None,
        }),
    );
    (sh, listed, banned)
}

fn admit(c: &mut Criterion) {
    let (mut sh, listed, banned) = shield();
    assert_eq!(sh.ban_count(), 100_000);
    assert_eq!(sh.admit(NOW, listed[7]), Verdict::Drop(pbxguard_shield::DropReason::Blacklisted));
    let clean: Vec<IpAddr> = (0..1024u32).map(|i| IpAddr::V4(Ipv4Addr::from(0x6440_0000 | i))).collect();
    let mut g = c.benchmark_group("admit_200k_list_100k_bans");
    let mut i = 0usize;
    // A clean source: every check misses, then the flood counter is updated. The clock advances so the
    // 1,024 sources never reach the flood threshold.
    let mut t = NOW;
    g.bench_function("clean_source", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            t += 1;
            sh.admit(black_box(t), black_box(clean[i]))
        })
    });
    g.bench_function("banned_source", |b| {
        b.iter(|| {
            i = (i + 7919) % banned.len();
            sh.admit(black_box(NOW), black_box(banned[i]))
        })
    });
    g.bench_function("blacklisted_source", |b| {
        b.iter(|| {
            i = (i + 7919) % listed.len();
            sh.admit(black_box(NOW), black_box(listed[i]))
        })
    });
    g.finish();
}

criterion_group!(benches, admit);
criterion_main!(benches);
