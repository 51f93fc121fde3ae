//! Customers, their transaction schedules, and the platform's payouts, as stored: personal data
//! minimised (README "Personal data").

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

/// Fields of a customer that are personal data beyond a name and an email: never in `extra`,
/// bank numbers only masked, contact details only when the operator opts in.
pub const PRIVATE_FIELDS: [&str; 9] = [
    "account_number",
    "transit_number",
    "institution_number",
    "routing_number",
    "phone",
    "home_phone",
    "address",
    "financial_transactions",
    "transaction_schedules",
];

/// Masks a bank number to at most its last 3 characters, and never all of it: "23123132"
/// becomes "*****132", "333" becomes "*33", and an already masked "****32" stays as it is.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = chars.len().saturating_sub(1).min(3);
    let hidden = chars.len() - keep;
    std::iter::repeat_n('*', hidden)
        .chain(chars[hidden..].iter().copied())
        .collect()
}

/// A customer's phone numbers and address, kept only with `sync.customers.store_contact`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    pub phone: Option<String>,
    pub home_phone: Option<String>,
    pub address: Option<Value>,
}

/// One row of `rotessa.customers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: i64,
    /// `None` on a v1 account.
    pub client_id: Option<i64>,
    pub custom_identifier: Option<String>,
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub customer_type: Option<String>,
    pub active: Option<bool>,
    pub bank_name: Option<String>,
    pub authorization_type: Option<String>,
    pub bank_account_type: Option<String>,
    /// Masked ([`mask`]).
    pub account_number: Option<String>,
    pub transit_number: Option<String>,
    pub institution_number: Option<String>,
    pub routing_number: Option<String>,
    /// Empty unless contact details are kept.
    pub contact: Contact,
    pub api_created_at: Option<DateTime<Utc>>,
    pub api_updated_at: Option<DateTime<Utc>>,
    /// Fields without a column ([`PRIVATE_FIELDS`] never), or `None`.
    pub extra: Option<Value>,
}

impl Customer {
    /// The names of the fields a `customer.changed` event is about that differ from `before`:
    /// those of [`Customer::event_fields`] and `email` (Rotessa's `updated_at`, `extra` and the
    /// contact details aside: a change only there is written without an event).
    pub fn changed_fields(&self, before: &Customer) -> Vec<String> {
        let (now, then) = (
            serde_json::to_value(self.event_fields()),
            serde_json::to_value(before.event_fields()),
        );
        let mut changed: Vec<String> = match (now, then) {
            (Ok(Value::Object(now)), Ok(Value::Object(then))) => now
                .into_iter()
                .filter(|(k, v)| then.get(k) != Some(v))
                .map(|(k, _)| k)
                .collect(),
            _ => Vec::new(),
        };
        if self.email != before.email {
            changed.push("email".to_owned());
        }
        changed.sort();
        changed
    }

    /// The customer as an event payload fragment: bank numbers masked, and no contact data
    /// (phones, address, email).
    pub fn event_fields(&self) -> rotessa_outbox::CustomerFields {
        rotessa_outbox::CustomerFields {
            id: self.id,
            client_id: self.client_id,
            custom_identifier: self.custom_identifier.clone(),
            identifier: self.identifier.clone(),
            name: self.name.clone(),
            customer_type: self.customer_type.clone(),
            active: self.active,
            bank_name: self.bank_name.clone(),
            authorization_type: self.authorization_type.clone(),
            bank_account_type: self.bank_account_type.clone(),
            account_number: self.account_number.clone(),
            transit_number: self.transit_number.clone(),
            institution_number: self.institution_number.clone(),
            routing_number: self.routing_number.clone(),
        }
    }
}

