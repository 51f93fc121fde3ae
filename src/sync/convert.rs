//! Wire rows to domain rows: the validation a row must pass to be stored.

use std::sync::Arc;

use rust_decimal::Decimal;

use serde_json::{Map, Value};

use crate::domain::{
    Contact, Customer, PRIVATE_FIELDS, Payout, PlatformClient, Schedule, Settlement,
    SettlementTotals, Status, Transaction, mask, payout_key,
};
use crate::rotessa::{
    RowConverter, WireClient, WireCustomer, WirePayout, WireSchedule, WireSettlement,
    WireTransaction,
};

/// One cent more than the largest amount `numeric(14,2)` holds (10^12).
const AMOUNT_LIMIT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

/// A converter for report rows; `path_client` fills `client_id` on per-client reports, whose
/// rows may omit it.
pub fn transaction_converter(path_client: Option<i64>) -> RowConverter<Transaction> {
    Arc::new(move |row| to_transaction(row, path_client))
}

/// Refused text: PostgreSQL stores no NUL character, in `text` or in `jsonb`.
const NUL: &str = "contains a NUL character (\\u0000), which PostgreSQL cannot store";

/// Whether any string (or key) of a JSON value contains a NUL character.
fn json_has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(json_has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// Validates a wire row into a [`Transaction`], or says why it cannot be stored.
pub fn to_transaction(w: WireTransaction, path_client: Option<i64>) -> Result<Transaction, String> {
    let texts = [
        ("status_reason", &w.status_reason),
        ("transaction_number", &w.transaction_number),
        ("custom_identifier", &w.custom_identifier),
        (
            "transaction_custom_identifieer",
            &w.schedule_custom_identifier,
        ),
        ("comment", &w.comment),
        ("institution_number", &w.institution_number),
        ("transit_number", &w.transit_number),
        ("account_number", &w.account_number),
    ];
    for (name, text) in texts {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            return Err(format!("`{name}` {NUL}"));
        }
    }
    if w.extra
        .iter()
        .any(|(k, v)| k.contains('\0') || json_has_nul(v))
    {
        return Err(format!("a field without a column {NUL}"));
    }
    let status: Status = w.status.parse().map_err(|e| format!("`status`: {e}"))?;
    let amount = money(w.amount).map_err(|e| format!("`amount`: {e}"))?;
    Ok(Transaction {
        id: w.id,
        client_id: w.client_id.or(path_client),
        customer_id: w.customer_id,
        transaction_schedule_id: w.transaction_schedule_id,
        amount,
        status,
        status_reason: w.status_reason,
        process_date: w.process_date,
        settlement_date: w.settlement_date,
        decline_date: w.decline_date,
        earliest_approval_date: w.earliest_approval_date,
        transaction_number: w.transaction_number,
        custom_identifier: w.custom_identifier,
        schedule_custom_identifier: w.schedule_custom_identifier,
        comment: w.comment,
        institution_number: w.institution_number,
        transit_number: w.transit_number,
        account_number: w.account_number,
        api_created_at: w.created_at,
        api_updated_at: w.updated_at,
        extra: (!w.extra.is_empty()).then_some(serde_json::Value::Object(w.extra)),
        unparsed: w.unparsed,
    })
}

/// Validates a settlement row of `client_id`, or says why it cannot be stored.
pub fn to_settlement(w: WireSettlement, client_id: i64) -> Result<Settlement, String> {
    if w.extra
        .iter()
        .any(|(k, v)| k.contains('\0') || json_has_nul(v))
    {
        return Err(format!("a field without a column {NUL}"));
    }
    let count = |name: &str, n: i64| {
        i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("`{name}`: {n} is not a count"))
    };
    let total = |name: &str, d: Decimal| signed_money(d).map_err(|e| format!("`{name}`: {e}"));
    Ok(Settlement {
        client_id,
        settlement_date: w.settlement_date,
        totals: SettlementTotals {
            number_approved: count("number_approved", w.number_approved)?,
            number_declined: count("number_declined", w.number_declined)?,
            number_chargeback: count("number_chargeback", w.number_chargeback)?,
            number_payout: count("number_payout", w.number_payout)?,
            total_approved: total("total_approved", w.total_approved)?,
            total_declined: total("total_declined", w.total_declined)?,
            total_chargeback: total("total_chargeback", w.total_chargeback)?,
            total_payout: total("total_payout", w.total_payout)?,
        },
        extra: (!w.extra.is_empty()).then_some(serde_json::Value::Object(w.extra)),
    })
}

