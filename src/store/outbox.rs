//! `rotessa.outbox`: events written in the same transaction as the change that caused them,
//! and read back in delivery order behind the visibility fence (docs/outbox-consumers.md).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use uuid::Uuid;

use super::copy::CopyRows;
use super::{Error, ResultExt};

/// The channel each committing page with events notifies, to wake consumers.
pub const NOTIFY_CHANNEL: &str = "rotessa_outbox";

/// An event to append (Debezium outbox router column names).
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event id: consumers deduplicate on it.
    pub id: Uuid,
    pub aggregatetype: &'static str,
    pub aggregateid: String,
    pub event_type: &'static str,
    /// The payload as JSON text (serialized once, straight from a typed struct).
    pub payload: String,
}

/// Appends events with `COPY`; `occurred_at`, `seq` and `txid` are filled in by the database.
pub async fn append(conn: &mut PgConnection, events: &[NewEvent]) -> Result<(), Error> {
    const COPY: &str = r#"
        copy rotessa.outbox (id, aggregatetype, aggregateid, type, payload)
        from stdin (format binary)
    "#;
    let mut rows = CopyRows::new();
    for e in events {
        rows.row(5)
            .value(&e.id)
            .value(&e.aggregatetype)
            .value(&e.aggregateid.as_str())
            .value(&e.event_type)
            .jsonb(e.payload.as_bytes());
    }
    rows.send(conn, COPY, "appending outbox events").await?;
    Ok(())
}

/// `NOTIFY rotessa_outbox`, delivered when the surrounding transaction commits.
pub async fn notify(conn: &mut PgConnection) -> Result<(), Error> {
    const SQL: &str = r#"select pg_notify($1, '')"#;
    sqlx::query(SQL)
        .bind(NOTIFY_CHANNEL)
        .execute(conn)
        .await
        .op("notifying outbox listeners")?;
    Ok(())
}

/// Where a reader stands in delivery order, `(txid, seq)`: the last event it has seen or
/// acked. Ordering is delivery order (`txid` first, then `seq`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The writing transaction (`xid8`).
    pub txid: u64,
    /// The event's sequence number within its transaction's order.
    pub seq: i64,
}

impl Position {
    /// Before every event.
    pub const BEGINNING: Self = Self { txid: 0, seq: 0 };
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.txid, self.seq)
    }
}

/// An event as consumers read it: every column of `rotessa.outbox`. Serialized (one JSON
/// line per event in `outbox tail`) with the column names; `txid` as a string, since an
/// `xid8` can exceed what some JSON readers hold exactly.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    /// The event id: deduplicate on it.
    pub id: Uuid,
    /// `transaction`, `settlement` or `reconciliation` (Debezium routes on it).
    pub aggregatetype: String,
    /// The transaction id, or `client_id:settlement_date` (the Kafka key under Debezium).
    pub aggregateid: String,
    /// `transaction.status_changed`, `settlement.changed`, `reconciliation.matched`, ...
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event itself (README.md "Events"); carries `event_version`.
    pub payload: serde_json::Value,
    /// When the writing transaction started.
    pub occurred_at: DateTime<Utc>,
    /// Insert order; second key of delivery order.
    pub seq: i64,
    /// The writing transaction (`xid8`); first key of delivery order.
    #[serde(serialize_with = "as_text")]
    pub txid: u64,
}

impl Event {
    /// This event's place in delivery order: ack it once the event is processed.
    pub fn position(&self) -> Position {
        Position {
            txid: self.txid,
            seq: self.seq,
        }
    }

    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let txid: String = row.try_get("txid")?;
        let txid = txid.parse::<u64>().map_err(|e| sqlx::Error::ColumnDecode {
            index: "txid".into(),
            source: Box::new(e),
        })?;
        Ok(Self {
            id: row.try_get("id")?,
            aggregatetype: row.try_get("aggregatetype")?,
            aggregateid: row.try_get("aggregateid")?,
            event_type: row.try_get("type")?,
            payload: row.try_get::<Json<serde_json::Value>, _>("payload")?.0,
            occurred_at: row.try_get("occurred_at")?,
            seq: row.try_get("seq")?,
            txid,
        })
    }
}

