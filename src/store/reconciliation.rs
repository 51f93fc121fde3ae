//! The settlement reconciliation: reading `rotessa.settlement_reconciliation`, and
//! `rotessa.reconciliation_state`, which remembers each date's last outcome and difference so
//! that an event is emitted only when they change.

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

impl Comparison {
    /// Rotessa's figures minus the computed ones, counts and totals: what `reconciliation_state`
    /// remembers to tell a changed mismatch from the same one seen again, and what the event's
    /// `difference` shows. Amounts are written at two decimals ("0.00", "-0.05"), so the same
    /// difference is always the same JSON.
    pub fn difference(&self) -> serde_json::Value {
        let amount = |d: &Decimal| {
            let mut d = *d;
            d.rescale(2);
            d.to_string()
        };
        serde_json::json!({
            "number_approved": i64::from(self.rotessa_number_approved) - self.computed_number_approved,
            "total_approved": amount(&self.diff_total_approved),
            "number_declined": i64::from(self.rotessa_number_declined) - self.computed_number_declined,
            "total_declined": amount(&self.diff_total_declined),
            "number_chargeback": i64::from(self.rotessa_number_chargeback) - self.computed_number_chargeback,
            "total_chargeback": amount(&self.diff_total_chargeback),
        })
    }
}

/// What was recorded for a date: its outcome, and its difference (`None` if recorded before
/// differences were).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub matched: bool,
    pub difference: Option<serde_json::Value>,
}

/// The last recorded comparison per date, without locks.
pub async fn states(
    conn: &mut PgConnection,
    client_id: i64,
    dates: &[NaiveDate],
) -> Result<HashMap<NaiveDate, State>, Error> {
    const SQL: &str = r#"
        select settlement_date, matched, difference from rotessa.reconciliation_state
        where client_id = $1 and settlement_date = any($2)
    "#;
    let rows: Vec<(NaiveDate, bool, Option<serde_json::Value>)> = sqlx::query_as(SQL)
        .bind(client_id)
        .bind(dates)
        .fetch_all(conn)
        .await
        .op("reading reconciliation states")?;
    Ok(rows
        .into_iter()
        .map(|(date, matched, difference)| {
            (
                date,
                State {
                    matched,
                    difference,
                },
            )
        })
        .collect())
}

/// A date's comparison to record.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub settlement_date: NaiveDate,
    pub matched: bool,
    pub difference: serde_json::Value,
}

/// The comparisons as the three arrays the statements below `unnest`.
fn columns(comparisons: &[Recorded]) -> (Vec<NaiveDate>, Vec<bool>, Vec<&serde_json::Value>) {
    (
        comparisons.iter().map(|c| c.settlement_date).collect(),
        comparisons.iter().map(|c| c.matched).collect(),
        comparisons.iter().map(|c| &c.difference).collect(),
    )
}

/// Records new comparisons; returns the dates whose outcome, or difference while mismatched,
/// this call changed. Concurrent callers serialize on each row, so a change is reported to
/// exactly one of them.
pub async fn record(
    conn: &mut PgConnection,
    client_id: i64,
    comparisons: &[Recorded],
) -> Result<Vec<NaiveDate>, Error> {
    const SQL: &str = r#"
        insert into rotessa.reconciliation_state as r (client_id, settlement_date, matched, difference)
        select $1, d, m, diff from unnest($2::date[], $3::bool[], $4::jsonb[]) as n(d, m, diff)
        order by d
        on conflict (client_id, settlement_date) do update set
            matched = excluded.matched,
            difference = excluded.difference,
            changed_at = now()
        where r.matched is distinct from excluded.matched
           or (not excluded.matched and r.difference is distinct from excluded.difference)
        returning settlement_date
    "#;
    if comparisons.is_empty() {
        return Ok(Vec::new());
    }
    let (dates, matched, differences) = columns(comparisons);
    sqlx::query_scalar(SQL)
        .bind(client_id)
        .bind(dates)
        .bind(matched)
        .bind(differences)
        .fetch_all(conn)
        .await
        .op("recording reconciliation states")
}

/// Fills in the difference of dates recorded before differences were, whose outcome has not
/// changed: no event, since nothing is known to have changed.
pub async fn fill_in_differences(
    conn: &mut PgConnection,
    client_id: i64,
    comparisons: &[Recorded],
) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.reconciliation_state r set difference = n.diff
        from unnest($2::date[], $3::bool[], $4::jsonb[]) as n(d, m, diff)
        where r.client_id = $1 and r.settlement_date = n.d and r.matched = n.m
          and r.difference is null
    "#;
    if comparisons.is_empty() {
        return Ok(());
    }
    let (dates, matched, differences) = columns(comparisons);
    sqlx::query(SQL)
        .bind(client_id)
        .bind(dates)
        .bind(matched)
        .bind(differences)
        .execute(conn)
        .await
        .op("filling in reconciliation differences")?;
    Ok(())
}
