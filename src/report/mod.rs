//! The reconciliation report as a picture: one self-contained HTML page (`reconcile --html`, and
//! the daemon's `/reconciliation`) showing, per client, Rotessa's daily settled totals beside the
//! synced transactions', mismatched dates first, each with the transactions that explain it and
//! their status history.
//!
//! [`gather`] reads everything in one read-only snapshot; [`html::render`] turns it into the
//! page (no scripts, no network requests: styles inline, charts as inline SVG).

pub mod chart;
pub mod format;
pub mod html;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::store::Error;
use crate::store::discrepancies::{self, Explaining, Transition};
use crate::store::reconciliation::{self, Comparison};

/// At most this many explaining transactions are listed under one date.
pub const EXPLAINING_PER_DATE: usize = 50;

/// What the page shows, read in one snapshot.
#[derive(Debug, Clone)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub generated_at: DateTime<Utc>,
    /// `decline_date` or `settlement_date`: where chargebacks are counted.
    pub chargeback_on: String,
    /// The one client asked for, if any.
    pub client: Option<i64>,
    /// Clients with a mismatch first, then by id.
    pub clients: Vec<ClientReport>,
    /// The status history of every listed transaction, oldest first.
    pub histories: BTreeMap<i64, Vec<Transition>>,
}

/// One client's dates.
#[derive(Debug, Clone)]
pub struct ClientReport {
    pub client_id: i64,
    pub name: Option<String>,
    /// Mismatches first, then newest first.
    pub dates: Vec<DateReport>,
}

impl ClientReport {
    /// How many of the dates are mismatched.
    pub fn mismatched(&self) -> usize {
        self.dates.iter().filter(|d| !d.comparison.matched).count()
    }
}

/// One settlement date: the comparison and, when mismatched, what explains it.
#[derive(Debug, Clone)]
pub struct DateReport {
    pub comparison: Comparison,
    /// At most [`EXPLAINING_PER_DATE`], removed rows first, then by amount.
    pub explaining: Vec<Explaining>,
    /// More transactions explain the date than are listed.
    pub more: bool,
}

/// Reads the report for `from..=to` (optionally one client) in one read-only snapshot.
pub async fn gather(
    pool: &PgPool,
    client: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Report, Error> {
    let mut tx = discrepancies::read_only(pool).await?;
    let comparisons = reconciliation::report(&mut *tx, client, from, to).await?;
    let chargeback_on = reconciliation::chargeback_on(&mut *tx).await?;
    let mismatched: Vec<(i64, NaiveDate)> = comparisons
        .iter()
        .filter(|c| !c.matched)
        .map(|c| (c.client_id, c.settlement_date))
        .collect();
    let limit = i64::try_from(EXPLAINING_PER_DATE + 1).unwrap_or(i64::MAX);
    let explaining = discrepancies::explaining(&mut tx, &mismatched, &chargeback_on, limit).await?;
    let mut ids: Vec<i64> = explaining.iter().map(|e| e.transaction_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut histories: BTreeMap<i64, Vec<Transition>> = BTreeMap::new();
    for transition in discrepancies::histories(&mut tx, &ids).await? {
        histories
            .entry(transition.transaction_id)
            .or_default()
            .push(transition);
    }
    let mut client_ids: Vec<i64> = comparisons.iter().map(|c| c.client_id).collect();
    client_ids.sort_unstable();
    client_ids.dedup();
    let names: BTreeMap<i64, String> = discrepancies::client_names(&mut tx, &client_ids)
        .await?
        .into_iter()
        .collect();
    // Nothing was written: ending the snapshot either way is the same.
    drop(tx);
    Ok(Report {
        from,
        to,
        generated_at: Utc::now(),
        chargeback_on,
        client,
        clients: assemble(comparisons, explaining, &names),
        histories,
    })
}

/// Groups comparisons (already mismatches first, newest first) by client, and explanations by
/// date.
fn assemble(
    comparisons: Vec<Comparison>,
    explaining: Vec<Explaining>,
    names: &BTreeMap<i64, String>,
) -> Vec<ClientReport> {
    let mut by_date: BTreeMap<(i64, NaiveDate), Vec<Explaining>> = BTreeMap::new();
    for e in explaining {
        by_date
            .entry((e.client_id, e.settlement_date))
            .or_default()
            .push(e);
    }
    let mut clients: BTreeMap<i64, ClientReport> = BTreeMap::new();
    for comparison in comparisons {
        let client_id = comparison.client_id;
        let mut explaining = by_date
            .remove(&(client_id, comparison.settlement_date))
            .unwrap_or_default();
        let more = explaining.len() > EXPLAINING_PER_DATE;
        explaining.truncate(EXPLAINING_PER_DATE);
        clients
            .entry(client_id)
            .or_insert_with(|| ClientReport {
                client_id,
                name: names.get(&client_id).cloned(),
                dates: Vec::new(),
            })
            .dates
            .push(DateReport {
                comparison,
                explaining,
                more,
            });
    }
    let mut clients: Vec<ClientReport> = clients.into_values().collect();
    clients.sort_by_key(|c| (c.mismatched() == 0, c.client_id));
    clients
}
