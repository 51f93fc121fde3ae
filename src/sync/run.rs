//! A run's lifecycle: its `sync_runs` row, a heartbeat while it works, the tally of its
//! committed pages, and its end (outcome, cursor, metrics).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::apply::{PageContext, PageOutcome, with_db_retries};
use super::{Advance, StopReason};
use crate::domain::{AnomalyKind, Source, Transaction};
use crate::rotessa::{self, Page, RejectedRow, wire::snippet};
use crate::store::lease::Fence;
use crate::store::page_digests::WindowKey;
use crate::store::runs::{self, Outcome, Progress};
use crate::store::{self, Store, sync_state};

/// How many times recording a run's outcome is retried after a transient database error (at
/// most about 13 s of backoff in all), whatever `database.page_retries` says: a run that failed
/// because its connections were lost should still end `failed`, not stay `running`.
const OUTCOME_RETRIES: u32 = 6;

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Api(#[from] rotessa::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("cancelled by shutdown")]
    Cancelled,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed(String),
    Cancelled,
}

/// The result of one run of a stream for a client, as `sync` prints it.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `None` when the run could not even be recorded (database unreachable).
    pub run_id: Option<i64>,
    pub stream: &'static str,
    /// `0` = account-wide.
    pub client_id: i64,
    pub outcome: RunOutcome,
    pub progress: Progress,
}

impl RunReport {
    /// A run that failed before it could start.
    pub fn not_started(
        stream: &'static str,
        client_id: i64,
        error: impl std::fmt::Display,
    ) -> Self {
        Self {
            run_id: None,
            stream,
            client_id,
            outcome: RunOutcome::Failed(error.to_string()),
            progress: Progress::default(),
        }
    }
}

/// A run in progress.
pub struct Run {
    pub id: i64,
    pub stream: &'static str,
    pub client_id: i64,
    /// When the run started, by the database's clock.
    pub started_at: DateTime<Utc>,
    tally: Mutex<Progress>,
    /// Taken (aborted and awaited) by `finish`, so the run's span closes with the run.
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    started: Instant,
}

impl Run {
    /// Marks dead runs abandoned, records this run, and starts its heartbeat.
    pub async fn start(
        store: &Store,
        stream: &'static str,
        client_id: i64,
        window: Option<(NaiveDate, NaiveDate)>,
        heartbeat_every: Duration,
        stale_after: Duration,
    ) -> Result<Self, store::Error> {
        let abandoned = runs::abandon_stale(store.pool(), stale_after).await?;
        if abandoned > 0 {
            tracing::warn!(abandoned, "marked runs without a heartbeat as abandoned");
        }
        let (id, started_at) = runs::start(store.pool(), stream, client_id, window).await?;
        let pool = store.pool().clone();
        let heartbeat = tokio::spawn(
            async move {
                let mut tick = tokio::time::interval(heartbeat_every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = runs::heartbeat(&pool, id).await {
                        tracing::warn!(error = %e, "run heartbeat failed");
                    }
                }
            }
            .in_current_span(),
        );
        Ok(Self {
            id,
            stream,
            client_id,
            started_at,
            tally: Mutex::new(Progress::default()),
            heartbeat: Mutex::new(Some(heartbeat)),
            started: Instant::now(),
        })
    }

