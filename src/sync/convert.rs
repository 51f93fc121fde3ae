//! Wire rows to domain rows: the validation a row must pass to be stored.

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::domain::{PlatformClient, Settlement, SettlementTotals, Status, Transaction};
use crate::rotessa::{RowConverter, WireClient, WireSettlement, WireTransaction};

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
