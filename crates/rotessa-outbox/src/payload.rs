//! The event payloads, typed: what `rotessa.outbox.payload` holds for each event `type`.
//!
//! rotessa-recon builds every payload from these structs, so a consumer that decodes with them
//! reads exactly what the daemon wrote. Amounts are [`Decimal`]s written as decimal strings with
//! at least two decimals (`"25.00"`, `"0.00"`), dates are ISO `YYYY-MM-DD`, and `observed_at` an RFC 3339 instant
//! in UTC with microseconds.
//!
//! [`Payload`] is the enum over every type; [`Payload::Unknown`] keeps the type and the raw JSON
//! of anything this version does not know (a type added later, or an `event_version` above
//! [`EVENT_VERSION`]), so a newer producer never breaks an older consumer. Fields added to a
//! known type within the same `event_version` are ignored when decoding.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The payload version this crate reads and writes: every payload carries `event_version`, and a
/// payload of a known type with a higher version decodes as [`Payload::Unknown`].
pub const EVENT_VERSION: u32 = 1;

/// The event type names (the `type` column of `rotessa.outbox`).
pub mod types {
    /// A transaction was first seen, changed status, or got a new status reason or decline date:
    /// [`TransactionEvent`](super::TransactionEvent).
    pub const TRANSACTION_STATUS_CHANGED: &str = "transaction.status_changed";
    /// Rotessa stopped reporting a transaction: [`TransactionEvent`](super::TransactionEvent).
    pub const TRANSACTION_REMOVED: &str = "transaction.removed";
    /// A removed transaction is reported again: [`TransactionEvent`](super::TransactionEvent).
    pub const TRANSACTION_RESTORED: &str = "transaction.restored";
    /// New or different settlement totals: [`SettlementChanged`](super::SettlementChanged).
    pub const SETTLEMENT_CHANGED: &str = "settlement.changed";
    /// A settlement date's comparison is (now, or differently) a mismatch:
    /// [`ReconciliationChanged`](super::ReconciliationChanged).
    pub const RECONCILIATION_MISMATCH: &str = "reconciliation.mismatch";
    /// A settlement date's comparison matches (now):
    /// [`ReconciliationChanged`](super::ReconciliationChanged).
    pub const RECONCILIATION_MATCHED: &str = "reconciliation.matched";
    /// A customer is new or changed: [`CustomerChanged`](super::CustomerChanged).
    pub const CUSTOMER_CHANGED: &str = "customer.changed";
    /// A payout is new or changed: [`PayoutChanged`](super::PayoutChanged).
    pub const PAYOUT_CHANGED: &str = "payout.changed";

    /// Every type this crate decodes.
    pub const ALL: [&str; 8] = [
        TRANSACTION_STATUS_CHANGED,
        TRANSACTION_REMOVED,
        TRANSACTION_RESTORED,
        SETTLEMENT_CHANGED,
        RECONCILIATION_MISMATCH,
        RECONCILIATION_MATCHED,
        CUSTOMER_CHANGED,
        PAYOUT_CHANGED,
    ];
}

/// An enum of fixed strings that keeps a value it does not know (`Other`), so that decoding never
/// fails on a value a newer Rotessa or rotessa-recon sends, and writing it back gives it unchanged.
macro_rules! open_string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as it appears in the JSON.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::from(s.as_ref()))
            }
        }
    };
}

open_string_enum! {
    /// A transaction's status in Rotessa's lifecycle: `Future` → `Pending` → `Approved` |
    /// `Declined`; `Approved` → `Chargeback`.
    pub enum Status {
        /// Scheduled, not yet sent to the bank.
        Future => "Future",
        /// Sent to the bank, not yet settled.
        Pending => "Pending",
        /// Settled.
        Approved => "Approved",
        /// Refused by the bank (see `status_reason`).
        Declined => "Declined",
        /// Reversed after approval.
        Chargeback => "Chargeback",
    }
}

open_string_enum! {
    /// Which Rotessa report a transaction event was observed in.
    pub enum Source {
        /// `transaction_report`.
        TransactionReport => "transaction_report",
        /// `transaction_decline_report`.
        DeclineReport => "transaction_decline_report",
    }
}

