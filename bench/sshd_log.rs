//! The SSH guard's parser (`pbxguard_shield::ssh::parse`) on real OpenSSH 9.2 lines
//! (tests/data/sshd), in the three forms the guard reads: an `sshd -E` file, a syslog auth.log (with
//! other programs' lines), journald JSON. Lines per second on one core; compare with fail2ban-regex on
//! the same auth.log (bench/sshd_log.sh). Results: docs/benchmarks.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const PLAIN: &str = include_str!("../tests/data/sshd/openssh-9.2-verbose.log");
const AUTH_LOG: &str = include_str!("../tests/data/sshd/auth.log");
const JOURNAL: &str = include_str!("../tests/data/sshd/journal.json");

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sshd_log");
    // bench/sshd_log.sh passes the big auth.log it also gives fail2ban-regex.
    let big = std::env::var("SSHD_LOG_FILE").ok().map(|p| std::fs::read_to_string(p).expect("SSHD_LOG_FILE"));
    let mut inputs = vec![("sshd -E", PLAIN), ("auth.log", AUTH_LOG), ("journal json", JOURNAL)];
    if let Some(b) = &big {
        inputs.push(("SSHD_LOG_FILE", b.as_str()));
    }
    for (name, text) in inputs {
        let lines: Vec<&str> = text.lines().collect();
        g.throughput(Throughput::Elements(lines.len() as u64));
        // The floor: touching every byte of every line, reading nothing.
        g.bench_function(format!("{name} (floor: sum of bytes)"), |b| {
            b.iter(|| {
                lines.iter().map(|l| black_box(l).bytes().map(u32::from).sum::<u32>()).fold(0u32, u32::wrapping_add)
            })
        });
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0u32;
                for l in &lines {
                    if let Some(obs) = pbxguard_shield::ssh::parse(black_box(l)).and_then(|l| l.observation()) {
                        black_box(obs);
                        n += 1;
                    }
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
