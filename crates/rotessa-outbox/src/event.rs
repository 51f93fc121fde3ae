//! Outbox rows: [`Event`] (decoded) and [`RawEvent`] (as stored), and their place in delivery
//! order, [`Position`].

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::payload::Payload;

/// Where an event stands in delivery order, `(txid, seq)`: ordering is delivery order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The writing transaction (`xid8`, read as text).
    pub txid: u64,
    /// The event's `seq` (identity, assigned at insert).
    pub seq: i64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.txid, self.seq)
    }
}

/// An event as stored in `rotessa.outbox`, its payload not yet decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The event id: deduplicate on it.
    pub id: Uuid,
    /// `transaction`, `settlement`, `reconciliation`, `customer` or `payout`.
    pub aggregate_type: String,
    /// The transaction id, customer id, payout key, or `client_id:settlement_date`.
    pub aggregate_id: String,
    /// The event type (`transaction.status_changed`, ...).
    pub event_type: String,
    /// The payload as stored.
    pub payload: serde_json::Value,
    /// When the writing transaction started.
    pub occurred_at: DateTime<Utc>,
    /// The event's place in delivery order.
    pub position: Position,
}

/// An event whose payload does not have its (known) type's shape; see [`Payload::from_parts`].
#[derive(Debug, thiserror::Error)]
#[error("event {} ({}): the payload is not a valid {}: {source}", .event.id, .event.position, .event.event_type)]
pub struct DecodeError {
    /// The event as stored.
    pub event: Box<RawEvent>,
    /// What serde said.
    #[source]
    pub source: serde_json::Error,
}

impl RawEvent {
    /// Decodes the payload by the event's type ([`Payload::Unknown`] for types and versions this
    /// crate does not know).
    pub fn decode(self) -> Result<Event, DecodeError> {
        match Payload::from_parts(&self.event_type, self.payload.clone()) {
            Ok(payload) => Ok(Event {
                id: self.id,
                aggregate_type: self.aggregate_type,
                aggregate_id: self.aggregate_id,
                payload,
                occurred_at: self.occurred_at,
                position: self.position,
            }),
            Err(source) => Err(DecodeError {
                event: Box::new(self),
                source,
            }),
        }
    }

    /// Reads a row with the outbox's columns, `txid` selected as text.
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let txid: String = row.try_get("txid")?;
        let txid = txid.parse::<u64>().map_err(|e| sqlx::Error::ColumnDecode {
            index: "txid".into(),
            source: Box::new(e),
        })?;
        Ok(Self {
            id: row.try_get("id")?,
            aggregate_type: row.try_get("aggregatetype")?,
            aggregate_id: row.try_get("aggregateid")?,
            event_type: row.try_get("type")?,
            payload: row.try_get::<Json<serde_json::Value>, _>("payload")?.0,
            occurred_at: row.try_get("occurred_at")?,
            position: Position {
                txid,
                seq: row.try_get("seq")?,
            },
        })
    }
}

/// An event, its payload decoded: what a [`Handler`](crate::Handler) is given.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event id: deduplicate on it (delivery is at least once).
    pub id: Uuid,
    /// `transaction`, `settlement`, `reconciliation`, `customer` or `payout`.
    pub aggregate_type: String,
    /// The transaction id, customer id, payout key, or `client_id:settlement_date`.
    pub aggregate_id: String,
    /// The payload, typed by the event's type; [`Payload::event_type`] is the `type` column.
    pub payload: Payload,
    /// When the writing transaction started.
    pub occurred_at: DateTime<Utc>,
    /// The event's place in delivery order.
    pub position: Position,
}

impl Event {
    /// The event type (`transaction.status_changed`, ...).
    pub fn event_type(&self) -> &str {
        self.payload.event_type()
    }
}
