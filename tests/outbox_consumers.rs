//! Outbox consumers against a real PostgreSQL: the visibility fence (an event committed after
//! one with a higher `seq` is delivered, not skipped), at-least-once delivery with
//! deduplication by event id across a crash, retention that never deletes what a registered
//! consumer has not acked, and `outbox tail --follow` (the real binary) showing events soon
//! after they commit.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use common::outbox::*;
use common::*;
use rotessa_recon::outbox::{Consumer, Event, Position, Retention, StartFrom, prune, prune_batch};
use rotessa_recon::store::{self, outbox_consumers};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;
use wiremock::MockServer;

fn ids(events: &[Event]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

async fn registered(pool: &PgPool, name: &str) -> Consumer {
    assert!(
        Consumer::register(pool, name, StartFrom::Beginning)
            .await
            .unwrap()
    );
    Consumer::new(pool.clone(), name)
}

// 1. The visibility fence.

#[sqlx::test]
async fn an_event_with_a_lower_seq_committing_last_is_delivered_not_skipped(pool: PgPool) {
    let consumer = registered(&pool, "billing").await;

    // A inserts first (seq n), B second (seq n + 1); B commits while A is still open.
    let mut a = pool.begin().await.unwrap();
    let (a_id, a_seq) = insert_event(&mut a, 1).await;
    let mut b = pool.begin().await.unwrap();
    let (b_id, b_seq) = insert_event(&mut b, 2).await;
    assert!(a_seq < b_seq);
    b.commit().await.unwrap();

    // What a reader ordering by seq alone would see now: B, past A's seq, so it would move
    // its cursor beyond A and never read A.
    let visible: Vec<i64> = sqlx::query_scalar("select seq from rotessa.outbox order by seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(visible, vec![b_seq]);

    // The consumer is not handed B while A is in flight (B is not behind the fence), so
    // nothing it can ack moves it past A. Both the Rust API and the SQL function say so.
    assert!(consumer.poll(100).await.unwrap().is_empty());
    let via_sql: Vec<Uuid> =
        sqlx::query_scalar("select id from rotessa.outbox_poll('billing', 100)")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(via_sql.is_empty(), "{via_sql:?}");
    // An ack at B's position is refused while A is in flight.
    let b_txid: String = sqlx::query_scalar("select txid::text from rotessa.outbox where id = $1")
        .bind(b_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let early = outbox_consumers::ack(
        &pool,
        "billing",
        Position {
            txid: b_txid.parse().unwrap(),
            seq: b_seq,
        },
    )
    .await;
    assert!(early.is_err(), "{early:?}");

    a.commit().await.unwrap();

    // Now both, A first (delivery order is (txid, seq)), each once.
    let delivered = poll_until(&consumer, 2).await;
    assert_eq!(ids(&delivered), vec![a_id, b_id]);
    assert!(consumer.ack(delivered[1].position()).await.unwrap());
    assert!(consumer.poll(100).await.unwrap().is_empty());
    // Forward only: acking A again changes nothing.
    assert!(!consumer.ack(delivered[0].position()).await.unwrap());
    assert!(consumer.poll(100).await.unwrap().is_empty());
}

#[sqlx::test]
async fn many_interleaved_writers_are_each_delivered_once_in_delivery_order(pool: PgPool) {
    let consumer = registered(&pool, "audit").await;
    // Ten writers on connections of their own, each with an open transaction, inserted in one
    // order and committed in the reverse order, with the consumer polling and acking between
    // commits.
    let mut writers = Vec::new();
    for _ in 0..10 {
        writers.push(PgConnection::connect(&database_url(&pool)).await.unwrap());
    }
    let mut open = Vec::new();
    let mut expected = BTreeSet::new();
    for (key, conn) in (0..).zip(writers.iter_mut()) {
        let mut tx = conn.begin().await.unwrap();
        let (id, _) = insert_event(&mut tx, key).await;
        expected.insert(id);
        open.push(tx);
    }
    let mut seen: Vec<Uuid> = Vec::new();
    while let Some(tx) = open.pop() {
        tx.commit().await.unwrap();
        let batch = consumer.poll(100).await.unwrap();
        if let Some(last) = batch.last() {
            consumer.ack(last.position()).await.unwrap();
        }
        seen.extend(ids(&batch));
    }
    let rest = poll_until(&consumer, expected.len() - seen.len()).await;
    if let Some(last) = rest.last() {
        consumer.ack(last.position()).await.unwrap();
    }
    seen.extend(ids(&rest));

    assert_eq!(seen.len(), expected.len(), "an event was delivered twice");
    assert_eq!(seen.iter().copied().collect::<BTreeSet<_>>(), expected);
    // All commits came after every insert, so nothing was deliverable before the first
    // (lowest-txid) transaction committed, and delivery order is txid order: insert order.
    assert_eq!(seen, outbox_ids(&pool).await);
}

#[sqlx::test]
async fn registration_is_explicit_idempotent_and_can_start_now(pool: PgPool) {
    let old = commit_events(&pool, 1..=3).await;

    // An unregistered name is an error that says how to register, not a silent new consumer.
    let err = Consumer::new(pool.clone(), "typo")
        .poll(10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, store::Error::UnknownConsumer(ref n) if n == "typo"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("rotessa-recon outbox register typo"),
        "{err}"
    );
    assert_eq!(count(&pool, "rotessa.outbox_consumers").await, 0);

    let from_start = registered(&pool, "from-start").await;
    // Registering again keeps the position.
    from_start
        .ack(poll_until(&from_start, 3).await[0].position())
        .await
        .unwrap();
    assert!(
        !Consumer::register(&pool, "from-start", StartFrom::Beginning)
            .await
            .unwrap()
    );
    assert_eq!(ids(&from_start.poll(10).await.unwrap()), old[1..].to_vec());

    // The old events are behind the fence now (just polled), so "now" starts after them.
    assert!(
        Consumer::register(&pool, "late", StartFrom::Now)
            .await
            .unwrap()
    );
    let late = Consumer::new(pool.clone(), "late");
    assert!(late.poll(10).await.unwrap().is_empty());
    let new = commit_events(&pool, 4..=4).await;
    assert_eq!(ids(&poll_until(&late, 1).await), new);

    assert!(outbox_consumers::unregister(&pool, "late").await.unwrap());
    assert!(!outbox_consumers::unregister(&pool, "late").await.unwrap());
}

// 2. At-least-once delivery; exactly-once observation by deduplicating on the event id.

/// The consumer's side effect: one row per event id, however often it is delivered.
async fn process(conn: &mut PgConnection, event: &Event) -> bool {
    sqlx::query("insert into processed (event_id) values ($1) on conflict do nothing")
        .bind(event.id)
        .execute(conn)
        .await
        .unwrap()
        .rows_affected()
        == 1
}

async fn connect_process(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url(pool))
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_crash_between_processing_and_ack_redelivers_and_dedup_observes_once(pool: PgPool) {
    sqlx::query("create table processed (event_id uuid primary key)")
        .execute(&pool)
        .await
        .unwrap();
    let written = commit_events(&pool, 1..=5).await;
    Consumer::register(&pool, "ledger", StartFrom::Beginning)
        .await
        .unwrap();
    let mut deliveries = 0;

    // First life of the consumer process: processes three of the five events, then dies
    // before acking anything.
    {
        let process_pool = connect_process(&pool).await;
        let consumer = Consumer::new(process_pool.clone(), "ledger");
        let batch = poll_until(&consumer, 5).await;
        assert_eq!(ids(&batch), written);
        let mut conn = process_pool.acquire().await.unwrap();
        for event in &batch[..3] {
            deliveries += 1;
            assert!(process(&mut conn, event).await);
        }
        // The crash: the process is gone, no ack was sent.
        drop(conn);
        drop(consumer);
        drop(process_pool);
    }

    // Second life: the unacked events come back (at-least-once); dedup makes the three
    // already processed a no-op.
    {
        let process_pool = connect_process(&pool).await;
        let consumer = Consumer::new(process_pool.clone(), "ledger");
        let batch = consumer.poll(100).await.unwrap();
        assert_eq!(ids(&batch), written, "every unacked event is redelivered");
        let mut conn = process_pool.acquire().await.unwrap();
        let mut newly = 0;
        for event in &batch {
            deliveries += 1;
            newly += u32::from(process(&mut conn, event).await);
        }
        assert_eq!(newly, 2);
        assert!(
            consumer
                .ack(batch.last().unwrap().position())
                .await
                .unwrap()
        );
        assert!(consumer.poll(100).await.unwrap().is_empty());
    }

    assert_eq!(deliveries, 8, "3 in the first life, 5 in the second");
    let observed: Vec<Uuid> =
        sqlx::query_scalar("select event_id from processed order by event_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(observed, expected, "each event observed exactly once");
}

#[sqlx::test]
async fn acking_in_the_transaction_of_the_side_effects_is_exactly_once(pool: PgPool) {
    sqlx::query("create table processed (event_id uuid primary key)")
        .execute(&pool)
        .await
        .unwrap();
    let written = commit_events(&pool, 1..=4).await;
    let consumer = registered(&pool, "ledger").await;

    // Processed and acked in one transaction that never commits (a crash): nothing happened.
    let batch = poll_until(&consumer, 4).await;
    let mut tx = pool.begin().await.unwrap();
    for event in &batch {
        process(&mut tx, event).await;
    }
    outbox_consumers::ack(&mut *tx, "ledger", batch[3].position())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&pool, "processed").await, 0);

    // Redelivered, processed and acked together: done, once.
    let batch = consumer.poll(100).await.unwrap();
    assert_eq!(ids(&batch), written);
    let mut tx = pool.begin().await.unwrap();
    for event in &batch {
        assert!(process(&mut tx, event).await);
    }
    outbox_consumers::ack(&mut *tx, "ledger", batch[3].position())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&pool, "processed").await, 4);
    assert!(consumer.poll(100).await.unwrap().is_empty());
}

