//! The daemon's HTTP endpoints: `/livez`, `/readyz` and `/metrics` (Prometheus), and, when
//! configured, the token-protected reconciliation page ([`reconciliation_page`]).

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

/// What the endpoints read: shared with the daemon, which updates role and shutdown.
#[derive(Clone)]
pub struct Health {
    store: Store,
    metrics: Option<PrometheusHandle>,
    role: Arc<AtomicU8>,
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
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Records the daemon's role.
    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
        metrics::gauge!("rotessa_leader").set(if role == Role::Leader { 1.0 } else { 0.0 });
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

async fn readyz(State(health): State<Health>) -> Response {
    let role = health.role().as_str();
    if health.shutting_down.load(Ordering::Relaxed) {
        return not_ready(role, "shutting down");
    }
    let checked =
        tokio::time::timeout(Duration::from_secs(2), health.store.pending_migrations()).await;
    match checked {
        Ok(Ok(0)) if health.role() != Role::Starting => (
            StatusCode::OK,
            Json(
                json!({"status": "ready", "role": role, "database": "ok", "pending_migrations": 0}),
            ),
        )
            .into_response(),
        Ok(Ok(0)) => not_ready(role, "starting"),
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
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
