//! The real daemon against the simulator and PostgreSQL: schedule, health and metrics,
//! graceful shutdown, one writer with takeover, fencing of a paused leader, outbox retention.

mod common;

use std::time::Duration;

use common::daemon::{Daemon, simulator, wait_until};
use common::*;
use sqlx::PgPool;
use wiremock::MockServer;

const LIMIT: Duration = Duration::from_secs(60);

/// Every transaction has exactly one first-sight event; no event repeats.
async fn assert_no_duplicate_events(pool: &PgPool) {
    let duplicates = scalar(
        pool,
        "select count(*) from (
             select aggregateid, payload->>'from_status', payload->>'to_status'
             from rotessa.outbox group by 1, 2, 3 having count(*) > 1) d",
    )
    .await;
    assert_eq!(duplicates, 0, "duplicate events");
}

#[sqlx::test]
async fn syncs_on_schedule_and_reports_health_and_metrics(pool: PgPool) {
    let sim = simulator(2500, 0).await;
    // Faults, so that retries show; every page compared, so that the anomaly below shows.
    sim.set_faults(0.3, Duration::ZERO);
    let db = database_url(&pool);
    let mut daemon = Daemon::spawn(
        &db,
        &sim.base_url(),
        &[
            ("RECON_SYNC__TRANSACTIONS__SCHEDULE", "*/1 * * * * *"),
            ("RECON_SYNC__CLIENTS__ENABLED", "true"),
            ("RECON_SYNC__DECLINES__ENABLED", "true"),
            ("RECON_SYNC__SETTLEMENTS__ENABLED", "true"),
            ("RECON_SYNC__CUSTOMERS__ENABLED", "true"),
            ("RECON_SYNC__CUSTOMERS__SCHEDULE", "*/2 * * * * *"),
            ("RECON_SYNC__PAYOUTS__ENABLED", "true"),
            ("RECON_SYNC__PAYOUTS__SCHEDULE", "*/2 * * * * *"),
            ("RECON_SYNC__PAGE_CACHE", "false"),
        ],
    );
    wait_until("the daemon leads", LIMIT, || async {
        daemon.role().await.as_deref() == Some("leader")
    })
    .await;
    let (status, body) = daemon.readyz().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["database"].as_str(), body["role"].as_str()),
        (Some("ok"), Some("leader"))
    );
    assert!(daemon.live().await);
    wait_until("the first transactions run landed", LIMIT, || async {
        count(&pool, "rotessa.transactions").await == 2500
    })
    .await;
    // Stored ahead of the report: the report's status is then a backward move.
    sqlx::query(
        "update rotessa.transactions set status = 'Chargeback', fingerprint = 0
         where id = (select min(id) from rotessa.transactions)",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Runs keep coming on the seconds-level schedule: two transactions runs that started after
    // the update both succeed (the first of them meets the anomaly).
    let last_run = scalar(&pool, "select coalesce(max(id), 0) from rotessa.sync_runs").await;
    wait_until("two later transactions runs succeeded", LIMIT, || async {
        let later: i64 = sqlx::query_scalar(
            "select count(*) from rotessa.sync_runs
             where stream = 'transactions' and status = 'succeeded' and id > $1",
        )
        .bind(last_run)
        .fetch_one(&pool)
        .await
        .unwrap();
        later >= 2
    })
    .await;
    assert_eq!(count(&pool, "rotessa.status_anomalies").await, 1);

    let expected = [
        "rotessa_sync_rows_total{stream=\"transactions\",outcome=\"inserted\"} 2500",
        "rotessa_sync_rows_total{stream=\"transactions\",outcome=\"unchanged\"}",
        "rotessa_sync_rows_total{stream=\"clients\",outcome=\"inserted\"} 3",
        "rotessa_outbox_events_total{type=\"transaction.status_changed\"} 2500",
        "rotessa_api_requests_total{endpoint=\"transaction_report\",status=\"200\"}",
        "rotessa_api_retries_total{endpoint=\"transaction_report\"",
        "rotessa_status_anomalies_total{stream=\"transactions\"} ",
        "rotessa_sync_run_duration_seconds_bucket{stream=\"transactions\",outcome=\"succeeded\"",
        "rotessa_sync_last_success_timestamp_seconds{stream=\"transactions\",client=\"0\"}",
        "rotessa_sync_last_success_timestamp_seconds{stream=\"settlements\",client=\"4321\"}",
        "rotessa_sync_last_success_timestamp_seconds{stream=\"customers\",client=\"4321\"}",
        "rotessa_sync_last_success_timestamp_seconds{stream=\"payouts\",client=\"0\"}",
        "rotessa_outbox_events_total{type=\"customer.changed\"}",
        "rotessa_outbox_events_total{type=\"payout.changed\"}",
        "rotessa_leader 1",
    ];
    // Which requests draw the simulator's faults varies, so the retry line may take a few runs;
    // the per-client catch-up runs may still be finishing.
    let start = std::time::Instant::now();
    loop {
        let metrics = daemon.metrics().await;
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|line| !metrics.contains(line))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "missing {missing:?} in /metrics:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(25)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{:?}\n{}",
        status,
        daemon.log()
    );
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.sync_runs where status = 'running'"
        )
        .await,
        0
    );
    let released: bool = sqlx::query_scalar(
        "select expires_at < clock_timestamp() from rotessa.leases where name = 'scheduler'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(released, "the lease is released on shutdown");
}