/// `observed_at`: RFC 3339 in UTC with exactly six fractional digits
/// (`2019-03-12T15:04:05.123456Z`), as rotessa-recon has always written it; any RFC 3339 instant
/// is read.
/// Money as a decimal string with at least two decimals: `"25.00"`, and `"0.00"` for a zero
/// (PostgreSQL hands a numeric zero back without its scale). Reading accepts any decimal string,
/// `"0"` included (earlier versions of the daemon wrote a zero so).
mod money {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    /// `amount` with two decimals at least (never fewer: no rounding, only zeros added).
    pub fn normalized(amount: &Decimal) -> Decimal {
        let mut amount = *amount;
        if amount.scale() < 2 {
            amount.rescale(2);
        }
        amount
    }

    pub fn serialize<S: Serializer>(amount: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::str::serialize(&normalized(amount), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        rust_decimal::serde::str::deserialize(d)
    }
}

/// [`money`] for an optional amount.
mod money_option {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(amount: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::str_option::serialize(
            &amount.as_ref().map(super::money::normalized),
            s,
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        rust_decimal::serde::str_option::deserialize(d)
    }
}

mod micros {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// The payload of `transaction.status_changed`, `transaction.removed` and
/// `transaction.restored` (README.md "Events").
///
/// - `transaction.status_changed`: first sight (`from_status` is `None`), a status change the
///   status rules applied, or a new `status_reason` or `decline_date` (same status).
/// - `transaction.removed`: Rotessa no longer reports the transaction; its last known state, with
///   `from_status` = `to_status`.
/// - `transaction.restored`: a removed transaction is reported again; the report's view with the
///   status it was removed with (`from_status` = `to_status`). A status change meanwhile follows
///   as its own `transaction.status_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionEvent {
    /// [`EVENT_VERSION`].
    pub event_version: u32,
    /// Rotessa's transaction id (also the event's `aggregateid`).
    pub transaction_id: i64,
    /// The platform client; `None` on a v1 (single merchant) account.
    pub client_id: Option<i64>,
    /// Rotessa's customer id.
    pub customer_id: Option<i64>,
    /// The amount, e.g. `25.00` (a decimal string in the JSON).
    #[serde(with = "money")]
    pub amount: Decimal,
    /// The status before; `None` on first sight.
    pub from_status: Option<Status>,
    /// The status now.
    pub to_status: Status,
    /// Why a transaction was declined or charged back (`NSF`, `Account Closed`, ...).
    pub status_reason: Option<String>,
    /// The date the debit was (or will be) processed.
    pub process_date: NaiveDate,
    /// The date the funds settle.
    pub settlement_date: Option<NaiveDate>,
    /// The date of the decline or chargeback.
    pub decline_date: Option<NaiveDate>,
    /// Rotessa's transaction number.
    pub transaction_number: Option<String>,
    /// The customer's custom identifier.
    pub custom_identifier: Option<String>,
    /// When the page of the report saying so was received.
    #[serde(with = "micros")]
    pub observed_at: DateTime<Utc>,
    /// The report it was observed in.
    pub source: Source,
    /// A move back in the lifecycle that Rotessa's clock or a resubmission justified (a
    /// chargeback reversed, a decline resubmitted): undo what was booked for the earlier state.
    /// Events written before the field existed lack it: read as `false`.
    #[serde(default)]
    pub reversal: bool,
}

/// Rotessa's four counts and four totals for a client and settlement date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementTotals {
    /// Approved transactions.
    pub number_approved: i64,
    /// Declined transactions.
    pub number_declined: i64,
    /// Chargebacks.
    pub number_chargeback: i64,
    /// Payouts.
    pub number_payout: i64,
    /// Total approved (decimal string).
    #[serde(with = "money")]
    pub total_approved: Decimal,
    /// Total declined (decimal string).
    #[serde(with = "money")]
    pub total_declined: Decimal,
    /// Total charged back (decimal string).
    #[serde(with = "money")]
    pub total_chargeback: Decimal,
    /// Total paid out (decimal string).
    #[serde(with = "money")]
    pub total_payout: Decimal,
}

/// The payload of `settlement.changed`: Rotessa reported a new settlement, or different counts or
/// totals for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementChanged {
    /// [`EVENT_VERSION`].
    pub event_version: u32,
    /// The platform client.
    pub client_id: i64,
    /// The settlement date.
    pub settlement_date: NaiveDate,
    /// The totals before; `None` when the settlement is new.
    pub previous: Option<SettlementTotals>,
    /// The totals now.
    pub current: SettlementTotals,
}

