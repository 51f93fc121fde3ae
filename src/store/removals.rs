//! Rows Rotessa stops reporting (a deleted or edited schedule takes its future transactions
//! away): after each complete read of a transaction-report window, the stored rows of that
//! window (by process date, in the read's scope) that the read did not return count one more
//! absent read, and those absent from two consecutive complete reads are marked `removed_at`.
//! Rows the read returned lose their count. Rows outside the windows read are never touched.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::page_digests::WindowKey;
use super::{Error, ResultExt};

/// What a complete read of a window returned: the ids of the pages it parsed, and the pages it
/// skipped as identical to their digest (whose ids the digest holds).
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    pub window: WindowKey<'a>,
    /// `None`: the account-wide report (every client).
    pub client_id: Option<i64>,
    pub parsed_ids: &'a [i64],
    pub skipped_pages: &'a [i32],
}

/// A row found gone from two consecutive complete reads, as it was last reported.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Gone {
    pub id: i64,
    pub client_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub amount: Decimal,
    pub status: String,
    pub status_reason: Option<String>,
    pub process_date: NaiveDate,
    pub settlement_date: Option<NaiveDate>,
    pub decline_date: Option<NaiveDate>,
    pub transaction_number: Option<String>,
    pub custom_identifier: Option<String>,
    pub status_changed_at: DateTime<Utc>,
    pub latest_updated_at: Option<DateTime<Utc>>,
}

/// A row the read did not return, and whether that made it removed.
#[derive(sqlx::FromRow)]
struct Missed {
    #[sqlx(flatten)]
    row: Gone,
    removed: bool,
}

/// Counts a complete read of a window; returns the rows it marked removed (absent from this
/// read and the one before). In the caller's transaction, with the events the caller writes.
pub async fn count_read(conn: &mut PgConnection, read: Read<'_>) -> Result<Vec<Gone>, Error> {
    // `seen`: the ids the read returned, those of the pages it parsed and, from their digests,
    // those of the pages it skipped. Rows it returned lose their count (`returned`); the others
    // gain one, and are marked removed at the second.
    const SQL: &str = r#"
        with seen as (
            select unnest($4::bigint[]) as id
            union
            select unnest(d.ids) from rotessa.page_digests d
            where d.stream = $5 and d.client_id = $6 and d.window_from = $1
              and d.window_to = $2 and d.page = any($7)
        ),
        -- A set difference (hashed or sorted), never a scan of `seen` per stored row.
        missing as (
            select t.id from rotessa.transactions t
            where t.process_date between $1 and $2
              and ($3::bigint is null or t.client_id = $3)
              and t.removed_at is null
            except
            select id from seen
        ),
        returned as (
            update rotessa.transactions t set absent_reads = 0
            where t.absent_reads > 0 and t.process_date between $1 and $2
              and ($3::bigint is null or t.client_id = $3)
              and t.id in (select id from seen)
        )
        update rotessa.transactions t
        set absent_reads = t.absent_reads + 1,
            removed_at = case when t.absent_reads >= 1 then now() end
        from missing
        where t.id = missing.id
        returning t.id, t.client_id, t.customer_id, t.amount, t.status, t.status_reason,
                  t.process_date, t.settlement_date, t.decline_date, t.transaction_number,
                  t.custom_identifier, t.status_changed_at, t.latest_updated_at,
                  t.removed_at is not null as removed
    "#;
    let w = read.window;
    let missed: Vec<Missed> = sqlx::query_as(SQL)
        .bind(w.from)
        .bind(w.to)
        .bind(read.client_id)
        .bind(read.parsed_ids)
        .bind(w.stream)
        .bind(w.client_id)
        .bind(read.skipped_pages)
        .fetch_all(conn)
        .await
        .op("counting rows a report no longer returns")?;
    Ok(missed
        .into_iter()
        .filter(|m| m.removed)
        .map(|m| m.row)
        .collect())
}
