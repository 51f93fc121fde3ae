//! The settlement reconciliation: reading `rotessa.settlement_reconciliation`, and
//! `rotessa.reconciliation_state`, which remembers each date's last outcome and difference so
//! that an event is emitted only when they change.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};

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

/// Every comparison in a date range (optionally one client), mismatches first (`reconcile`).
pub async fn report(
    conn: impl PgExecutor<'_>,
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
        .fetch_all(conn)
        .await
        .op("reading the reconciliation")
}

impl Comparison {
    /// Rotessa's figures minus the computed ones, counts and totals: what `reconciliation_state`
    /// remembers to tell a changed mismatch from the same one seen again, and what the event's
    /// `difference` shows. Amounts are written at two decimals ("0.00", "-0.05"), so the same
    /// difference is always the same JSON.
    pub fn difference(&self) -> Result<serde_json::Value, Error> {
        serde_json::to_value(self.difference_figures())
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))
            .op("encoding a reconciliation difference")
    }

    /// [`Comparison::difference`] as the event payload's type.
    pub fn difference_figures(&self) -> rotessa_outbox::ReconciliationFigures {
        let amount = |d: &Decimal| {
            let mut d = *d;
            d.rescale(2);
            d
        };
        rotessa_outbox::ReconciliationFigures {
            number_approved: i64::from(self.rotessa_number_approved)
                - self.computed_number_approved,
            total_approved: amount(&self.diff_total_approved),
            number_declined: i64::from(self.rotessa_number_declined)
                - self.computed_number_declined,
            total_declined: amount(&self.diff_total_declined),
            number_chargeback: i64::from(self.rotessa_number_chargeback)
                - self.computed_number_chargeback,
            total_chargeback: amount(&self.diff_total_chargeback),
        }
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
            -- When the outcome last flipped: a mismatch whose amounts move stays as old as it is.
            changed_at = case when r.matched is distinct from excluded.matched
                              then now() else r.changed_at end
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

/// The comparison of some dates of one client.
pub async fn compare_dates(
    conn: &mut PgConnection,
    client_id: i64,
    dates: &[NaiveDate],
) -> Result<Vec<Comparison>, Error> {
    const SQL: &str = r#"
        select * from rotessa.settlement_reconciliation
        where client_id = $1 and settlement_date = any($2)
        order by settlement_date
    "#;
    sqlx::query_as(SQL)
        .bind(client_id)
        .bind(dates)
        .fetch_all(conn)
        .await
        .op("comparing settlements with transactions")
}

/// Notes dates whose comparison may have changed, in the transaction of the change: they are
/// reconciled at the end of the pass, once both sides are in.
pub async fn note_pending(conn: &mut PgConnection, keys: &[(i64, NaiveDate)]) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.reconciliation_pending (client_id, settlement_date)
        select * from unnest($1::bigint[], $2::date[])
    "#;
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(SQL)
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .execute(conn)
        .await
        .op("noting dates to reconcile")?;
    Ok(())
}

/// A noted date, and whether both of its sides are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub ids: Vec<i64>,
    pub client_id: i64,
    pub settlement_date: NaiveDate,
    /// Rotessa reported a settlement for the date.
    pub has_settlement: bool,
    /// The transactions (and, if `declines` was asked for, the declines) last read in full
    /// after the settlement was.
    pub ready: bool,
}

/// Serializes reconcilers (a daemon and an operator's `reconcile`, two processes after a
/// switch of the chargeback model) until the caller's transaction ends: two comparing the same
/// date at once would each record its outcome and emit its event. A transaction-scoped
/// advisory lock, so it works behind PgBouncer's transaction pooling too.
pub async fn lock(conn: &mut PgConnection) -> Result<(), Error> {
    // An arbitrary key of this product's: "rotessa-recon reconciliation".
    const SQL: &str = "select pg_advisory_xact_lock(7201330411962301)";
    sqlx::query(SQL)
        .execute(conn)
        .await
        .op("waiting for other reconcilers")?;
    Ok(())
}