/// Counts and totals of one side of a reconciliation (Rotessa's, the computed one) or their
/// difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationFigures {
    /// Approved transactions.
    pub number_approved: i64,
    /// Total approved (decimal string).
    #[serde(with = "money")]
    pub total_approved: Decimal,
    /// Declined transactions.
    pub number_declined: i64,
    /// Total declined (decimal string).
    #[serde(with = "money")]
    pub total_declined: Decimal,
    /// Chargebacks.
    pub number_chargeback: i64,
    /// Total charged back (decimal string).
    #[serde(with = "money")]
    pub total_chargeback: Decimal,
}

/// The payload of `reconciliation.matched` and `reconciliation.mismatch`: a settlement date's
/// outcome changed, or a mismatch's difference did, once both of its sides are in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationChanged {
    /// [`EVENT_VERSION`].
    pub event_version: u32,
    /// The platform client.
    pub client_id: i64,
    /// The settlement date.
    pub settlement_date: NaiveDate,
    /// Whether Rotessa's figures equal the computed ones (`reconciliation.matched`).
    pub matched: bool,
    /// Rotessa's settlement figures.
    pub rotessa: ReconciliationFigures,
    /// The figures computed from `rotessa.transactions`.
    pub computed: ReconciliationFigures,
    /// Rotessa minus computed; totals at two decimals (`"0.00"`, `"-0.05"`).
    pub difference: ReconciliationFigures,
}

/// A customer as events show it: masked bank numbers, never contact data (email, phones,
/// address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFields {
    /// Rotessa's customer id.
    pub id: i64,
    /// The platform client; `None` on a v1 account.
    pub client_id: Option<i64>,
    /// The merchant's own identifier for the customer.
    pub custom_identifier: Option<String>,
    /// Rotessa's identifier.
    pub identifier: Option<String>,
    /// The customer's name.
    pub name: Option<String>,
    /// `Personal` or `Business`.
    pub customer_type: Option<String>,
    /// Whether the customer is active.
    pub active: Option<bool>,
    /// The bank's name.
    pub bank_name: Option<String>,
    /// `In Person` or `Online`.
    pub authorization_type: Option<String>,
    /// `Savings` or `Checking` (US accounts).
    pub bank_account_type: Option<String>,
    /// Masked to its last three characters (`*****132`).
    pub account_number: Option<String>,
    /// The transit number (Canada).
    pub transit_number: Option<String>,
    /// The institution number (Canada).
    pub institution_number: Option<String>,
    /// The routing number (US).
    pub routing_number: Option<String>,
}

/// The payload of `customer.changed`: a customer is new, or one of its fields (or its email)
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerChanged {
    /// [`EVENT_VERSION`].
    pub event_version: u32,
    /// Rotessa's customer id (also the event's `aggregateid`).
    pub customer_id: i64,
    /// The platform client; `None` on a v1 account.
    pub client_id: Option<i64>,
    /// The names of the fields that changed, sorted (`email` included, although its value is
    /// never in events); `None` when the customer is new.
    pub changed: Option<Vec<String>>,
    /// The customer before; `None` when new.
    pub previous: Option<CustomerFields>,
    /// The customer now.
    pub current: CustomerFields,
}

/// A payout as events show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutFields {
    /// The payout's stable key (README.md "Payout keys").
    pub payout_key: String,
    /// Rotessa's payout id, when it has one.
    pub payout_id: Option<i64>,
    /// The financial transaction paid out.
    pub financial_transaction_id: Option<i64>,
    /// The customer.
    pub customer_id: Option<i64>,
    /// The amount paid out (decimal string).
    #[serde(with = "money")]
    pub amount: Decimal,
    /// The transaction's amount (decimal string).
    #[serde(with = "money_option")]
    pub transaction_amount: Option<Decimal>,
    /// Rotessa's status of the payout.
    pub status: Option<String>,
    /// The process date.
    pub process_date: Option<NaiveDate>,
    /// The settlement date.
    pub settlement_date: Option<NaiveDate>,
}

/// The payload of `payout.changed`: a payout is new, or its amount or status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutChanged {
    /// [`EVENT_VERSION`].
    pub event_version: u32,
    /// The payout's key (also the event's `aggregateid`).
    pub payout_key: String,
    /// The payout before; `None` when new.
    pub previous: Option<PayoutFields>,
    /// The payout now.
    pub current: PayoutFields,
}

