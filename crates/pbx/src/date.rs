/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01, in the proleptic Gregorian calendar
/// (Howard Hinnant's civil-from-days). One place for every date pbxguard prints.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as u32, d as u32)
}

/// A Date header value (RFC 3261 §20.17, the RFC 1123 form), formatted where it is written.
pub(crate) struct HttpDate(pub(crate) u64);

impl std::fmt::Display for HttpDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = self.0;
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let days = now / 86_400;
        let secs = now % 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        write!(
            f,
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            DAYS[(days % 7) as usize],
            d,
            MONTHS[(m - 1) as usize],
            y,
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::HttpDate(0).to_string(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(super::HttpDate(1_795_000_000).to_string(), "Wed, 18 Nov 2026 11:06:40 GMT");
        assert_eq!(super::HttpDate(951_782_400).to_string(), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
