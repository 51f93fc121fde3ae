//! `rotessa.outbox_parked`: events a polling consumer could not process, parked so that it can
//! ack past them, and replayed later, through the SQL contract of migration 20261206000001
//! (`outbox_park`, `outbox_unpark`, `outbox_replay_poll`, `outbox_replay_done`,
//! `outbox_parked_list`; docs/outbox-consumers.md "Parking poison events"). Each function checks
//! that the caller owns the consumer, like the rest of the consumer contract.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

use super::Error;
use super::outbox::Event;
use super::outbox_consumers::consumer_error;

/// Where a parked event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParkState {
    /// The consumer gave up on it; it waits for an operator (`outbox unpark`).
    Parked,
    /// Marked for replay: [`replay_poll`] returns it until [`replay_done`].
    Replay,
}

impl ParkState {
    /// The value of the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parked => "parked",
            Self::Replay => "replay",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "parked" => Some(Self::Parked),
            "replay" => Some(Self::Replay),
            _ => None,
        }
    }
}

impl std::fmt::Display for ParkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parked event of a consumer, as `rotessa.outbox_parked_list` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parked {
    /// The event's id (`rotessa.outbox.id`).
    pub event_id: Uuid,
    /// The event's type; `None` if the event is no longer in the outbox (deleted by hand:
    /// retention never deletes a parked event).
    pub event_type: Option<String>,
    /// The event's aggregate id; `None` as for `event_type`.
    pub aggregateid: Option<String>,
    /// Parked, or marked for replay.
    pub state: ParkState,
    /// The error the consumer recorded the last time it parked the event.
    pub error: String,
    /// How many times the consumer parked it (a failed replay parks it again).
    pub times_parked: i32,
    /// When it was first parked.
    pub first_parked_at: DateTime<Utc>,
    /// When it was last parked.
    pub parked_at: DateTime<Utc>,
    /// When the event occurred; `None` as for `event_type`.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl Parked {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let state: String = row.try_get("state")?;
        let state = ParkState::parse(&state).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "state".into(),
            source: format!("unknown parked state {state:?}").into(),
        })?;
        Ok(Self {
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("type")?,
            aggregateid: row.try_get("aggregateid")?,
            state,
            error: row.try_get("error")?,
            times_parked: row.try_get("times_parked")?,
            first_parked_at: row.try_get("first_parked_at")?,
            parked_at: row.try_get("parked_at")?,
            occurred_at: row.try_get("occurred_at")?,
        })
    }
}

/// The daemon's errors for the crate's: the SQL calls are the `rotessa-outbox` crate's (one
/// definition of the contract for the daemon and its consumers); `no_data_found` from
/// `outbox_park` (no such event) is [`Error::Invalid`], as for any request the database state
/// cannot serve.
fn from_crate(e: rotessa_outbox::Error, consumer: &str, op: &'static str) -> Error {
    use rotessa_outbox::Error as Crate;
    match e {
        Crate::UnknownConsumer(name) => Error::UnknownConsumer(name),
        Crate::Query {
            source: sqlx::Error::Database(db),
            ..
        } if db.code().as_deref() == Some("P0002") => Error::Invalid(format!(
            "{op} for outbox consumer {consumer:?}: {}",
            db.message()
        )),
        Crate::Query { source, .. }
        | Crate::NotOwner { source, .. }
        | Crate::MissingFunction { source, .. } => Error::Query { op, source },
        other => Error::Invalid(format!("{op} for outbox consumer {consumer:?}: {other}")),
    }
}

/// Parks `event_id` for `consumer` with `error` (why it could not be processed); parking it
/// again counts it and puts it back to [`ParkState::Parked`]. The consumer then acks past the
/// event as usual. Runs on any executor, so it can commit with the ack. An event that is not in
/// the outbox is [`Error::Invalid`].
pub async fn park<'e>(
    executor: impl PgExecutor<'e>,
    consumer: &str,
    event_id: Uuid,
    error: &str,
) -> Result<(), Error> {
    rotessa_outbox::sql::park(executor, consumer, event_id, error)
        .await
        .map_err(|e| from_crate(e, consumer, "cannot park an outbox event"))
}

/// Marks `consumer`'s parked event `event_id` for replay, or all its parked events when `None`;
/// returns how many were marked (events already marked are not counted).
pub async fn unpark<'e>(
    executor: impl PgExecutor<'e>,
    consumer: &str,
    event_id: Option<Uuid>,
) -> Result<u64, Error> {
    let marked = rotessa_outbox::sql::unpark(executor, consumer, event_id)
        .await
        .map_err(|e| from_crate(e, consumer, "marking parked outbox events for replay"))?;
    Ok(u64::try_from(marked).unwrap_or(0))
}

/// Up to `max` of `consumer`'s events marked for replay, in delivery order. Reading changes
/// nothing: each comes back until [`replay_done`] (or it is parked again with [`park`]).
pub async fn replay_poll<'e>(
    executor: impl PgExecutor<'e>,
    consumer: &str,
    max: u32,
) -> Result<Vec<Event>, Error> {
    let events = rotessa_outbox::sql::replay_poll(executor, consumer, max)
        .await
        .map_err(|e| from_crate(e, consumer, "polling the events to replay"))?;
    Ok(events
        .into_iter()
        .map(|e| Event {
            id: e.id,
            aggregatetype: e.aggregate_type,
            aggregateid: e.aggregate_id,
            event_type: e.event_type,
            payload: e.payload,
            occurred_at: e.occurred_at,
            seq: e.position.seq,
            txid: e.position.txid,
        })
        .collect())
}

/// Records that the replayed event `event_id` was handled: its parked row goes. False when it
/// was not marked for replay. Runs on any executor, so it can commit with the side effects.
pub async fn replay_done<'e>(
    executor: impl PgExecutor<'e>,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool, Error> {
    rotessa_outbox::sql::replay_done(executor, consumer, event_id)
        .await
        .map_err(|e| from_crate(e, consumer, "finishing the replay of an outbox event"))
}

/// Every parked event of `consumer` (parked or marked for replay), in delivery order.
pub async fn list<'e>(executor: impl PgExecutor<'e>, consumer: &str) -> Result<Vec<Parked>, Error> {
    const SQL: &str = r#"
        select event_id, type, aggregateid, state, error, times_parked, first_parked_at,
               parked_at, occurred_at
        from rotessa.outbox_parked_list($1)
    "#;
    let rows = sqlx::query(SQL)
        .bind(consumer)
        .fetch_all(executor)
        .await
        .map_err(|e| consumer_error(e, consumer, "listing parked outbox events"))?;
    rows.iter()
        .map(Parked::from_row)
        .collect::<Result<_, _>>()
        .map_err(|source| Error::Query {
            op: "decoding parked outbox events",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_column_values() {
        for state in [ParkState::Parked, ParkState::Replay] {
            assert_eq!(ParkState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ParkState::parse("done"), None);
    }
}
