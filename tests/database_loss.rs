//! Losing the database: connections terminated mid-run, and PostgreSQL unreachable for a while.
//! Runs fail cleanly or retry, the daemon does not crash-loop, and the next run converges.

mod common;

use std::time::Duration;

use common::daemon::{Daemon, wait_until};
use common::proxy::Proxy;
use common::*;
use sqlx::PgPool;
use wiremock::MockServer;

const LIMIT: Duration = Duration::from_secs(90);

async fn assert_converged(pool: &PgPool, rows: i64) {
    assert_eq!(count(pool, "rotessa.transactions").await, rows);
    assert_eq!(
        count(pool, "rotessa.transaction_status_history").await,
        rows
    );
    let (events, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct aggregateid) from rotessa.outbox")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!((events, distinct), (rows, rows), "every event exactly once");
}

#[sqlx::test]
async fn connections_terminated_mid_run_never_lose_or_repeat_anything(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report_slowly(
        &server,
        &rows(1..=10_000, "Pending"),
        Duration::from_millis(150),
    )
    .await;
    let db = database_url(&pool);
    let uri = server.uri();
    let env = [
        ("RECON_ROTESSA__BASE_URL", uri.as_str()),
        ("RECON_ROTESSA__API_KEY", API_KEY),
        ("DATABASE_URL", db.as_str()),
        ("RECON_DATABASE__PAGE_RETRIES", "1"),
    ];
    let args = [
        "sync",
        "--stream",
        "transactions",
        "--from",
        "2019-03-12",
        "--to",
        "2019-03-12",
    ];
    let child = {
        let (env, args) = (env.map(|(k, v)| (k.to_owned(), v.to_owned())), args);
        std::thread::spawn(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            run_binary(&args, &env)
        })
    };
    // Once the run is recorded (start-up and migrations are not what this tests), kill the
    // sync's connections again and again while it runs, at irregular intervals (130-270 ms,
    // seeded) so that the kills do not fall into step with the sync's retry delays.
    wait_until("the run is recorded", LIMIT, || async {
        child.is_finished() || count(&pool, "rotessa.sync_runs").await > 0
    })
    .await;
    let mut kills = 0;
    let mut seed: u64 = 0x5eed;
    while !child.is_finished() && kills < 200 {
        kills += scalar(
            &pool,
            "select count(pg_terminate_backend(pid)) from pg_stat_activity
             where application_name = 'rotessa-recon' and datname = current_database()",
        )
        .await;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(130 + (seed >> 33) % 141)).await;
    }
    let first = child.join().unwrap();
    assert!(kills > 0, "no connection was terminated");
    let text = output_text(&first);
    match first.status.code() {
        Some(0) => {}
        Some(1) => assert!(text.contains("FAILED"), "a failure says so: {text}"),
        other => panic!("unexpected exit {other:?}: {text}"),
    }
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.sync_runs where status = 'running'"
        )
        .await,
        0
    );

    // The next run converges to the clean result.
    let env: Vec<(&str, &str)> = env.to_vec();
    let second = run_binary(&args, &env);
    assert_eq!(second.status.code(), Some(0), "{}", output_text(&second));
    assert_converged(&pool, 10_000).await;
}

#[sqlx::test]
async fn the_daemon_waits_out_an_unreachable_database_and_converges(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report_slowly(
        &server,
        &rows(1..=6000, "Pending"),
        Duration::from_millis(100),
    )
    .await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let db = proxy.url(&database_url(&pool));
    let mut daemon = Daemon::spawn(
        &db,
        &server.uri(),
        &[
            ("RECON_SYNC__TRANSACTIONS__SCHEDULE", "*/1 * * * * *"),
            ("RECON_DATABASE__ACQUIRE_TIMEOUT_SECS", "2"),
        ],
    );
    wait_until("the daemon leads and commits", LIMIT, || async {
        daemon.role().await.as_deref() == Some("leader") && pages_committed(&pool).await >= 1
    })
    .await;

    proxy.cut();
    wait_until("/readyz reports the database down", LIMIT, || async {
        matches!(daemon.readyz().await, Some((503, _)))
    })
    .await;
    // Down for a while: the process stays up and alive.
    for _ in 0..20 {
        assert!(daemon.live().await, "/livez while the database is down");
        assert!(
            daemon.child.try_wait().unwrap().is_none(),
            "the daemon exited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    wait_until("/readyz recovers", LIMIT, || async {
        matches!(daemon.readyz().await, Some((200, _)))
    })
    .await;
    wait_until(
        "a run after the outage succeeds with everything",
        LIMIT,
        || async {
            count(&pool, "rotessa.transactions").await == 6000
                && scalar(
                    &pool,
                    "select count(*) from rotessa.sync_runs where status = 'succeeded'",
                )
                .await
                    >= 1
        },
    )
    .await;
    assert_converged(&pool, 6000).await;
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(25)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{:?}\n{}",
        status,
        daemon.log()
    );
}
