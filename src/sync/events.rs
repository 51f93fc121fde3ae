//! Outbox event payloads (SPEC.md "Outbox and events"). Every payload carries
//! `event_version: 1`; amounts are decimal strings, dates ISO.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use crate::domain::{
    Customer, Payout, Settlement, SettlementTotals, Source, Status, StatusChange, Transaction,
};
use crate::store::outbox::NewEvent;
use crate::store::reconciliation::Comparison;

/// The payload version consumers can branch on.
pub const EVENT_VERSION: u32 = 1;

/// The `observed_at` text of a page's events, formatted once per page.
pub fn observed_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// What a transaction event says about the transaction: the fields of its payload.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub id: i64,
    pub client_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub amount: Decimal,
    pub status: Status,
    pub status_reason: Option<&'a str>,
    pub process_date: NaiveDate,
    pub settlement_date: Option<NaiveDate>,
    pub decline_date: Option<NaiveDate>,
    pub transaction_number: Option<&'a str>,
    pub custom_identifier: Option<&'a str>,
}

impl<'a> From<&'a Transaction> for Facts<'a> {
    fn from(t: &'a Transaction) -> Self {
        Self {
            id: t.id,
            client_id: t.client_id,
            customer_id: t.customer_id,
            amount: t.amount,
            status: t.status,
            status_reason: t.status_reason.as_deref(),
            process_date: t.process_date,
            settlement_date: t.settlement_date,
            decline_date: t.decline_date,
            transaction_number: t.transaction_number.as_deref(),
            custom_identifier: t.custom_identifier.as_deref(),
        }
    }
}

/// `transaction.status_changed`: a transaction was first seen (`from` is `None`), changed status,
/// or got a new status reason or decline date. `reversal` marks a move back in the lifecycle (a
/// chargeback reversed, a decline resubmitted). `observed_at` comes from [`observed_at`].
pub fn transaction_status_changed(
    t: &Transaction,
    from: Option<Status>,
    observed_at: &str,
    source: Source,
    reversal: bool,
) -> NewEvent {
    transaction_event(
        "transaction.status_changed",
        t.into(),
        from,
        observed_at,
        source,
        reversal,
    )
}

/// `transaction.removed`: Rotessa stopped reporting the transaction (absent from two complete
/// reads of its window); the payload is its last known state (`from_status` = `to_status`).
pub fn transaction_removed(last: Facts<'_>, observed_at: &str) -> NewEvent {
    let status = Some(last.status);
    let source = Source::TransactionReport;
    transaction_event(
        "transaction.removed",
        last,
        status,
        observed_at,
        source,
        false,
    )
}

/// `transaction.restored`: a removed transaction is reported again (as `t`); the payload is the
/// report's view of it with the status it was removed with (`removed_as`, also `from_status`).
/// A change of that status, if the report's view is applied, is a `transaction.status_changed`
/// of its own, right after.
pub fn transaction_restored(
    t: &Transaction,
    removed_as: &StatusChange,
    observed_at: &str,
) -> NewEvent {
    let facts = Facts {
        status: removed_as.status,
        status_reason: removed_as.status_reason.as_deref(),
        decline_date: removed_as.decline_date,
        ..t.into()
    };
    let source = Source::TransactionReport;
    let from = Some(removed_as.status);
    transaction_event(
        "transaction.restored",
        facts,
        from,
        observed_at,
        source,
        false,
    )
}

/// A transaction event's payload, written directly as JSON text: one event per new row makes
/// this the hottest serialization of a backfill.
fn transaction_event(
    event_type: &'static str,
    t: Facts<'_>,
    from: Option<Status>,
    observed_at: &str,
    source: Source,
    reversal: bool,
) -> NewEvent {
    let mut p = String::with_capacity(420);
    p.push_str("{\"event_version\":");
    push_display(&mut p, EVENT_VERSION);
    p.push_str(",\"transaction_id\":");
    push_display(&mut p, t.id);
    p.push_str(",\"client_id\":");
    push_opt_display(&mut p, t.client_id);
    p.push_str(",\"customer_id\":");
    push_opt_display(&mut p, t.customer_id);
    p.push_str(",\"amount\":\"");
    push_display(&mut p, t.amount);
    p.push_str("\",\"from_status\":");
    push_opt_str(&mut p, from.map(Status::as_str));
    p.push_str(",\"to_status\":");
    push_str(&mut p, t.status.as_str());
    p.push_str(",\"status_reason\":");
    push_opt_str(&mut p, t.status_reason);
    p.push_str(",\"process_date\":");
    push_date(&mut p, Some(t.process_date));
    p.push_str(",\"settlement_date\":");
    push_date(&mut p, t.settlement_date);
    p.push_str(",\"decline_date\":");
    push_date(&mut p, t.decline_date);
    p.push_str(",\"transaction_number\":");
    push_opt_str(&mut p, t.transaction_number);
    p.push_str(",\"custom_identifier\":");
    push_opt_str(&mut p, t.custom_identifier);
    p.push_str(",\"observed_at\":");
    push_str(&mut p, observed_at);
    p.push_str(",\"source\":");
    push_str(&mut p, source.as_str());
    p.push_str(if reversal {
        ",\"reversal\":true}"
    } else {
        ",\"reversal\":false}"
    });
    NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "transaction",
        aggregateid: t.id.to_string(),
        event_type,
        payload: p,
    }
}

fn push_display(out: &mut String, v: impl std::fmt::Display) {
    use std::fmt::Write;
    let _ = write!(out, "{v}");
}

