//! `rotessa.transactions`: read fingerprints without locks, insert new rows, lock and re-read
//! differing rows in id order, and bulk-update them. Every write is one statement per page
//! (arrays through `unnest`), never a statement per row.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::PgArguments;
use sqlx::{PgConnection, Postgres, Row};

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

use super::copy::CopyRows;
use super::{Error, ResultExt};
use crate::domain::{Source, Status, StatusChange, Transaction};

/// What identifies the stored version of a row without reading the rest of it: the fingerprint
/// of its fields and Rotessa's clock for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub fingerprint: i64,
    pub latest_updated_at: Option<DateTime<Utc>>,
    /// Marked removed: Rotessa stopped reporting it.
    pub removed: bool,
}

/// What is stored for a page's ids.
#[derive(Debug, Clone, Default)]
pub struct PageVersions {
    /// The stored version of each id that exists; a missing id is a new transaction.
    pub rows: HashMap<i64, Version>,
    /// When the ids were read as one range of the primary key: the other rows in that range.
    pub others: Option<OtherRows>,
}

/// The stored rows of the id range `[from, to]` that are not the page's own and not marked
/// removed, summed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherRows {
    pub from: i64,
    pub to: i64,
    pub count: i64,
    pub fingerprint_sum: i128,
}

/// The stored version of each of `ids`. Takes no lock and needs no transaction: an unchanged
/// page costs this one read and nothing else. A page's ids are usually close together, so one
/// primary-key range scan reads them (about five times cheaper than a probe per id); scattered
/// ids are probed one by one.
pub async fn versions<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    ids: &[i64],
) -> Result<PageVersions, Error> {
    // At most this many stored rows read per id of the page before probing instead.
    const DENSE: i64 = 4;
    const RANGE: &str = r#"
        select id, fingerprint, latest_updated_at, removed_at is not null
        from rotessa.transactions where id between $1 and $2
    "#;
    // One primary-key probe per id, whatever the planner believes about the table: a plain
    // `where id = any($1)` gets a sequential scan while a fresh table's statistics are stale.
    // (`offset 0` keeps the planner from turning the probes into a join.)
    const PROBES: &str = r#"
        select u.id, t.fingerprint, t.latest_updated_at, t.removed
        from unnest($1::bigint[]) as u(id)
        cross join lateral (
            select t.fingerprint, t.latest_updated_at, t.removed_at is not null as removed
            from rotessa.transactions t
            where t.id = u.id
            offset 0
        ) t
    "#;
    type Row = (i64, i64, Option<DateTime<Utc>>, bool);
    let version = |(id, fingerprint, latest_updated_at, removed): Row| {
        (
            id,
            Version {
                fingerprint,
                latest_updated_at,
                removed,
            },
        )
    };
    let (Some(&min), Some(&max)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(PageVersions::default());
    };
    if max.saturating_sub(min) < DENSE.saturating_mul(ids.len() as i64) {
        let rows: Vec<Row> = sqlx::query_as(RANGE)
            .bind(min)
            .bind(max)
            .fetch_all(conn)
            .await
            .op("reading stored fingerprints")?;
        let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
        let mut others = OtherRows {
            from: min,
            to: max,
            count: 0,
            fingerprint_sum: 0,
        };
        let mut versions = HashMap::with_capacity(ids.len());
        for row in rows {
            if wanted.contains(&row.0) {
                versions.insert(row.0, version(row).1);
            } else if !row.3 {
                others.count += 1;
                others.fingerprint_sum += i128::from(row.1);
            }
        }
        return Ok(PageVersions {
            rows: versions,
            others: Some(others),
        });
    }
    let rows: Vec<Row> = sqlx::query_as(PROBES)
        .bind(ids)
        .fetch_all(conn)
        .await
        .op("reading stored fingerprints")?;
    Ok(PageVersions {
        rows: rows.into_iter().map(version).collect(),
        others: None,
    })
}

