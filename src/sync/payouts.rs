//! The `payouts` stream: the platform's payout report (`GET /v2/payout_report`), windowed like
//! the transaction report (a look-back to a horizon, `window_days` per request), one
//! transaction per window, into `rotessa.payouts` with a `payout.changed` event per new payout
//! or changed amount or status.
//!
//! Rotessa gives a Future payout neither an id nor a financial transaction, so its key is
//! made of what it does say (README "Payout keys"): identical forecasts are numbered in the
//! order of their response, and a complete run marks the forecasts it no longer found as
//! removed. By default one request covers the whole window, so the numbering is the run's.

use std::collections::HashMap;

use tracing::Instrument;

use super::apply::{PageOutcome, record_rejected, with_db_retries};
use super::convert::{forecast_identity, to_payout};
use super::customers::redact;
use super::events;
use super::run::{RunError, RunReport};
use super::{PassOptions, Reach, Syncer, windows};
use crate::domain::Payout;
use crate::rotessa::RejectedRow;
use crate::store::customers::Stored;
use crate::store::lease::Fence;
use crate::store::rejected::Origin;
use crate::store::runs::Progress;
use crate::store::{self, Store, payouts};

/// The stream's name in tables, logs and metrics.
pub const STREAM: &str = "payouts";

/// One run of the stream (account-wide).
pub async fn run(syncer: &Syncer, opts: &PassOptions) -> RunReport {
    let span = tracing::info_span!(
        "run",
        run_id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        stream = STREAM,
        client = 0
    );
    async {
        let cfg = &syncer.settings.sync.payouts;
        let reach = Reach::Horizon(cfg.horizon_days);
        let plan = match syncer.plan(STREAM, 0, cfg, opts, reach).await {
            Ok(plan) => plan,
            Err(e) => return RunReport::not_started(STREAM, 0, e),
        };
        let window = plan.window;
        let run = match syncer.start_run(STREAM, 0, Some(window)).await {
            Ok(run) => run,
            Err(e) => return RunReport::not_started(STREAM, 0, e),
        };
        let result = async {
            let mut forecasts = Vec::new();
            let mut complete = true;
            for (index, part) in windows::split(window.0, window.1, cfg.window_days)
                .into_iter()
                .enumerate()
            {
                let (rows, refused) = tokio::select! {
                    biased;
                    _ = syncer.cancel.cancelled() => return Err(RunError::Cancelled),
                    fetched = syncer.client.payout_report(part.0, part.1) => fetched?,
                };
                let mut rejected: Vec<RejectedRow> = refused
                    .into_iter()
                    .map(|r| RejectedRow {
                        raw: redact(&r.raw),
                        error: r.error,
                    })
                    .collect();
                // Exactly whole pages may be the first page of a report Rotessa pages without
                // saying so: nothing is marked removed after such a response.
                let listed = rows.len() + rejected.len();
                let full = listed > 0 && listed.is_multiple_of(syncer.client.page_size());
                if full {
                    metrics::counter!("rotessa_list_maybe_cut_total", "stream" => STREAM)
                        .increment(1);
                    tracing::warn!(
                        from = %part.0,
                        to = %part.1,
                        rows = listed,
                        "the payout report holds exactly whole pages and is documented without \
                         paging: it may be cut short (a smaller sync.payouts.window_days splits it, \
                         at the cost of numbering identical forecasts per window)"
                    );
                }
                // Numbered per response: a window asked twice (overlapping runs, a server that
                // ignores the dates) gives the same keys, never a second copy.
                let mut numbering = HashMap::new();
                let mut rows_out: Vec<Payout> = Vec::with_capacity(rows.len());
                let mut by_key: HashMap<String, usize> = HashMap::new();
                let mut duplicates = 0;
                for row in rows {
                    let occurrence = match forecast_identity(&row) {
                        Some(identity) => {
                            let n = numbering.entry(identity).or_insert(0u32);
                            *n += 1;
                            *n
                        }
                        None => 0,
                    };
                    let identity = serde_json::json!({
                        "id": row.id,
                        "financial_transaction_id": row.financial_transaction.as_ref().map(|t| t.id),
                        "customer_id": row.customer_id,
                    });
                    let payout = match to_payout(row, occurrence) {
                        Ok(p) => p,
                        Err(error) => {
                            rejected.push(RejectedRow {
                                raw: identity.to_string(),
                                error,
                            });
                            continue;
                        }
                    };
                    match by_key.get(&payout.key).map(|&i| &rows_out[i]) {
                        None => {
                            by_key.insert(payout.key.clone(), rows_out.len());
                            rows_out.push(payout);
                        }
                        Some(first) if *first == payout => duplicates += 1,
                        Some(_) => rejected.push(RejectedRow {
                            raw: identity.to_string(),
                            error: format!(
                                "key {} appears earlier in the response with other values; \
                                 the first is kept",
                                payout.key
                            ),
                        }),
                    }
                }
                complete &= rejected.is_empty() && !full;
                forecasts.extend(
                    rows_out
                        .iter()
                        .filter(|p| p.is_forecast())
                        .map(|p| p.key.clone()),
                );
                let retries = syncer.settings.database.page_retries;
                let page = index as i32 + 1;
                let outcome = with_db_retries(STREAM, retries, |_| {
                    apply(
                        &syncer.store,
                        syncer.fence.as_ref(),
                        run.id,
                        page,
                        &rows_out,
                        &rejected,
                    )
                })
                .await?;
                run.record(&outcome, &rejected, duplicates);
            }
            // Only a complete read of the whole window says which forecasts are gone.
            if plan.on_success.is_some_and(|a| a.whole_window) && complete {
                let retries = syncer.settings.database.page_retries;
                let removed = with_db_retries(STREAM, retries, |_| {
                    forget_forecasts(
                        &syncer.store,
                        syncer.fence.as_ref(),
                        &forecasts,
                        run.started_at,
                    )
                })
                .await?;
                if removed > 0 {
                    tracing::info!(
                        removed,
                        "forecast payouts no longer in the report: marked removed"
                    );
                    metrics::counter!("rotessa_removed_rows_total", "stream" => STREAM)
                        .increment(removed);
                }
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

async fn forget_forecasts(
    store: &Store,
    fence: Option<&Fence>,
    seen: &[String],
    fetched_after: chrono::DateTime<chrono::Utc>,
) -> Result<u64, store::Error> {
    let mut tx = store.begin().await?;
    payouts::lock(&mut tx).await?;
    let removed = payouts::mark_forecasts_removed(&mut tx, seen, fetched_after).await?;
    store::commit(tx, fence).await?;
    Ok(removed)
}

/// Whether an event is due: the payout is new, or its amount or status changed.
fn eventful(p: &Payout, before: &Payout) -> bool {
    p.amount != before.amount || p.status != before.status
}

/// One window in one transaction: payouts compared and written, events, refused rows, progress.
async fn apply(
    store: &Store,
    fence: Option<&Fence>,
    run_id: i64,
    page: i32,
    rows: &[Payout],
    rejected: &[RejectedRow],
) -> Result<PageOutcome, store::Error> {
    let mut tx = store.begin().await?;
    payouts::lock(&mut tx).await?;
    let keys: Vec<&str> = rows.iter().map(|p| p.key.as_str()).collect();
    let stored = payouts::current(&mut tx, &keys).await?;
    let (mut writes, mut outbox) = (Vec::new(), Vec::new());
    let mut progress = Progress {
        pages: 1,
        rows_seen: (rows.len() + rejected.len()) as i64,
        rejected: rejected.len() as i64,
        ..Progress::default()
    };
    for p in rows {
        match stored.get(&p.key) {
            None => {
                progress.inserted += 1;
                outbox.push(events::payout_changed(p, None)?);
                writes.push(p);
            }
            Some(Stored { row, .. }) if matches!((p.api_updated_at, row.api_updated_at), (Some(new), Some(old)) if new < old) =>
            {
                progress.stale += 1;
            }
            Some(Stored { row, removed }) if *removed || row != p => {
                progress.updated += 1;
                if eventful(p, row) {
                    outbox.push(events::payout_changed(p, Some(row))?);
                }
                writes.push(p);
            }
            Some(_) => progress.unchanged += 1,
        }
    }
    payouts::upsert(&mut tx, &writes).await?;
    store::outbox::append(&mut tx, &outbox).await?;
    let origin = Origin {
        stream: STREAM,
        client_id: 0,
        run_id,
        page,
    };
    record_rejected(&mut tx, rejected, origin).await?;
    progress.events = outbox.len() as i64;
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