fn as_text<S: serde::Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Decodes rows of `rotessa.outbox` selected with `txid::text as txid` (sqlx has no `xid8`).
pub(super) fn decode_events(rows: &[PgRow]) -> Result<Vec<Event>, Error> {
    rows.iter()
        .map(Event::from_row)
        .collect::<Result<_, _>>()
        .op("decoding outbox events")
}

/// Up to `max` events after `after`, in delivery order, behind the visibility fence
/// (`rotessa.outbox_read`). For readers that keep their own position; nothing is recorded.
pub async fn read_after<'e>(
    executor: impl PgExecutor<'e>,
    after: Position,
    max: u32,
) -> Result<Vec<Event>, Error> {
    const SQL: &str = r#"
        select id, aggregatetype, aggregateid, type, payload, occurred_at, seq, txid::text as txid
        from rotessa.outbox_read($1::text::xid8, $2, $3)
    "#;
    let rows = sqlx::query(SQL)
        .bind(after.txid.to_string())
        .bind(after.seq)
        .bind(clamp_max(max))
        .fetch_all(executor)
        .await
        .op("reading outbox events")?;
    decode_events(&rows)
}

/// Whether committed events wait behind the visibility fence: a transaction that started
/// before them is still open somewhere on the server, so they are not deliverable yet but will
/// be as soon as it ends. Followers use it to re-poll soon after a notification that found
/// nothing, instead of waiting a whole polling interval.
pub async fn behind_fence<'e>(executor: impl PgExecutor<'e>) -> Result<bool, Error> {
    const SQL: &str = r#"
        select exists (
            select from rotessa.outbox
            where txid >= pg_snapshot_xmin(pg_current_snapshot())
        )
    "#;
    sqlx::query_scalar(SQL)
        .fetch_one(executor)
        .await
        .op("looking for events behind the visibility fence")
}

/// A batch size as the SQL functions take it (`integer`, at least 1).
pub(super) fn clamp_max(max: u32) -> i32 {
    i32::try_from(max.max(1)).unwrap_or(i32::MAX)
}

/// The outbox as a whole, for `outbox stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Events in the table.
    pub events: i64,
    /// `occurred_at` of the oldest event (what retention has kept).
    pub oldest_at: Option<DateTime<Utc>>,
    /// `occurred_at` of the newest event.
    pub newest_at: Option<DateTime<Utc>>,
    /// Committed events not yet deliverable: a transaction that started before them is still
    /// open somewhere on the server (the visibility fence).
    pub behind_fence: i64,
}

/// Counts the events and those waiting behind the visibility fence.
pub async fn summary(pool: &PgPool) -> Result<Summary, Error> {
    const SQL: &str = r#"
        select count(*) as events,
               min(occurred_at) as oldest_at,
               max(occurred_at) as newest_at,
               count(*) filter (where txid >= pg_snapshot_xmin(pg_current_snapshot())) as behind_fence
        from rotessa.outbox
    "#;
    let row = sqlx::query(SQL)
        .fetch_one(pool)
        .await
        .op("summarising the outbox")?;
    let get = || -> Result<Summary, sqlx::Error> {
        Ok(Summary {
            events: row.try_get("events")?,
            oldest_at: row.try_get("oldest_at")?,
            newest_at: row.try_get("newest_at")?,
            behind_fence: row.try_get("behind_fence")?,
        })
    };
    get().op("decoding the outbox summary")
}

/// Events committed but not yet behind the visibility fence (an older transaction is still open,
/// so no consumer may see them yet), and the age in seconds of the oldest, 0 when none is held.
/// A long-open transaction anywhere in the database holds every newer event back.
pub async fn held_by_fence(pool: &PgPool) -> Result<(i64, f64), Error> {
    const SQL: &str = r#"
        select count(*),
               coalesce(extract(epoch from now() - min(occurred_at)), 0)::float8
        from rotessa.outbox
        where txid >= pg_snapshot_xmin(pg_current_snapshot())
    "#;
    sqlx::query_as(SQL)
        .fetch_one(pool)
        .await
        .op("counting events held behind the visibility fence")
}