/// An event's payload, by its `type`.
///
/// Decode one with [`Payload::from_parts`] (the `type` column and the `payload` column), or with
/// serde from the adjacently tagged form `{"type": "...", "payload": {...}}` (an outbox row as
/// JSON, e.g. a line of `rotessa-recon outbox tail`: other keys are ignored). Serializing writes
/// that same form.
// Unboxed variants (the largest, `customer.changed`, is about 650 bytes) keep matching simple;
// events are handled one at a time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `transaction.status_changed`.
    TransactionStatusChanged(TransactionEvent),
    /// `transaction.removed`.
    TransactionRemoved(TransactionEvent),
    /// `transaction.restored`.
    TransactionRestored(TransactionEvent),
    /// `settlement.changed`.
    SettlementChanged(SettlementChanged),
    /// `reconciliation.mismatch`.
    ReconciliationMismatch(ReconciliationChanged),
    /// `reconciliation.matched`.
    ReconciliationMatched(ReconciliationChanged),
    /// `customer.changed`.
    CustomerChanged(CustomerChanged),
    /// `payout.changed`.
    PayoutChanged(PayoutChanged),
    /// A type this version does not know, or a known type with an `event_version` above
    /// [`EVENT_VERSION`]: kept as sent.
    Unknown {
        /// The `type` column.
        event_type: String,
        /// The payload as sent.
        payload: serde_json::Value,
    },
}

impl Payload {
    /// Decodes a payload by its event type. Unknown types and newer `event_version`s give
    /// [`Payload::Unknown`]; an error means a payload of a known type and version that does not
    /// have that type's shape (missing or mistyped fields).
    pub fn from_parts(event_type: &str, payload: serde_json::Value) -> serde_json::Result<Self> {
        use serde_json::from_value as de;
        let version = payload
            .get("event_version")
            .and_then(serde_json::Value::as_u64);
        if !types::ALL.contains(&event_type)
            || version.is_some_and(|v| v > u64::from(EVENT_VERSION))
        {
            return Ok(Self::Unknown {
                event_type: event_type.to_owned(),
                payload,
            });
        }
        Ok(match event_type {
            types::TRANSACTION_STATUS_CHANGED => Self::TransactionStatusChanged(de(payload)?),
            types::TRANSACTION_REMOVED => Self::TransactionRemoved(de(payload)?),
            types::TRANSACTION_RESTORED => Self::TransactionRestored(de(payload)?),
            types::SETTLEMENT_CHANGED => Self::SettlementChanged(de(payload)?),
            types::RECONCILIATION_MISMATCH => Self::ReconciliationMismatch(de(payload)?),
            types::RECONCILIATION_MATCHED => Self::ReconciliationMatched(de(payload)?),
            types::CUSTOMER_CHANGED => Self::CustomerChanged(de(payload)?),
            types::PAYOUT_CHANGED => Self::PayoutChanged(de(payload)?),
            other => Self::Unknown {
                event_type: other.to_owned(),
                payload,
            },
        })
    }

    /// The event type (the `type` column).
    pub fn event_type(&self) -> &str {
        match self {
            Self::TransactionStatusChanged(_) => types::TRANSACTION_STATUS_CHANGED,
            Self::TransactionRemoved(_) => types::TRANSACTION_REMOVED,
            Self::TransactionRestored(_) => types::TRANSACTION_RESTORED,
            Self::SettlementChanged(_) => types::SETTLEMENT_CHANGED,
            Self::ReconciliationMismatch(_) => types::RECONCILIATION_MISMATCH,
            Self::ReconciliationMatched(_) => types::RECONCILIATION_MATCHED,
            Self::CustomerChanged(_) => types::CUSTOMER_CHANGED,
            Self::PayoutChanged(_) => types::PAYOUT_CHANGED,
            Self::Unknown { event_type, .. } => event_type,
        }
    }

