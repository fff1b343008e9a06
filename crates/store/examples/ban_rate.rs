//! How fast the daemon's persister can store bans: 100,000 upserts in one transaction, three times,
//! into a fresh database file (WAL, as the daemon opens it). A spoofed-source storm produces a ban and
//! an eviction per scanner packet; this is the rate past which some stay in memory only.
//!
//! Usage: cargo run --release -p pbxguard-store --example ban_rate

use pbxguard_store::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("pbxguard-ban-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = pbxguard_store::Store::open(&dir.join("bans.db"))?;
    for round in 0..3u32 {
        let started = std::time::Instant::now();
        store.begin()?;
        for i in 0..100_000u32 {
            store.upsert_ban(&pbxguard_store::BanRow {
                target: std::net::Ipv4Addr::from(0x0a00_0000 + round * 100_000 + i).to_string(),
                reason: "scanner".into(),
                evidence: "User-Agent friendly-scanner".into(),
                first_seen_ms: 1,
                created_ms: 1,
                expires_ms: Some(3_600_000),
                offence: 1,
                note: None,
            })?;
        }
        store.commit()?;
        let s = started.elapsed().as_secs_f64();
        println!("100,000 ban upserts in {:.0} ms: {:.0} per second", s * 1e3, 1e5 / s);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
