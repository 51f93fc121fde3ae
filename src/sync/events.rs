//! Outbox event payloads (SPEC.md "Outbox and events"), built from the typed payloads of the
//! `rotessa-outbox` crate (crates/rotessa-outbox), so that Rust consumers decode exactly what is
//! written here. Every payload carries `event_version: 1`; amounts are decimal strings, dates
//! ISO.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use rotessa_outbox::payload::{self as wire, types};

use crate::domain::{
    Customer, Payout, Settlement, SettlementTotals, Source, Status, StatusChange, Transaction,
};
use crate::store::outbox::NewEvent;
use crate::store::reconciliation::Comparison;
use crate::store::{self, ResultExt};

/// The payload version consumers can branch on.
pub const EVENT_VERSION: u32 = rotessa_outbox::EVENT_VERSION;

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
/// chargeback reversed, a decline resubmitted). `observed_at` is when the page was received
/// (written with microseconds).
pub fn transaction_status_changed(
    t: &Transaction,
    from: Option<Status>,
    observed_at: DateTime<Utc>,
    source: Source,
    reversal: bool,
) -> Result<NewEvent, store::Error> {
    transaction_event(
        types::TRANSACTION_STATUS_CHANGED,
        t.into(),
        from,
        observed_at,
        source,
        reversal,
    )
}

/// `transaction.removed`: Rotessa stopped reporting the transaction (absent from two complete
/// reads of its window); the payload is its last known state (`from_status` = `to_status`).
pub fn transaction_removed(
    last: Facts<'_>,
    observed_at: DateTime<Utc>,
) -> Result<NewEvent, store::Error> {
    let status = Some(last.status);
    let source = Source::TransactionReport;
    transaction_event(
        types::TRANSACTION_REMOVED,
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
    observed_at: DateTime<Utc>,
) -> Result<NewEvent, store::Error> {
    let facts = Facts {
        status: removed_as.status,
        status_reason: removed_as.status_reason.as_deref(),
        decline_date: removed_as.decline_date,
        ..t.into()
    };
    let source = Source::TransactionReport;
    let from = Some(removed_as.status);
    transaction_event(
        types::TRANSACTION_RESTORED,
        facts,
        from,
        observed_at,
        source,
        false,
    )
}

/// A transaction event: one per new row makes this the hottest serialization of a backfill, so
/// the payload is written straight into a buffer of about its size.
fn transaction_event(
    event_type: &'static str,
    t: Facts<'_>,
    from: Option<Status>,
    observed_at: DateTime<Utc>,
    source: Source,
    reversal: bool,
) -> Result<NewEvent, store::Error> {
    let payload = wire::TransactionEvent {
        event_version: EVENT_VERSION,
        transaction_id: t.id,
        client_id: t.client_id,
        customer_id: t.customer_id,
        amount: t.amount,
        from_status: from.map(Status::to_event),
        to_status: t.status.to_event(),
        status_reason: t.status_reason.map(str::to_owned),
        process_date: t.process_date,
        settlement_date: t.settlement_date,
        decline_date: t.decline_date,
        transaction_number: t.transaction_number.map(str::to_owned),
        custom_identifier: t.custom_identifier.map(str::to_owned),
        observed_at,
        source: source.to_event(),
        reversal,
    };
    Ok(NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "transaction",
        aggregateid: t.id.to_string(),
        event_type,
        payload: encode(&payload, 440)?,
    })
}

/// A payload as JSON text, into a buffer of `capacity` bytes to start with.
fn encode<T: Serialize>(payload: &T, capacity: usize) -> Result<String, store::Error> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, payload)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
        .op("encoding an event payload")?;
    String::from_utf8(out)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
        .op("encoding an event payload")
}

/// `settlement.changed`: Rotessa reported new or different totals for a client and date.
pub fn settlement_changed(
    s: &Settlement,
    previous: Option<&SettlementTotals>,
) -> Result<NewEvent, store::Error> {
    let payload = wire::SettlementChanged {
        event_version: EVENT_VERSION,
        client_id: s.client_id,
        settlement_date: s.settlement_date,
        previous: previous.map(SettlementTotals::to_event),
        current: s.totals.to_event(),
    };
    Ok(NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "settlement",
        aggregateid: format!("{}:{}", s.client_id, s.settlement_date),
        event_type: types::SETTLEMENT_CHANGED,
        payload: encode(&payload, 512)?,
    })
}

/// `customer.changed`: a customer is new, or a field of its payload (or its email) changed. The
/// payload holds no contact data (phones, address, email: `changed` names an email change) and
/// only masked bank numbers.
pub fn customer_changed(
    c: &Customer,
    previous: Option<&Customer>,
) -> Result<NewEvent, store::Error> {
    let payload = wire::CustomerChanged {
        event_version: EVENT_VERSION,
        customer_id: c.id,
        client_id: c.client_id,
        changed: previous.map(|p| c.changed_fields(p)),
        previous: previous.map(Customer::event_fields),
        current: c.event_fields(),
    };
    Ok(NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "customer",
        aggregateid: c.id.to_string(),
        event_type: types::CUSTOMER_CHANGED,
        payload: encode(&payload, 768)?,
    })
}

/// `payout.changed`: a payout is new, or its amount or status changed.
pub fn payout_changed(p: &Payout, previous: Option<&Payout>) -> Result<NewEvent, store::Error> {
    let payload = wire::PayoutChanged {
        event_version: EVENT_VERSION,
        payout_key: p.key.clone(),
        previous: previous.map(Payout::event_fields),
        current: p.event_fields(),
    };
    Ok(NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "payout",
        aggregateid: p.key.clone(),
        event_type: types::PAYOUT_CHANGED,
        payload: encode(&payload, 512)?,
    })
}

/// `reconciliation.matched` / `reconciliation.mismatch`: a settlement date's comparison with the
/// transactions changed (its first evaluation included).
pub fn reconciliation_changed(c: &Comparison) -> Result<NewEvent, store::Error> {
    let payload = wire::ReconciliationChanged {
        event_version: EVENT_VERSION,
        client_id: c.client_id,
        settlement_date: c.settlement_date,
        matched: c.matched,
        rotessa: wire::ReconciliationFigures {
            number_approved: c.rotessa_number_approved.into(),
            total_approved: c.rotessa_total_approved,
            number_declined: c.rotessa_number_declined.into(),
            total_declined: c.rotessa_total_declined,
            number_chargeback: c.rotessa_number_chargeback.into(),
            total_chargeback: c.rotessa_total_chargeback,
        },
        computed: wire::ReconciliationFigures {
            number_approved: c.computed_number_approved,
            total_approved: c.computed_total_approved,
            number_declined: c.computed_number_declined,
            total_declined: c.computed_total_declined,
            number_chargeback: c.computed_number_chargeback,
            total_chargeback: c.computed_total_chargeback,
        },
        difference: c.difference_figures(),
    };
    Ok(NewEvent {
        id: Uuid::now_v7(),
        aggregatetype: "reconciliation",
        aggregateid: format!("{}:{}", c.client_id, c.settlement_date),
        event_type: if c.matched {
            types::RECONCILIATION_MATCHED
        } else {
            types::RECONCILIATION_MISMATCH
        },
        payload: encode(&payload, 640)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Transaction;
    use serde_json::json;

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
        let observed_at = DateTime::parse_from_rfc3339("2019-03-12T15:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = transaction_status_changed(
            &t,
            Some(Status::Pending),
            observed_at,
            Source::DeclineReport,
            true,
        )
        .unwrap();
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
