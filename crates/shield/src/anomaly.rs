//! Unusual calling: what a stolen extension does that its owner never did. Each extension has a learned
//! profile of the costly destinations it has called (international countries, premium-rate); a first
//! call to a new country or to premium-rate, or any trunk call outside business hours, is an anomaly.
//! The fraud limits cap how much a thief can spend; this notices the thief on the first
//! call. Pure: the clock comes in with each call, and the profile is rebuilt from the calls log at start.

use crate::CountryCode;
use crate::dialing::Category;
use std::collections::HashMap;

const DAY_MS: u64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// When trunk calls are expected: days of the week and a daily span, in a fixed offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessHours {
    /// Bit 0 Monday ... bit 6 Sunday.
    days: u8,
    /// Minutes after midnight, local time; `start < end`.
    start: u16,
    end: u16,
    /// Local time minus UTC, in minutes.
    offset: i16,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl BusinessHours {
    /// Parses `mon-fri 08:00-18:00` with an optional UTC offset (`+01:00`, `-05:00`, `UTC`); an empty
    /// value means no business hours (off).
    pub fn parse(v: &str) -> Result<Option<Self>, String> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        let err = || format!("expected DAYS HH:MM-HH:MM [+HH:MM], such as mon-fri 08:00-18:00 +01:00, not {v:?}");
        let mut parts = v.split_whitespace();
        let (days, span) = (parts.next().ok_or_else(err)?, parts.next().ok_or_else(err)?);
        let offset = match parts.next() {
            None => 0,
            Some(o) if o.eq_ignore_ascii_case("utc") => 0,
            Some(o) => {
                let (sign, rest) = match o.as_bytes().first() {
                    Some(b'+') => (1, &o[1..]),
                    Some(b'-') => (-1, &o[1..]),
                    _ => return Err(err()),
                };
                let m = clock(rest).filter(|m| *m <= 14 * 60).ok_or_else(err)?;
                sign * m as i16
            }
        };
        if parts.next().is_some() {
            return Err(err());
        }
        let mut mask = 0u8;
        for range in days.to_ascii_lowercase().split(',') {
            let day = |d: &str| DAYS.iter().position(|x| *x == d);
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a).ok_or_else(err)?, day(b).ok_or_else(err)?);
                    // mon-fri, or across the week's end: fri-mon.
                    let mut d = a;
                    loop {
                        mask |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => mask |= 1 << day(range).ok_or_else(err)?,
            }
        }
        let (s, e) = span.split_once('-').ok_or_else(err)?;
        let (start, end) = (clock(s).ok_or_else(err)?, clock(e).ok_or_else(err)?);
        if start >= end || end > 24 * 60 {
            return Err(format!("{v:?}: the day's span must start before it ends, within 00:00-24:00"));
        }
        Ok(Some(Self { days: mask, start, end, offset }))
    }

    /// Whether `now_ms` (Unix time) falls within these hours.
    pub fn contains(&self, now_ms: u64) -> bool {
        let local = now_ms as i64 + self.offset as i64 * MINUTE_MS;
        let days = local.div_euclid(DAY_MS as i64);
        // 1970-01-01 was a Thursday (index 3 from Monday).
        let weekday = (days + 3).rem_euclid(7) as u8;
        let minute = (local.rem_euclid(DAY_MS as i64) / MINUTE_MS) as u16;
        self.days & (1 << weekday) != 0 && (self.start..self.end).contains(&minute)
    }
}

/// `HH:MM` as minutes.
fn clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

/// What made a call unusual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// The extension's first call to this country.
    NewCountry(CountryCode),
    /// The extension's first call to a premium-rate number.
    FirstPremium,
    /// A trunk call outside the configured business hours.
    OutsideHours,
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NewCountry(c) => write!(f, "first call to country {} ({})", c.get(), c.name()),
            Self::FirstPremium => f.write_str("first call to a premium-rate number"),
            Self::OutsideHours => f.write_str("trunk call outside business hours"),
        }
    }
}

#[derive(Debug, Default)]
struct Profile {
    countries: Vec<CountryCode>,
    premium: bool,
}

/// The learned profiles, one per extension that made a costly call. Bounded by the number of
/// extensions (only authenticated callers are learned) and, within one, by the number of countries.
#[derive(Debug, Default)]
pub struct Profiles {
    by_ext: HashMap<String, Profile>,
}

impl Profiles {
    /// Learns a call without judging it (the calls log, read at start).
    pub fn learn(&mut self, ext: &str, category: Category, country: Option<CountryCode>) {
        let costly = category == Category::Premium || (category == Category::International && country.is_some());
        if !costly {
            return;
        }
        let p = self.by_ext.entry(ext.to_owned()).or_default();
        match category {
            Category::Premium => p.premium = true,
            _ => {
                if let Some(c) = country
                    && !p.countries.contains(&c)
                {
                    p.countries.push(c);
                }
            }
        }
    }

