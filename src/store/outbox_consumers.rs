//! `rotessa.outbox_consumers`: registered polling consumers and the position each acked,
//! through the SQL contract of migration 20261122000003 (`outbox_register`, `outbox_poll`,
//! `outbox_ack`, `outbox_unregister`, the `outbox_consumer_lag` view), so that Rust consumers
//! behave exactly like consumers written in any other language.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor, PgPool};

use super::outbox::{Event, Position, clamp_max, decode_events};
use super::{Error, ResultExt};

/// Where a newly registered consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// Every event still retained.
    #[default]
    Beginning,
    /// Only events that become visible after registration.
    Now,
}

impl StartFrom {
    /// The value `rotessa.outbox_register` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Beginning => "beginning",
            Self::Now => "now",
        }
    }
}

/// Registers `name`; returns false (and keeps its position) if it already exists. From then
/// on, retention keeps every event `name` has not acked.
pub async fn register(pool: &PgPool, name: &str, start: StartFrom) -> Result<bool, Error> {
    const SQL: &str = r#"select rotessa.outbox_register($1, $2)"#;
    sqlx::query_scalar(SQL)
        .bind(name)
        .bind(start.as_str())
        .fetch_one(pool)
        .await
        .op("registering an outbox consumer")
}

/// Removes `name`, releasing the events it held back from retention; false if it was unknown.
pub async fn unregister(pool: &PgPool, name: &str) -> Result<bool, Error> {
    const SQL: &str = r#"select rotessa.outbox_unregister($1)"#;
    sqlx::query_scalar(SQL)
        .bind(name)
        .fetch_one(pool)
        .await
        .op("unregistering an outbox consumer")
}

/// Up to `max` events after `name`'s acked position, in delivery order, behind the visibility
/// fence. Does not move the position: until [`ack`], the same events come back.
pub async fn poll<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    max: u32,
) -> Result<Vec<Event>, Error> {
    const SQL: &str = r#"
        select id, aggregatetype, aggregateid, type, payload, occurred_at, seq, txid::text as txid
        from rotessa.outbox_poll($1, $2)
    "#;
    let rows = sqlx::query(SQL)
        .bind(name)
        .bind(clamp_max(max))
        .fetch_all(executor)
        .await
        .map_err(|e| consumer_error(e, name, "polling the outbox"))?;
    decode_events(&rows)
}

/// Moves `name`'s position forward to `to` (an event it has processed); returns false when
/// `to` is not ahead of it. Runs on any executor, so a consumer whose side effects live in
/// this database can ack in the same transaction (exactly-once processing).
pub async fn ack<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    to: Position,
) -> Result<bool, Error> {
    const SQL: &str = r#"select rotessa.outbox_ack($1, $2::text::xid8, $3)"#;
    sqlx::query_scalar(SQL)
        .bind(name)
        .bind(to.txid.to_string())
        .bind(to.seq)
        .fetch_one(executor)
        .await
        .map_err(|e| consumer_error(e, name, "acking outbox events"))
}

/// The SQL functions raise `undefined_object` (42704) for a consumer that was never
/// registered: that is [`Error::UnknownConsumer`], which says how to register it.
pub(super) fn consumer_error(e: sqlx::Error, name: &str, op: &'static str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42704") => {
            Error::UnknownConsumer(name.to_owned())
        }
        _ => Error::Query { op, source: e },
    }
}

/// One row of `rotessa.outbox_consumer_lag`.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Lag {
    /// The consumer's name.
    pub name: String,
    /// The acked position, as text `txid:seq`.
    pub position: String,
    /// When the consumer last acked (or registered).
    pub updated_at: DateTime<Utc>,
    /// Events after its position (including any not yet behind the fence).
    pub backlog: i64,
    /// `occurred_at` of its oldest un-acked event.
    pub oldest_unacked_at: Option<DateTime<Utc>>,
    /// Seconds since the oldest un-acked event occurred.
    pub oldest_unacked_age_secs: Option<f64>,
    /// Events it parked and has not marked for replay (`rotessa.outbox_parked`).
    pub parked: i64,
    /// Parked events marked for replay and not done yet.
    pub awaiting_replay: i64,
}

/// Every registered consumer with its backlog, most behind first.
pub async fn lag(pool: &PgPool) -> Result<Vec<Lag>, Error> {
    const SQL: &str = r#"
        select name,
               last_txid::text || ':' || last_seq as position,
               updated_at,
               backlog,
               oldest_unacked_at,
               extract(epoch from oldest_unacked_age)::float8 as oldest_unacked_age_secs,
               parked,
               awaiting_replay
        from rotessa.outbox_consumer_lag
        order by backlog desc, name
    "#;
    sqlx::query_as(SQL)
        .fetch_all(pool)
        .await
        .op("reading outbox consumer lag")
}

/// Whether the consumer contract is applied, up to parking (migrations 20261122000003 and
/// 20261206000001), so that commands can say "run `rotessa-recon migrate`" instead of
/// "function does not exist".
pub async fn contract_installed(pool: &PgPool) -> Result<bool, Error> {
    const SQL: &str = r#"
        select to_regprocedure('rotessa.outbox_poll(text, integer)') is not null
           and to_regprocedure('rotessa.outbox_park(text, uuid, text)') is not null
    "#;
    sqlx::query_scalar(SQL)
        .fetch_one(pool)
        .await
        .op("checking for the outbox consumer functions")
}
