//! Bounded storage: the daemon runs for months, so finished runs older than
//! `sync.runs_retention_days` are pruned in batches, keeping each stream and client's latest
//! run and latest failure, and stale page digests go too; `status` keeps working. Real
//! PostgreSQL (`#[sqlx::test]`).

mod common;

use common::*;
use rotessa_recon::store::run_retention;
use sqlx::PgPool;

/// Inserts a finished run `days_ago` days old; returns its id.
async fn run(pool: &PgPool, stream: &str, client: i64, status: &str, days_ago: i32) -> i64 {
    sqlx::query_scalar(
        "insert into rotessa.sync_runs (stream, client_id, status, started_at, finished_at,
                                        heartbeat_at)
         values ($1, $2, $3, now() - make_interval(days => $4),
                 now() - make_interval(days => $4), now() - make_interval(days => $4))
         returning id",
    )
    .bind(stream)
    .bind(client)
    .bind(status)
    .bind(days_ago)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn ids(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("select id from rotessa.sync_runs order by id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn old_runs_go_but_each_streams_latest_run_and_latest_failure_stay(pool: PgPool) {
    // Declines of client 1001: months of runs, the latest failure long ago.
    run(&pool, "declines", 1001, "succeeded", 90).await;
    run(&pool, "declines", 1001, "failed", 80).await;
    let last_failure = run(&pool, "declines", 1001, "abandoned", 70).await;
    run(&pool, "declines", 1001, "succeeded", 60).await;
    let latest = run(&pool, "declines", 1001, "succeeded", 40).await;
    // Settlements of client 1001: one old run, its only one.
    let only = run(&pool, "settlements", 1001, "failed", 100).await;
    // Transactions: an old cancelled run, and recent ones.
    run(&pool, "transactions", 0, "cancelled", 50).await;
    let recent = run(&pool, "transactions", 0, "succeeded", 5).await;
    let newest = run(&pool, "transactions", 0, "succeeded", 0).await;
    // A run still going (a stuck heartbeat is the leader's business, not retention's).
    let running: i64 = sqlx::query_scalar(
        "insert into rotessa.sync_runs (stream, client_id, started_at)
         values ('clients', 0, now() - interval '60 days') returning id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let deleted = run_retention::prune_runs(&pool, 30).await.unwrap();
    assert_eq!(deleted, 4);
    assert_eq!(
        ids(&pool).await,
        vec![last_failure, latest, only, recent, newest, running]
    );
    // Once more: nothing left to prune.
    assert_eq!(run_retention::prune_runs(&pool, 30).await.unwrap(), 0);

    // `status` still shows every stream and client.
    let latest_runs = rotessa_recon::store::runs::latest(&pool).await.unwrap();
    let shown: Vec<(String, i64, i64)> = latest_runs
        .iter()
        .map(|s| (s.stream.clone(), s.client_id, s.run_id))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("clients".into(), 0, running),
            ("declines".into(), 1001, latest),
            ("settlements".into(), 1001, only),
            ("transactions".into(), 0, newest),
        ]
    );
    let failures = rotessa_recon::store::runs::recent_failures(&pool, 10)
        .await
        .unwrap();
    assert_eq!(
        failures.iter().map(|f| f.run_id).collect::<Vec<_>>(),
        vec![only, last_failure]
    );
    let out = run_binary(&["status"], &[("DATABASE_URL", &database_url(&pool))]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

#[sqlx::test]
async fn page_digests_of_windows_no_longer_read_are_pruned(pool: PgPool) {
    for (page, days_ago) in [(1, 40), (2, 1)] {
        sqlx::query(
            "insert into rotessa.page_digests
                 (stream, client_id, window_from, window_to, page, digest, row_count, ids,
                  id_sum, covered, state, applied_at)
             values ('transactions', 0, '2026-01-01', '2026-01-31', $1, 7, 0, '{}', 0, 0, 0,
                     now() - make_interval(days => $2))",
        )
        .bind(page)
        .bind(days_ago)
        .execute(&pool)
        .await
        .unwrap();
    }
    assert_eq!(
        run_retention::prune_page_digests(&pool, 30).await.unwrap(),
        1
    );
    let left: Vec<i32> = sqlx::query_scalar("select page from rotessa.page_digests")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec![2]);
}
