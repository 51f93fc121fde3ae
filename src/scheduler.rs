//! The daemon's schedule: one cron job per enabled stream (six fields, seconds first, UTC).
//! A stream's runs never overlap: a tick that finds the previous pass still going is skipped
//! and logged. A per-client stream waits for a clients pass in progress, so it enumerates an
//! up-to-date client list. A failed run is simply tried again at its next tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::sync::{PassOptions, RunOutcome, Stream, Syncer};

/// Why the schedule could not start.
#[derive(Debug, thiserror::Error)]
#[error("scheduler: {0}")]
pub struct SchedulerError(String);

/// Passes of the enabled streams, on their schedules, spawned on `tracker`.
pub struct Schedule {
    jobs: JobScheduler,
    streams: Arc<Streams>,
}

/// Per-stream "a pass is running" flags, and the gate per-client streams wait on.
struct Streams {
    running: [AtomicBool; Stream::ALL.len()],
    clients_gate: Arc<RwLock<()>>,
}

impl Streams {
    fn flag(&self, stream: Stream) -> &AtomicBool {
        let index = Stream::ALL.iter().position(|s| *s == stream).unwrap_or(0);
        &self.running[index]
    }
}

impl Schedule {
    /// Starts one job per enabled stream.
    pub async fn start(syncer: Syncer, tracker: TaskTracker) -> Result<Self, SchedulerError> {
        let err = |e: tokio_cron_scheduler::JobSchedulerError| SchedulerError(e.to_string());
        let jobs = JobScheduler::new().await.map_err(err)?;
        let streams = Arc::new(Streams {
            running: Default::default(),
            clients_gate: Arc::new(RwLock::new(())),
        });
        for stream in Stream::ALL {
            let cfg = stream.settings(&syncer.settings().sync);
            if !cfg.enabled || !syncer.runs_on_this_account(stream) {
                continue;
            }
            let (syncer, tracker, streams) =
                (syncer.clone(), tracker.clone(), Arc::clone(&streams));
            let job = Job::new_async(cfg.schedule.as_str(), move |_, _| {
                let (syncer, tracker, streams) =
                    (syncer.clone(), tracker.clone(), Arc::clone(&streams));
                Box::pin(async move { tick(stream, syncer, &tracker, streams) })
            })
            .map_err(err)?;
            jobs.add(job).await.map_err(err)?;
            tracing::info!(%stream, schedule = %cfg.schedule, "stream scheduled");
        }
        jobs.add(prune_job(&syncer, tracker)?).await.map_err(err)?;
        jobs.start().await.map_err(err)?;
        Ok(Self { jobs, streams })
    }

    /// Runs every enabled stream once now, clients first (a leader catching up).
    pub fn run_all_now(&self, syncer: &Syncer, tracker: &TaskTracker) {
        for stream in Stream::ALL {
            let cfg = stream.settings(&syncer.settings().sync);
            if cfg.enabled && syncer.runs_on_this_account(stream) {
                tick(stream, syncer.clone(), tracker, Arc::clone(&self.streams));
            }
        }
    }

    /// Stops the schedule; passes already started go on (they stop between pages when the
    /// syncer is cancelled).
    pub async fn stop(mut self) {
        if let Err(e) = self.jobs.shutdown().await {
            tracing::warn!(error = %e, "stopping the scheduler");
        }
    }
}

