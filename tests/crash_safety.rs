//! A page transaction that dies midway leaves nothing behind, and the next run produces
//! exactly the clean result.

mod common;

use std::time::Duration;

use common::*;
use rotessa_recon::sync::RunOutcome;
use sqlx::{Connection, PgConnection, PgPool};
use wiremock::MockServer;

const FROM: &str = "2019-02-15";
const TO: &str = "2019-03-12";

/// Waits (polling the server, not the clock) until some backend waits for a lock on the outbox.
async fn blocked_backend(pool: &PgPool) -> i32 {
    for _ in 0..6000 {
        let pid: Option<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity
             where wait_event_type = 'Lock' and query like '%rotessa.outbox%'
               and datname = current_database()",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the page transaction never reached the outbox");
}

#[sqlx::test]
async fn a_page_killed_midway_leaves_nothing_and_the_rerun_is_clean(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=800, "Pending")).await;
    let settings = settings(&server.uri(), &[("RECON_DATABASE__PAGE_RETRIES", "0")]);
    let syncer = syncer(&pool, settings);

    // Hold the outbox so the page transaction stops after writing transactions and history.
    let mut blocker = PgConnection::connect(&database_url(&pool)).await.unwrap();
    let mut hold = blocker.begin().await.unwrap();
    sqlx::query("lock table rotessa.outbox in access exclusive mode")
        .execute(&mut *hold)
        .await
        .unwrap();
    let running = {
        let syncer = syncer.clone();
        tokio::spawn(async move { sync_window(&syncer, FROM, TO).await })
    };
    let pid = blocked_backend(&pool).await;
    let killed: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(killed);
    hold.rollback().await.unwrap();

    let reports = running.await.unwrap();
    assert!(
        matches!(reports[0].outcome, RunOutcome::Failed(_)),
        "{reports:?}"
    );
    for table in [
        "rotessa.transactions",
        "rotessa.transaction_status_history",
        "rotessa.outbox",
        "rotessa.rejected_records",
        "rotessa.sync_state",
    ] {
        assert_eq!(
            count(&pool, table).await,
            0,
            "{table} kept part of the page"
        );
    }
    let (pages, rows, status): (i32, i64, String) =
        sqlx::query_as("select pages, rows_seen, status from rotessa.sync_runs")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((pages, rows, status.as_str()), (0, 0, "failed"));

    // The rerun gives the clean result: every row once, every event once.
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded);
    assert_eq!(count(&pool, "rotessa.transactions").await, 800);
    assert_eq!(
        count(&pool, "rotessa.transaction_status_history").await,
        800
    );
    let (events, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct aggregateid) from rotessa.outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((events, distinct), (800, 800));
}

#[sqlx::test]
async fn a_transient_database_failure_is_retried_as_a_whole_page(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=300, "Pending")).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));

    let mut blocker = PgConnection::connect(&database_url(&pool)).await.unwrap();
    let mut hold = blocker.begin().await.unwrap();
    sqlx::query("lock table rotessa.outbox in access exclusive mode")
        .execute(&mut *hold)
        .await
        .unwrap();
    let running = {
        let syncer = syncer.clone();
        tokio::spawn(async move { sync_window(&syncer, FROM, TO).await })
    };
    let pid = blocked_backend(&pool).await;
    sqlx::query("select pg_terminate_backend($1)")
        .bind(pid)
        .execute(&pool)
        .await
        .unwrap();
    hold.rollback().await.unwrap();

    let reports = running.await.unwrap();
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded, "{reports:?}");
    assert_eq!(count(&pool, "rotessa.transactions").await, 300);
    assert_eq!(count(&pool, "rotessa.outbox").await, 300);
    let pages: i32 = sqlx::query_scalar("select pages from rotessa.sync_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pages, 1, "the retried page counts once");
}