// 3. Retention.

fn retention(days: u32, batch_size: u32) -> Retention {
    Retention {
        days,
        batch_size,
        without_consumers: false,
    }
}

#[sqlx::test]
async fn retention_keeps_everything_when_no_consumer_is_registered(pool: PgPool) {
    let written = commit_events(&pool, 1..=10).await;
    age_events(&pool, 400).await;
    assert_eq!(prune(&pool, &retention(30, 3)).await.unwrap(), 0);
    assert_eq!(prune(&pool, &retention(0, 3)).await.unwrap(), 0);
    assert_eq!(outbox_ids(&pool).await, written);

    // Unless told otherwise (CDC-only deployments), and then by age alone.
    commit_events(&pool, 11..=12).await;
    let cdc = Retention {
        without_consumers: true,
        ..retention(30, 3)
    };
    assert_eq!(prune(&pool, &cdc).await.unwrap(), 10);
    assert_eq!(count(&pool, "rotessa.outbox").await, 2);
}

#[sqlx::test]
async fn retention_never_deletes_what_a_registered_consumer_has_not_acked(pool: PgPool) {
    let written = commit_events(&pool, 1..=10).await;
    age_events(&pool, 40).await;
    let fast = registered(&pool, "fast").await;
    let slow = registered(&pool, "slow").await;
    let events = poll_until(&fast, 10).await;
    fast.ack(events[9].position()).await.unwrap();
    slow.ack(events[3].position()).await.unwrap();

    // Old and acked by both: events 1-4, deleted three at a time.
    let policy = retention(30, 3);
    assert_eq!(prune_batch(&pool, &policy).await.unwrap(), 3);
    assert_eq!(prune_batch(&pool, &policy).await.unwrap(), 1);
    assert_eq!(prune_batch(&pool, &policy).await.unwrap(), 0);
    assert_eq!(outbox_ids(&pool).await, written[4..].to_vec());
    // Not even with a retention of zero days.
    assert_eq!(prune(&pool, &retention(0, 3)).await.unwrap(), 0);
    assert_eq!(ids(&slow.poll(100).await.unwrap()), written[4..].to_vec());

    // Young events stay even when acked; the old acked ones go.
    let young = commit_events(&pool, 11..=12).await;
    let rest = poll_until(&slow, 8).await;
    slow.ack(rest[7].position()).await.unwrap();
    fast.ack(rest[7].position()).await.unwrap();
    assert_eq!(prune(&pool, &policy).await.unwrap(), 6);
    assert_eq!(outbox_ids(&pool).await, young);

    // Unregistering everyone brings back the default: keep everything.
    outbox_consumers::unregister(&pool, "fast").await.unwrap();
    outbox_consumers::unregister(&pool, "slow").await.unwrap();
    age_events(&pool, 40).await;
    assert_eq!(prune(&pool, &policy).await.unwrap(), 0);
    assert_eq!(outbox_ids(&pool).await, young);
}

