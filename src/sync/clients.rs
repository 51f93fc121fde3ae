//! The `clients` stream: `GET /v2/clients` into `rotessa.clients`, which the per-client streams
//! enumerate when `rotessa.clients = "all"`.

use tracing::Instrument;

use super::apply::{PageOutcome, record_rejected, with_db_retries};
use super::convert::to_client;
use super::run::{RunError, RunReport};
use super::{Advance, Syncer};
use crate::domain::PlatformClient;
use crate::rotessa::RejectedRow;
use crate::store::lease::Fence;
use crate::store::rejected::Origin;
use crate::store::runs::Progress;
use crate::store::{self, Store};

/// The stream's name in tables, logs and metrics.
pub const STREAM: &str = "clients";

/// One run: fetch the list, upsert it in one transaction.
pub async fn run(syncer: &Syncer) -> RunReport {
    let span = tracing::info_span!(
        "run",
        run_id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        stream = STREAM,
        client = 0
    );
    async {
        let run = match syncer.start_run(STREAM, 0, None).await {
            Ok(run) => run,
            Err(e) => return RunReport::not_started(STREAM, 0, e),
        };
        let result = async {
            let (rows, rejected) = tokio::select! {
                biased;
                _ = syncer.cancel.cancelled() => return Err(RunError::Cancelled),
                fetched = syncer.client.clients() => fetched?,
            };
            let mut rejected = rejected;
            let mut clients: Vec<PlatformClient> = Vec::with_capacity(rows.len());
            for row in rows {
                let raw = row.raw.to_string();
                match to_client(row) {
                    Ok(client) => clients.push(client),
                    Err(error) => rejected.push(RejectedRow { raw, error }),
                }
            }
            let retries = syncer.settings.database.page_retries;
            let outcome = with_db_retries(STREAM, retries, |_| {
                apply(
                    &syncer.store,
                    syncer.fence.as_ref(),
                    run.id,
                    &clients,
                    &rejected,
                )
            })
            .await?;
            run.record(&outcome, &rejected, 0);
            Ok(())
        }
        .await;
        run.finish(
            &syncer.store,
            result,
            Some(Advance {
                cursor: syncer.today(),
                whole_window: true,
            }),
            syncer.stop_reason(),
        )
        .await
    }
    .instrument(span)
    .await
}

async fn apply(
    store: &Store,
    fence: Option<&Fence>,
    run_id: i64,
    clients: &[PlatformClient],
    rejected: &[RejectedRow],
) -> Result<PageOutcome, store::Error> {
    let mut tx = store.begin().await?;
    let upserted = store::clients::upsert(&mut tx, clients).await?;
    let origin = Origin {
        stream: STREAM,
        client_id: 0,
        run_id,
        page: 1,
    };
    record_rejected(&mut tx, rejected, origin).await?;
    let progress = Progress {
        pages: 1,
        rows_seen: (clients.len() + rejected.len()) as i64,
        inserted: upserted.inserted,
        updated: upserted.updated,
        unchanged: clients.len() as i64 - upserted.inserted - upserted.updated,
        rejected: rejected.len() as i64,
        stale: 0,
        anomalies: 0,
        events: 0,
    };
    store::runs::add_progress(&mut tx, run_id, &progress).await?;
    store::commit(tx, fence).await?;
    Ok(PageOutcome {
        progress,
        ..PageOutcome::default()
    })
}
