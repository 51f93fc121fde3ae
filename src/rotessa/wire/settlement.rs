//! Rows of `settlements/show_by_settlement_date`: one per settlement date, with counts and
//! decimal-string totals.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::fields::Fields;
use crate::rotessa::lenient::Scalar;

/// Rotessa's settlement totals for one client and settlement date.
#[derive(Debug, Clone, PartialEq)]
pub struct WireSettlement {
    pub settlement_date: NaiveDate,
    pub number_approved: i64,
    pub number_declined: i64,
    pub number_chargeback: i64,
    pub number_payout: i64,
    pub total_approved: Decimal,
    pub total_declined: Decimal,
    pub total_chargeback: Decimal,
    pub total_payout: Decimal,
    /// Fields without a column, as sent.
    pub extra: Map<String, Value>,
    /// The row as sent, should a later check refuse it.
    pub raw: String,
}

impl WireSettlement {
    /// Parses one row; every documented field is required.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut f = Fields::parse(raw, "settlement")?;
        let count = |f: &mut Fields, name| f.required(name, "a count", |s: &Scalar<'_>| s.to_i64());
        let total = |f: &mut Fields, name| {
            f.required(name, "a decimal amount", |s: &Scalar<'_>| s.to_decimal())
        };
        Ok(Self {
            settlement_date: f
                .required("settlement_date", "a date (YYYY-MM-DD)", |s| s.to_date())?,
            number_approved: count(&mut f, "number_approved")?,
            number_declined: count(&mut f, "number_declined")?,
            number_chargeback: count(&mut f, "number_chargeback")?,
            number_payout: count(&mut f, "number_payout")?,
            total_approved: total(&mut f, "total_approved")?,
            total_declined: total(&mut f, "total_declined")?,
            total_chargeback: total(&mut f, "total_chargeback")?,
            total_payout: total(&mut f, "total_payout")?,
            extra: f.into_rest(),
            raw: raw.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_rows_parse() {
        let row = WireSettlement::parse(
            r#"{"number_approved": 2, "number_chargeback": 0, "number_declined": 0,
                "number_payout": 2, "settlement_date": "2018-09-12", "total_approved": "1037.48",
                "total_chargeback": "0.00", "total_declined": "0.00", "total_payout": "4.52"}"#,
        )
        .unwrap();
        assert_eq!(
            row.settlement_date,
            NaiveDate::from_ymd_opt(2018, 9, 12).unwrap()
        );
        assert_eq!(row.total_approved.to_string(), "1037.48");
        assert_eq!(row.number_payout, 2);
        assert!(row.extra.is_empty());
    }

    #[test]
    fn quirks_parse_and_bad_rows_say_why() {
        let row = WireSettlement::parse(
            r#"{"number_approved": "3", "number_chargeback": 0, "number_declined": 1,
                "number_payout": 3, "settlement_date": "2019-03-7", "total_approved": 12.5,
                "total_chargeback": "0.00", "total_declined": "5.00", "total_payout": "0.05",
                "currency": "CAD"}"#,
        )
        .unwrap();
        assert_eq!(
            row.settlement_date,
            NaiveDate::from_ymd_opt(2019, 3, 7).unwrap()
        );
        assert_eq!(row.number_approved, 3);
        assert_eq!(row.extra.get("currency"), Some(&Value::from("CAD")));
        let err = WireSettlement::parse(r#"{"settlement_date": "2019-03-07"}"#).unwrap_err();
        assert!(err.contains("number_approved"), "{err}");
        let err = WireSettlement::parse(
            r#"{"number_approved": 1, "number_chargeback": 0, "number_declined": 0,
                "number_payout": 1, "settlement_date": "2019-02-30", "total_approved": "1.00",
                "total_chargeback": "0.00", "total_declined": "0.00", "total_payout": "0.00"}"#,
        )
        .unwrap_err();
        assert!(err.contains("settlement_date"), "{err}");
    }
}
