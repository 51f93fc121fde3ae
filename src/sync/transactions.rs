//! The `transactions` stream: the transaction report over process dates
//! [today - lookback_days, today + horizon_days], in windows of `window_days`.

use tracing::Instrument;

use super::run::RunReport;
use super::{PassOptions, Reach, Syncer};
use crate::config::{ApiVersion, ClientSelection};
use crate::rotessa::ReportKind;

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
        otel.status_code = tracing::field::Empty,
        stream = STREAM,
        client = client_id
    );
    async {
        let cfg = &syncer.settings.sync.transactions;
        let reach = Reach::Horizon(cfg.horizon_days);
        let plan = match syncer.plan(STREAM, client_id, cfg, opts, reach).await {
            Ok(plan) => plan,
            Err(e) => return RunReport::not_started(STREAM, client_id, e),
        };
        syncer
            .run_report_windows(
                STREAM,
                client,
                ReportKind::Transactions,
                plan,
                cfg.window_days,
            )
            .await
    }
    .instrument(span)
    .await
}
