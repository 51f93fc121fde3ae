//! `rotessa.sync_runs`: one row per run of a stream for a client, with progress committed in
//! each page's transaction, a heartbeat, and the outcome.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

use super::{Error, ResultExt};

/// A run's final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
}

impl Outcome {
    /// The `status` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What one committed page added to its run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub pages: i32,
    pub rows_seen: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    /// Observations not applied because they were not newer than the stored row.
    pub stale: i64,
    pub anomalies: i64,
    pub events: i64,
}

impl std::ops::AddAssign for Progress {
    fn add_assign(&mut self, o: Self) {
        self.pages += o.pages;
        self.rows_seen += o.rows_seen;
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.rejected += o.rejected;
        self.stale += o.stale;
        self.anomalies += o.anomalies;
        self.events += o.events;
    }
}

/// Marks runs whose heartbeat stopped (their process died) as abandoned, so `status` never
/// shows a dead run as running. Returns how many were marked.
pub async fn abandon_stale(pool: &PgPool, stale_after: Duration) -> Result<u64, Error> {
    const SQL: &str = r#"
        update rotessa.sync_runs
        set status = 'abandoned',
            finished_at = now(),
            error = coalesce(error, 'no heartbeat since ' || heartbeat_at || ': its process stopped')
        where status = 'running' and heartbeat_at < now() - make_interval(secs => $1)
    "#;
    let done = sqlx::query(SQL)
        .bind(stale_after.as_secs_f64())
        .execute(pool)
        .await
        .op("marking abandoned runs")?;
    Ok(done.rows_affected())
}

/// Records the start of a run; returns its id and start time.
pub async fn start(
    pool: &PgPool,
    stream: &str,
    client_id: i64,
    window: Option<(NaiveDate, NaiveDate)>,
) -> Result<(i64, DateTime<Utc>), Error> {
    const SQL: &str = r#"
        insert into rotessa.sync_runs (stream, client_id, window_from, window_to, host)
        values ($1, $2, $3, $4, $5)
        returning id, started_at
    "#;
    sqlx::query_as(SQL)
        .bind(stream)
        .bind(client_id)
        .bind(window.map(|w| w.0))
        .bind(window.map(|w| w.1))
        .bind(host_label())
        .fetch_one(pool)
        .await
        .op("starting a sync run")
}

/// Adds a page's counts to its run, inside the page's transaction, so a run's row is exact for
/// everything written even if its process dies.
pub async fn add_progress(conn: &mut PgConnection, run_id: i64, p: &Progress) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.sync_runs set
            pages = pages + $2,
            rows_seen = rows_seen + $3,
            rows_inserted = rows_inserted + $4,
            rows_updated = rows_updated + $5,
            rows_unchanged = rows_unchanged + $6,
            rows_rejected = rows_rejected + $7,
            anomalies = anomalies + $8,
            events_emitted = events_emitted + $9,
            rows_stale = rows_stale + $10,
            heartbeat_at = now()
        where id = $1
    "#;
    sqlx::query(SQL)
        .bind(run_id)
        .bind(p.pages)
        .bind(p.rows_seen)
        .bind(p.inserted)
        .bind(p.updated)
        .bind(p.unchanged)
        .bind(p.rejected)
        .bind(p.anomalies)
        .bind(p.events)
        .bind(p.stale)
        .execute(conn)
        .await
        .op("recording run progress")?;
    Ok(())
}

/// Shows the run is alive between pages.
pub async fn heartbeat(pool: &PgPool, run_id: i64) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.sync_runs set heartbeat_at = now() where id = $1 and status = 'running'
    "#;
    sqlx::query(SQL)
        .bind(run_id)
        .execute(pool)
        .await
        .op("run heartbeat")?;
    Ok(())
}

/// Records how a run ended, with its final counts: pages that wrote nothing added no progress
/// of their own (they wrote nothing at all), so the totals come from the run's tally.
pub async fn finish(
    conn: &mut PgConnection,
    run_id: i64,
    outcome: Outcome,
    error: Option<&str>,
    p: &Progress,
) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.sync_runs
        set status = $2, error = $3, finished_at = now(), heartbeat_at = now(),
            pages = $4, rows_seen = $5, rows_inserted = $6, rows_updated = $7,
            rows_unchanged = $8, rows_rejected = $9, anomalies = $10, events_emitted = $11,
            rows_stale = $12
        where id = $1
    "#;
    sqlx::query(SQL)
        .bind(run_id)
        .bind(outcome.as_str())
        .bind(error)
        .bind(p.pages)
        .bind(p.rows_seen)
        .bind(p.inserted)
        .bind(p.updated)
        .bind(p.unchanged)
        .bind(p.rejected)
        .bind(p.anomalies)
        .bind(p.events)
        .bind(p.stale)
        .execute(conn)
        .await
        .op("finishing a sync run")?;
    Ok(())
}

/// `hostname:pid`, so an operator can tell which process ran what.
fn host_label() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    format!("{host}:{}", std::process::id())
}

/// The latest run of each stream and client, with its cursor (`status`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StreamStatus {
    pub stream: String,
    pub client_id: i64,
    pub run_id: i64,
    pub status: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub pages: i32,
    pub rows_seen: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_rejected: i64,
    pub events_emitted: i64,
    pub cursor_date: Option<NaiveDate>,
    pub last_success_at: Option<chrono::DateTime<chrono::Utc>>,
    pub error: Option<String>,
    pub heartbeat_at: chrono::DateTime<chrono::Utc>,
}

/// One row per stream and client: its latest run and its cursor.
pub async fn latest(pool: &PgPool) -> Result<Vec<StreamStatus>, Error> {
    const SQL: &str = r#"
        select distinct on (r.stream, r.client_id)
               r.stream, r.client_id, r.id as run_id, r.status, r.started_at, r.finished_at,
               r.pages, r.rows_seen, r.rows_inserted, r.rows_updated, r.rows_rejected,
               r.events_emitted, s.cursor_date, s.last_success_at, r.error, r.heartbeat_at
        from rotessa.sync_runs r
        left join rotessa.sync_state s on s.stream = r.stream and s.client_id = r.client_id
        order by r.stream, r.client_id, r.id desc
    "#;
    sqlx::query_as(SQL)
        .fetch_all(pool)
        .await
        .op("reading the latest runs")
}

/// The most recent failed or abandoned runs.
pub async fn recent_failures(pool: &PgPool, limit: i64) -> Result<Vec<StreamStatus>, Error> {
    const SQL: &str = r#"
        select r.stream, r.client_id, r.id as run_id, r.status, r.started_at, r.finished_at,
               r.pages, r.rows_seen, r.rows_inserted, r.rows_updated, r.rows_rejected,
               r.events_emitted, s.cursor_date, s.last_success_at, r.error, r.heartbeat_at
        from rotessa.sync_runs r
        left join rotessa.sync_state s on s.stream = r.stream and s.client_id = r.client_id
        where r.status in ('failed', 'abandoned')
        order by r.id desc
        limit $1
    "#;
    sqlx::query_as(SQL)
        .bind(limit)
        .fetch_all(pool)
        .await
        .op("reading recent failures")
}
