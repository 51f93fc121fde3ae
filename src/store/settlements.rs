//! `rotessa.settlements`: Rotessa's settlement totals per client and date, compared before
//! written like transactions (read without locks, then lock and re-read what differs).

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};

use super::{Error, ResultExt};
use crate::domain::{Settlement, SettlementTotals};

/// A stored settlement: its totals and extra fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSettlement {
    pub totals: SettlementTotals,
    pub extra: Option<serde_json::Value>,
}

impl FromRow<'_, PgRow> for StoredSettlement {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            totals: SettlementTotals {
                number_approved: r.try_get("number_approved")?,
                number_declined: r.try_get("number_declined")?,
                number_chargeback: r.try_get("number_chargeback")?,
                number_payout: r.try_get("number_payout")?,
                total_approved: r.try_get("total_approved")?,
                total_declined: r.try_get("total_declined")?,
                total_chargeback: r.try_get("total_chargeback")?,
                total_payout: r.try_get("total_payout")?,
            },
            extra: r.try_get("extra")?,
        })
    }
}

async fn read(
    conn: &mut PgConnection,
    client_id: i64,
    dates: &[NaiveDate],
    lock: bool,
) -> Result<HashMap<NaiveDate, StoredSettlement>, Error> {
    const READ: &str = r#"
        select settlement_date, number_approved, number_declined, number_chargeback,
               number_payout, total_approved, total_declined, total_chargeback, total_payout, extra
        from rotessa.settlements
        where client_id = $1 and settlement_date = any($2)
    "#;
    const LOCK: &str = r#"
        select settlement_date, number_approved, number_declined, number_chargeback,
               number_payout, total_approved, total_declined, total_chargeback, total_payout, extra
        from rotessa.settlements
        where client_id = $1 and settlement_date = any($2)
        order by settlement_date
        for update
    "#;
    let rows = sqlx::query(if lock { LOCK } else { READ })
        .bind(client_id)
        .bind(dates)
        .fetch_all(conn)
        .await
        .op("reading stored settlements")?;
    rows.iter()
        .map(|r| {
            let date: NaiveDate = r.try_get("settlement_date")?;
            Ok((date, StoredSettlement::from_row(r)?))
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("decoding stored settlements")
}

/// What is stored for these dates, without locks.
pub async fn current(
    conn: &mut PgConnection,
    client_id: i64,
    dates: &[NaiveDate],
) -> Result<HashMap<NaiveDate, StoredSettlement>, Error> {
    read(conn, client_id, dates, false).await
}

/// Locks these dates' rows (in date order) and returns what they hold now.
pub async fn lock_current(
    conn: &mut PgConnection,
    client_id: i64,
    dates: &[NaiveDate],
) -> Result<HashMap<NaiveDate, StoredSettlement>, Error> {
    read(conn, client_id, dates, true).await
}

/// Inserts settlements not stored yet; returns the dates actually inserted.
pub async fn insert_new(
    conn: &mut PgConnection,
    rows: &[&Settlement],
) -> Result<Vec<NaiveDate>, Error> {
    const SQL: &str = r#"
        insert into rotessa.settlements (client_id, settlement_date, number_approved,
            number_declined, number_chargeback, number_payout, total_approved, total_declined,
            total_chargeback, total_payout, extra)
        select * from unnest($1::bigint[], $2::date[], $3::int[], $4::int[], $5::int[], $6::int[],
                             $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[],
                             $11::jsonb[])
        order by 2
        on conflict (client_id, settlement_date) do nothing
        returning settlement_date
    "#;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    bind_all(sqlx::query_scalar(SQL), rows)
        .fetch_all(conn)
        .await
        .op("inserting settlements")
}

/// Overwrites locked settlements with new totals.
pub async fn update(conn: &mut PgConnection, rows: &[&Settlement]) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.settlements s set
            number_approved = n.number_approved,
            number_declined = n.number_declined,
            number_chargeback = n.number_chargeback,
            number_payout = n.number_payout,
            total_approved = n.total_approved,
            total_declined = n.total_declined,
            total_chargeback = n.total_chargeback,
            total_payout = n.total_payout,
            extra = n.extra,
            changed_at = now()
        from unnest($1::bigint[], $2::date[], $3::int[], $4::int[], $5::int[], $6::int[],
                    $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::jsonb[])
             as n(client_id, settlement_date, number_approved, number_declined,
                  number_chargeback, number_payout, total_approved, total_declined,
                  total_chargeback, total_payout, extra)
        where s.client_id = n.client_id and s.settlement_date = n.settlement_date
        returning s.settlement_date
    "#;
    if rows.is_empty() {
        return Ok(());
    }
    bind_all(sqlx::query_scalar::<_, NaiveDate>(SQL), rows)
        .fetch_all(conn)
        .await
        .op("updating settlements")?;
    Ok(())
}

type Scalar<'q, O> = sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

fn bind_all<'q, O>(q: Scalar<'q, O>, rows: &[&Settlement]) -> Scalar<'q, O> {
    let col =
        |f: fn(&SettlementTotals) -> i32| rows.iter().map(|r| f(&r.totals)).collect::<Vec<_>>();
    let dec =
        |f: fn(&SettlementTotals) -> Decimal| rows.iter().map(|r| f(&r.totals)).collect::<Vec<_>>();
    q.bind(rows.iter().map(|r| r.client_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.settlement_date).collect::<Vec<_>>())
        .bind(col(|t| t.number_approved))
        .bind(col(|t| t.number_declined))
        .bind(col(|t| t.number_chargeback))
        .bind(col(|t| t.number_payout))
        .bind(dec(|t| t.total_approved))
        .bind(dec(|t| t.total_declined))
        .bind(dec(|t| t.total_chargeback))
        .bind(dec(|t| t.total_payout))
        .bind(rows.iter().map(|r| r.extra.clone()).collect::<Vec<_>>())
}