/// Takes the noted dates (locking their notes, skipping those another process is reconciling),
/// and the dates recorded before differences were, and says which are ready: both sides read
/// in full after the settlement, and no read of them left half done since. `transactions` and
/// `declines` say which streams must have read the client's side (the enabled ones).
pub async fn take_pending(
    conn: &mut PgConnection,
    transactions: bool,
    declines: bool,
) -> Result<Vec<Pending>, Error> {
    const SQL: &str = r#"
        with noted as (
            select id, client_id, settlement_date from rotessa.reconciliation_pending
            order by id
            for update skip locked
        ),
        -- Dates recorded before differences were are filled in as if noted.
        dates as (
            select coalesce(array_agg(id order by id) filter (where id is not null), '{}') as ids,
                   client_id, settlement_date
            from (select id, client_id, settlement_date from noted
                  union all
                  select null, client_id, settlement_date from rotessa.reconciliation_state
                  where difference is null) n
            group by client_id, settlement_date
        ),
        -- A stream has read a client's side after its settlement when a run that read its
        -- whole window started after the settlement was read, and no run of it has started
        -- since without succeeding (one running, failed or killed may have written part).
        read_after as (
            select d.client_id, d.settlement_date, st.stream
            from dates d
            join rotessa.settlements s
              on s.client_id = d.client_id and s.settlement_date = d.settlement_date
            join rotessa.sync_state st
              on (st.stream = 'transactions' and st.client_id in (0, d.client_id))
              or (st.stream = 'declines' and st.client_id = d.client_id)
            where st.last_success_started_at > s.changed_at
              and not exists (
                  select from rotessa.sync_runs r
                  where r.stream = st.stream and r.client_id = st.client_id
                    and r.id > st.last_run_id and r.status <> 'succeeded')
        )
        select d.ids, d.client_id, d.settlement_date,
               exists (select from rotessa.settlements s
                       where s.client_id = d.client_id and s.settlement_date = d.settlement_date),
               not $1 or exists (select from read_after a
                                 where (a.client_id, a.settlement_date, a.stream)
                                     = (d.client_id, d.settlement_date, 'transactions')),
               not $2 or exists (select from read_after a
                                 where (a.client_id, a.settlement_date, a.stream)
                                     = (d.client_id, d.settlement_date, 'declines'))
        from dates d
        order by d.client_id, d.settlement_date
    "#;
    type Row = (Vec<i64>, i64, NaiveDate, bool, bool, bool);
    let rows: Vec<Row> = sqlx::query_as(SQL)
        .bind(transactions)
        .bind(declines)
        .fetch_all(conn)
        .await
        .op("reading the dates to reconcile")?;
    Ok(rows
        .into_iter()
        .map(
            |(ids, client_id, settlement_date, has_settlement, transactions_in, declines_in)| {
                Pending {
                    ids,
                    client_id,
                    settlement_date,
                    has_settlement,
                    ready: has_settlement && transactions_in && declines_in,
                }
            },
        )
        .collect())
}

/// Forgets notes that were dealt with.
pub async fn forget_pending(conn: &mut PgConnection, ids: &[i64]) -> Result<(), Error> {
    const SQL: &str = r#"
        delete from rotessa.reconciliation_pending where id = any($1)
    "#;
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(SQL)
        .bind(ids)
        .execute(conn)
        .await
        .op("forgetting reconciled dates")?;
    Ok(())
}

/// Makes the view use `chargeback_on` (`decline_date` or `settlement_date`); when that changes
/// the model, notes every settlement date for a new comparison. Returns whether it changed.
pub async fn set_chargeback_on(pool: &PgPool, chargeback_on: &str) -> Result<bool, Error> {
    const SET: &str = r#"
        insert into rotessa.reconciliation_settings as s (chargeback_on) values ($1)
        on conflict (singleton) do update set chargeback_on = $1, changed_at = now()
        where s.chargeback_on is distinct from $1
    "#;
    const NOTE_ALL: &str = r#"
        insert into rotessa.reconciliation_pending (client_id, settlement_date)
        select client_id, settlement_date from rotessa.settlements
    "#;
    let mut tx = pool.begin().await.op("starting a transaction")?;
    let changed = sqlx::query(SET)
        .bind(chargeback_on)
        .execute(&mut *tx)
        .await
        .op("setting the chargeback model")?
        .rows_affected()
        > 0;
    if changed {
        sqlx::query(NOTE_ALL)
            .execute(&mut *tx)
            .await
            .op("noting every date for the new chargeback model")?;
    }
    tx.commit().await.op("committing the chargeback model")?;
    Ok(changed)
}

/// The chargeback model the view uses now.
pub async fn chargeback_on(conn: impl PgExecutor<'_>) -> Result<String, Error> {
    const SQL: &str = r#"
        select coalesce((select chargeback_on from rotessa.reconciliation_settings),
                        'decline_date')
    "#;
    sqlx::query_scalar(SQL)
        .fetch_one(conn)
        .await
        .op("reading the chargeback model")
}

/// How many client settlement dates are mismatched now, and how long (seconds) the oldest of
/// them has been mismatched (since its last comparison that matched, or its first), 0 when
/// every date matches. `clients`: only these clients' dates (`None`: every client), so that a
/// client no longer synced does not keep an alert about it firing.
pub async fn open_mismatches(pool: &PgPool, clients: Option<&[i64]>) -> Result<(i64, f64), Error> {
    const SQL: &str = r#"
        select count(*),
               coalesce(extract(epoch from now() - min(changed_at)), 0)::float8
        from rotessa.reconciliation_state
        where not matched and ($1::bigint[] is null or client_id = any($1))
    "#;
    sqlx::query_as(SQL)
        .bind(clients)
        .fetch_one(pool)
        .await
        .op("counting open reconciliation mismatches")
}
