//! Splitting a date range into the request windows a report is fetched in.

use chrono::{Days, NaiveDate};

/// Splits `[from, to]` (inclusive) into consecutive inclusive windows of at most `days` days.
pub fn split(from: NaiveDate, to: NaiveDate, days: u32) -> Vec<(NaiveDate, NaiveDate)> {
    let days = u64::from(days.max(1));
    let mut windows = Vec::new();
    let mut start = from;
    while start <= to {
        let end = start
            .checked_add_days(Days::new(days - 1))
            .map_or(to, |e| e.min(to));
        windows.push((start, end));
        match end.succ_opt() {
            Some(next) => start = next,
            None => break,
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn windows_cover_the_range_without_overlap() {
        let w = split(d("2026-01-01"), d("2026-03-05"), 31);
        assert_eq!(
            w,
            vec![
                (d("2026-01-01"), d("2026-01-31")),
                (d("2026-02-01"), d("2026-03-03")),
                (d("2026-03-04"), d("2026-03-05")),
            ]
        );
        assert_eq!(split(d("2026-01-01"), d("2026-01-01"), 31).len(), 1);
        assert!(split(d("2026-01-02"), d("2026-01-01"), 31).is_empty());
    }

    #[test]
    fn a_default_transactions_window_is_six_requests() {
        // today - 100 days .. today + 60 days = 161 days in 31-day requests.
        let today = d("2026-11-22");
        let w = split(today - Days::new(100), today + Days::new(60), 31);
        assert_eq!(w.len(), 6);
        let total: i64 = w.iter().map(|(a, b)| (*b - *a).num_days() + 1).sum();
        assert_eq!(total, 161);
    }
}
