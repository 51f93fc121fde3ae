//! The `transactions` stream: the transaction report over process dates
//! [today - lookback_days, today + horizon_days], in windows of `window_days`.

use chrono::Days;
use tracing::Instrument;

use super::run::RunReport;
use super::{PassOptions, Syncer};
use crate::config::{ApiVersion, ClientSelection};
use crate::rotessa::ReportKind;
use crate::store::sync_state;

/// The stream's name in tables, logs and metrics.
pub const STREAM: &str = "transactions";

/// Which report scopes to read: the account-wide report, or each configured client's.
pub fn scopes(syncer: &Syncer, opts: &PassOptions) -> Vec<Option<i64>> {
    let r = &syncer.settings.rotessa;
    match (r.api_version, opts.client, &r.clients) {
        (ApiVersion::V1, _, _) => vec![None],
        (ApiVersion::V2, Some(id), _) => vec![Some(id)],
        (ApiVersion::V2, None, ClientSelection::All) => vec![None],
        (ApiVersion::V2, None, ClientSelection::Ids(ids)) => {
            ids.iter().copied().map(Some).collect()
        }
    }
}

/// One run of the stream for one scope (`None` = account-wide).
pub async fn run_scope(syncer: &Syncer, client: Option<i64>, opts: &PassOptions) -> RunReport {
    let client_id = client.unwrap_or(0);
    let span = tracing::info_span!(
        "run",
        run_id = tracing::field::Empty,
        stream = STREAM,
        client = client_id
    );
    async {
        let cfg = &syncer.settings.sync.transactions;
        let today = syncer.today();
        let cursor = match sync_state::cursor(syncer.store.pool(), STREAM, client_id).await {
            Ok(c) => c,
            Err(e) => return RunReport::not_started(STREAM, client_id, e),
        };
        let first_run_start = cursor
            .is_none()
            .then_some(syncer.settings.sync.backfill_from)
            .flatten();
        let from = opts
            .from
            .or(first_run_start)
            .unwrap_or_else(|| today - Days::new(cfg.lookback_days.into()));
        let to = opts
            .to
            .unwrap_or_else(|| today + Days::new(cfg.horizon_days.into()));
        syncer
            .run_report_windows(
                STREAM,
                client,
                ReportKind::Transactions,
                (from, to),
                cfg.window_days,
            )
            .await
    }
    .instrument(span)
    .await
}