/// Inserts the rows that did not exist, in id order; returns the ids actually inserted. A row
/// another writer inserted first is skipped here and must go through [`lock_current`].
pub async fn insert_new(
    conn: &mut PgConnection,
    rows: &[Fingerprinted<'_>],
) -> Result<Vec<i64>, Error> {
    const SQL: &str = r#"
        insert into rotessa.transactions (
            id, client_id, customer_id, transaction_schedule_id, amount, status, status_reason,
            process_date, settlement_date, decline_date, earliest_approval_date,
            transaction_number, custom_identifier, schedule_custom_identifier, comment,
            institution_number, transit_number, account_number, api_created_at, api_updated_at,
            extra, fingerprint, latest_updated_at)
        select * from unnest(
            $1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::numeric[], $6::text[],
            $7::text[], $8::date[], $9::date[], $10::date[], $11::date[], $12::text[],
            $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
            $19::timestamptz[], $20::timestamptz[], $21::jsonb[], $22::bigint[],
            $20::timestamptz[])
        order by 1
        on conflict (id) do nothing
        returning id
    "#;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let inserted = Columns::from_rows(rows.iter().copied())
        .bind(sqlx::query(SQL))
        .fetch_all(conn)
        .await
        .op("inserting new transactions")?;
    inserted
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()
        .op("reading inserted ids")
}

/// Inserts rows known to be new with `COPY`, the fastest path for a backfill. If another writer
/// inserted one of them meanwhile, the statement fails with a unique violation (23505) and the
/// page is retried through [`insert_new`], which skips such rows.
pub async fn copy_new(conn: &mut PgConnection, rows: &[Fingerprinted<'_>]) -> Result<u64, Error> {
    const COPY: &str = r#"
        copy rotessa.transactions (
            id, client_id, customer_id, transaction_schedule_id, amount, status, status_reason,
            process_date, settlement_date, decline_date, earliest_approval_date,
            transaction_number, custom_identifier, schedule_custom_identifier, comment,
            institution_number, transit_number, account_number, api_created_at, api_updated_at,
            extra, fingerprint, latest_updated_at)
        from stdin (format binary)
    "#;
    let mut copy = CopyRows::new();
    for Fingerprinted {
        row: t,
        fingerprint,
    } in rows
    {
        copy.row(23)
            .value(&t.id)
            .value(&t.client_id)
            .value(&t.customer_id)
            .value(&t.transaction_schedule_id)
            .value(&t.amount)
            .value(&t.status.as_str())
            .value(&t.status_reason.as_deref())
            .value(&t.process_date)
            .value(&t.settlement_date)
            .value(&t.decline_date)
            .value(&t.earliest_approval_date)
            .value(&t.transaction_number.as_deref())
            .value(&t.custom_identifier.as_deref())
            .value(&t.schedule_custom_identifier.as_deref())
            .value(&t.comment.as_deref())
            .value(&t.institution_number.as_deref())
            .value(&t.transit_number.as_deref())
            .value(&t.account_number.as_deref())
            .value(&t.api_created_at)
            .value(&t.api_updated_at);
        match &t.extra {
            Some(extra) => copy.jsonb(extra.to_string().as_bytes()),
            None => copy.null(),
        }
        .value(fingerprint)
        .value(&t.api_updated_at);
    }
    copy.send(conn, COPY, "copying new transactions").await
}

/// A transaction with its [`Transaction::fingerprint`], computed once per page.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprinted<'a> {
    pub row: &'a Transaction,
    pub fingerprint: i64,
}

/// What is stored of a transaction, as the status rules need it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub client_id: Option<i64>,
    pub settlement_date: Option<NaiveDate>,
    pub fingerprint: i64,
    pub change: StatusChange,
    pub status_changed_at: DateTime<Utc>,
    pub latest_updated_at: Option<DateTime<Utc>>,
    /// Marked removed: Rotessa stopped reporting it.
    pub removed: bool,
    /// The state before the current one and the report that showed it (from the status
    /// history), if the status ever changed.
    pub previous: Option<(StatusChange, Source)>,
}

/// The stored status of each of `ids` that exists, without a lock (to describe an observation
/// that is not applied; `previous` is not read).
pub async fn current<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    ids: &[i64],
) -> Result<Vec<Stored>, Error> {
    const SQL: &str = r#"
        select id, client_id, settlement_date, fingerprint, status, status_reason, decline_date,
               status_changed_at, latest_updated_at, removed_at is not null,
               null::text, null::text, null::date, null::text
        from rotessa.transactions
        where id = any($1)
        order by id
    "#;
    let rows: Vec<StoredRow> = sqlx::query_as(SQL)
        .bind(ids)
        .fetch_all(conn)
        .await
        .op("reading stored statuses")?;
    rows.into_iter().map(stored).collect()
}

