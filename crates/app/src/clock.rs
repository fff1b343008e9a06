//! The wall clock, read in one place. Sans-IO cores take `now` as an argument; this is where the
//! daemon and the operations get it.

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub fn now_secs() -> i64 {
    (now_ms() / 1000) as i64
}

/// A time for people: `2026-11-30 16:35:28.650Z` (UTC, millisecond precision). JSON keeps epoch ms.
pub fn utc(at_ms: i64) -> String {
    let (days, ms) = (at_ms.div_euclid(86_400_000), at_ms.rem_euclid(86_400_000));
    let (year, month, day) = pbxguard_pbx::civil_from_days(days);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// A span for people, to two units: `45s`, `59m 12s`, `2h 5m`, `3d 4h` (negative spans read as 0s).
pub fn span(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans() {
        let got: Vec<String> = [-5, 45, 3_552, 7_500, 273_600].map(super::span).into();
        assert_eq!(got, ["0s", "45s", "59m 12s", "2h 5m", "3d 4h"]);
    }

    #[test]
    fn utc_times() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(super::utc(1_796_056_528_650), "2026-11-30 16:35:28.650Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00.000Z");
        assert_eq!(super::utc(4_107_542_399_999), "2100-02-28 23:59:59.999Z");
    }
}
