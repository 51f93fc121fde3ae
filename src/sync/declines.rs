//! The `declines` stream: each client's transaction decline report by decline date, from
//! (cursor - overlap_days) to today; the first run starts at today - lookback_days. Rows go
//! through the same status rules as the transaction report, so a transition seen by both
//! reports is emitted once.

use tracing::Instrument;

use super::run::RunReport;
use super::{PassOptions, Reach, Syncer};
use crate::rotessa::ReportKind;

/// The stream's name in tables, logs and metrics.
pub const STREAM: &str = "declines";

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
        let cfg = &syncer.settings.sync.declines;
        let plan = match syncer
            .plan(STREAM, client_id, cfg, opts, Reach::FromCursor)
            .await
        {
            Ok(plan) => plan,
            Err(e) => return RunReport::not_started(STREAM, client_id, e),
        };
        syncer
            .run_report_windows(
                STREAM,
                Some(client_id),
                ReportKind::Declines,
                plan,
                cfg.window_days,
            )
            .await
    }
    .instrument(span)
    .await
}