#[sqlx::test]
async fn retention_holds_for_every_ack_position_of_the_slowest_consumer(pool: PgPool) {
    let written = commit_events(&pool, 1..=12).await;
    age_events(&pool, 40).await;
    let slow = registered(&pool, "slow").await;
    let fast = registered(&pool, "fast").await;
    let events = poll_until(&fast, 12).await;
    fast.ack(events[11].position()).await.unwrap();
    for acked in 0..12 {
        slow.ack(events[acked].position()).await.unwrap();
        prune(&pool, &retention(30, 5)).await.unwrap();
        // Exactly the events after the slow consumer's position remain.
        assert_eq!(outbox_ids(&pool).await, written[acked + 1..].to_vec());
        assert_eq!(
            ids(&slow.poll(100).await.unwrap()),
            written[acked + 1..].to_vec()
        );
    }
}

// 4. `outbox tail` and the other commands, through the real binary.

fn db_env(db: &str) -> Vec<(&str, &str)> {
    vec![("DATABASE_URL", db)]
}

fn event_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON event line ({e}): {line}"))
}

/// Latencies in ms as `min / median / p95 / max`.
fn describe(mut samples: Vec<f64>) -> String {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} min {:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        samples.len(),
        at(0.0),
        at(0.5),
        at(0.95),
        at(1.0)
    )
}

