//! Rows of the customer lists: `GET /v2/clients/{id}/customers` (with each customer's nested
//! `transaction_schedules`) and v1's `GET /v1/customers` (which omits bank numbers, addresses
//! and schedules). Parsed as sent: what is kept of them is decided by `sync`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::fields::Fields;

/// A customer as Rotessa lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WireCustomer {
    pub id: i64,
    pub custom_identifier: Option<String>,
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub customer_type: Option<String>,
    pub active: Option<bool>,
    pub bank_name: Option<String>,
    pub authorization_type: Option<String>,
    pub bank_account_type: Option<String>,
    /// Bank numbers as sent: full in the customer lists, masked elsewhere.
    pub account_number: Option<String>,
    pub transit_number: Option<String>,
    pub institution_number: Option<String>,
    pub routing_number: Option<String>,
    pub phone: Option<String>,
    pub home_phone: Option<String>,
    pub address: Option<Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The nested schedules; `None` when the list omits the field (v1), which says nothing
    /// about which schedules the customer has.
    pub schedules: Option<Vec<WireSchedule>>,
    /// Fields without a typed home, as sent (the nested `financial_transactions` excluded).
    pub extra: Map<String, Value>,
}

/// A transaction schedule nested in a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct WireSchedule {
    pub id: i64,
    pub amount: Option<Decimal>,
    pub frequency: Option<String>,
    pub installments: Option<i64>,
    pub process_date: Option<NaiveDate>,
    pub next_process_date: Option<NaiveDate>,
    pub active: Option<bool>,
    pub comment: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub extra: Map<String, Value>,
}

impl WireCustomer {
    /// Parses one customer; `id` is required, and so is the `id` of each nested schedule (a
    /// schedule that cannot be identified refuses its customer, whose schedule list would
    /// otherwise look shorter than it is).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut f = Fields::parse(raw, "customer")?;
        let id = f.required("id", "an integer id", |s| s.to_i64())?;
        // The reports own transactions: the nested copies are not kept.
        f.take_value("financial_transactions");
        let schedules = match f.take_value("transaction_schedules") {
            None => None,
            Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        WireSchedule::parse(item)
                            .map_err(|e| format!("`transaction_schedules`[{i}]: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => {
                return Err(format!(
                    "`transaction_schedules`: expected an array, got {}",
                    kind(&other)
                ));
            }
        };
        let address = match f.take_value("address") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        };
        Ok(Self {
            id,
            custom_identifier: f.text("custom_identifier"),
            identifier: f.text("identifier"),
            name: f.text("name"),
            email: f.text("email"),
            customer_type: f.text("customer_type"),
            active: f.boolean("active"),
            bank_name: f.text("bank_name"),
            authorization_type: f.text("authorization_type"),
            bank_account_type: f.text("bank_account_type"),
            account_number: f.text("account_number"),
            transit_number: f.text("transit_number"),
            institution_number: f.text("institution_number"),
            routing_number: f.text("routing_number"),
            phone: f.text("phone"),
            home_phone: f.text("home_phone"),
            address,
            created_at: f.timestamp("created_at"),
            updated_at: f.timestamp("updated_at"),
            schedules,
            extra: f.into_rest(),
        })
    }
}

impl WireSchedule {
    fn parse(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!("expected an object, got {}", kind(&value)));
        };
        let mut f = Fields::from_map(map);
        Ok(Self {
            id: f.required("id", "an integer id", |s| s.to_i64())?,
            amount: f.decimal("amount"),
            frequency: f.text("frequency"),
            installments: f.int("installments"),
            process_date: f.date("process_date"),
            next_process_date: f.date("next_process_date"),
            active: f.boolean("active"),
            comment: f.text("comment"),
            created_at: f.timestamp("created_at"),
            updated_at: f.timestamp("updated_at"),
            extra: f.into_rest(),
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documentation's "Get all customers for a specific client" sample.
    const DOCUMENTED: &str = r#"{
    "account_number": "23123132", "active": true,
    "address": {"address_1": "123 Main Street", "address_2": "Unit 4", "city": "Toronto",
                "id": 242317, "postal_code": "M1B 0B7", "province_code": "QC"},
    "authorization_type": null, "bank_account_type": null, "bank_name": "Scotiabank",
    "created_at": "2020-10-22T13:27:34.000-05:00", "custom_identifier": "MikeS",
    "customer_type": "Personal", "email": "[email protected]",
    "financial_transactions": [{"account_number": "****32", "amount": "100.00", "id": 12341234}],
    "home_phone": null, "id": 174527, "identifier": "MIKESMIT0007", "institution_number": "333",
    "name": "Mike Smith", "phone": null, "routing_number": null,
    "transaction_schedules": [{"active": true, "amount": "100.00", "comment": "Monthly Fees",
        "created_at": "2021-03-26T10:00:01.117-05:00", "frequency": "Monthly", "id": 1234321,
        "installments": 5, "next_process_date": "2021-04-27", "process_date": "2021-03-27",
        "updated_at": "2021-03-26T16:03:08.725-05:00"}],
    "transit_number": "11111", "updated_at": "2020-10-22T13:28:42.000-05:00"}"#;

    #[test]
    fn the_documented_customer_parses_with_its_schedule() {
        let c = WireCustomer::parse(DOCUMENTED).unwrap();
        assert_eq!(c.id, 174527);
        assert_eq!(c.name.as_deref(), Some("Mike Smith"));
        assert_eq!(c.account_number.as_deref(), Some("23123132"));
        assert_eq!(c.active, Some(true));
        assert!(c.extra.is_empty(), "{:?}", c.extra);
        let s = &c.schedules.as_ref().unwrap()[0];
        assert_eq!(s.id, 1234321);
        assert_eq!(s.amount.unwrap().to_string(), "100.00");
        assert_eq!(s.installments, Some(5));
        assert_eq!(s.next_process_date, NaiveDate::from_ymd_opt(2021, 4, 27));
    }

    #[test]
    fn v1_rows_have_no_schedule_list_and_bad_rows_say_why() {
        let c = WireCustomer::parse(
            r#"{"active": true, "id": 1, "name": "Mike Smith", "phone": "(204) 555 5555",
                "updated_at": "2019-02-29T14:55:16.000-05:00"}"#,
        )
        .unwrap();
        assert_eq!(c.schedules, None);
        assert_eq!(c.updated_at, None, "an impossible timestamp is not parsed");
        assert!(c.extra.contains_key("updated_at"), "it is kept as sent");
        let err = WireCustomer::parse(r#"{"name": "x"}"#).unwrap_err();
        assert!(err.contains("`id`"), "{err}");
        let err =
            WireCustomer::parse(r#"{"id": 1, "transaction_schedules": [{"amount": "1.00"}]}"#)
                .unwrap_err();
        assert!(err.contains("transaction_schedules"), "{err}");
    }
}
