//! The three probes mean what the Kubernetes manifest says: `/livez` answers as soon as the
//! process serves, `/startupz` only once the database is reached and migrations are applied, and
//! `/readyz` only when the replica is usable; during a database wait and during migrations the
//! last two say why not.

mod common;

use std::time::Duration;

use common::daemon::{Daemon, simulator, wait_until};
use common::*;
use rotessa_recon::store::migrations::LOCK_KEY;
use sqlx::{Connection, PgConnection, PgPool};

const LIMIT: Duration = Duration::from_secs(60);

/// Status code and JSON body of `path`, or `None` while nothing answers.
async fn probe(daemon: &Daemon, path: &str) -> Option<(u16, serde_json::Value)> {
    let response = reqwest::get(daemon.url(path)?).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or_default()))
}

async fn stage(daemon: &Daemon) -> Option<String> {
    let (_, body) = probe(daemon, "/startupz").await?;
    body["stage"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn while_the_database_is_unreachable_only_liveness_passes() {
    let sim = simulator(10, 0).await;
    // Nothing listens on port 9 (discard) of the loopback here.
    let daemon = Daemon::spawn(
        "postgres://postgres@127.0.0.1:9/nowhere",
        &sim.base_url(),
        &[],
    );
    wait_until("the database wait is reported", LIMIT, || async {
        stage(&daemon).await.as_deref() == Some("waiting for the database")
    })
    .await;
    assert!(daemon.live().await);
    let (status, _) = probe(&daemon, "/startupz").await.unwrap();
    assert_eq!(status, 503);
    let (status, body) = daemon.readyz().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["role"], "starting");
}

#[sqlx::test(migrations = false)]
async fn during_migrations_startup_waits_and_then_passes(admin: PgPool) {
    // Another replica is migrating: it holds the migration lock.
    let mut other = PgConnection::connect(&database_url(&admin)).await.unwrap();
    sqlx::query("select pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut other)
        .await
        .unwrap();

    let sim = simulator(10, 0).await;
    let daemon = Daemon::spawn(&database_url(&admin), &sim.base_url(), &[]);
    wait_until("the migrations are reported", LIMIT, || async {
        stage(&daemon).await.as_deref() == Some("applying migrations")
    })
    .await;
    assert!(daemon.live().await);
    assert_eq!(probe(&daemon, "/startupz").await.unwrap().0, 503);
    let (status, body) = daemon.readyz().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "applying migrations");

    sqlx::query("select pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut other)
        .await
        .unwrap();
    wait_until("start-up finishes", LIMIT, || async {
        matches!(probe(&daemon, "/startupz").await, Some((200, _)))
    })
    .await;
    wait_until("ready", LIMIT, || async {
        matches!(daemon.readyz().await, Some((200, _)))
    })
    .await;
    let (_, body) = probe(&daemon, "/startupz").await.unwrap();
    assert_eq!(body["status"], "started");
    assert!(daemon.live().await);
}