#[sqlx::test]
async fn tail_follow_shows_events_soon_after_they_commit(pool: PgPool) {
    let db = database_url(&pool);
    // A long polling interval, so that what is measured is the LISTEN/NOTIFY path.
    let mut env = db_env(&db);
    env.push(("RECON_OUTBOX__POLL_INTERVAL_MS", "600000"));
    let mut tail = Spawned::start(&["outbox", "tail", "--follow"], &env);
    let ready = tail.wait_stderr("following rotessa.outbox").await;
    assert!(ready.contains("LISTEN"), "{ready}");

    // A real sync commits a page with an event and NOTIFY.
    let server = MockServer::start().await;
    serve_report(&server, &rows(7..=7, "Approved")).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let started = Instant::now();
    let reports = sync_window(&syncer, "2019-02-15", "2019-03-12").await;
    let emitted: i64 = reports.iter().map(|r| r.progress.events).sum();
    assert_eq!(emitted, 1, "{reports:?}");
    let line = tail.next_line().await;
    let via_sync = started.elapsed();
    let first = event_line(&line);
    assert_eq!(first["type"], "transaction.status_changed");
    assert_eq!(first["aggregateid"], "7");
    assert_eq!(first["payload"]["to_status"], "Approved");

    // Then events committed one at a time: from the commit returning to the line on stdout.
    let mut samples = Vec::new();
    for key in 100..120 {
        let id = commit_events(&pool, [key]).await[0];
        let committed = Instant::now();
        let line = tail.next_line().await;
        let latency = committed.elapsed();
        assert_eq!(event_line(&line)["id"], id.to_string());
        assert!(latency < PATIENCE);
        samples.push(latency.as_secs_f64() * 1000.0);
    }
    println!(
        "outbox tail --follow latency (LISTEN/NOTIFY): sync pass start to line {:.1} ms; commit to line {}",
        via_sync.as_secs_f64() * 1000.0,
        describe(samples)
    );
}

#[sqlx::test]
async fn tail_follow_delivers_an_event_held_behind_the_fence_in_order_once_it_lifts(pool: PgPool) {
    let db = database_url(&pool);
    let mut env = db_env(&db);
    env.push(("RECON_OUTBOX__POLL_INTERVAL_MS", "600000"));
    let mut tail = Spawned::start(&["outbox", "tail", "--follow"], &env);
    tail.wait_stderr("following rotessa.outbox").await;

    // A (lower seq) stays open while B commits and notifies: the tail must not print B first
    // (an unregistered tail's position would then be past A, and A would never be printed).
    let mut a = pool.begin().await.unwrap();
    let (a_id, _) = insert_event(&mut a, 1).await;
    let b_id = commit_events(&pool, [2]).await[0];
    a.commit().await.unwrap();
    let lifted = Instant::now();
    let first = event_line(&tail.next_line().await);
    let latency = lifted.elapsed();
    let second = event_line(&tail.next_line().await);
    assert_eq!(first["id"], a_id.to_string());
    assert_eq!(second["id"], b_id.to_string());
    // A's commit sent no NOTIFY; the polling interval is ten minutes: what delivered both is
    // the follower re-polling while notified events waited behind the fence.
    println!(
        "outbox tail --follow: fence lifted to first line {:.1} ms",
        latency.as_secs_f64() * 1000.0
    );
}

