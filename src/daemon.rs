//! `run`: the long-running service. It serves health and metrics, waits for the database and
//! migrates, then competes for the single-writer lease: the leader schedules the streams and
//! renews the lease; standbys wait and take over when it expires. SIGTERM or SIGINT stops the
//! schedule, lets the pages in flight finish, marks runs cancelled, releases the lease and exits.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ClientSelection, DatabaseSettings, Settings};
use crate::http::{self, Health, ReconciliationPage, Role, Startup};
use crate::relay::{self, Target};
use crate::rotessa::Client;
use crate::scheduler::Schedule;
use crate::store::lease::{self, Fence, SCHEDULER};
use crate::store::{Store, runs, sync_state};
use crate::sync::{StopReason, Syncer};

mod gauges;

/// How long in-flight passes get to finish their page after a stop signal.
const DRAIN: Duration = Duration::from_secs(20);

/// How long releasing the lease may take at shutdown (DRAIN + RELEASE stays under 25 s).
const RELEASE: Duration = Duration::from_secs(3);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on http.listen {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Rotessa(#[from] crate::rotessa::Error),
    #[error("relay.to: {0}")]
    Relay(String),
}

/// Runs the daemon until a stop signal.
pub async fn run(
    settings: Arc<Settings>,
    api_key: &crate::config::Secret,
    migrate: bool,
) -> Result<(), DaemonError> {
    let metrics = crate::telemetry::install_metrics()
        .map_err(|e| tracing::warn!(error = %e, "metrics disabled"))
        .ok();
    if metrics.is_some() {
        start_counters_at_zero(&settings);
    }
    let store = Store::connect_lazy(&settings.database)?;
    // The lease gets connections of its own, so that renewing it never waits behind busy pages.
    let lease_store = Store::connect_lazy(&DatabaseSettings {
        max_connections: 2,
        acquire_timeout_secs: (settings.lease.ttl_secs / 3).max(1),
        ..settings.database.clone()
    })?;
    let client = Client::new(&settings.rotessa, api_key)?;
    let health = Health::new(store.clone(), metrics);
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone(), health.clone()));

    let addr = settings.http.listen.clone();
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: addr.clone(),
            source,
        })?;
    // The address actually bound: `http.listen` may ask for port 0.
    let bound = listener
        .local_addr()
        .map_or_else(|_| addr.clone(), |a| a.to_string());
    let page = ReconciliationPage::from_settings(&settings)?;
    tracing::info!(
        addr = %bound,
        reconciliation_page = page.is_some(),
        "serving /livez, /startupz, /readyz and /metrics"
    );
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(http::serve(
        listener,
        http::router(health.clone(), page),
        http_stop.clone(),
    ));
    if let Some(every) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(every / 2, shutdown.clone()));
    }

    let relay_target = match (settings.relay.enabled, &settings.relay.to) {
        (true, Some(url)) => Some(Target::parse(url.expose()).map_err(DaemonError::Relay)?),
        _ => None,
    };
    if wait_for_database(&store, migrate, &health, &shutdown).await {
        notify(&[sd_notify::NotifyState::Ready]);
        health.set_role(Role::Standby);
        // The relay takes turns through a lease of its own, whichever replica leads the sync.
        let relay = relay_target.map(|target| {
            let (pool, settings, stop) = (
                store.pool().clone(),
                Arc::clone(&settings),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                let ttl = Duration::from_secs(settings.lease.ttl_secs);
                if let Err(e) =
                    relay::run(pool, &settings.outbox, &settings.relay, target, ttl, stop).await
                {
                    tracing::error!(error = %e, "the relay stopped");
                }
            })
        });
        let syncer = Syncer::new(store.clone(), client, Arc::clone(&settings));
        elect_and_lead(&settings, &store, &lease_store, syncer, &health, &shutdown).await;
        if let Some(relay) = relay {
            let _ = tokio::time::timeout(RELEASE, relay).await;
        }
    }

    http_stop.cancel();
    match http.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "the HTTP server task failed"),
        Ok(Ok(())) => {}
    }
    tracing::info!("stopped");
    Ok(())
}