#[sqlx::test]
async fn rejected_rows_are_counted_in_metrics(pool: PgPool) {
    let server = MockServer::start().await;
    let mut page = rows(1..=5, "Pending");
    let mut malformed = row(99, "Pending");
    malformed["amount"] = serde_json::json!("abc");
    page.push(malformed);
    serve_report(&server, &page).await;
    let db = database_url(&pool);
    let daemon = Daemon::spawn(&db, &server.uri(), &[]);
    wait_until("the row is quarantined", LIMIT, || async {
        count(&pool, "rotessa.rejected_records").await == 1
    })
    .await;
    wait_until("the page is counted", LIMIT, || async {
        daemon
            .metrics()
            .await
            .contains("rotessa_rejected_rows_total{stream=\"transactions\"} 1")
    })
    .await;
}

#[sqlx::test]
async fn sigterm_during_a_sync_cancels_the_run_without_a_partial_page(pool: PgPool) {
    let sim = simulator(8000, 400).await;
    let db = database_url(&pool);
    let mut daemon = Daemon::spawn(&db, &sim.base_url(), &[]);
    wait_until("a page committed", LIMIT, || async {
        pages_committed(&pool).await >= 1
    })
    .await;
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(25)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{:?}\n{}",
        status,
        daemon.log()
    );

    let (run_status, pages): (String, i32) =
        sqlx::query_as("select status, pages from rotessa.sync_runs")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(run_status, "cancelled", "{}", daemon.log());
    assert!(pages < 8, "the run stopped early ({pages} pages)");
    let rows = count(&pool, "rotessa.transactions").await;
    assert_eq!(rows, i64::from(pages) * 1000, "whole pages only");
    assert_eq!(count(&pool, "rotessa.outbox").await, rows);
    assert_eq!(
        count(&pool, "rotessa.transaction_status_history").await,
        rows
    );
}

#[sqlx::test]
async fn one_of_two_instances_writes_and_the_standby_takes_over_after_a_kill(pool: PgPool) {
    let sim = simulator(6000, 300).await;
    let db = database_url(&pool);
    let a = Daemon::spawn(&db, &sim.base_url(), &[]);
    let b = Daemon::spawn(&db, &sim.base_url(), &[]);
    wait_until("one leader and one standby", LIMIT, || async {
        let roles = [a.role().await, b.role().await];
        roles.contains(&Some("leader".into())) && roles.contains(&Some("standby".into()))
    })
    .await;
    let (leader, standby) = if a.role().await.as_deref() == Some("leader") {
        (a, b)
    } else {
        (b, a)
    };
    wait_until("the leader committed a page", LIMIT, || async {
        pages_committed(&pool).await >= 1
    })
    .await;
    let writers: Vec<String> = sqlx::query_scalar("select distinct host from rotessa.sync_runs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(writers.len(), 1);
    assert!(
        writers[0].ends_with(&format!(":{}", leader.pid())),
        "{writers:?}"
    );

    leader.signal("KILL");
    drop(leader);
    wait_until("the standby leads", LIMIT, || async {
        standby.role().await.as_deref() == Some("leader")
    })
    .await;
    wait_until("the new leader finished a run", LIMIT, || async {
        scalar(
            &pool,
            "select count(*) from rotessa.sync_runs where status = 'succeeded'",
        )
        .await
            >= 1
    })
    .await;
    assert_eq!(count(&pool, "rotessa.transactions").await, 6000);
    assert_eq!(count(&pool, "rotessa.outbox").await, 6000);
    assert_no_duplicate_events(&pool).await;
    // The killed leader's run is not left "running" for ever.
    wait_until("the dead run is marked abandoned", LIMIT, || async {
        scalar(
            &pool,
            "select count(*) from rotessa.sync_runs where status = 'abandoned'",
        )
        .await
            == 1
    })
    .await;
}

#[sqlx::test]
async fn a_paused_leader_cannot_commit_after_losing_its_lease(pool: PgPool) {
    let sim = simulator(12000, 300).await;
    let db = database_url(&pool);
    let old = Daemon::spawn(&db, &sim.base_url(), &[]);
    wait_until("the first daemon leads and commits", LIMIT, || async {
        old.role().await.as_deref() == Some("leader") && pages_committed(&pool).await >= 1
    })
    .await;
    old.signal("STOP");
    let paused_host = format!("%:{}", old.pid());
    let new = Daemon::spawn(&db, &sim.base_url(), &[]);
    wait_until("the second daemon takes the lease over", LIMIT, || async {
        new.role().await.as_deref() == Some("leader")
    })
    .await;
    let pages_at_takeover: i64 = sqlx::query_scalar(
        "select coalesce(sum(pages), 0)::bigint from rotessa.sync_runs where host like $1",
    )
    .bind(&paused_host)
    .fetch_one(&pool)
    .await
    .unwrap();

    old.signal("CONT");
    // The old leader's next commit is refused by the fencing check: its run fails. (The new
    // leader may first have marked it abandoned, having seen no heartbeat; the old process
    // then records the real outcome.)
    wait_until("the old leader's run fails", LIMIT, || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from rotessa.sync_runs where host like $1 and status = 'failed'",
        )
        .bind(&paused_host)
        .fetch_one(&pool)
        .await
        .unwrap()
            >= 1
    })
    .await;
    let pages_after: i64 = sqlx::query_scalar(
        "select coalesce(sum(pages), 0)::bigint from rotessa.sync_runs where host like $1",
    )
    .bind(&paused_host)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        pages_after, pages_at_takeover,
        "the paused leader committed after losing the lease"
    );
    let old_run: (String, Option<String>) = sqlx::query_as(
        "select status, error from rotessa.sync_runs where host like $1 order by id limit 1",
    )
    .bind(&paused_host)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(old_run.0, "failed", "{old_run:?}");
    assert!(
        old_run
            .1
            .as_deref()
            .unwrap_or_default()
            .contains("lease was lost"),
        "{old_run:?}\n{}",
        old.log()
    );
    wait_until("the old leader steps down", LIMIT, || async {
        old.role().await.as_deref() == Some("standby")
    })
    .await;
    wait_until("the new leader finished", LIMIT, || async {
        scalar(
            &pool,
            "select count(*) from rotessa.sync_runs where status = 'succeeded'",
        )
        .await
            >= 1
    })
    .await;
    assert_eq!(count(&pool, "rotessa.transactions").await, 12000);
    assert_no_duplicate_events(&pool).await;
    assert_eq!(count(&pool, "rotessa.outbox").await, 12000);
}