    /// The payload as JSON (the `payload` column), without the type.
    pub fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            Self::TransactionStatusChanged(p)
            | Self::TransactionRemoved(p)
            | Self::TransactionRestored(p) => serde_json::to_value(p),
            Self::SettlementChanged(p) => serde_json::to_value(p),
            Self::ReconciliationMismatch(p) | Self::ReconciliationMatched(p) => {
                serde_json::to_value(p)
            }
            Self::CustomerChanged(p) => serde_json::to_value(p),
            Self::PayoutChanged(p) => serde_json::to_value(p),
            Self::Unknown { payload, .. } => Ok(payload.clone()),
        }
    }

    /// The transaction event, for the three `transaction.*` types.
    pub fn transaction(&self) -> Option<&TransactionEvent> {
        match self {
            Self::TransactionStatusChanged(p)
            | Self::TransactionRemoved(p)
            | Self::TransactionRestored(p) => Some(p),
            _ => None,
        }
    }

    /// Whether this is [`Payload::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown { .. })
    }
}

/// The adjacently tagged form, `{"type": ..., "payload": ...}`.
#[derive(Serialize, Deserialize)]
struct Tagged<T> {
    #[serde(rename = "type")]
    event_type: String,
    payload: T,
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let payload = self.to_value().map_err(serde::ser::Error::custom)?;
        Tagged {
            event_type: self.event_type().to_owned(),
            payload,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tagged = Tagged::<serde_json::Value>::deserialize(d)?;
        Self::from_parts(&tagged.event_type, tagged.payload).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Decodes `payload` as `event_type`, checks the variant, and that encoding it again gives
    /// exactly the same JSON (and text, key order aside).
    fn round_trip(event_type: &str, payload: Value) -> Payload {
        let decoded = Payload::from_parts(event_type, payload.clone()).unwrap();
        assert!(!decoded.is_unknown(), "{event_type} decoded as Unknown");
        assert_eq!(decoded.event_type(), event_type);
        assert_eq!(decoded.to_value().unwrap(), payload, "{event_type}");
        // Through the tagged form too.
        let tagged = serde_json::to_value(&decoded).unwrap();
        assert_eq!(tagged, json!({"type": event_type, "payload": payload}));
        let back: Payload = serde_json::from_value(tagged).unwrap();
        assert_eq!(back, decoded);
        decoded
    }

    /// README.md's `transaction.status_changed` sample, verbatim.
    fn transaction_sample() -> Value {
        json!({
            "event_version": 1,
            "transaction_id": 7,
            "client_id": 4321,
            "customer_id": 1,
            "amount": "25.00",
            "from_status": "Pending",
            "to_status": "Approved",
            "status_reason": null,
            "process_date": "2019-03-01",
            "settlement_date": "2019-03-08",
            "decline_date": null,
            "transaction_number": "INV7",
            "custom_identifier": "C7",
            "observed_at": "2019-03-12T15:04:05.123456Z",
            "source": "transaction_report",
            "reversal": false
        })
    }

    #[test]
    fn transaction_events_round_trip_with_exact_amounts_dates_and_instants() {
        let decoded = round_trip(types::TRANSACTION_STATUS_CHANGED, transaction_sample());
        let t = decoded.transaction().unwrap();
        assert_eq!(t.amount, Decimal::new(2500, 2));
        assert_eq!(t.amount.to_string(), "25.00");
        assert_eq!(t.from_status, Some(Status::Pending));
        assert_eq!(t.to_status, Status::Approved);
        assert_eq!(t.source, Source::TransactionReport);
        assert_eq!(t.process_date, NaiveDate::from_ymd_opt(2019, 3, 1).unwrap());
        assert_eq!(
            t.observed_at.to_rfc3339(),
            "2019-03-12T15:04:05.123456+00:00"
        );

        // First sight, a decline, a reversal, the other report, whole seconds.
        let mut first = transaction_sample();
        first["from_status"] = Value::Null;
        first["to_status"] = json!("Declined");
        first["status_reason"] = json!("NSF");
        first["decline_date"] = json!("2019-03-05");
        first["source"] = json!("transaction_decline_report");
        first["reversal"] = json!(true);
        first["client_id"] = Value::Null;
        first["amount"] = json!("1234567.10");
        first["observed_at"] = json!("2019-03-12T15:04:05.000000Z");
        let t = round_trip(types::TRANSACTION_STATUS_CHANGED, first);
        assert_eq!(t.transaction().unwrap().source, Source::DeclineReport);
        for removed_or_restored in [types::TRANSACTION_REMOVED, types::TRANSACTION_RESTORED] {
            round_trip(removed_or_restored, transaction_sample());
        }
    }

    #[test]
    fn an_event_written_before_reversal_existed_reads_as_not_a_reversal() {
        let mut old = transaction_sample();
        old.as_object_mut().unwrap().remove("reversal");
        let p = Payload::from_parts(types::TRANSACTION_STATUS_CHANGED, old).unwrap();
        assert!(!p.transaction().unwrap().reversal);
    }

    #[test]
    fn statuses_and_sources_it_does_not_know_are_kept_as_sent() {
        let mut v = transaction_sample();
        v["to_status"] = json!("Suspended");
        v["source"] = json!("transaction_audit_report");
        let p = round_trip(types::TRANSACTION_STATUS_CHANGED, v);
        let t = p.transaction().unwrap();
        assert_eq!(t.to_status, Status::Other("Suspended".into()));
        assert_eq!(t.source.as_str(), "transaction_audit_report");
    }

    #[test]
    fn fields_added_later_within_a_version_are_ignored() {
        let mut v = transaction_sample();
        v["added_in_a_later_release"] = json!({"x": 1});
        let p = Payload::from_parts(types::TRANSACTION_STATUS_CHANGED, v).unwrap();
        assert_eq!(p.transaction().unwrap().transaction_id, 7);
    }

    fn totals(approved: &str) -> Value {
        json!({
            "number_approved": 3, "number_declined": 1, "number_chargeback": 0,
            "number_payout": 2, "total_approved": approved, "total_declined": "10.00",
            "total_chargeback": "0.00", "total_payout": "65.10"
        })
    }

    #[test]
    fn settlement_events_round_trip() {
        let new = json!({
            "event_version": 1, "client_id": 4321, "settlement_date": "2019-03-08",
            "previous": null, "current": totals("75.10")
        });
        let p = round_trip(types::SETTLEMENT_CHANGED, new);
        let Payload::SettlementChanged(s) = p else {
            panic!("{p:?}")
        };
        assert_eq!(s.current.total_approved.to_string(), "75.10");
        let changed = json!({
            "event_version": 1, "client_id": 4321, "settlement_date": "2019-03-08",
            "previous": totals("75.10"), "current": totals("80.00")
        });
        round_trip(types::SETTLEMENT_CHANGED, changed);
    }

    #[test]
    fn reconciliation_events_round_trip() {
        let side = |a: &str| {
            json!({
                "number_approved": 3, "total_approved": a, "number_declined": 1,
                "total_declined": "10.00", "number_chargeback": 0, "total_chargeback": "0.00"
            })
        };
        let mismatch = json!({
            "event_version": 1, "client_id": 4321, "settlement_date": "2019-03-08",
            "matched": false, "rotessa": side("75.10"), "computed": side("75.60"),
            "difference": {
                "number_approved": 0, "total_approved": "-0.50", "number_declined": 0,
                "total_declined": "0.00", "number_chargeback": 0, "total_chargeback": "0.00"
            }
        });
        let p = round_trip(types::RECONCILIATION_MISMATCH, mismatch.clone());
        let Payload::ReconciliationMismatch(r) = &p else {
            panic!("{p:?}")
        };
        assert_eq!(r.difference.total_approved, Decimal::new(-50, 2));
        let mut matched = mismatch;
        matched["matched"] = json!(true);
        round_trip(types::RECONCILIATION_MATCHED, matched);
    }

    #[test]
    fn customer_events_round_trip() {
        let fields = |name: &str| {
            json!({
                "id": 1, "client_id": 4321, "custom_identifier": "C1", "identifier": "ID1",
                "name": name, "customer_type": "Personal", "active": true,
                "bank_name": null, "authorization_type": "Online", "bank_account_type": null,
                "account_number": "*****132", "transit_number": "11111",
                "institution_number": "111", "routing_number": null
            })
        };
        let new = json!({
            "event_version": 1, "customer_id": 1, "client_id": 4321,
            "changed": null, "previous": null, "current": fields("Ada")
        });
        round_trip(types::CUSTOMER_CHANGED, new);
        let changed = json!({
            "event_version": 1, "customer_id": 1, "client_id": null,
            "changed": ["email", "name"], "previous": fields("Ada"), "current": fields("Ada B")
        });
        let p = round_trip(types::CUSTOMER_CHANGED, changed);
        let Payload::CustomerChanged(c) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.changed.unwrap(), ["email", "name"]);
    }

