//! Money and dates as people read them in the report: `$1,234.56`, `−$0.05`, `Tue 24 Nov 2026`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// An amount in dollars with thousands separators and two decimals; negatives carry a true
/// minus sign (Rotessa's accounts are CAD or USD, both written with `$`).
pub fn money(amount: Decimal) -> String {
    let mut rounded = amount.round_dp(2);
    rounded.rescale(2);
    let text = rounded.abs().to_string();
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "\u{2212}"
    } else {
        ""
    };
    format!("{sign}${grouped}.{cents}")
}

/// A difference: like [`money`], with a `+` on positive amounts so that the direction shows.
pub fn signed_money(amount: Decimal) -> String {
    if amount > Decimal::ZERO {
        format!("+{}", money(amount))
    } else {
        money(amount)
    }
}

/// A date with its weekday: settlement dates are business days, and a weekend stands out.
pub fn date(day: NaiveDate) -> String {
    day.format("%a %-d %b %Y").to_string()
}

/// A short date for chart axes.
pub fn short_date(day: NaiveDate) -> String {
    day.format("%-d %b").to_string()
}

/// An instant in UTC, to the minute.
pub fn instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn money_is_grouped_rounded_and_signed() {
        assert_eq!(money(d("0")), "$0.00");
        assert_eq!(money(d("-0.00")), "$0.00");
        assert_eq!(money(d("5")), "$5.00");
        assert_eq!(money(d("999.5")), "$999.50");
        assert_eq!(money(d("1000")), "$1,000.00");
        assert_eq!(money(d("1234567.891")), "$1,234,567.89");
        assert_eq!(money(d("-12345.6")), "\u{2212}$12,345.60");
        assert_eq!(signed_money(d("0.05")), "+$0.05");
        assert_eq!(signed_money(d("-0.05")), "\u{2212}$0.05");
        assert_eq!(signed_money(d("0")), "$0.00");
    }

    #[test]
    fn dates_name_their_weekday() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(date(day), "Tue 24 Nov 2026");
        assert_eq!(short_date(day), "24 Nov");
    }
}
