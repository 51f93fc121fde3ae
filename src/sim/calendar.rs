//! Day arithmetic for the simulator: dates as day numbers (days from the common era, as chrono
//! counts them), business days Monday to Friday (no holidays), and fast formatting helpers.

use chrono::{Datelike, NaiveDate};

/// A calendar date as a day number: `NaiveDate::num_days_from_ce`. Cheap to store and compare.
pub type Day = i32;

/// The day number of `date`.
pub fn day_of(date: NaiveDate) -> Day {
    date.num_days_from_ce()
}

/// The date of a day number (clamped to chrono's range, which generated data never leaves).
pub fn date_of(day: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day).unwrap_or(if day < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

/// Whether `day` is Monday to Friday (day 1, 0001-01-01, was a Monday).
pub fn is_business_day(day: Day) -> bool {
    (day - 1).rem_euclid(7) < 5
}

/// `day` itself when it is a business day, else the next Monday.
pub fn on_or_after_business_day(mut day: Day) -> Day {
    while !is_business_day(day) {
        day += 1;
    }
    day
}

/// `n` business days after `day`.
pub fn add_business_days(mut day: Day, n: u32) -> Day {
    for _ in 0..n {
        day += 1;
        while !is_business_day(day) {
            day += 1;
        }
    }
    day
}

/// `n` business days before `day`.
pub fn sub_business_days(mut day: Day, n: u32) -> Day {
    for _ in 0..n {
        day -= 1;
        while !is_business_day(day) {
            day -= 1;
        }
    }
    day
}

/// Year, month and day of a day number, by Howard Hinnant's `civil_from_days` (integer only, so
/// encoding a date costs a few multiplications).
pub fn ymd(day: Day) -> (i32, u32, u32) {
    // Days since 0000-03-01 in the proleptic Gregorian calendar.
    let z = i64::from(day) + 305;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

/// Parses a request's date: `YYYY-MM-DD`, zero padding optional (Rotessa is lenient too).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    if !(y.len() == 4 && digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    #[test]
    fn ymd_agrees_with_chrono() {
        let start = day_of(NaiveDate::from_ymd_opt(1999, 1, 1).unwrap());
        for day in start..start + 20_000 {
            let date = date_of(day);
            assert_eq!(ymd(day), (date.year(), date.month(), date.day()), "{date}");
        }
    }

    #[test]
    fn business_days_skip_weekends() {
        let d = |s: &str| day_of(s.parse().unwrap());
        assert_eq!(date_of(d("2026-11-20")).weekday(), Weekday::Fri);
        assert!(is_business_day(d("2026-11-20")));
        assert!(!is_business_day(d("2026-11-21")));
        assert!(!is_business_day(d("2026-11-22")));
        assert_eq!(add_business_days(d("2026-11-20"), 1), d("2026-11-23"));
        assert_eq!(add_business_days(d("2026-11-19"), 4), d("2026-11-25"));
        assert_eq!(sub_business_days(d("2026-11-23"), 1), d("2026-11-20"));
        assert_eq!(on_or_after_business_day(d("2026-11-21")), d("2026-11-23"));
        assert_eq!(on_or_after_business_day(d("2026-11-20")), d("2026-11-20"));
    }

    #[test]
    fn request_dates_may_omit_padding() {
        assert_eq!(parse_date("2019-03-7"), NaiveDate::from_ymd_opt(2019, 3, 7));
        assert_eq!(
            parse_date("2019-03-07"),
            NaiveDate::from_ymd_opt(2019, 3, 7)
        );
        assert_eq!(parse_date("2019-02-29"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("19-03-07"), None);
    }
}
