//! Rows of `GET /v2/payout_report`: what the platform earns per transaction. A Future payout has
//! no id and no financial transaction yet (the documented sample); each row nests its customer
//! in full, of which only the id is read here.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::fields::Fields;

/// A payout as the report lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WirePayout {
    /// `null` on a Future payout.
    pub id: Option<i64>,
    pub amount: Decimal,
    pub transaction_amount: Option<Decimal>,
    pub status: Option<String>,
    /// The nested customer's id (the rest of it is not read).
    pub customer_id: Option<i64>,
    /// The nested financial transaction, `None` when `null` (Future).
    pub financial_transaction: Option<PayoutTransaction>,
    /// Fields without a typed home, as sent (the nested customer excluded).
    pub extra: Map<String, Value>,
}

/// What a payout row says of its financial transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct PayoutTransaction {
    pub id: i64,
    pub process_date: Option<NaiveDate>,
    pub settlement_date: Option<NaiveDate>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl WirePayout {
    /// Parses one payout; `amount` is required, and a financial transaction must have an id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut f = Fields::parse(raw, "payout")?;
        let customer_id = match f.take_value("customer") {
            Some(Value::Object(c)) => Fields::from_map(c).int("id"),
            _ => None,
        };
        let customer_id = customer_id.or_else(|| f.int("customer_id"));
        let financial_transaction = match f.take_value("financial_transaction") {
            None | Some(Value::Null) => None,
            Some(Value::Object(t)) => {
                let mut t = Fields::from_map(t);
                Some(PayoutTransaction {
                    id: t
                        .required("id", "an integer id", |s| s.to_i64())
                        .map_err(|e| format!("`financial_transaction`: {e}"))?,
                    process_date: t.date("process_date"),
                    settlement_date: t.date("settlement_date"),
                    updated_at: t.timestamp("updated_at"),
                })
            }
            Some(_) => return Err("`financial_transaction`: expected an object or null".into()),
        };
        Ok(Self {
            id: f.int("id"),
            amount: f.required("amount", "a decimal amount", |s| s.to_decimal())?,
            transaction_amount: f.decimal("transaction_amount"),
            status: f.text("status"),
            customer_id,
            financial_transaction,
            extra: f.into_rest(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_future_payout_parses() {
        let p = WirePayout::parse(
            r#"{"amount": "1.0", "customer": {"account_number": "23123132", "id": 174527,
                "name": "Mike Smith", "phone": ""}, "financial_transaction": null, "id": null,
                "status": "Future", "transaction_amount": "100.00"}"#,
        )
        .unwrap();
        assert_eq!(p.id, None);
        assert_eq!(p.amount.to_string(), "1.0");
        assert_eq!(p.customer_id, Some(174527));
        assert_eq!(p.financial_transaction, None);
        assert_eq!(p.status.as_deref(), Some("Future"));
        assert!(
            p.extra.is_empty(),
            "the nested customer is not kept: {:?}",
            p.extra
        );
    }

    #[test]
    fn a_financial_transaction_needs_an_id_and_an_amount_is_required() {
        let p = WirePayout::parse(
            r#"{"amount": "2.26", "id": 77, "status": "Approved", "financial_transaction":
                {"id": 5, "process_date": "2021-3-7", "settlement_date": "2021-03-12"}}"#,
        )
        .unwrap();
        let t = p.financial_transaction.unwrap();
        assert_eq!(
            (t.id, t.process_date),
            (5, NaiveDate::from_ymd_opt(2021, 3, 7))
        );
        let err =
            WirePayout::parse(r#"{"amount": "1.0", "financial_transaction": {"amount": "1"}}"#)
                .unwrap_err();
        assert!(err.contains("financial_transaction"), "{err}");
        let err = WirePayout::parse(r#"{"id": 1}"#).unwrap_err();
        assert!(err.contains("amount"), "{err}");
    }
}
