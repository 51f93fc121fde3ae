//! Reconciling settlement dates when both sides are in (SPEC.md "Outbox and events").
//!
//! Every change that can move a date's comparison notes the date in
//! `rotessa.reconciliation_pending`, in the transaction of the change: a new or changed
//! settlement, a transaction written, removed or restored (under its old and new dates), a
//! switch of the chargeback model. At the end of a pass of the transactions, declines or
//! settlements stream, the noted dates whose transactions and declines were read in full after
//! their settlement was are compared with the view and their outcome recorded in
//! `rotessa.reconciliation_state`, with a `reconciliation.matched` or `reconciliation.mismatch`
//! event when the outcome, or a mismatch's difference, changed. A date whose transaction side is
//! older than its settlement waits: no false alarm while the transactions are still being read.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;

use super::Syncer;
use super::apply::with_db_retries;
use super::events;
use crate::store::{self, reconciliation};

/// Where reconciliation runs appear in logs, metrics and failure reports.
pub const STREAM: &str = "reconciliation";

/// What one reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Dates compared.
    pub dates: usize,
    /// Dates still waiting for their transaction side.
    pub waiting: usize,
    /// Events written.
    pub events: usize,
}

/// Reconciles the noted dates that are ready, in one transaction (redone whole on transient
/// failures; a failure leaves the notes for the next pass).
pub async fn reconcile_pending(syncer: &Syncer) -> Result<Reconciled, store::Error> {
    let sync = &syncer.settings.sync;
    let (transactions, declines) = (sync.transactions.enabled, sync.declines.enabled);
    let retries = syncer.settings.database.page_retries;
    let done = with_db_retries(STREAM, retries, |_| async {
        let mut tx = syncer.store.begin().await?;
        reconciliation::lock(&mut tx).await?;
        let pending = reconciliation::take_pending(&mut tx, transactions, declines).await?;
        let mut done = Reconciled::default();
        let mut forget = Vec::new();
        let mut ready: BTreeMap<i64, Vec<NaiveDate>> = BTreeMap::new();
        for p in pending {
            if p.ready {
                ready
                    .entry(p.client_id)
                    .or_default()
                    .push(p.settlement_date);
            }
            if p.ready || !p.has_settlement {
                forget.extend(p.ids);
            } else {
                done.waiting += 1;
            }
        }
        let mut outbox = Vec::new();
        for (client_id, dates) in ready {
            done.dates += dates.len();
            outbox.extend(compare(&mut tx, client_id, &dates).await?);
        }
        reconciliation::forget_pending(&mut tx, &forget).await?;
        store::outbox::append(&mut tx, &outbox).await?;
        if !outbox.is_empty() {
            store::outbox::notify(&mut tx).await?;
        }
        store::commit(tx, syncer.fence.as_ref()).await?;
        done.events = outbox.len();
        for event in &outbox {
            metrics::counter!("rotessa_outbox_events_total", "type" => event.event_type)
                .increment(1);
        }
        Ok(done)
    })
    .await?;
    if done.dates > 0 || done.waiting > 0 {
        tracing::info!(
            dates = done.dates,
            waiting = done.waiting,
            events = done.events,
            "settlement dates reconciled (those waiting for their transactions to be read are kept)"
        );
    }
    Ok(done)
}

/// Compares `dates` of a client with the view and records each outcome; the events of those
/// whose outcome or mismatch difference changed.
async fn compare(
    tx: &mut sqlx::PgConnection,
    client_id: i64,
    dates: &[NaiveDate],
) -> Result<Vec<store::outbox::NewEvent>, store::Error> {
    let comparisons = reconciliation::compare_dates(tx, client_id, dates).await?;
    let compared: Vec<NaiveDate> = comparisons.iter().map(|c| c.settlement_date).collect();
    let states = reconciliation::states(tx, client_id, &compared).await?;
    let (mut changed, mut fill_in) = (Vec::new(), Vec::new());
    for c in &comparisons {
        let now = reconciliation::Recorded {
            settlement_date: c.settlement_date,
            matched: c.matched,
            difference: c.difference()?,
        };
        // A matched date's difference is zero whatever its totals: only the outcome counts.
        match states.get(&c.settlement_date) {
            Some(s) if s.matched == now.matched && s.difference.is_none() => fill_in.push(now),
            Some(s) if s.matched && now.matched => {}
            Some(s)
                if s.matched == now.matched && s.difference.as_ref() == Some(&now.difference) => {}
            _ => changed.push(now),
        }
    }
    reconciliation::fill_in_differences(tx, client_id, &fill_in).await?;
    let flipped: HashSet<NaiveDate> = reconciliation::record(tx, client_id, &changed)
        .await?
        .into_iter()
        .collect();
    let mut outbox = Vec::new();
    for c in comparisons
        .iter()
        .filter(|c| flipped.contains(&c.settlement_date))
    {
        if !c.matched {
            tracing::warn!(
                client_id,
                settlement_date = %c.settlement_date,
                diff_total_approved = %c.diff_total_approved,
                diff_total_declined = %c.diff_total_declined,
                diff_total_chargeback = %c.diff_total_chargeback,
                "settlement does not reconcile with the transactions"
            );
        }
        outbox.push(events::reconciliation_changed(c)?);
    }
    Ok(outbox)
}
