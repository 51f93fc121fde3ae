//! `rotessa.payouts`: the platform's payouts by their stable key, compared and written one
//! window at a time under a lock of the table's writers (README "Payout keys").

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::customers::Stored;
use super::{Error, ResultExt};
use crate::domain::{FORECAST_PREFIX, Payout};

/// Serializes the writers of the payouts until the transaction ends.
pub async fn lock(conn: &mut PgConnection) -> Result<(), Error> {
    const SQL: &str = r#"select pg_advisory_xact_lock(hashtextextended('rotessa.payouts', 0))"#;
    sqlx::query(SQL)
        .execute(conn)
        .await
        .op("locking the payouts")?;
    Ok(())
}

fn payout_of(r: &PgRow) -> Result<Stored<Payout>, sqlx::Error> {
    Ok(Stored {
        row: Payout {
            key: r.try_get("payout_key")?,
            payout_id: r.try_get("payout_id")?,
            financial_transaction_id: r.try_get("financial_transaction_id")?,
            customer_id: r.try_get("customer_id")?,
            amount: r.try_get("amount")?,
            transaction_amount: r.try_get("transaction_amount")?,
            status: r.try_get("status")?,
            process_date: r.try_get("process_date")?,
            settlement_date: r.try_get("settlement_date")?,
            api_updated_at: r.try_get("api_updated_at")?,
            extra: r.try_get("extra")?,
        },
        removed: r
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("removed_at")?
            .is_some(),
    })
}

/// The stored payouts among `keys`.
pub async fn current(
    conn: &mut PgConnection,
    keys: &[&str],
) -> Result<HashMap<String, Stored<Payout>>, Error> {
    const SQL: &str = r#"
        select payout_key, payout_id, financial_transaction_id, customer_id, amount,
               transaction_amount, status, process_date, settlement_date, api_updated_at, extra,
               removed_at
        from rotessa.payouts
        where payout_key = any($1)
    "#;
    let rows = sqlx::query(SQL)
        .bind(keys)
        .fetch_all(conn)
        .await
        .op("reading stored payouts")?;
    rows.iter()
        .map(|r| payout_of(r).map(|p| (p.row.key.clone(), p)))
        .collect::<Result<_, _>>()
        .op("decoding stored payouts")
}

/// Inserts new payouts and rewrites changed ones (`changed_at` now, no longer removed).
pub async fn upsert(conn: &mut PgConnection, rows: &[&Payout]) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.payouts as p (
            payout_key, payout_id, financial_transaction_id, customer_id, amount,
            transaction_amount, status, process_date, settlement_date, api_updated_at, extra)
        select * from unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::numeric[],
                             $6::numeric[], $7::text[], $8::date[], $9::date[],
                             $10::timestamptz[], $11::jsonb[])
        on conflict (payout_key) do update set
            payout_id = excluded.payout_id,
            financial_transaction_id = excluded.financial_transaction_id,
            customer_id = excluded.customer_id,
            amount = excluded.amount,
            transaction_amount = excluded.transaction_amount,
            status = excluded.status,
            process_date = excluded.process_date,
            settlement_date = excluded.settlement_date,
            api_updated_at = excluded.api_updated_at,
            extra = excluded.extra,
            changed_at = now(),
            removed_at = null
    "#;
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(SQL)
        .bind(rows.iter().map(|p| p.key.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|p| p.payout_id).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|p| p.financial_transaction_id)
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|p| p.customer_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|p| p.amount).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|p| p.transaction_amount)
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|p| p.status.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|p| p.process_date).collect::<Vec<_>>())
        .bind(rows.iter().map(|p| p.settlement_date).collect::<Vec<_>>())
        .bind(rows.iter().map(|p| p.api_updated_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|p| p.extra.as_ref()).collect::<Vec<_>>())
        .execute(conn)
        .await
        .op("writing payouts")?;
    Ok(())
}

/// Marks the forecast payouts that a complete run no longer found; returns how many. One
/// written after `fetched_after` came from a newer read and is left alone.
pub async fn mark_forecasts_removed(
    conn: &mut PgConnection,
    seen: &[String],
    fetched_after: chrono::DateTime<chrono::Utc>,
) -> Result<u64, Error> {
    const SQL: &str = r#"
        update rotessa.payouts set removed_at = now()
        where starts_with(payout_key, $1) and removed_at is null and payout_key <> all($2)
          and changed_at < $3
    "#;
    let done = sqlx::query(SQL)
        .bind(FORECAST_PREFIX)
        .bind(seen)
        .bind(fetched_after)
        .execute(conn)
        .await
        .op("marking forecast payouts no longer reported")?;
    Ok(done.rows_affected())
}