/// One row of `rotessa.transaction_schedules`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: i64,
    pub customer_id: i64,
    pub client_id: Option<i64>,
    /// At scale 2.
    pub amount: Option<Decimal>,
    pub frequency: Option<String>,
    pub installments: Option<i32>,
    pub process_date: Option<NaiveDate>,
    pub next_process_date: Option<NaiveDate>,
    pub active: Option<bool>,
    pub comment: Option<String>,
    pub api_created_at: Option<DateTime<Utc>>,
    pub api_updated_at: Option<DateTime<Utc>>,
    pub extra: Option<Value>,
}

/// One row of `rotessa.payouts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Payout {
    /// See [`payout_key`].
    pub key: String,
    pub payout_id: Option<i64>,
    pub financial_transaction_id: Option<i64>,
    pub customer_id: Option<i64>,
    /// At scale 2 (`"1.0"` is 1.00).
    pub amount: Decimal,
    pub transaction_amount: Option<Decimal>,
    pub status: Option<String>,
    pub process_date: Option<NaiveDate>,
    pub settlement_date: Option<NaiveDate>,
    /// The nested financial transaction's `updated_at`: an older view of a payout is stale.
    pub api_updated_at: Option<DateTime<Utc>>,
    pub extra: Option<Value>,
}

impl Payout {
    /// Whether this payout is a forecast: Rotessa gave it no identity of its own.
    pub fn is_forecast(&self) -> bool {
        self.key.starts_with(FORECAST_PREFIX)
    }

    /// The payout as an event payload fragment.
    pub fn event_fields(&self) -> rotessa_outbox::PayoutFields {
        rotessa_outbox::PayoutFields {
            payout_key: self.key.clone(),
            payout_id: self.payout_id,
            financial_transaction_id: self.financial_transaction_id,
            customer_id: self.customer_id,
            amount: self.amount,
            transaction_amount: self.transaction_amount,
            status: self.status.clone(),
            process_date: self.process_date,
            settlement_date: self.settlement_date,
        }
    }
}

/// The prefix of a forecast payout's key.
pub const FORECAST_PREFIX: &str = "future:";

/// The key of a payout, stable across syncs (README "Payout keys"): its own id when it has one
/// (a transaction may have more than one payout), else its financial transaction's id, else (a
/// Future payout, which Rotessa gives neither) its customer, transaction amount and amount,
/// numbered by `occurrence` (1 for the first such payout of a response, 2 for the second...).
pub fn payout_key(
    financial_transaction_id: Option<i64>,
    payout_id: Option<i64>,
    customer_id: Option<i64>,
    transaction_amount: Option<Decimal>,
    amount: Decimal,
    occurrence: u32,
) -> String {
    match (payout_id, financial_transaction_id) {
        (Some(id), _) => format!("payout:{id}"),
        (None, Some(ft)) => format!("ft:{ft}"),
        (None, None) => format!(
            "{FORECAST_PREFIX}{}:{}:{amount}:{occurrence}",
            customer_id.map_or("-".to_owned(), |c| c.to_string()),
            transaction_amount.map_or("-".to_owned(), |a| a.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn masks_keep_at_most_three_characters_and_never_all() {
        assert_eq!(mask("23123132"), "*****132");
        assert_eq!(mask("11111"), "**111");
        assert_eq!(mask("333"), "*33");
        assert_eq!(mask("7"), "*");
        assert_eq!(mask(""), "");
        assert_eq!(mask("****32"), "****32");
        assert_eq!(mask("111000025"), "******025");
    }

    #[test]
    fn payout_keys_prefer_the_id_then_the_financial_transaction() {
        let one = Decimal::from_str("1.00").unwrap();
        let hundred = Decimal::from_str("100.00").unwrap();
        assert_eq!(
            payout_key(Some(5), Some(9), Some(1), None, one, 1),
            "payout:9"
        );
        assert_eq!(payout_key(Some(5), None, Some(1), None, one, 1), "ft:5");
        assert_eq!(
            payout_key(None, None, Some(174527), Some(hundred), one, 2),
            "future:174527:100.00:1.00:2"
        );
    }
}