#[sqlx::test]
async fn tail_follow_falls_back_to_polling_without_listen(pool: PgPool) {
    let db = database_url(&pool);
    let mut env = db_env(&db);
    env.push(("RECON_OUTBOX__LISTEN", "false"));
    env.push(("RECON_OUTBOX__POLL_INTERVAL_MS", "200"));
    let mut tail = Spawned::start(&["outbox", "tail", "--follow"], &env);
    let ready = tail.wait_stderr("following rotessa.outbox").await;
    assert!(ready.contains("polling"), "{ready}");

    // No NOTIFY at all, as behind PgBouncer in transaction pooling mode.
    let mut samples = Vec::new();
    for key in 1..=5 {
        let mut tx = pool.begin().await.unwrap();
        let (id, _) = insert_event(&mut tx, key).await;
        tx.commit().await.unwrap();
        let committed = Instant::now();
        let line = tail.next_line().await;
        let latency = committed.elapsed();
        assert_eq!(event_line(&line)["id"], id.to_string());
        assert!(latency < PATIENCE);
        samples.push(latency.as_secs_f64() * 1000.0);
    }
    println!(
        "outbox tail --follow latency (polling every 200 ms, no NOTIFY): commit to line {}",
        describe(samples)
    );
}

#[sqlx::test]
async fn tail_prints_json_lines_and_acks_only_as_a_registered_consumer(pool: PgPool) {
    let db = database_url(&pool);
    let env = db_env(&db);
    let written = commit_events(&pool, 1..=5).await;
    // `tail` without --follow prints what is deliverable now: make sure that is all five
    // (another test's open transaction may hold the cluster-wide fence for a moment).
    wait_deliverable(&pool, 5).await;
    let line_ids = |out: &std::process::Output| -> Vec<Uuid> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| event_line(l)["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };

    // Without --consumer: from the start, nothing recorded.
    let out = run_binary(&["outbox", "tail"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(line_ids(&out), written);
    let first = event_line(String::from_utf8_lossy(&out.stdout).lines().next().unwrap());
    for field in [
        "id",
        "aggregatetype",
        "aggregateid",
        "type",
        "payload",
        "occurred_at",
    ] {
        assert!(!first[field].is_null(), "{field} missing: {first}");
    }
    assert!(
        first["seq"].is_i64() && first["txid"].is_string(),
        "{first}"
    );
    let out = run_binary(&["outbox", "tail", "--max", "2"], &env);
    assert_eq!(line_ids(&out), written[..2].to_vec());
    assert_eq!(count(&pool, "rotessa.outbox_consumers").await, 0);

    // An unregistered consumer is a usage error that says how to register.
    let out = run_binary(&["outbox", "tail", "--consumer", "erp"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(output_text(&out).contains("rotessa-recon outbox register erp"));

    // A registered consumer resumes where it acked.
    let out = run_binary(&["outbox", "register", "erp"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let out = run_binary(&["outbox", "tail", "--consumer", "erp", "--max", "3"], &env);
    assert_eq!(line_ids(&out), written[..3].to_vec());
    let out = run_binary(&["outbox", "tail", "--consumer", "erp"], &env);
    assert_eq!(line_ids(&out), written[3..].to_vec());
    let out = run_binary(&["outbox", "tail", "--consumer", "erp"], &env);
    assert!(line_ids(&out).is_empty());
}

#[sqlx::test]
async fn stats_and_prune_commands_report_backlog_and_retention(pool: PgPool) {
    let db = database_url(&pool);
    let env = db_env(&db);
    commit_events(&pool, 1..=6).await;
    age_events(&pool, 45).await;

    let out = run_binary(&["outbox", "stats"], &env);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("outbox: 6 events"), "{text}");
    assert!(text.contains("no registered consumers"), "{text}");

    let erp = registered(&pool, "erp").await;
    let _crm = registered(&pool, "crm").await;
    let events = poll_until(&erp, 6).await;
    erp.ack(events[3].position()).await.unwrap();
    let out = run_binary(&["outbox", "stats"], &env);
    let text = output_text(&out);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(line("crm")[1], "6", "{text}");
    assert_eq!(line("erp")[1], "2", "{text}");
    assert!(line("crm")[2].ends_with('d'), "45 days old: {text}");

    // crm has acked nothing: nothing may go.
    let out = run_binary(&["outbox", "prune"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(output_text(&out).contains("deleted 0 events"));
    let crm = Consumer::new(pool.clone(), "crm");
    crm.ack(events[1].position()).await.unwrap();
    let out = run_binary(&["outbox", "prune", "--batch", "1"], &env);
    assert!(
        output_text(&out).contains("deleted 2 events"),
        "{}",
        output_text(&out)
    );
    let out = run_binary(&["outbox", "prune", "--retention-days", "60"], &env);
    assert!(output_text(&out).contains("deleted 0 events"));
    assert_eq!(count(&pool, "rotessa.outbox").await, 4);

    let out = run_binary(&["outbox", "unregister", "nobody"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let remaining: HashSet<Uuid> = outbox_ids(&pool).await.into_iter().collect();
    assert_eq!(remaining, ids(&events[2..]).into_iter().collect());
}