#[sqlx::test]
async fn the_leader_prunes_acked_events_on_its_schedule(pool: PgPool) {
    let sim = simulator(30, 0).await;
    // A consumer that has acked everything up to the fence.
    sqlx::query("select rotessa.outbox_register('billing', 'beginning')")
        .execute(&pool)
        .await
        .unwrap();
    let db = database_url(&pool);
    let daemon = Daemon::spawn(
        &db,
        &sim.base_url(),
        &[
            ("RECON_OUTBOX__RETENTION_DAYS", "0"),
            ("RECON_OUTBOX__PRUNE_SCHEDULE", "*/1 * * * * *"),
        ],
    );
    wait_until("the first sync wrote its events", LIMIT, || async {
        count(&pool, "rotessa.outbox").await == 30
    })
    .await;
    assert!(daemon.live().await);
    // `outbox_ack` refuses a position past the visibility fence, which any older open
    // transaction in the cluster (another test's) holds back: ack once the fence has passed.
    wait_until("the last event is acked", LIMIT, || async {
        sqlx::query(
            "select rotessa.outbox_ack('billing', txid, seq)
             from (select txid, seq from rotessa.outbox order by txid desc, seq desc limit 1) last",
        )
        .execute(&pool)
        .await
        .is_ok()
    })
    .await;
    wait_until("the acked events are pruned", LIMIT, || async {
        count(&pool, "rotessa.outbox").await == 0
    })
    .await;
    wait_until("/metrics counts the pruned events", LIMIT, || async {
        daemon
            .metrics()
            .await
            .contains("rotessa_outbox_pruned_total 30")
    })
    .await;
}

#[sqlx::test]
async fn a_narrowed_client_list_or_a_disabled_stream_retires_its_series(pool: PgPool) {
    // Client 2 was synced before rotessa.clients was narrowed to client 1; declines were on.
    sqlx::query(
        "insert into rotessa.sync_state (stream, client_id, last_success_at) values
             ('transactions', 1, now() - interval '1 day'),
             ('transactions', 2, now() - interval '1 day'),
             ('declines', 1, now() - interval '1 day')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let sim = simulator(10, 0).await;
    let daemon = Daemon::spawn(
        &database_url(&pool),
        &sim.base_url(),
        &[("RECON_ROTESSA__CLIENTS", "1")],
    );
    // The leader seeds the gauges as it takes the lease: client 1's appears.
    wait_until("client 1's last success is exported", LIMIT, || async {
        daemon.metrics().await.lines().any(|l| {
            l.starts_with(
                r#"rotessa_sync_last_success_timestamp_seconds{stream="transactions",client="1"}"#,
            )
        })
    })
    .await;
    let metrics = daemon.metrics().await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("rotessa_sync_last_success_timestamp_seconds{"))
        .collect();
    assert!(
        !series.iter().any(|l| l.contains(r#"client="2""#)),
        "a client no longer configured is still exported: {series:?}"
    );
    assert!(
        !series.iter().any(|l| l.contains(r#"stream="declines""#)),
        "a disabled stream is still exported: {series:?}"
    );
}