    /// Judges a trunk call `ext` is about to make, then learns it: the same destination is not unusual
    /// twice. Internal and emergency calls are never unusual.
    pub fn check(
        &mut self,
        ext: &str,
        category: Category,
        country: Option<CountryCode>,
        now_ms: u64,
        hours: Option<&BusinessHours>,
    ) -> Vec<Anomaly> {
        let mut out = Vec::new();
        if matches!(category, Category::Internal | Category::Emergency) {
            return out;
        }
        let p = self.by_ext.get(ext);
        match (category, country) {
            (Category::Premium, _) if !p.is_some_and(|p| p.premium) => out.push(Anomaly::FirstPremium),
            (Category::International, Some(c)) if !p.is_some_and(|p| p.countries.contains(&c)) => {
                out.push(Anomaly::NewCountry(c))
            }
            _ => {}
        }
        if hours.is_some_and(|h| !h.contains(now_ms)) {
            out.push(Anomaly::OutsideHours);
        }
        self.learn(ext, category, country);
        out
    }

    pub fn len(&self) -> usize {
        self.by_ext.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ext.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30 (a Monday) at `h`:`m` UTC plus `days`.
    fn at(days: u64, h: u64, m: u64) -> u64 {
        1_795_996_800_000 + days * DAY_MS + h * 3_600_000 + m * 60_000
    }

    fn country(n: u16) -> CountryCode {
        CountryCode::of_number(&n.to_string()).unwrap()
    }

    #[test]
    fn business_hours_parse_and_hold_in_their_offset() {
        let h = BusinessHours::parse("mon-fri 08:00-18:00").unwrap().unwrap();
        assert!(h.contains(at(0, 8, 0)), "Monday 08:00");
        assert!(h.contains(at(4, 17, 59)), "Friday 17:59");
        assert!(!h.contains(at(0, 18, 0)), "Monday 18:00 is closed");
        assert!(!h.contains(at(0, 3, 0)), "3 a.m.");
        assert!(!h.contains(at(5, 10, 0)), "Saturday");
        // One hour east of UTC: 07:30 UTC is 08:30 there.
        let cet = BusinessHours::parse("mon-fri 08:00-18:00 +01:00").unwrap().unwrap();
        assert!(cet.contains(at(0, 7, 30)));
        assert!(!cet.contains(at(0, 17, 30)));
        let weekend = BusinessHours::parse("sat-sun 00:00-24:00").unwrap().unwrap();
        assert!(weekend.contains(at(6, 23, 59)) && !weekend.contains(at(0, 12, 0)));
        let wrap = BusinessHours::parse("fri-mon 10:00-12:00").unwrap().unwrap();
        assert!(wrap.contains(at(0, 11, 0)) && wrap.contains(at(5, 11, 0)) && !wrap.contains(at(2, 11, 0)));
        assert_eq!(BusinessHours::parse(" "), Ok(None));
        for bad in ["mon-fri", "mon-fri 18:00-08:00", "funday 08:00-18:00", "mon 8-18", "mon 08:00-18:00 CET"] {
            assert!(BusinessHours::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_week_of_national_calls_then_premium_at_3am_is_unusual_and_the_usual_call_is_not() {
        let hours = BusinessHours::parse("mon-fri 08:00-18:00").unwrap();
        let mut p = Profiles::default();
        for day in 0..7 {
            for h in [9, 11, 15] {
                assert_eq!(p.check("1001", Category::National, None, at(day % 5, h, 0), hours.as_ref()), vec![]);
            }
        }
        assert_eq!(
            p.check("1001", Category::Premium, None, at(8, 3, 0), hours.as_ref()),
            vec![Anomaly::FirstPremium, Anomaly::OutsideHours]
        );
        assert_eq!(p.check("1001", Category::National, None, at(8, 10, 0), hours.as_ref()), vec![]);
        // Learned: a second premium call in hours is usual now.
        assert_eq!(p.check("1001", Category::Premium, None, at(8, 11, 0), hours.as_ref()), vec![]);
    }

    #[test]
    fn new_countries_are_unusual_once_per_extension_and_the_log_teaches_them() {
        let mut p = Profiles::default();
        p.learn("1001", Category::International, Some(country(44)));
        assert_eq!(p.check("1001", Category::International, Some(country(44)), at(0, 10, 0), None), vec![]);
        assert_eq!(
            p.check("1001", Category::International, Some(country(49)), at(0, 10, 0), None),
            vec![Anomaly::NewCountry(country(49))]
        );
        assert_eq!(p.check("1001", Category::International, Some(country(49)), at(0, 10, 5), None), vec![]);
        // Another extension has its own profile.
        assert_eq!(
            p.check("1002", Category::International, Some(country(44)), at(0, 10, 0), None),
            vec![Anomaly::NewCountry(country(44))]
        );
        assert_eq!(p.check("1002", Category::Internal, None, at(0, 3, 0), None), vec![]);
        assert_eq!(Anomaly::NewCountry(country(49)).to_string(), "first call to country 49 (Germany)");
        assert_eq!(p.len(), 2);
    }
}