/// Migrates (or checks that migrations are applied), retrying until the database answers or
/// a stop signal arrives; `false` when stopped first. The daemon never crash-loops on a
/// database that is down: it waits, and says so.
async fn wait_for_database(
    store: &Store,
    migrate: bool,
    health: &Health,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = Duration::from_millis(500);
    loop {
        let ready = match store.pending_migrations().await {
            Ok(pending) if migrate => {
                if pending > 0 {
                    tracing::info!(pending, "applying migrations");
                }
                health.set_startup(Startup::ApplyingMigrations);
                store.migrate().await.map(|()| 0)
            }
            Ok(pending) => {
                health.set_startup(Startup::WaitingForMigrations);
                Ok(pending)
            }
            Err(e) => {
                health.set_startup(Startup::WaitingForDatabase);
                Err(e)
            }
        };
        match ready {
            Ok(0) => return true,
            Ok(n) => tracing::warn!(
                pending = n,
                "migrations pending and --no-migrate given; waiting"
            ),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database not ready")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Standby until the lease is ours, then lead until it is lost or a stop signal arrives.
async fn elect_and_lead(
    settings: &Settings,
    store: &Store,
    lease_store: &Store,
    syncer: Syncer,
    health: &Health,
    shutdown: &CancellationToken,
) {
    let ttl = Duration::from_secs(settings.lease.ttl_secs);
    let poll = (ttl / 10).clamp(Duration::from_millis(200), Duration::from_secs(5));
    let holder = holder_id();
    tracing::info!(%holder, ttl_secs = ttl.as_secs(), "waiting for the scheduler lease");
    while !shutdown.is_cancelled() {
        match lease::try_acquire(lease_store.pool(), SCHEDULER, &holder, ttl).await {
            Ok(Some(fence)) => {
                lead(store, lease_store, syncer.clone(), fence, health, shutdown).await
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the lease"),
        }
        health.set_role(Role::Standby);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One term as leader: schedule the streams, renew the lease, stop cleanly.
async fn lead(
    store: &Store,
    lease_store: &Store,
    syncer: Syncer,
    fence: Fence,
    health: &Health,
    shutdown: &CancellationToken,
) {
    tracing::info!(token = fence.token, "became the leader");
    health.set_role(Role::Leader);
    publish_last_successes(store, syncer.settings()).await;
    publish_schedule_intervals(syncer.settings());
    let term = shutdown.child_token();
    let syncer = syncer.with_fence(fence.clone()).with_cancel(term.clone());
    let tracker = TaskTracker::new();
    let schedule = match Schedule::start(syncer.clone(), tracker.clone()).await {
        Ok(schedule) => schedule,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the schedule; giving the lease up");
            let _ = lease::release(lease_store.pool(), &fence).await;
            return;
        }
    };
    schedule.run_all_now(&syncer, &tracker);
    let clients = match &syncer.settings().rotessa.clients {
        ClientSelection::All => None,
        ClientSelection::Ids(ids) => Some(ids.clone()),
    };
    tracker.spawn(gauges::export(store.clone(), clients, term.clone()));

    let renew_every = fence.ttl / 3;
    let stale_after = Duration::from_secs(syncer.settings().sync.run_stale_secs);
    let lost = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break false,
            _ = tokio::time::sleep(renew_every) => {}
        }
        match lease::renew(lease_store.pool(), &fence).await {
            Ok(true) => {}
            Ok(false) => break true,
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease; retrying"),
        }
        // Runs of a process that died stop heartbeating: say so, so `status` never shows
        // them as running.
        match runs::abandon_stale(store.pool(), stale_after).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                abandoned = n,
                "marked runs without a heartbeat as abandoned"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot check for abandoned runs"),
        }
    };
    if lost {
        tracing::error!(
            "the lease was taken over; stopping the schedule (pages in flight roll back)"
        );
        syncer.stop(StopReason::LeaseLost);
    } else {
        tracing::info!("stopping: finishing the pages in flight");
        syncer.stop(StopReason::Shutdown);
    }
    term.cancel();
    schedule.stop().await;
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!(
            drain_secs = DRAIN.as_secs(),
            "passes still running after the drain time"
        );
    }
    if !lost {
        // Bounded, so that shutdown stays within its budget when the database is unreachable.
        match tokio::time::timeout(RELEASE, lease::release(lease_store.pool(), &fence)).await {
            Ok(Ok(())) => tracing::info!("lease released"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot release the lease; it expires by itself")
            }
            Err(_) => tracing::warn!("the lease release timed out; it expires by itself"),
        }
    }
}

/// Seeds the last-success gauges from the database, so a stream that stays stale after a
/// restart still alerts. Only for what is configured now ([`exports_last_success`]): a client
/// taken out of `rotessa.clients`, or a stream disabled, keeps its row in `rotessa.sync_state` but
/// its series is no longer exported, so the staleness alert about it clears.
async fn publish_last_successes(store: &Store, settings: &Settings) {
    match sync_state::last_successes(store.pool()).await {
        Ok(rows) => {
            for (stream, client, at) in rows {
                if !exports_last_success(settings, &stream, client) {
                    tracing::debug!(%stream, client, "not exporting the last success of a stream or client no longer configured");
                    continue;
                }
                metrics::gauge!(
                    "rotessa_sync_last_success_timestamp_seconds",
                    "stream" => stream,
                    "client" => client.to_string()
                )
                .set(at.timestamp() as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the last successes"),
    }
}

/// Whether the last success of `stream` for `client` is something this configuration syncs: an
/// enabled stream, and client 0 (the account-wide runs) or a client of `rotessa.clients`
/// (every client the platform lists, with `"all"`).
fn exports_last_success(settings: &Settings, stream: &str, client: i64) -> bool {
    let enabled = settings
        .sync
        .streams()
        .iter()
        .any(|(name, s)| *name == stream && s.enabled);
    let configured = match &settings.rotessa.clients {
        ClientSelection::All => true,
        ClientSelection::Ids(ids) => client == 0 || ids.contains(&client),
    };
    enabled && configured
}

/// Creates the per-stream counters at 0 for every enabled stream (and the page's refusals when
/// it is on): a counter that only appears at its first increment has no earlier sample, so
/// `increase()` and the alerts built on it would miss that first rejected row or retry.
fn start_counters_at_zero(settings: &Settings) {
    const PER_STREAM: [&str; 8] = [
        "rotessa_rejected_rows_total",
        "rotessa_status_anomalies_total",
        "rotessa_stale_observations_total",
        "rotessa_removed_rows_total",
        "rotessa_page_retries_total",
        "rotessa_duplicate_rows_total",
        "rotessa_list_maybe_cut_total",
        "rotessa_scheduler_skipped_ticks_total",
    ];
    for (stream, s) in settings.sync.streams() {
        if s.enabled {
            for name in PER_STREAM {
                metrics::counter!(name, "stream" => stream).increment(0);
            }
        }
    }
    if settings.http.reconciliation_page {
        metrics::counter!("rotessa_http_unauthorized_total", "path" => "/reconciliation")
            .increment(0);
    }
    // RotessaReconApiKeyRejected watches these.
    for endpoint in crate::rotessa::ENDPOINTS {
        for status in ["401", "403"] {
            metrics::counter!("rotessa_api_requests_total", "endpoint" => *endpoint, "status" => status)
                .increment(0);
        }
    }
}

/// Exports how far apart each enabled stream's scheduled runs may be, so that a dashboard can
/// set the time since its last success against it.
fn publish_schedule_intervals(settings: &Settings) {
    let now = chrono::Utc::now();
    for (stream, s) in settings.sync.streams() {
        if !s.enabled {
            continue;
        }
        if let Some(gap) = crate::cron::longest_gap(&s.schedule, now) {
            metrics::gauge!("rotessa_sync_schedule_interval_seconds", "stream" => stream)
                .set(gap.as_secs_f64());
        }
    }
}

/// Cancels `shutdown` at SIGTERM or SIGINT, after `/readyz` starts answering 503.
pub(crate) async fn stop_on_signal(shutdown: CancellationToken, health: Health) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
    health.set_shutting_down();
    notify(&[sd_notify::NotifyState::Stopping]);
    shutdown.cancel();
}

async fn watchdog(every: Duration, shutdown: CancellationToken) {
    loop {
        notify(&[sd_notify::NotifyState::Watchdog]);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// `host:pid:random`, unique per process, readable in `rotessa.leases`.
fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let nonce = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &nonce[nonce.len() - 8..]
    )
}