    #[test]
    fn payout_events_round_trip() {
        let fields = |amount: &str, ta: Value| {
            json!({
                "payout_key": "future:174527:100.00:1.00:2", "payout_id": null,
                "financial_transaction_id": null, "customer_id": 174527, "amount": amount,
                "transaction_amount": ta, "status": "Future", "process_date": "2019-03-20",
                "settlement_date": null
            })
        };
        let new = json!({
            "event_version": 1, "payout_key": "future:174527:100.00:1.00:2",
            "previous": null, "current": fields("1.00", json!("100.00"))
        });
        round_trip(types::PAYOUT_CHANGED, new);
        let changed = json!({
            "event_version": 1, "payout_key": "future:174527:100.00:1.00:2",
            "previous": fields("1.00", json!("100.00")), "current": fields("2.50", Value::Null)
        });
        let p = round_trip(types::PAYOUT_CHANGED, changed);
        let Payload::PayoutChanged(c) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.current.amount, Decimal::new(250, 2));
        assert_eq!(c.current.transaction_amount, None);
    }

    #[test]
    fn unknown_types_and_newer_versions_are_kept_raw() {
        let raw = json!({"event_version": 1, "anything": [1, "two"]});
        let p = Payload::from_parts("refund.issued", raw.clone()).unwrap();
        assert_eq!(
            p,
            Payload::Unknown {
                event_type: "refund.issued".into(),
                payload: raw.clone()
            }
        );
        assert_eq!(p.event_type(), "refund.issued");
        assert_eq!(p.to_value().unwrap(), raw);
        // Through serde, both ways.
        let tagged = serde_json::to_value(&p).unwrap();
        assert_eq!(tagged, json!({"type": "refund.issued", "payload": raw}));
        assert_eq!(serde_json::from_value::<Payload>(tagged).unwrap(), p);

        // A known type in a version this crate does not know: its shape may differ.
        let v2 = json!({"event_version": 2, "transaction": {"id": 7}});
        let p = Payload::from_parts(types::TRANSACTION_STATUS_CHANGED, v2.clone()).unwrap();
        assert!(p.is_unknown());
        assert_eq!(p.event_type(), types::TRANSACTION_STATUS_CHANGED);
        assert_eq!(p.to_value().unwrap(), v2);
    }

    #[test]
    fn a_known_type_of_the_wrong_shape_is_an_error() {
        let err = Payload::from_parts(
            types::TRANSACTION_STATUS_CHANGED,
            json!({"event_version": 1, "transaction_id": "seven"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        assert!(
            Payload::from_parts(types::SETTLEMENT_CHANGED, json!({"event_version": 1})).is_err()
        );
    }

    #[test]
    fn an_outbox_row_as_json_decodes_ignoring_its_other_columns() {
        let row = json!({
            "id": "0193a1b2-0000-7000-8000-000000000001", "aggregatetype": "transaction",
            "aggregateid": "7", "type": "transaction.status_changed",
            "payload": transaction_sample(), "occurred_at": "2019-03-12T15:04:05Z",
            "seq": 1, "txid": "800"
        });
        let p: Payload = serde_json::from_value(row).unwrap();
        assert_eq!(p.transaction().unwrap().transaction_id, 7);
    }

    #[test]
    fn money_has_two_decimals_at_least() {
        #[derive(Serialize, Deserialize)]
        struct M {
            #[serde(with = "money")]
            a: Decimal,
            #[serde(with = "money_option")]
            b: Option<Decimal>,
        }
        let text = |a: Decimal, b: Option<Decimal>| serde_json::to_string(&M { a, b }).unwrap();
        assert_eq!(
            text(Decimal::ZERO, Some(Decimal::ZERO)),
            r#"{"a":"0.00","b":"0.00"}"#
        );
        assert_eq!(text(Decimal::new(25, 0), None), r#"{"a":"25.00","b":null}"#);
        assert_eq!(
            text(Decimal::new(1234, 3), None),
            r#"{"a":"1.234","b":null}"#
        );
        let old: M = serde_json::from_str(r#"{"a":"0","b":"7.5"}"#).unwrap();
        assert_eq!((old.a, old.b), (Decimal::ZERO, Some(Decimal::new(75, 1))));
    }
}