    /// The context a page of this run is written in.
    pub fn page_context<'a>(
        &self,
        source: Source,
        fence: Option<&'a Fence>,
        window: Option<WindowKey<'a>>,
    ) -> PageContext<'a> {
        PageContext {
            run_id: self.id,
            stream: self.stream,
            client_id: self.client_id,
            source,
            fence,
            window,
        }
    }

    /// Counts, logs and measures a committed report page.
    pub fn record_page(&self, page: &Page<Transaction>, outcome: &PageOutcome) {
        self.record(outcome, &page.rows.rejected, page.rows.duplicates);
    }

    /// Counts, logs and measures a committed unit of work.
    pub fn record(&self, outcome: &PageOutcome, rejected: &[RejectedRow], duplicates: usize) {
        let p = &outcome.progress;
        if let Ok(mut tally) = self.tally.lock() {
            *tally += *p;
        }
        let stream = self.stream;
        for (kind, n) in [
            ("inserted", p.inserted),
            ("updated", p.updated),
            ("unchanged", p.unchanged),
            ("rejected", p.rejected),
            ("anomaly", p.anomalies),
        ] {
            if n > 0 {
                metrics::counter!("rotessa_sync_rows_total", "stream" => stream, "outcome" => kind)
                    .increment(n as u64);
            }
        }
        let mut by_type: Vec<(&'static str, u64)> = Vec::new();
        for event_type in &outcome.event_types {
            match by_type.iter_mut().find(|(t, _)| t == event_type) {
                Some((_, n)) => *n += 1,
                None => by_type.push((event_type, 1)),
            }
        }
        for (event_type, n) in by_type {
            metrics::counter!("rotessa_outbox_events_total", "type" => event_type).increment(n);
        }
        for row in rejected {
            metrics::counter!("rotessa_rejected_rows_total", "stream" => stream).increment(1);
            tracing::warn!(
                error = %row.error,
                raw = %snippet(row.raw.as_bytes()),
                "row rejected: kept in rotessa.rejected_records, the rest of the page landed"
            );
        }
        if duplicates > 0 {
            metrics::counter!("rotessa_duplicate_rows_total", "stream" => stream)
                .increment(duplicates as u64);
            tracing::warn!(
                duplicates,
                "page repeated identical rows; each was applied once"
            );
        }
        for (transaction_id, fields) in &outcome.unparsed {
            for field in fields {
                metrics::counter!("rotessa_unparsed_fields_total", "field" => *field).increment(1);
            }
            tracing::warn!(
                transaction_id,
                fields = ?fields,
                "optional fields could not be parsed: stored as NULL, their text kept in extra"
            );
        }
        if p.stale > 0 {
            metrics::counter!("rotessa_stale_observations_total", "stream" => stream)
                .increment(p.stale as u64);
            tracing::debug!(
                stale = p.stale,
                "observations not newer than the stored rows were not applied"
            );
        }
        for a in &outcome.anomalies {
            let message = match a.kind {
                AnomalyKind::Stale => {
                    "report lags behind the stored row: not applied, recorded in rotessa.status_anomalies"
                }
                AnomalyKind::Backward => {
                    "status moved backward without a newer updated_at: not applied, recorded in rotessa.status_anomalies"
                }
                AnomalyKind::Reversal => {
                    "status moved back in the lifecycle: applied and emitted as a reversal, recorded in rotessa.status_anomalies"
                }
                AnomalyKind::Removed => {
                    "an Approved or Chargeback transaction is no longer reported: marked removed, recorded in rotessa.status_anomalies"
                }
            };
            // Stale rows are counted with the stale observations; the anomalies metric counts
            // what an operator reviews.
            if a.kind != AnomalyKind::Stale {
                metrics::counter!("rotessa_status_anomalies_total", "stream" => stream)
                    .increment(1);
            }
            tracing::warn!(
                transaction_id = a.transaction_id,
                kind = a.kind.as_str(),
                stored = a.stored_status,
                stored_updated_at = ?a.stored_updated_at,
                observed = a.observed_status,
                observed_updated_at = ?a.observed_updated_at,
                "{message}"
            );
        }
        tracing::debug!(
            rows = p.rows_seen,
            inserted = p.inserted,
            updated = p.updated,
            unchanged = p.unchanged,
            events = p.events,
            "page committed"
        );
    }

    /// Records the outcome; on success advances the cursor (and, for a run of the whole
    /// window, the stream's last success) in the same transaction.
    pub async fn finish(
        &self,
        store: &Store,
        result: Result<(), RunError>,
        advance: Option<Advance>,
        stop: StopReason,
    ) -> RunReport {
        let heartbeat = self.heartbeat.lock().ok().and_then(|mut h| h.take());
        if let Some(heartbeat) = heartbeat {
            heartbeat.abort();
            // Returns once the task is gone, and with it its handle on the run's span.
            let _ = heartbeat.await;
        }
        let progress = self.tally.lock().map(|t| *t).unwrap_or_default();
        let (outcome, error) = match &result {
            Ok(()) => (Outcome::Succeeded, None),
            Err(RunError::Cancelled) => match stop {
                StopReason::Shutdown => {
                    (Outcome::Cancelled, Some("cancelled by shutdown".to_owned()))
                }
                StopReason::LeaseLost => (
                    Outcome::Failed,
                    Some(crate::store::Error::LeaseLost.to_string()),
                ),
            },
            Err(e) => (Outcome::Failed, Some(e.to_string())),
        };
        // Idempotent (the cursor only moves forward), so retried when the connection drops:
        // a run left `running` would only be marked abandoned after `sync.run_stale_secs`.
        let recorded = with_db_retries(self.stream, OUTCOME_RETRIES, |_| async {
            let mut tx = store.begin().await?;
            runs::finish(&mut tx, self.id, outcome, error.as_deref(), &progress).await?;
            if let (Outcome::Succeeded, Some(advance)) = (outcome, advance) {
                let success = sync_state::Success {
                    run_id: self.id,
                    started_at: self.started_at,
                    whole_window: advance.whole_window,
                };
                let (stream, client_id) = (self.stream, self.client_id);
                sync_state::advance(&mut tx, stream, client_id, advance.cursor, success).await?;
            }
            tx.commit().await.map_err(|source| store::Error::Query {
                op: "committing the run outcome",
                source,
            })
        })
        .await;
        let outcome = match (outcome, recorded) {
            (Outcome::Succeeded, Ok(())) => RunOutcome::Succeeded,
            (Outcome::Cancelled, Ok(())) => RunOutcome::Cancelled,
            (Outcome::Failed, Ok(())) => RunOutcome::Failed(error.unwrap_or_default()),
            (_, Err(e)) => RunOutcome::Failed(match error {
                Some(first) => format!("{first}; recording the outcome also failed: {e}"),
                None => format!("recording the outcome failed: {e}"),
            }),
        };
        let label = match &outcome {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed(_) => "failed",
            RunOutcome::Cancelled => "cancelled",
        };
        metrics::histogram!(
            "rotessa_sync_run_duration_seconds",
            "stream" => self.stream,
            "outcome" => label
        )
        .record(self.started.elapsed().as_secs_f64());
        match &outcome {
            RunOutcome::Succeeded => {
                metrics::gauge!(
                    "rotessa_sync_last_success_timestamp_seconds",
                    "stream" => self.stream,
                    "client" => self.client_id.to_string()
                )
                .set(Utc::now().timestamp() as f64);
                tracing::info!(
                    pages = progress.pages,
                    rows = progress.rows_seen,
                    inserted = progress.inserted,
                    updated = progress.updated,
                    unchanged = progress.unchanged,
                    rejected = progress.rejected,
                    stale = progress.stale,
                    anomalies = progress.anomalies,
                    events = progress.events,
                    "run succeeded"
                );
            }
            RunOutcome::Failed(e) => {
                // The `run` span, marked failed for trace viewers.
                tracing::Span::current().record("otel.status_code", "ERROR");
                tracing::error!(error = %e, "run failed");
            }
            RunOutcome::Cancelled => tracing::warn!("run cancelled"),
        }
        RunReport {
            run_id: Some(self.id),
            stream: self.stream,
            client_id: self.client_id,
            outcome,
            progress,
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(mut heartbeat) = self.heartbeat.lock()
            && let Some(heartbeat) = heartbeat.take()
        {
            heartbeat.abort();
        }
    }
}