/// A client as stored, or why it cannot be.
pub fn to_client(w: WireClient) -> Result<PlatformClient, String> {
    if json_has_nul(&w.raw) {
        return Err(format!("the client object {NUL}"));
    }
    Ok(PlatformClient {
        id: w.id,
        business_name: w.business_name,
        operating_as: w.operating_as,
        status: w.status,
        raw: w.raw,
    })
}

/// A customer of `client_id` (`None`: a v1 account) as stored, and its schedules when the list
/// carried them, or why it cannot be. Bank numbers are masked; phone numbers and the address
/// are kept only when `store_contact`; no private field ever reaches `extra`.
pub fn to_customer(
    w: WireCustomer,
    client_id: Option<i64>,
    store_contact: bool,
) -> Result<(Customer, Option<Vec<Schedule>>), String> {
    let texts = [
        ("custom_identifier", &w.custom_identifier),
        ("identifier", &w.identifier),
        ("name", &w.name),
        ("email", &w.email),
        ("customer_type", &w.customer_type),
        ("bank_name", &w.bank_name),
        ("authorization_type", &w.authorization_type),
        ("bank_account_type", &w.bank_account_type),
        ("account_number", &w.account_number),
        ("transit_number", &w.transit_number),
        ("institution_number", &w.institution_number),
        ("routing_number", &w.routing_number),
        ("phone", &w.phone),
        ("home_phone", &w.home_phone),
    ];
    refuse_nul(&texts, &w.extra)?;
    if w.address.as_ref().is_some_and(json_has_nul) {
        return Err(format!("`address` {NUL}"));
    }
    let schedules = match w.schedules {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .map(|s| to_schedule(s, w.id, client_id))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let contact = if store_contact {
        Contact {
            phone: w.phone,
            home_phone: w.home_phone,
            address: w.address,
        }
    } else {
        Contact::default()
    };
    let customer = Customer {
        id: w.id,
        client_id,
        custom_identifier: w.custom_identifier,
        identifier: w.identifier,
        name: w.name,
        email: w.email,
        customer_type: w.customer_type,
        active: w.active,
        bank_name: w.bank_name,
        authorization_type: w.authorization_type,
        bank_account_type: w.bank_account_type,
        account_number: w.account_number.as_deref().map(mask),
        transit_number: w.transit_number.as_deref().map(mask),
        institution_number: w.institution_number.as_deref().map(mask),
        routing_number: w.routing_number.as_deref().map(mask),
        contact,
        api_created_at: w.created_at,
        api_updated_at: w.updated_at,
        extra: public_extra(w.extra),
    };
    Ok((customer, schedules))
}

fn to_schedule(
    w: WireSchedule,
    customer_id: i64,
    client_id: Option<i64>,
) -> Result<Schedule, String> {
    let at = |e: String| format!("transaction schedule {}: {e}", w.id);
    refuse_nul(
        &[("frequency", &w.frequency), ("comment", &w.comment)],
        &w.extra,
    )
    .map_err(at)?;
    let amount = w
        .amount
        .map(money)
        .transpose()
        .map_err(|e| at(format!("`amount`: {e}")))?;
    let installments = w
        .installments
        .map(|n| i32::try_from(n).map_err(|_| at(format!("`installments`: {n} is out of range"))))
        .transpose()?;
    Ok(Schedule {
        id: w.id,
        customer_id,
        client_id,
        amount,
        frequency: w.frequency,
        installments,
        process_date: w.process_date,
        next_process_date: w.next_process_date,
        active: w.active,
        comment: w.comment,
        api_created_at: w.created_at,
        api_updated_at: w.updated_at,
        extra: public_extra(w.extra),
    })
}

/// A payout as stored, or why it cannot be. `occurrence` numbers the identical forecast
/// payouts of one run (see [`payout_key`]).
pub fn to_payout(w: WirePayout, occurrence: u32) -> Result<Payout, String> {
    refuse_nul(&[("status", &w.status)], &w.extra)?;
    let amount = signed_money(w.amount).map_err(|e| format!("`amount`: {e}"))?;
    let transaction_amount = w
        .transaction_amount
        .map(money)
        .transpose()
        .map_err(|e| format!("`transaction_amount`: {e}"))?;
    let ft = w.financial_transaction.as_ref();
    Ok(Payout {
        key: payout_key(
            ft.map(|t| t.id),
            w.id,
            w.customer_id,
            transaction_amount,
            amount,
            occurrence,
        ),
        payout_id: w.id,
        financial_transaction_id: ft.map(|t| t.id),
        customer_id: w.customer_id,
        amount,
        transaction_amount,
        status: w.status,
        process_date: ft.and_then(|t| t.process_date),
        settlement_date: ft.and_then(|t| t.settlement_date),
        api_updated_at: ft.and_then(|t| t.updated_at),
        extra: public_extra(w.extra),
    })
}

/// The identity of a forecast payout before it is numbered: rows with equal identities in one
/// run are told apart only by their order.
pub fn forecast_identity(w: &WirePayout) -> Option<String> {
    (w.financial_transaction.is_none() && w.id.is_none()).then(|| {
        let amount = |d: Option<Decimal>| d.map(|d| d.normalize().to_string());
        format!(
            "{:?}:{:?}:{:?}",
            w.customer_id,
            amount(w.transaction_amount),
            amount(Some(w.amount))
        )
    })
}

fn refuse_nul(texts: &[(&str, &Option<String>)], extra: &Map<String, Value>) -> Result<(), String> {
    for (name, text) in texts {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            return Err(format!("`{name}` {NUL}"));
        }
    }
    if extra
        .iter()
        .any(|(k, v)| k.contains('\0') || json_has_nul(v))
    {
        return Err(format!("a field without a column {NUL}"));
    }
    Ok(())
}

