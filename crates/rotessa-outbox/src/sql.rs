//! The SQL contract, one function per call (docs/outbox-consumers.md in rotessa-recon): for
//! consumers that drive their own loop, or that ack inside the transaction of their own side
//! effects (every function takes any executor: a pool, a connection or a transaction).
//!
//! [`Consumer`](crate::Consumer) is built on these.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::Error;
use crate::event::{Position, RawEvent};

/// Where a newly registered consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// Every event still retained.
    #[default]
    Beginning,
    /// Only events that become deliverable after registration.
    Now,
}

impl StartFrom {
    /// The value `rotessa.outbox_register` takes (`'beginning'`, `'now'`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Beginning => "beginning",
            Self::Now => "now",
        }
    }
}

/// A batch size as the SQL functions take it (`integer`, at least 1).
fn clamp_max(max: u32) -> i32 {
    i32::try_from(max.max(1)).unwrap_or(i32::MAX)
}

fn decode(rows: &[sqlx::postgres::PgRow], op: &'static str) -> Result<Vec<RawEvent>, Error> {
    rows.iter()
        .map(RawEvent::from_row)
        .collect::<Result<_, _>>()
        .map_err(|source| Error::Query { op, source })
}

/// `rotessa.outbox_register(name, start)`: registers `name`; false (position kept) if it exists.
/// From then on retention keeps every event `name` has not acked.
pub async fn register<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    start: StartFrom,
) -> Result<bool, Error> {
    const SQL: &str = "select rotessa.outbox_register($1, $2)";
    sqlx::query_scalar(SQL)
        .bind(name)
        .bind(start.as_str())
        .fetch_one(executor)
        .await
        .map_err(|e| {
            Error::consumer(
                e,
                name,
                "registering an outbox consumer",
                "rotessa.outbox_register",
            )
        })
}

/// `rotessa.outbox_unregister(name)`: removes `name`, releasing what it held back from
/// retention; false if it was not registered.
pub async fn unregister<'e>(executor: impl PgExecutor<'e>, name: &str) -> Result<bool, Error> {
    const SQL: &str = "select rotessa.outbox_unregister($1)";
    sqlx::query_scalar(SQL)
        .bind(name)
        .fetch_one(executor)
        .await
        .map_err(|e| {
            Error::consumer(
                e,
                name,
                "unregistering an outbox consumer",
                "rotessa.outbox_unregister",
            )
        })
}

/// `rotessa.outbox_poll(name, max)`: up to `max` events after `name`'s acked position, in
/// delivery order, behind the visibility fence. Does not move the position.
pub async fn poll<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    max: u32,
) -> Result<Vec<RawEvent>, Error> {
    const SQL: &str = r#"
        select id, aggregatetype, aggregateid, type, payload, occurred_at, seq, txid::text as txid
        from rotessa.outbox_poll($1, $2)
    "#;
    const OP: &str = "polling the outbox";
    let rows = sqlx::query(SQL)
        .bind(name)
        .bind(clamp_max(max))
        .fetch_all(executor)
        .await
        .map_err(|e| Error::consumer(e, name, OP, "rotessa.outbox_poll"))?;
    decode(&rows, OP)
}

/// `rotessa.outbox_ack(name, txid, seq)`: moves `name`'s position forward to `to`; false when
/// `to` is not ahead of it. Only ack positions of events a poll returned.
pub async fn ack<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    to: Position,
) -> Result<bool, Error> {
    const SQL: &str = "select rotessa.outbox_ack($1, $2::text::xid8, $3)";
    sqlx::query_scalar(SQL)
        .bind(name)
        .bind(to.txid.to_string())
        .bind(to.seq)
        .fetch_one(executor)
        .await
        .map_err(|e| Error::consumer(e, name, "acking outbox events", "rotessa.outbox_ack"))
}

/// `rotessa.outbox_park(name, event_id, error)`: sets an event aside for `name` with the error
/// that made it fail, so that the consumer can ack past it; it stays (and is kept from retention)
/// until replayed.
pub async fn park<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    event_id: Uuid,
    error: &str,
) -> Result<(), Error> {
    const SQL: &str = "select rotessa.outbox_park($1, $2, $3)";
    sqlx::query(SQL)
        .bind(name)
        .bind(event_id)
        .bind(error)
        .execute(executor)
        .await
        .map_err(|e| Error::consumer(e, name, "parking an outbox event", "rotessa.outbox_park"))?;
    Ok(())
}

/// `rotessa.outbox_unpark(name, event_id)`: marks one parked event of `name` (or, with `None`,
/// all of them) for replay; returns how many were marked. The consumer's next loop hands them to
/// its handler again ([`replay_poll`]).
pub async fn unpark<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    event_id: Option<Uuid>,
) -> Result<i32, Error> {
    const SQL: &str = "select rotessa.outbox_unpark($1, $2)";
    sqlx::query_scalar(SQL)
        .bind(name)
        .bind(event_id)
        .fetch_one(executor)
        .await
        .map_err(|e| Error::consumer(e, name, "unparking outbox events", "rotessa.outbox_unpark"))
}

/// `rotessa.outbox_replay_poll(name, max)`: up to `max` parked events of `name` marked for
/// replay.
pub async fn replay_poll<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    max: u32,
) -> Result<Vec<RawEvent>, Error> {
    const SQL: &str = r#"
        select id, aggregatetype, aggregateid, type, payload, occurred_at, seq, txid::text as txid
        from rotessa.outbox_replay_poll($1, $2)
    "#;
    const OP: &str = "polling parked events to replay";
    let rows = sqlx::query(SQL)
        .bind(name)
        .bind(clamp_max(max))
        .fetch_all(executor)
        .await
        .map_err(|e| Error::consumer(e, name, OP, "rotessa.outbox_replay_poll"))?;
    decode(&rows, OP)
}

/// `rotessa.outbox_replay_done(name, event_id)`: a replayed event was handled; it is no longer
/// parked. False if it was not parked for `name`.
pub async fn replay_done<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    event_id: Uuid,
) -> Result<bool, Error> {
    const SQL: &str = "select rotessa.outbox_replay_done($1, $2)";
    sqlx::query_scalar(SQL)
        .bind(name)
        .bind(event_id)
        .fetch_one(executor)
        .await
        .map_err(|e| {
            Error::consumer(
                e,
                name,
                "marking a replayed event done",
                "rotessa.outbox_replay_done",
            )
        })
}
