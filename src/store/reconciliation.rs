//! The settlement reconciliation: reading `rotessa.settlement_reconciliation`, and
//! `rotessa.reconciliation_state`, which remembers each date's last outcome so that an event is
//! emitted only when it changes.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool};

use super::{Error, ResultExt};

/// One row of the reconciliation view.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Comparison {
    pub client_id: i64,
    pub settlement_date: NaiveDate,
    pub rotessa_number_approved: i32,
    pub computed_number_approved: i64,
    pub rotessa_total_approved: Decimal,
    pub computed_total_approved: Decimal,
    pub diff_total_approved: Decimal,
    pub rotessa_number_declined: i32,
    pub computed_number_declined: i64,
    pub rotessa_total_declined: Decimal,
    pub computed_total_declined: Decimal,
    pub diff_total_declined: Decimal,
    pub rotessa_number_chargeback: i32,
    pub computed_number_chargeback: i64,
    pub rotessa_total_chargeback: Decimal,
    pub computed_total_chargeback: Decimal,
    pub diff_total_chargeback: Decimal,
    pub rotessa_total_payout: Decimal,
    pub matched: bool,
}

/// The comparison for one client over `from..=to`, by date.
pub async fn compare_client(
    conn: &mut PgConnection,
    client_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Comparison>, Error> {
    const SQL: &str = r#"
        select * from rotessa.settlement_reconciliation
        where client_id = $1 and settlement_date between $2 and $3
        order by settlement_date
    "#;
    sqlx::query_as(SQL)
        .bind(client_id)
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await
        .op("comparing settlements with transactions")
}

/// Every comparison in a date range (optionally one client), mismatches first (`reconcile`).
pub async fn report(
    pool: &PgPool,
    client_id: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Comparison>, Error> {
    const SQL: &str = r#"
        select * from rotessa.settlement_reconciliation
        where settlement_date between $1 and $2 and ($3::bigint is null or client_id = $3)
        order by matched, settlement_date desc, client_id
    "#;
    sqlx::query_as(SQL)
        .bind(from)
        .bind(to)
        .bind(client_id)
        .fetch_all(pool)
        .await
        .op("reading the reconciliation")
}

/// The last recorded outcome per date, without locks.
pub async fn states(
    conn: &mut PgConnection,
    client_id: i64,
    dates: &[NaiveDate],
) -> Result<HashMap<NaiveDate, bool>, Error> {
    const SQL: &str = r#"
        select settlement_date, matched from rotessa.reconciliation_state
        where client_id = $1 and settlement_date = any($2)
    "#;
    let rows: Vec<(NaiveDate, bool)> = sqlx::query_as(SQL)
        .bind(client_id)
        .bind(dates)
        .fetch_all(conn)
        .await
        .op("reading reconciliation states")?;
    Ok(rows.into_iter().collect())
}

/// Records new outcomes; returns the dates whose outcome this call changed. Concurrent callers
/// serialize on each row, so a flip is reported to exactly one of them.
pub async fn record(
    conn: &mut PgConnection,
    client_id: i64,
    outcomes: &[(NaiveDate, bool)],
) -> Result<Vec<NaiveDate>, Error> {
    const SQL: &str = r#"
        insert into rotessa.reconciliation_state as r (client_id, settlement_date, matched)
        select $1, d, m from unnest($2::date[], $3::bool[]) as n(d, m)
        order by d
        on conflict (client_id, settlement_date) do update set
            matched = excluded.matched,
            changed_at = now()
        where r.matched is distinct from excluded.matched
        returning settlement_date
    "#;
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(SQL)
        .bind(client_id)
        .bind(outcomes.iter().map(|o| o.0).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|o| o.1).collect::<Vec<_>>())
        .fetch_all(conn)
        .await
        .op("recording reconciliation states")
}