/// `extra` without any private field: the known ones (one that failed to parse included), and
/// any field Rotessa may add whose name says it is personal ([`looks_private`]).
fn public_extra(mut extra: Map<String, Value>) -> Option<Value> {
    for name in PRIVATE_FIELDS {
        extra.remove(name);
    }
    extra.retain(|name, _| !looks_private(name));
    (!extra.is_empty()).then_some(Value::Object(extra))
}

/// Words that mark a field name as personal data (`mobile_phone`, `date_of_birth`,
/// `billing_address`, `sin`...), matched against the name's `_`- or `-`-separated parts.
const PRIVATE_WORDS: [&str; 20] = [
    "phone",
    "mobile",
    "cell",
    "fax",
    "address",
    "street",
    "postal",
    "zip",
    "account",
    "transit",
    "institution",
    "routing",
    "iban",
    "card",
    "birth",
    "dob",
    "sin",
    "ssn",
    "passport",
    "licence",
];

/// Whether a field name says it holds personal data (see [`PRIVATE_WORDS`]).
pub fn looks_private(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(['_', '-', ' '])
        .any(|word| PRIVATE_WORDS.contains(&word) || word == "license" || word == "tax")
}

/// A money amount as stored: not negative, at most two decimals, fits `numeric(14,2)`,
/// always at scale 2. Amounts are never rounded: one that would need it is refused.
pub fn money(amount: Decimal) -> Result<Decimal, String> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(format!("{amount} is negative"));
    }
    signed_money(amount)
}

/// A settlement total as stored: at most two decimals, fits `numeric(14,2)`, at scale 2 (an
/// adjustment may be negative).
pub fn signed_money(amount: Decimal) -> Result<Decimal, String> {
    let mut value = amount.normalize();
    if value.scale() > 2 {
        return Err(format!("{amount} has more than two decimal places"));
    }
    if value.abs() >= AMOUNT_LIMIT {
        return Err(format!("{amount} is too large for numeric(14,2)"));
    }
    value.rescale(2);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn nul_characters_are_refused_anywhere_in_a_row() {
        let body = br#"[
            {"id": 1, "amount": "1.00", "status": "Pending", "process_date": "2020-01-01",
             "comment": "a\u0000b"},
            {"id": 2, "amount": "1.00", "status": "Pending", "process_date": "2020-01-01",
             "note": {"deep": ["x\u0000"]}},
            {"id": 3, "amount": "1.00", "status": "Pending", "process_date": "2020-01-01"}
        ]"#;
        let page =
            crate::rotessa::wire::parse_report_page(body, |w| to_transaction(w, None)).unwrap();
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rejected.len(), 2);
        assert!(
            page.rejected
                .iter()
                .all(|r| r.error.contains("NUL character"))
        );
    }

    #[test]
    fn money_is_exact_and_bounded() {
        assert_eq!(money(dec("100")).unwrap().to_string(), "100.00");
        assert_eq!(money(dec("100.000")).unwrap().to_string(), "100.00");
        assert_eq!(money(dec("0")).unwrap().to_string(), "0.00");
        assert_eq!(
            money(dec("9999999999.99")).unwrap().to_string(),
            "9999999999.99"
        );
        assert!(money(dec("-1.00")).is_err());
        assert!(money(dec("1.005")).is_err());
        assert!(money(dec("1000000000000")).is_err());
        assert_eq!(AMOUNT_LIMIT, dec("1000000000000"));
    }
}