/// Retention on `outbox.prune_schedule`: events every registered consumer has acked and older
/// than `outbox.retention_days`, then finished runs older than `sync.runs_retention_days` (each
/// stream and client keeps its latest run and latest failure) and stale page digests, all
/// deleted in small batches.
fn prune_job(syncer: &Syncer, tracker: TaskTracker) -> Result<Job, SchedulerError> {
    let settings = &syncer.settings().outbox;
    let retention = crate::outbox::Retention::from(settings);
    let runs_days = syncer.settings().sync.runs_retention_days;
    let running = Arc::new(AtomicBool::new(false));
    let syncer = syncer.clone();
    let job = Job::new_async(settings.prune_schedule.as_str(), move |_, _| {
        let (syncer, tracker, running) = (syncer.clone(), tracker.clone(), Arc::clone(&running));
        Box::pin(async move {
            if syncer.is_cancelled() || running.swap(true, Ordering::AcqRel) {
                return;
            }
            tracker.spawn(async move {
                match crate::outbox::prune(syncer.store().pool(), &retention).await {
                    Ok(0) => {}
                    Ok(deleted) => {
                        metrics::counter!("rotessa_outbox_pruned_total").increment(deleted);
                        tracing::info!(deleted, "outbox pruned");
                    }
                    Err(e) => tracing::warn!(error = %e, "outbox prune failed; tried again at its next tick"),
                }
                prune_history(&syncer, runs_days).await;
                running.store(false, Ordering::Release);
            });
        })
    })
    .map_err(|e| SchedulerError(e.to_string()))?;
    tracing::info!(schedule = %settings.prune_schedule, "outbox retention scheduled");
    Ok(job)
}

/// Deletes runs and page digests older than `days` (see [`crate::store::run_retention`]).
async fn prune_history(syncer: &Syncer, days: u32) {
    use crate::store::run_retention;
    let pool = syncer.store().pool();
    match run_retention::prune_runs(pool, days).await {
        Ok(0) => {}
        Ok(deleted) => {
            metrics::counter!("rotessa_runs_pruned_total").increment(deleted);
            tracing::info!(deleted, retention_days = days, "old runs pruned");
        }
        Err(e) => tracing::warn!(error = %e, "run prune failed; tried again at its next tick"),
    }
    match run_retention::prune_page_digests(pool, days).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "stale page digests pruned"),
        Err(e) => tracing::warn!(error = %e, "page digest prune failed; tried again later"),
    }
}

/// A tick of `stream`: starts a pass unless one is still going.
fn tick(stream: Stream, syncer: Syncer, tracker: &TaskTracker, streams: Arc<Streams>) {
    if syncer.is_cancelled() {
        return;
    }
    if streams.flag(stream).swap(true, Ordering::AcqRel) {
        metrics::counter!("rotessa_scheduler_skipped_ticks_total", "stream" => stream.as_str())
            .increment(1);
        tracing::warn!(%stream, "tick skipped: the previous pass of this stream is still running");
        return;
    }
    // Claim the clients gate now, before any task runs, so that within one tick (and in the
    // catch-up, which ticks clients first) the per-client streams wait for the clients pass.
    let lock = Arc::clone(&streams.clients_gate);
    let claimed = match stream {
        Stream::Clients => Lock::Write(Arc::clone(&lock).try_write_owned().ok()),
        s if s.is_per_client() => Lock::Read(Arc::clone(&lock).try_read_owned().ok()),
        _ => Lock::Free,
    };
    tracker.spawn(
        async move {
            {
                let _held = match claimed {
                    Lock::Write(Some(g)) => Held::Write(g),
                    Lock::Write(None) => Held::Write(lock.write_owned().await),
                    Lock::Read(Some(g)) => Held::Read(g),
                    Lock::Read(None) => Held::Read(lock.read_owned().await),
                    Lock::Free => Held::Nothing,
                };
                for report in syncer.run(stream, &PassOptions::default()).await {
                    if let RunOutcome::Failed(error) = &report.outcome {
                        tracing::warn!(
                            %stream,
                            client = report.client_id,
                            %error,
                            "run failed; it is tried again at the stream's next tick"
                        );
                    }
                }
            }
            streams.flag(stream).store(false, Ordering::Release);
        }
        .instrument(tracing::info_span!("pass", %stream)),
    );
}

/// The clients gate as claimed when the tick fired (`None`: to be awaited in the task).
enum Lock {
    Write(Option<OwnedRwLockWriteGuard<()>>),
    Read(Option<OwnedRwLockReadGuard<()>>),
    Free,
}

/// Holds the clients gate for the length of a pass.
enum Held {
    Write(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
    Read(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Nothing,
}
