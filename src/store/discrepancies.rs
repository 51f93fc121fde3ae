//! What the reconciliation report shows under a mismatched settlement date: the synced
//! transactions that explain the difference, their status history, and the clients' names.
//! Read-only queries, run inside [`read_only`]'s snapshot so that every part of one report
//! agrees with the others.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Transaction};

use super::{Error, ResultExt};

/// A read-only transaction over one snapshot (repeatable read): a report's comparisons,
/// explanations and histories all see the same moment, and nothing it runs can write. Each
/// statement may take at most a minute.
pub async fn read_only(pool: &PgPool) -> Result<Transaction<'static, Postgres>, Error> {
    let mut tx = pool.begin().await.op("starting a read-only transaction")?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await
        .op("making the transaction read-only")?;
    sqlx::query("set local statement_timeout = '60s'")
        .execute(&mut *tx)
        .await
        .op("bounding the report's statements")?;
    Ok(tx)
}

/// Why a transaction may explain a mismatched date; the report names each in words.
pub const REASONS: [&str; 6] = [
    "removed",
    "chargeback",
    "not_settled",
    "status_changed",
    "changed_since_settlement",
    "reports_disagree",
];

/// A synced transaction of a mismatched date whose status or presence differs from what
/// Rotessa's settlement figure implies.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Explaining {
    /// The mismatched date it is listed under.
    pub client_id: i64,
    pub settlement_date: NaiveDate,
    pub transaction_id: i64,
    pub customer_id: Option<i64>,
    pub amount: Decimal,
    pub status: String,
    pub status_reason: Option<String>,
    pub process_date: NaiveDate,
    pub decline_date: Option<NaiveDate>,
    pub removed_at: Option<DateTime<Utc>>,
    pub status_changed_at: DateTime<Utc>,
    /// A subset of [`REASONS`], in that order.
    pub reasons: Vec<String>,
}

/// The transactions that explain the mismatched `dates` (pairs of client and settlement date),
/// at most `limit` per date, removed rows first, then by amount. A transaction counts for a
/// date when it settles on it, or, for a chargeback under `chargeback_on = decline_date`, when
/// it was charged back on it; it explains the date when
/// - `removed`: Rotessa no longer reports it (the settlement may still count it);
/// - `chargeback`: it was charged back (counted under the model in force, which Rotessa's
///   figure may not follow);
/// - `not_settled`: it is still Future or Pending (counted by neither side's totals here);
/// - `status_changed`: it left Approved, Declined or Chargeback after having been seen in it;
/// - `changed_since_settlement`: it changed (status, amount, any field) after Rotessa's
///   settlement figure was last read changed, having been seen before it, or its status moved
///   since then: the figure may predate the change;
/// - `reports_disagree`: a report showed it in a status the rules refused (a `stale` or
///   `backward` anomaly): the two reports disagree about it.
pub async fn explaining(
    conn: &mut PgConnection,
    dates: &[(i64, NaiveDate)],
    chargeback_on: &str,
    limit: i64,
) -> Result<Vec<Explaining>, Error> {
    const SQL: &str = r#"
        with dates as (
            select * from unnest($1::bigint[], $2::date[]) as d(client_id, settlement_date)
        ),
        candidates as (
            select s.client_id, s.settlement_date, t.id, t.customer_id, t.amount, t.status,
                   t.status_reason, t.process_date, t.decline_date, t.removed_at,
                   t.status_changed_at,
                   array_remove(array[
                       case when t.removed_at is not null then 'removed' end,
                       case when t.status = 'Chargeback' then 'chargeback' end,
                       case when t.status in ('Future', 'Pending') then 'not_settled' end,
                       case when exists (
                           select 1 from rotessa.transaction_status_history h
                           where h.transaction_id = t.id and h.change = 'status'
                             and h.from_status in ('Approved', 'Declined', 'Chargeback')
                       ) then 'status_changed' end,
                       case when (t.first_seen_at < s.changed_at and t.changed_at > s.changed_at)
                              or exists (
                           select 1 from rotessa.transaction_status_history h
                           where h.transaction_id = t.id and h.from_status is not null
                             and h.observed_at > s.changed_at
                       ) then 'changed_since_settlement' end,
                       case when exists (
                           select 1 from rotessa.status_anomalies a
                           where a.transaction_id = t.id and a.kind in ('stale', 'backward')
                       ) then 'reports_disagree' end
                   ], null) as reasons
            from dates d
            join rotessa.settlements s
              on s.client_id = d.client_id and s.settlement_date = d.settlement_date
            join rotessa.transactions t
              on t.client_id = s.client_id
             and (t.settlement_date = s.settlement_date
                  or ($4 = 'decline_date' and t.status = 'Chargeback'
                      and t.decline_date = s.settlement_date))
        ),
        ranked as (
            select c.*, row_number() over (
                       partition by c.client_id, c.settlement_date
                       order by c.removed_at is null, c.amount desc, c.id) as rank
            from candidates c
            where cardinality(c.reasons) > 0
        )
        select client_id, settlement_date, id as transaction_id, customer_id, amount, status,
               status_reason, process_date, decline_date, removed_at, status_changed_at, reasons
        from ranked
        where rank <= $3
        order by client_id, settlement_date, rank
    "#;
    if dates.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(SQL)
        .bind(dates.iter().map(|d| d.0).collect::<Vec<_>>())
        .bind(dates.iter().map(|d| d.1).collect::<Vec<_>>())
        .bind(limit)
        .bind(chargeback_on)
        .fetch_all(conn)
        .await
        .op("reading the transactions that explain mismatched dates")
}

/// One observed status transition of a transaction.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Transition {
    pub transaction_id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub status_reason: Option<String>,
    pub decline_date: Option<NaiveDate>,
    pub observed_at: DateTime<Utc>,
    pub source: String,
    /// `status`, or `removed` / `restored` (Rotessa stopped or resumed reporting it).
    pub change: String,
}

/// The status history of `ids`, oldest first per transaction.
pub async fn histories(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<Transition>, Error> {
    const SQL: &str = r#"
        select transaction_id, from_status, to_status, status_reason, decline_date,
               observed_at, source, change
        from rotessa.transaction_status_history
        where transaction_id = any($1)
        order by transaction_id, id
    "#;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(SQL)
        .bind(ids)
        .fetch_all(conn)
        .await
        .op("reading status histories")
}

/// The names of `ids` as the clients report reads them (operating name, else business name).
pub async fn client_names(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, Error> {
    const SQL: &str = r#"
        select id, coalesce(nullif(operating_as, ''), business_name)
        from rotessa.clients
        where id = any($1) and coalesce(nullif(operating_as, ''), business_name) is not null
    "#;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(SQL)
        .bind(ids)
        .fetch_all(conn)
        .await
        .op("reading client names")
}
