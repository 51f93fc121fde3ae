//! Rows Rotessa stops reporting (a deleted or edited schedule takes its future transactions
//! away): after each complete read of a transaction-report window, the stored rows of that
//! window (by process date, in the read's scope) that the read did not return count one more
//! absent read, and those absent from two consecutive complete reads are marked `removed_at`.
//! Rows the read returned lose their count. Rows outside the windows read are never touched.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::page_digests::{self, WindowKey};
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
    /// The digest each skipped page matched when it was read.
    pub skipped_digests: &'a [i64],
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
/// read and the one before), or `None` when a skipped page's digest was replaced since the page
/// was read (its ids as read are no longer known: the read does not count). In the caller's
/// transaction, with the events the caller writes.
///
/// The usual read returned every stored row of its window: a count and a sum of ids (one scan
/// of the window's rows, the skipped pages' figures kept in their digests) show it, and only
/// the rows some earlier read missed are reset. Otherwise the rows the read did not return are
/// found exactly, by set difference.
pub async fn count_read(
    conn: &mut PgConnection,
    read: Read<'_>,
) -> Result<Option<Vec<Gone>>, Error> {
    match returned_every_row(conn, read).await? {
        None => return Ok(None),
        Some(true) => {
            reset_returned(conn, read).await?;
            return Ok(Some(Vec::new()));
        }
        Some(false) => {}
    }
    // `seen`: the ids the read returned, those of the pages it parsed and, from their digests,
    // those of the pages it skipped. Rows some earlier read missed and this one returned lose
    // their count (`returned`); the rows it did not return gain one, and are marked removed at
    // the second. Set operations (hashed), never a scan of `seen` per stored row. A removed row
    // keeps its count (only the page returning it restores it), and a row another writer
    // marked removed since `missing` was read is not marked twice.
    const SQL: &str = r#"
        with seen as (
            select unnest($4::bigint[]) as id
            union all
            select unnest(d.ids) from rotessa.page_digests d
            join unnest($7::int[], $8::bigint[]) as k(page, digest)
              on d.page = k.page and d.digest = k.digest
            where d.stream = $5 and d.client_id = $6 and d.window_from = $1
              and d.window_to = $2
        ),
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
            from (select a.id from rotessa.transactions a
                  where a.absent_reads > 0 and a.process_date between $1 and $2
                    and ($3::bigint is null or a.client_id = $3)
                    and a.removed_at is null
                  intersect
                  select id from seen) r
            where t.id = r.id
        )
        update rotessa.transactions t
        set absent_reads = t.absent_reads + 1,
            removed_at = case when t.absent_reads >= 1 then now() end
        from missing
        where t.id = missing.id and t.removed_at is null
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
        .bind(read.skipped_digests)
        .fetch_all(conn)
        .await
        .op("counting rows a report no longer returns")?;
    Ok(Some(
        missed
            .into_iter()
            .filter(|m| m.removed)
            .map(|m| m.row)
            .collect(),
    ))
}

/// Whether the read returned as many rows as the window stores, with the same sum of ids: then
/// it returned them all. (Returned rows the window does not store are rare: a row whose newer
/// stored state has another process date. One missing row cannot hide behind one such extra row,
/// their ids differ; it would take several of each with equal sums.) `None`: a skipped page's
/// digest is no longer the one it matched.
async fn returned_every_row(
    conn: &mut PgConnection,
    read: Read<'_>,
) -> Result<Option<bool>, Error> {
    const SQL: &str = r#"
        with stored as (
            select count(*) as n, coalesce(sum(t.id), 0) as s from rotessa.transactions t
            where t.process_date between $1 and $2
              and ($3::bigint is null or t.client_id = $3)
              and t.removed_at is null
        ),
        skipped as (
            select count(*) as pages, coalesce(sum(cardinality(d.ids)), 0) as n,
                   coalesce(sum(d.id_sum), 0) as s
            from rotessa.page_digests d
            join unnest($6::int[], $7::bigint[]) as k(page, digest)
              on d.page = k.page and d.digest = k.digest
            where d.stream = $4 and d.client_id = $5 and d.window_from = $1
              and d.window_to = $2
        )
        select skipped.pages, stored.n - skipped.n, stored.s - skipped.s from stored, skipped
    "#;
    let w = read.window;
    let (pages, rest_n, rest_sum): (i64, i64, Decimal) = sqlx::query_as(SQL)
        .bind(w.from)
        .bind(w.to)
        .bind(read.client_id)
        .bind(w.stream)
        .bind(w.client_id)
        .bind(read.skipped_pages)
        .bind(read.skipped_digests)
        .fetch_one(&mut *conn)
        .await
        .op("counting a window's rows")?;
    if pages != read.skipped_pages.len() as i64 {
        return Ok(None);
    }
    let parsed: HashSet<i64> = read.parsed_ids.iter().copied().collect();
    let parsed: Vec<i64> = parsed.into_iter().collect();
    Ok(Some(
        rest_n == parsed.len() as i64 && Some(rest_sum) == page_digests::sum(&parsed),
    ))
}

/// Resets the count of the window's rows that an earlier read missed (this one returned them).
/// Removed rows keep theirs: the read returned none of them (it matched the rows not removed).
async fn reset_returned(conn: &mut PgConnection, read: Read<'_>) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.transactions t set absent_reads = 0
        where t.absent_reads > 0 and t.process_date between $1 and $2
          and ($3::bigint is null or t.client_id = $3)
          and t.removed_at is null
    "#;
    sqlx::query(SQL)
        .bind(read.window.from)
        .bind(read.window.to)
        .bind(read.client_id)
        .execute(conn)
        .await
        .op("counting rows a report returned again")?;
    Ok(())
}