fn push_opt_display(out: &mut String, v: Option<impl std::fmt::Display>) {
    match v {
        Some(v) => push_display(out, v),
        None => out.push_str("null"),
    }
}

fn push_opt_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(v) => push_str(out, v),
        None => out.push_str("null"),
    }
}

fn push_date(out: &mut String, d: Option<NaiveDate>) {
    match d {
        Some(d) => {
            out.push('"');
            push_display(out, d.format("%Y-%m-%d"));
            out.push('"');
        }
        None => out.push_str("null"),
    }
}

/// A JSON string literal: quoted, with `"`, `\\` and control characters escaped.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => push_display(out, format_args!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// `settlement.changed`: Rotessa reported new or different totals for a client and date.
pub fn settlement_changed(s: &Settlement, previous: Option<&SettlementTotals>) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "settlement",
        aggregateid: format!("{}:{}", s.client_id, s.settlement_date),
        event_type: "settlement.changed",
        payload: json!({
            "event_version": EVENT_VERSION,
            "client_id": s.client_id,
            "settlement_date": s.settlement_date,
            "previous": previous.map(SettlementTotals::to_json),
            "current": s.totals.to_json(),
        })
        .to_string(),
    }
}

/// `customer.changed`: a customer is new, or a field of its payload (or its email) changed. The
/// payload holds no contact data (phones, address, email: `changed` names an email change) and
/// only masked bank numbers.
pub fn customer_changed(c: &Customer, previous: Option<&Customer>) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "customer",
        aggregateid: c.id.to_string(),
        event_type: "customer.changed",
        payload: json!({
            "event_version": EVENT_VERSION,
            "customer_id": c.id,
            "client_id": c.client_id,
            "changed": previous.map(|p| c.changed_fields(p)),
            "previous": previous.map(Customer::event_fields),
            "current": c.event_fields(),
        })
        .to_string(),
    }
}

/// `payout.changed`: a payout is new, or its amount or status changed.
pub fn payout_changed(p: &Payout, previous: Option<&Payout>) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "payout",
        aggregateid: p.key.clone(),
        event_type: "payout.changed",
        payload: json!({
            "event_version": EVENT_VERSION,
            "payout_key": p.key,
            "previous": previous.map(Payout::event_fields),
            "current": p.event_fields(),
        })
        .to_string(),
    }
}

/// `reconciliation.matched` / `reconciliation.mismatch`: a settlement date's comparison with the
/// transactions changed (its first evaluation included).
pub fn reconciliation_changed(c: &Comparison) -> NewEvent {
    let side = |approved: (i64, &rust_decimal::Decimal),
                declined: (i64, &rust_decimal::Decimal),
                chargeback: (i64, &rust_decimal::Decimal)| {
        json!({
            "number_approved": approved.0,
            "total_approved": approved.1.to_string(),
            "number_declined": declined.0,
            "total_declined": declined.1.to_string(),
            "number_chargeback": chargeback.0,
            "total_chargeback": chargeback.1.to_string(),
        })
    };
    NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "reconciliation",
        aggregateid: format!("{}:{}", c.client_id, c.settlement_date),
        event_type: if c.matched {
            "reconciliation.matched"
        } else {
            "reconciliation.mismatch"
        },
        payload: json!({
            "event_version": EVENT_VERSION,
            "client_id": c.client_id,
            "settlement_date": c.settlement_date,
            "matched": c.matched,
            "rotessa": side(
                (c.rotessa_number_approved.into(), &c.rotessa_total_approved),
                (c.rotessa_number_declined.into(), &c.rotessa_total_declined),
                (c.rotessa_number_chargeback.into(), &c.rotessa_total_chargeback),
            ),
            "computed": side(
                (c.computed_number_approved, &c.computed_total_approved),
                (c.computed_number_declined, &c.computed_total_declined),
                (c.computed_number_chargeback, &c.computed_total_chargeback),
            ),
            "difference": c.difference(),
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Transaction;

    #[test]
    fn the_payload_is_valid_json_with_every_documented_field() {
        let t = Transaction {
            id: 7,
            client_id: Some(4321),
            customer_id: None,
            transaction_schedule_id: None,
            amount: rust_decimal::Decimal::new(2500, 2),
            status: Status::Declined,
            status_reason: Some("Invalid/Incorrect Account No.".into()),
            process_date: NaiveDate::from_ymd_opt(2019, 3, 1).unwrap(),
            settlement_date: NaiveDate::from_ymd_opt(2019, 3, 8),
            decline_date: None,
            earliest_approval_date: None,
            transaction_number: Some("INV\"7\"\\\n\u{1}é".into()),
            custom_identifier: None,
            schedule_custom_identifier: None,
            comment: None,
            institution_number: None,
            transit_number: None,
            account_number: None,
            api_created_at: None,
            api_updated_at: None,
            extra: None,
            unparsed: Vec::new(),
        };
        let e = transaction_status_changed(
            &t,
            Some(Status::Pending),
            "2019-03-12T15:04:05.123456Z",
            Source::DeclineReport,
            true,
        );
        let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(
            v,
            json!({
                "event_version": 1, "transaction_id": 7, "client_id": 4321, "customer_id": null,
                "amount": "25.00", "from_status": "Pending", "to_status": "Declined",
                "status_reason": "Invalid/Incorrect Account No.", "process_date": "2019-03-01",
                "settlement_date": "2019-03-08", "decline_date": null,
                "transaction_number": "INV\"7\"\\\n\u{1}é", "custom_identifier": null,
                "observed_at": "2019-03-12T15:04:05.123456Z",
                "source": "transaction_decline_report", "reversal": true
            })
        );
    }
}
