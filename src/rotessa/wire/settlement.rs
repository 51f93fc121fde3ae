//! Rows of `settlements/show_by_settlement_date`: one per settlement date, with counts and
//! decimal-string totals.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

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
        let mut map: Map<String, Value> =
            serde_json::from_str(raw).map_err(|e| format!("not a settlement object: {e}"))?;
        let count = |map: &mut Map<String, Value>, name| {
            required(map, name, "a count", |s: &Scalar<'_>| s.to_i64())
        };
        let total = |map: &mut Map<String, Value>, name| {
            required(map, name, "a decimal amount", |s: &Scalar<'_>| {
                s.to_decimal()
            })
        };
        Ok(Self {
            settlement_date: required(&mut map, "settlement_date", "a date (YYYY-MM-DD)", |s| {
                s.to_date()
            })?,
            number_approved: count(&mut map, "number_approved")?,
            number_declined: count(&mut map, "number_declined")?,
            number_chargeback: count(&mut map, "number_chargeback")?,
            number_payout: count(&mut map, "number_payout")?,
            total_approved: total(&mut map, "total_approved")?,
            total_declined: total(&mut map, "total_declined")?,
            total_chargeback: total(&mut map, "total_chargeback")?,
            total_payout: total(&mut map, "total_payout")?,
            extra: map,
            raw: raw.to_owned(),
        })
    }
}

/// Removes `name` from the row and parses it, or says what is wrong with it.
fn required<T>(
    map: &mut Map<String, Value>,
    name: &str,
    what: &str,
    parse: impl Fn(&Scalar<'_>) -> Option<T>,
) -> Result<T, String> {
    let value = map
        .remove(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| format!("missing required field `{name}`"))?;
    let scalar = Scalar::from(&value);
    parse(&scalar).ok_or_else(|| format!("`{name}`: {} is not {what}", scalar.describe()))
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
