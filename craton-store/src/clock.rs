//! Wall-clock helpers: UTC civil dates from the system clock, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian), after H.
/// Hinnant's public-domain `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days from 1970-01-01 to a civil date (the inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The current UTC time as RFC 3339 with milliseconds (`2026-11-26T20:34:12.123Z`).
pub fn rfc3339_now() -> String {
    String::from_utf8_lossy(&rfc3339_now_bytes()).into_owned()
}

/// [`rfc3339_now`] as fixed-size ASCII, built without formatting machinery or allocation
/// (every audit entry carries one).
pub fn rfc3339_now_bytes() -> [u8; 24] {
    rfc3339_at(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// The RFC 3339 form of `now`, a time since the Unix epoch.
fn rfc3339_at(now: std::time::Duration) -> [u8; 24] {
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    // Writes `value` as `width` decimal digits ending just before `end`.
    let mut digits = |end: usize, width: usize, mut value: u64| {
        for i in (end - width..end).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    digits(4, 4, y.clamp(0, 9999) as u64);
    digits(7, 2, u64::from(m));
    digits(10, 2, u64::from(d));
    digits(13, 2, (rem / 3600) as u64);
    digits(16, 2, (rem % 3600 / 60) as u64);
    digits(19, 2, (rem % 60) as u64);
    digits(23, 3, u64::from(now.subsec_millis()));
    out
}

/// Today's UTC date as `CK_DATE` digits.
pub fn today() -> [u8; 8] {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = format!("{y:04}{m:02}{d:02}");
    let mut out = [b'0'; 8];
    out.copy_from_slice(&s.as_bytes()[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days_convert() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
        assert!(rfc3339_now().ends_with('Z'));
        for days in [0, 11_016, 20_783, -1, 1_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn timestamps_are_written_digit_by_digit_as_rfc_3339() {
        let at = |secs: u64, millis: u32| {
            String::from_utf8(
                rfc3339_at(std::time::Duration::new(secs, millis * 1_000_000)).to_vec(),
            )
            .unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        // 2026-11-27 12:34:56.789 UTC.
        let day = days_from_civil(2026, 11, 27) as u64;
        assert_eq!(
            at(day * 86_400 + 12 * 3600 + 34 * 60 + 56, 789),
            "2026-11-27T12:34:56.789Z"
        );
        // The last millisecond of a leap day.
        let day = days_from_civil(2024, 2, 29) as u64;
        assert_eq!(at(day * 86_400 + 86_399, 999), "2024-02-29T23:59:59.999Z");
    }
}
