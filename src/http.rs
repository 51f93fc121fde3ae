//! The daemon's HTTP endpoints: `/livez`, `/startupz`, `/readyz` and `/metrics` (Prometheus),
//! and, when configured, the token-protected reconciliation page ([`reconciliation_page`]).
//!
//! The three probes answer three questions: `/livez`, is the process's runtime answering (only a
//! hung process should be restarted); `/startupz`, has start-up finished (the database reached
//! and migrations applied), so that a Kubernetes startup probe can give migrations their time;
//! `/readyz`, is this replica usable now (database reachable, migrations applied, leader or
//! standby, not shutting down).

pub mod reconciliation_page;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use self::reconciliation_page::ReconciliationPage;
use crate::store::Store;

/// The daemon's role, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Starting: the database is not ready yet.
    Starting = 0,
    /// Waiting for the lease.
    Standby = 1,
    /// Holding the lease and scheduling.
    Leader = 2,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Standby => "standby",
            Self::Leader => "leader",
        }
    }
}

/// Where start-up is, as `/startupz` reports it while the role is [`Role::Starting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Startup {
    /// PostgreSQL does not answer yet.
    WaitingForDatabase = 0,
    /// Applying migrations (or waiting for another replica's migration lock).
    ApplyingMigrations = 1,
    /// `--no-migrate`: waiting for someone else to apply pending migrations.
    WaitingForMigrations = 2,
}

impl Startup {
    fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForDatabase => "waiting for the database",
            Self::ApplyingMigrations => "applying migrations",
            Self::WaitingForMigrations => "waiting for migrations (--no-migrate)",
        }
    }
}

/// What the endpoints read: shared with the daemon, which updates role and shutdown.
#[derive(Clone)]
pub struct Health {
    store: Store,
    metrics: Option<PrometheusHandle>,
    role: Arc<AtomicU8>,
    startup: Arc<AtomicU8>,
    shutting_down: Arc<AtomicBool>,
}

impl Health {
    /// Health over `store`, rendering `metrics` on `/metrics`.
    pub fn new(store: Store, metrics: Option<PrometheusHandle>) -> Self {
        metrics::gauge!("rotessa_leader").set(0.0);
        Self {
            store,
            metrics,
            role: Arc::new(AtomicU8::new(Role::Starting as u8)),
            startup: Arc::new(AtomicU8::new(Startup::WaitingForDatabase as u8)),
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Records the daemon's role.
    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
        metrics::gauge!("rotessa_leader").set(if role == Role::Leader { 1.0 } else { 0.0 });
    }

    /// Records how far start-up got (reported until the role leaves [`Role::Starting`]).
    pub fn set_startup(&self, stage: Startup) {
        self.startup.store(stage as u8, Ordering::Relaxed);
    }

    fn startup(&self) -> Startup {
        match self.startup.load(Ordering::Relaxed) {
            2 => Startup::WaitingForMigrations,
            1 => Startup::ApplyingMigrations,
            _ => Startup::WaitingForDatabase,
        }
    }

    /// The daemon's role now.
    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Relaxed) {
            2 => Role::Leader,
            1 => Role::Standby,
            _ => Role::Starting,
        }
    }

    /// From now on `/readyz` answers 503.
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
}

/// The routes; `/reconciliation` only with a `page` (otherwise 404, like any unknown path).
pub fn router(health: Health, page: Option<ReconciliationPage>) -> Router {
    let router = Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/startupz", get(startupz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    match page {
        Some(page) => router.merge(page.router()),
        None => router,
    }
}

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// 200 once start-up has finished (whatever happened since: a later database outage is
/// `/readyz`'s business); 503 with the stage until then.
async fn startupz(State(health): State<Health>) -> Response {
    match health.role() {
        Role::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting", "stage": health.startup().as_str()})),
        )
            .into_response(),
        role => (
            StatusCode::OK,
            Json(json!({"status": "started", "role": role.as_str()})),
        )
            .into_response(),
    }
}

async fn readyz(State(health): State<Health>) -> Response {
    let role = health.role().as_str();
    if health.shutting_down.load(Ordering::Relaxed) {
        return not_ready(role, "shutting down");
    }
    if health.role() == Role::Starting {
        return not_ready(role, health.startup().as_str());
    }
    let checked =
        tokio::time::timeout(Duration::from_secs(2), health.store.pending_migrations()).await;
    match checked {
        Ok(Ok(0)) => (
            StatusCode::OK,
            Json(
                json!({"status": "ready", "role": role, "database": "ok", "pending_migrations": 0}),
            ),
        )
            .into_response(),
        Ok(Ok(n)) => not_ready(role, &format!("{n} migrations pending")),
        Ok(Err(e)) => not_ready(role, &format!("database: {e}")),
        Err(_) => not_ready(role, "database: no answer within 2 s"),
    }
}

fn not_ready(role: &str, reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "not ready", "role": role, "reason": reason})),
    )
        .into_response()
}

async fn metrics(State(health): State<Health>) -> Response {
    match &health.metrics {
        Some(handle) => {
            crate::telemetry::collect_process_metrics();
            (
                [("content-type", "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
