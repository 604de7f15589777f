//! A Unix time as a UTC calendar date and time of day, for the lines that carry one (the
//! server's JSON log lines, the benchmark's report). Pure: the caller reads the clock.

/// A moment in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// The year (proleptic Gregorian).
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

impl Utc {
    /// `secs` since 1970-01-01T00:00:00Z (Howard Hinnant's civil_from_days).
    pub fn from_unix(secs: u64) -> Utc {
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        // Each is small and positive by construction: 1..=31, 1..=12.
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rest / 3600) as u32,
            minute: (rest / 60 % 60) as u32,
            second: (rest % 60) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates_leap_days_too() {
        let at = |y, mo, d, h, mi, s| Utc {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        };
        assert_eq!(Utc::from_unix(0), at(1970, 1, 1, 0, 0, 0));
        assert_eq!(Utc::from_unix(951_782_400), at(2000, 2, 29, 0, 0, 0));
        assert_eq!(Utc::from_unix(1_795_846_712), at(2026, 11, 28, 6, 18, 32));
        assert_eq!(Utc::from_unix(1_796_557_424), at(2026, 12, 6, 11, 43, 44));
    }
}
