//! Syncing report windows: each window pages through its report and applies every page in its
//! own transaction; windows run in parallel up to `rotessa.concurrency`.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Syncer;
use super::apply::{PageOutcome, apply_page_with_retries};
use super::convert::transaction_converter;
use super::removals::{self, WindowRead};
use super::run::{Run, RunError};
use crate::domain::Source;
use crate::rotessa::{KnownPage, KnownPages, ReportRequest};
use crate::store::page_digests::{self, WindowKey};
use crate::store::runs::Progress;

/// Syncs every window of a run; the first failure cancels the windows still going.
pub async fn sync_windows(
    syncer: &Syncer,
    run: &Arc<Run>,
    requests: Vec<ReportRequest>,
    source: Source,
) -> Result<(), RunError> {
    let siblings = syncer.cancel.child_token();
    let mut tasks = JoinSet::new();
    for request in requests {
        let (syncer, run, cancel) = (syncer.clone(), Arc::clone(run), siblings.clone());
        let span = tracing::info_span!(
            "window",
            from = %request.start_date,
            to = %request.end_date
        );
        tasks.spawn(
            async move { sync_window(&syncer, &run, request, source, &cancel).await }
                .instrument(span),
        );
    }
    let mut first_error: Option<RunError> = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| {
            Err(RunError::Store(crate::store::Error::Query {
                op: "a window task panicked",
                source: sqlx::Error::Protocol(e.to_string()),
            }))
        });
        if let Err(e) = result {
            siblings.cancel();
            // A sibling's "cancelled" only echoes the real failure.
            let replace = match (&first_error, &e) {
                (None, _) => true,
                (Some(RunError::Cancelled), RunError::Cancelled) => false,
                (Some(RunError::Cancelled), _) => !syncer.cancel.is_cancelled(),
                _ => false,
            };
            if replace {
                first_error = Some(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if syncer.cancel.is_cancelled() => Err(RunError::Cancelled),
        None => Ok(()),
    }
}

/// One window: its pages in order, each committed before the next is applied (the next one is
/// already being fetched).
async fn sync_window(
    syncer: &Syncer,
    run: &Run,
    request: ReportRequest,
    source: Source,
    cancel: &CancellationToken,
) -> Result<(), RunError> {
    let _permit = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(RunError::Cancelled),
        permit = syncer.window_permits.clone().acquire_owned() => permit.ok(),
    };
    let window = WindowKey {
        stream: run.stream,
        client_id: run.client_id,
        from: request.start_date,
        to: request.end_date,
    };
    let cache = syncer.settings.sync.page_cache.then_some(window);
    let known: KnownPages = match cache {
        Some(window) => page_digests::known(syncer.store.pool(), window)
            .await?
            .into_iter()
            .map(|(page, (digest, rows))| (page, KnownPage { digest, rows }))
            .collect(),
        None => KnownPages::new(),
    };
    let client = request.client_id;
    let converter = transaction_converter(client);
    let mut pages = syncer.client.report_pages(request, converter, known);
    let ctx = run.page_context(source, syncer.fence.as_ref(), cache);
    let retries = syncer.settings.database.page_retries;
    let mut read = WindowRead::default();
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(RunError::Cancelled),
            next = pages.next() => next,
        };
        let Some(page) = next else { break };
        let page = page?;
        read.page(&page);
        // The span the page was fetched in: its requests and its transaction side by side.
        let span = page.span.clone();
        if page.rows.identical {
            // Byte-identical to the body last applied: nothing to parse, read or write.
            let outcome = PageOutcome {
                progress: Progress {
                    pages: 1,
                    rows_seen: page.rows.len as i64,
                    unchanged: page.rows.len as i64,
                    ..Progress::default()
                },
                ..PageOutcome::default()
            };
            span.in_scope(|| run.record_page(&page, &outcome));
            continue;
        }
        // The page in flight is finished even when shutdown starts meanwhile.
        let outcome = apply_page_with_retries(&syncer.store, ctx, &page, retries)
            .instrument(span.clone())
            .await?;
        span.in_scope(|| run.record_page(&page, &outcome));
    }
    // The fetching task has ended (or is ending): wait, so it holds no span open past the window.
    pages.finish().await;
    // Read in full: the transaction report's rows of the window it no longer returns.
    if source == Source::TransactionReport {
        removals::count_read(syncer, run, window, client, &read).await?;
    }
    Ok(())
}
