//! The `settlements` stream: each client's settlement totals by settlement date, from
//! (cursor - overlap_days) to today, upserted into `rotessa.settlements` with a
//! `settlement.changed` event per new date or changed totals. New and changed dates are noted
//! for the reconciliation ([`super::reconcile`]).

use std::collections::HashSet;

use chrono::NaiveDate;
use tracing::Instrument;

use super::apply::{PageOutcome, record_rejected, with_db_retries};
use super::convert::to_settlement;
use super::events;
use super::run::{RunError, RunReport};
use super::{PassOptions, Reach, Syncer, windows};
use crate::config::ChargebackOn;
use crate::domain::Settlement;
use crate::rotessa::{RejectedRow, WireSettlement};
use crate::store::lease::Fence;
use crate::store::rejected::Origin;
use crate::store::runs::Progress;
use crate::store::{self, ResultExt, Store, reconciliation, settlements};

/// The stream's name in tables, logs and metrics.
pub const STREAM: &str = "settlements";

/// One run of the stream for one client.
pub async fn run_scope(syncer: &Syncer, client_id: i64, opts: &PassOptions) -> RunReport {
    let span = tracing::info_span!(
        "run",
        run_id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        stream = STREAM,
        client = client_id
    );
    async {
        let cfg = &syncer.settings.sync.settlements;
        // Counted on their transaction's settlement date, chargebacks change settlements up to
        // 90 days old: every run reads the whole look-back.
        let reach = match syncer.settings.reconciliation.chargeback_on {
            ChargebackOn::DeclineDate => Reach::FromCursor,
            ChargebackOn::SettlementDate => Reach::Lookback,
        };
        let plan = match syncer.plan(STREAM, client_id, cfg, opts, reach).await {
            Ok(plan) => plan,
            Err(e) => return RunReport::not_started(STREAM, client_id, e),
        };
        let window = plan.window;
        let run = match syncer.start_run(STREAM, client_id, Some(window)).await {
            Ok(run) => run,
            Err(e) => return RunReport::not_started(STREAM, client_id, e),
        };
        // One request and one transaction per `window_days`, oldest first.
        let result = async {
            for part in windows::split(window.0, window.1, cfg.window_days) {
                let (rows, mut rejected) = tokio::select! {
                    biased;
                    _ = syncer.cancel.cancelled() => return Err(RunError::Cancelled),
                    fetched = syncer.client.settlements(client_id, part.0, part.1) => fetched?,
                };
                let settlements = validate(rows, client_id, &mut rejected);
                let retries = syncer.settings.database.page_retries;
                let outcome = with_db_retries(STREAM, retries, |_| {
                    apply(
                        &syncer.store,
                        syncer.fence.as_ref(),
                        run.id,
                        client_id,
                        &settlements,
                        &rejected,
                    )
                })
                .await?;
                run.record(&outcome, &rejected, 0);
            }
            Ok(())
        }
        .await;
        run.finish(&syncer.store, result, plan.on_success, syncer.stop_reason())
            .await
    }
    .instrument(span)
    .await
}

/// Converts rows, rejecting invalid ones and repeated dates (the first is kept).
fn validate(
    rows: Vec<WireSettlement>,
    client_id: i64,
    rejected: &mut Vec<RejectedRow>,
) -> Vec<Settlement> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if !seen.insert(row.settlement_date) {
            rejected.push(RejectedRow {
                error: format!(
                    "settlement_date {} appears earlier in the response; the first is kept",
                    row.settlement_date
                ),
                raw: row.raw,
            });
            continue;
        }
        let raw = row.raw.clone();
        match to_settlement(row, client_id) {
            Ok(s) => out.push(s),
            Err(error) => rejected.push(RejectedRow { raw, error }),
        }
    }
    out
}

fn same(stored: &settlements::StoredSettlement, s: &Settlement) -> bool {
    stored.totals == s.totals && stored.extra == s.extra
}

/// One transaction: settlements compared and written, events, the dates noted for the
/// reconciliation, rejected rows and the run's progress.
async fn apply(
    store: &Store,
    fence: Option<&Fence>,
    run_id: i64,
    client_id: i64,
    rows: &[Settlement],
    rejected: &[RejectedRow],
) -> Result<PageOutcome, store::Error> {
    let mut tx = store.begin().await?;
    let dates: Vec<NaiveDate> = rows.iter().map(|r| r.settlement_date).collect();
    let stored = settlements::current(&mut tx, client_id, &dates).await?;
    let (mut new, mut differing, mut unchanged) = (Vec::new(), Vec::new(), 0i64);
    for r in rows {
        match stored.get(&r.settlement_date) {
            None => new.push(r),
            Some(s) if same(s, r) => unchanged += 1,
            Some(_) => differing.push(r),
        }
    }
    let mut outbox = Vec::new();
    new.sort_by_key(|r| r.settlement_date);
    let inserted: HashSet<NaiveDate> = settlements::insert_new(&mut tx, &new)
        .await?
        .into_iter()
        .collect();
    for r in &new {
        if inserted.contains(&r.settlement_date) {
            outbox.push(events::settlement_changed(r, None)?);
        } else {
            differing.push(r);
        }
    }
    let mut updates = Vec::new();
    if !differing.is_empty() {
        differing.sort_by_key(|r| r.settlement_date);
        let keys: Vec<NaiveDate> = differing.iter().map(|r| r.settlement_date).collect();
        let locked = settlements::lock_current(&mut tx, client_id, &keys).await?;
        for r in differing {
            let current = locked
                .get(&r.settlement_date)
                .ok_or(sqlx::Error::RowNotFound)
                .op("a settlement row vanished while it was written")?;
            if same(current, r) {
                unchanged += 1;
            } else {
                // `settlement.changed` is about totals: a change only to fields kept in
                // `extra` is written without an event.
                if current.totals != r.totals {
                    outbox.push(events::settlement_changed(r, Some(&current.totals))?);
                }
                updates.push(r);
            }
        }
        settlements::update(&mut tx, &updates).await?;
    }

    // New and changed dates are reconciled at the end of the pass, once their transactions
    // have been read after them.
    let noted: Vec<(i64, NaiveDate)> = new
        .iter()
        .filter(|r| inserted.contains(&r.settlement_date))
        .chain(updates.iter())
        .map(|r| (client_id, r.settlement_date))
        .collect();
    reconciliation::note_pending(&mut tx, &noted).await?;

    store::outbox::append(&mut tx, &outbox).await?;
    let origin = Origin {
        stream: STREAM,
        client_id,
        run_id,
        page: 1,
    };
    record_rejected(&mut tx, rejected, origin).await?;
    let progress = Progress {
        pages: 1,
        rows_seen: (rows.len() + rejected.len()) as i64,
        inserted: inserted.len() as i64,
        updated: updates.len() as i64,
        unchanged,
        rejected: rejected.len() as i64,
        stale: 0,
        anomalies: 0,
        events: outbox.len() as i64,
    };
    store::runs::add_progress(&mut tx, run_id, &progress).await?;
    if !outbox.is_empty() {
        store::outbox::notify(&mut tx).await?;
    }
    store::commit(tx, fence).await?;
    Ok(PageOutcome {
        progress,
        anomalies: Vec::new(),
        event_types: outbox.iter().map(|e| e.event_type).collect(),
        unparsed: Vec::new(),
    })
}