/// Locks the given rows in id order (so concurrent writers cannot deadlock) and returns what
/// they hold now, for the re-comparison that makes each transition apply exactly once.
pub async fn lock_current(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<Stored>, Error> {
    // Locks first, then reads: a statement that waited for a lock re-reads the locked row but
    // not what it joined (the history), so the read is a statement of its own, whose snapshot
    // starts once every lock is held.
    const LOCK: &str = r#"
        select id from rotessa.transactions where id = any($1) order by id for update
    "#;
    // The state before the current one is the second-to-last history entry: every status
    // change appends one, under this row lock.
    const SQL: &str = r#"
        select t.id, t.client_id, t.settlement_date, t.fingerprint, t.status, t.status_reason,
               t.decline_date, t.status_changed_at, t.latest_updated_at, t.removed_at is not null,
               p.to_status, p.status_reason, p.decline_date, p.source
        from rotessa.transactions t
        left join lateral (
            select h.to_status, h.status_reason, h.decline_date, h.source
            from rotessa.transaction_status_history h
            where h.transaction_id = t.id and h.change = 'status'
            order by h.id desc
            offset 1 limit 1
        ) p on true
        where t.id = any($1)
        order by t.id
    "#;
    sqlx::query(LOCK)
        .bind(ids)
        .execute(&mut *conn)
        .await
        .op("locking changed transactions")?;
    let rows: Vec<StoredRow> = sqlx::query_as(SQL)
        .bind(ids)
        .fetch_all(conn)
        .await
        .op("reading locked transactions")?;
    rows.into_iter().map(stored).collect()
}

/// A row of [`current`] or [`lock_current`]: the stored columns, then the previous state's.
type StoredRow = (
    i64,
    Option<i64>,
    Option<NaiveDate>,
    i64,
    String,
    Option<String>,
    Option<NaiveDate>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    bool,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
    Option<String>,
);

fn stored(row: StoredRow) -> Result<Stored, Error> {
    let (
        id,
        client_id,
        settlement_date,
        fingerprint,
        status,
        status_reason,
        decline_date,
        at,
        latest,
        removed,
        p_status,
        p_reason,
        p_date,
        p_source,
    ) = row;
    let parse = |status: String| {
        status.parse::<Status>().map_err(|e| Error::Query {
            op: "reading a stored status",
            source: sqlx::Error::Decode(Box::new(e)),
        })
    };
    // A history row from a source this version does not know cannot be a lagging report.
    let previous = match (p_status, p_source.as_deref().and_then(Source::from_name)) {
        (Some(status), Some(source)) => Some((
            StatusChange {
                status: parse(status)?,
                status_reason: p_reason,
                decline_date: p_date,
            },
            source,
        )),
        _ => None,
    };
    Ok(Stored {
        id,
        client_id,
        settlement_date,
        fingerprint,
        change: StatusChange {
            status: parse(status)?,
            status_reason,
            decline_date,
        },
        status_changed_at: at,
        latest_updated_at: latest,
        removed,
        previous,
    })
}

/// One row to overwrite, and whether its status (or reason, or decline date) changed.
pub struct Update<'a> {
    pub row: Fingerprinted<'a>,
    pub status_changed: bool,
}

/// Overwrites locked rows with their new values in one statement.
pub async fn update(conn: &mut PgConnection, updates: &[Update<'_>]) -> Result<u64, Error> {
    const SQL: &str = r#"
        update rotessa.transactions t set
            client_id = n.client_id,
            customer_id = n.customer_id,
            transaction_schedule_id = n.transaction_schedule_id,
            amount = n.amount,
            status = n.status,
            status_reason = n.status_reason,
            process_date = n.process_date,
            settlement_date = n.settlement_date,
            decline_date = n.decline_date,
            earliest_approval_date = n.earliest_approval_date,
            transaction_number = n.transaction_number,
            custom_identifier = n.custom_identifier,
            schedule_custom_identifier = n.schedule_custom_identifier,
            comment = n.comment,
            institution_number = n.institution_number,
            transit_number = n.transit_number,
            account_number = n.account_number,
            api_created_at = n.api_created_at,
            api_updated_at = n.api_updated_at,
            extra = n.extra,
            fingerprint = n.fingerprint,
            latest_updated_at = greatest(t.latest_updated_at, n.api_updated_at),
            changed_at = now(),
            status_changed_at = case when n.status_changed then now() else t.status_changed_at end
        from unnest(
            $1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::numeric[], $6::text[],
            $7::text[], $8::date[], $9::date[], $10::date[], $11::date[], $12::text[],
            $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
            $19::timestamptz[], $20::timestamptz[], $21::jsonb[], $22::bigint[], $23::bool[])
            as n(id, client_id, customer_id, transaction_schedule_id, amount, status,
                 status_reason, process_date, settlement_date, decline_date,
                 earliest_approval_date, transaction_number, custom_identifier,
                 schedule_custom_identifier, comment, institution_number, transit_number,
                 account_number, api_created_at, api_updated_at, extra, fingerprint,
                 status_changed)
        where t.id = n.id
    "#;
    if updates.is_empty() {
        return Ok(0);
    }
    let changed: Vec<bool> = updates.iter().map(|u| u.status_changed).collect();
    let result = Columns::from_rows(updates.iter().map(|u| u.row))
        .bind(sqlx::query(SQL))
        .bind(changed)
        .execute(conn)
        .await
        .op("updating changed transactions")?;
    Ok(result.rows_affected())
}

/// Un-marks rows Rotessa reports again after they were marked removed.
pub async fn restore(conn: &mut PgConnection, ids: &[i64]) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.transactions set removed_at = null, absent_reads = 0
        where id = any($1)
    "#;
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(SQL)
        .bind(ids)
        .execute(conn)
        .await
        .op("restoring transactions reported again")?;
    Ok(())
}

/// The page's rows as one array per column, for `unnest`.
struct Columns {
    id: Vec<i64>,
    client_id: Vec<Option<i64>>,
    customer_id: Vec<Option<i64>>,
    transaction_schedule_id: Vec<Option<i64>>,
    amount: Vec<Decimal>,
    status: Vec<&'static str>,
    status_reason: Vec<Option<String>>,
    process_date: Vec<NaiveDate>,
    settlement_date: Vec<Option<NaiveDate>>,
    decline_date: Vec<Option<NaiveDate>>,
    earliest_approval_date: Vec<Option<NaiveDate>>,
    transaction_number: Vec<Option<String>>,
    custom_identifier: Vec<Option<String>>,
    schedule_custom_identifier: Vec<Option<String>>,
    comment: Vec<Option<String>>,
    institution_number: Vec<Option<String>>,
    transit_number: Vec<Option<String>>,
    account_number: Vec<Option<String>>,
    api_created_at: Vec<Option<DateTime<Utc>>>,
    api_updated_at: Vec<Option<DateTime<Utc>>>,
    extra: Vec<Option<serde_json::Value>>,
    fingerprint: Vec<i64>,
}

impl Columns {
    fn from_rows<'a>(rows: impl ExactSizeIterator<Item = Fingerprinted<'a>>) -> Self {
        let n = rows.len();
        let mut c = Columns {
            id: Vec::with_capacity(n),
            client_id: Vec::with_capacity(n),
            customer_id: Vec::with_capacity(n),
            transaction_schedule_id: Vec::with_capacity(n),
            amount: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            status_reason: Vec::with_capacity(n),
            process_date: Vec::with_capacity(n),
            settlement_date: Vec::with_capacity(n),
            decline_date: Vec::with_capacity(n),
            earliest_approval_date: Vec::with_capacity(n),
            transaction_number: Vec::with_capacity(n),
            custom_identifier: Vec::with_capacity(n),
            schedule_custom_identifier: Vec::with_capacity(n),
            comment: Vec::with_capacity(n),
            institution_number: Vec::with_capacity(n),
            transit_number: Vec::with_capacity(n),
            account_number: Vec::with_capacity(n),
            api_created_at: Vec::with_capacity(n),
            api_updated_at: Vec::with_capacity(n),
            extra: Vec::with_capacity(n),
            fingerprint: Vec::with_capacity(n),
        };
        for Fingerprinted {
            row: t,
            fingerprint,
        } in rows
        {
            c.id.push(t.id);
            c.client_id.push(t.client_id);
            c.customer_id.push(t.customer_id);
            c.transaction_schedule_id.push(t.transaction_schedule_id);
            c.amount.push(t.amount);
            c.status.push(t.status.as_str());
            c.status_reason.push(t.status_reason.clone());
            c.process_date.push(t.process_date);
            c.settlement_date.push(t.settlement_date);
            c.decline_date.push(t.decline_date);
            c.earliest_approval_date.push(t.earliest_approval_date);
            c.transaction_number.push(t.transaction_number.clone());
            c.custom_identifier.push(t.custom_identifier.clone());
            c.schedule_custom_identifier
                .push(t.schedule_custom_identifier.clone());
            c.comment.push(t.comment.clone());
            c.institution_number.push(t.institution_number.clone());
            c.transit_number.push(t.transit_number.clone());
            c.account_number.push(t.account_number.clone());
            c.api_created_at.push(t.api_created_at);
            c.api_updated_at.push(t.api_updated_at);
            c.extra.push(t.extra.clone());
            c.fingerprint.push(fingerprint);
        }
        c
    }

    fn bind(self, q: PgQuery<'_>) -> PgQuery<'_> {
        q.bind(self.id)
            .bind(self.client_id)
            .bind(self.customer_id)
            .bind(self.transaction_schedule_id)
            .bind(self.amount)
            .bind(self.status)
            .bind(self.status_reason)
            .bind(self.process_date)
            .bind(self.settlement_date)
            .bind(self.decline_date)
            .bind(self.earliest_approval_date)
            .bind(self.transaction_number)
            .bind(self.custom_identifier)
            .bind(self.schedule_custom_identifier)
            .bind(self.comment)
            .bind(self.institution_number)
            .bind(self.transit_number)
            .bind(self.account_number)
            .bind(self.api_created_at)
            .bind(self.api_updated_at)
            .bind(self.extra)
            .bind(self.fingerprint)
    }
}
