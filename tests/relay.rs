//! The relay against the real brokers on this machine (NATS with JetStream on 127.0.0.1:4222,
//! RabbitMQ on 127.0.0.1:5672; `.ci/run` starts them): every event of a 10,000-event sync
//! arrives once and in per-aggregate order; the relay SIGKILLed at seeded points and restarted
//! leaves JetStream with every event exactly once and RabbitMQ with every event at least once
//! (duplicates recognisable by `message_id`, only across a kill); a broker stopped mid-run and
//! restarted loses nothing.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::guarantees::SplitMix64;
use common::*;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use rotessa_recon::config::Settings;
use rotessa_recon::rotessa::Client;
use rotessa_recon::sim::{SimConfig, SimServer};
use rotessa_recon::store::Store;
use rotessa_recon::sync::{Clock, PassOptions, RunOutcome, Stream, Syncer};
use sqlx::PgPool;

const NATS: &str = "nats://127.0.0.1:4222";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const LIMIT: Duration = Duration::from_secs(180);

/// A unique name per test run, so tests and reruns never share a stream, exchange or queue.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// Fills the outbox through real syncs: 10,000 transactions first seen, then the clock moves
/// and a second pass adds their transitions (several events per aggregate). Returns the
/// events in outbox order: (event id, aggregate id).
async fn sync_events(pool: &PgPool) -> Vec<(String, String)> {
    let sim = SimServer::start(
        SimConfig {
            seed: 7,
            transactions: 10_000,
            customers: 300,
            today: NaiveDate::from_ymd_opt(2019, 3, 12).unwrap(),
            history_days: 3,
            future_days: 3,
            api_key: API_KEY.to_owned(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let env: HashMap<String, String> = [
        ("RECON_ROTESSA__BASE_URL", sim.base_url()),
        ("RECON_ROTESSA__API_KEY", API_KEY.to_owned()),
        ("RECON_SYNC__TRANSACTIONS__LOOKBACK_DAYS", "10".to_owned()),
        ("RECON_SYNC__TRANSACTIONS__HORIZON_DAYS", "10".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::load_from(None, &env).unwrap();
    let client = Client::new(&settings.rotessa, settings.api_key().unwrap()).unwrap();
    let syncer = Syncer::new(Store::from_pool(pool.clone()), client, Arc::new(settings))
        .with_clock(Clock::Dynamic(sim.handle().clock()));
    for step in [0, 4] {
        sim.advance(step);
        for r in syncer
            .run(Stream::Transactions, &PassOptions::default())
            .await
        {
            assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
        }
    }
    sim.shutdown().await;
    let events: Vec<(String, String)> =
        sqlx::query_as("select id::text, aggregateid from rotessa.outbox order by txid, seq")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(events.len() > 10_000, "{} events", events.len());
    let aggregates: HashSet<&String> = events.iter().map(|(_, a)| a).collect();
    assert!(
        aggregates.len() < events.len(),
        "some aggregates have several events"
    );
    events
}

/// `outbox relay` as a child process, logging to a file.
struct Relay {
    child: Child,
    log: PathBuf,
}

impl Relay {
    fn spawn(pool: &PgPool, to: &str, env: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("{}.log", unique("relay-")));
        let file = std::fs::File::create(&log).unwrap();
        let db = database_url(pool);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotessa-recon"));
        cmd.args(["outbox", "relay", "--to", to])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db)
            .env("RECON_HTTP__LISTEN", "127.0.0.1:0")
            .env("RECON_LEASE__TTL_SECS", "3")
            .env("RECON_RELAY__INITIAL_BACKOFF_MS", "50")
            .env("RECON_RELAY__MAX_BACKOFF_MS", "500")
            .env("RECON_LOG__LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Events the relay's consumer has not acked (None before it registered).
async fn backlog(pool: &PgPool, consumer: &str) -> Option<i64> {
    sqlx::query_scalar("select backlog from rotessa.outbox_consumer_lag where name = $1")
        .bind(consumer)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Waits until the relay acked every event.
async fn wait_relayed(pool: &PgPool, consumer: &str, relay: &Relay) {
    let start = Instant::now();
    while backlog(pool, consumer).await != Some(0) {
        assert!(
            start.elapsed() < LIMIT,
            "the relay did not catch up:\n{}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts per-aggregate order: each aggregate's events arrive in outbox order (a duplicate
/// may repeat an earlier one, never skip ahead and come back).
fn assert_per_aggregate_order(events: &[(String, String)], arrived: &[String]) {
    let index: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let mut last: HashMap<&str, usize> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for id in arrived {
        let i = *index
            .get(id.as_str())
            .unwrap_or_else(|| panic!("unknown event {id}"));
        if !seen.insert(id.as_str()) {
            continue;
        }
        let aggregate = events[i].1.as_str();
        if let Some(before) = last.insert(aggregate, i) {
            assert!(
                before < i,
                "aggregate {aggregate}: event {i} arrived after event {before}"
            );
        }
    }
}

/// Every message of a JetStream stream, in stream order: their `Nats-Msg-Id`s.
async fn jetstream_ids(url: &str, stream: &str) -> Vec<String> {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    let mut ids = Vec::new();
    for seq in 1..=last {
        let m = s.get_raw_message(seq).await.unwrap();
        let id = m.headers.get("Nats-Msg-Id").unwrap().to_string();
        assert_eq!(
            m.headers.get("Rotessa-Event-Id").map(|v| v.to_string()),
            Some(id.clone())
        );
        ids.push(id);
    }
    ids
}

/// Kills the relay at seeded points while it works through the backlog, restarting it after
/// each; returns how many kills landed before it was done.
async fn kill_while_relaying(
    pool: &PgPool,
    consumer: &str,
    spawn: impl Fn() -> Relay,
    seed: u64,
    total: usize,
) -> u32 {
    let mut rng = SplitMix64::new(seed);
    let mut kills = 0;
    let mut relay = spawn();
    for _ in 0..6 {
        let left = backlog(pool, consumer).await.unwrap_or(total as i64);
        if left == 0 {
            break;
        }
        // Kill once a seeded share of what is left has been acked.
        let target = left - 1 - rng.below((left as u64 / 3).max(1)) as i64;
        let start = Instant::now();
        while backlog(pool, consumer).await.unwrap_or(total as i64) > target {
            assert!(start.elapsed() < LIMIT, "{}", relay.log());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
        relay.kill();
        kills += 1;
        relay = spawn();
    }
    wait_relayed(pool, consumer, &relay).await;
    kills
}

#[sqlx::test]
async fn jetstream_holds_every_event_exactly_once_in_order_across_kills(pool: PgPool) {
    let events = sync_events(&pool).await;
    let stream = unique("RELAYTEST");
    let prefix = unique("relaytest");
    let env = [
        ("RECON_RELAY__NATS_STREAM", stream.as_str()),
        ("RECON_RELAY__SUBJECT_PREFIX", prefix.as_str()),
        ("RECON_RELAY__BATCH", "300"),
    ];
    let kills = kill_while_relaying(
        &pool,
        "relay",
        || Relay::spawn(&pool, NATS, &env),
        11,
        events.len(),
    )
    .await;
    assert!(kills >= 5, "only {kills} kills landed");
    let ids = jetstream_ids(NATS, &stream).await;
    assert_eq!(ids.len(), events.len(), "every event exactly once");
    let unique_ids: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique_ids.len(), events.len());
    assert_per_aggregate_order(&events, &ids);
    println!(
        "jetstream: {} events relayed through {kills} SIGKILLs, stored exactly once",
        events.len()
    );
}

/// A RabbitMQ queue bound to every routing key of `exchange`, declared before the relay runs.
async fn bound_queue(exchange: &str) -> (Connection, lapin::Channel, String) {
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = unique("relaytest-");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (conn, channel, queue)
}

/// Every message in the queue, in order: their `message_id`s (the queue is deleted after).
async fn drain(channel: &lapin::Channel, queue: &str) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let id = m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        ids.push(id);
    }
    let _ = channel
        .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
        .await;
    ids
}

#[sqlx::test]
async fn rabbitmq_gets_every_event_once_then_at_least_once_across_kills_and_a_broker_restart(
    pool: PgPool,
) {
    let events = sync_events(&pool).await;

    // Undisturbed: every event exactly once, in per-aggregate order.
    let exchange = unique("relaytest.");
    let (_clean_conn, clean_channel, clean_queue) = bound_queue(&exchange).await;
    let env = [
        ("RECON_RELAY__AMQP_EXCHANGE", exchange.as_str()),
        ("RECON_RELAY__CONSUMER", "relay-clean"),
    ];
    let relay = Relay::spawn(&pool, AMQP, &env);
    wait_relayed(&pool, "relay-clean", &relay).await;
    drop(relay);
    let ids = drain(&clean_channel, &clean_queue).await;
    assert_eq!(ids.len(), events.len(), "every event once");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), events.len());
    assert_per_aggregate_order(&events, &ids);

    // The same events again, for another consumer through another exchange, with faults.
    let exchange = unique("relaytest.");
    let (_conn, channel, queue) = bound_queue(&exchange).await;
    let env = [
        ("RECON_RELAY__AMQP_EXCHANGE", exchange.as_str()),
        ("RECON_RELAY__BATCH", "300"),
    ];
    // The broker stopped once a third is relayed (its durable exchange, queue and persistent
    // messages survive), then started again: the relay waits, retries, and goes on.
    let relay = Relay::spawn(&pool, AMQP, &env);
    let start = Instant::now();
    while backlog(&pool, "relay").await.unwrap_or(i64::MAX) > (events.len() as i64) * 2 / 3 {
        assert!(start.elapsed() < LIMIT, "{}", relay.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopped = StoppedRabbit::stop();
    let start = Instant::now();
    while !relay.log().contains("relaying failed") {
        assert!(start.elapsed() < LIMIT, "no retry logged:\n{}", relay.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stopped);
    let retries = relay.log().matches("relaying failed").count();
    drop(relay);
    let kills = kill_while_relaying(
        &pool,
        "relay",
        || Relay::spawn(&pool, AMQP, &env),
        17,
        events.len(),
    )
    .await;
    assert!(kills >= 5, "only {kills} kills landed");
    drop(channel);
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let ids = drain(&channel, &queue).await;
    let unique_ids: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique_ids.len(), events.len(), "every event at least once");
    let duplicates = ids.len() - events.len();
    assert!(
        duplicates <= (kills as usize + retries) * 300,
        "{duplicates} duplicates, more than the batches of {kills} kills and {retries} retries"
    );
    assert_per_aggregate_order(&events, &ids);
    println!(
        "rabbitmq: {} events relayed through a broker restart ({retries} retries logged) and \
         {kills} SIGKILLs: {} messages, {duplicates} duplicates",
        events.len(),
        ids.len()
    );
}

/// The machine's RabbitMQ stopped (`stop_app`) until dropped, even when the test fails.
struct StoppedRabbit;

impl StoppedRabbit {
    fn stop() -> Self {
        rabbitmqctl("stop_app");
        Self
    }
}

impl Drop for StoppedRabbit {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
    }
}

/// `rabbitmqctl <command>` on the machine's broker; it must succeed.
fn rabbitmqctl(command: &str) {
    let out = Command::new("rabbitmqctl")
        .arg(command)
        .output()
        .expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {command}: {out:?}");
}

/// A port nothing listens on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A JetStream server of this test's own, so that stopping it disturbs no other test.
struct NatsServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl NatsServer {
    fn start(port: u16, dir: PathBuf) -> Self {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        Self { child, port, dir }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_for_port(port: u16) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(start.elapsed() < LIMIT, "nats-server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn a_broker_stopped_mid_run_and_restarted_loses_nothing(pool: PgPool) {
    let events = sync_events(&pool).await;
    let dir = std::env::temp_dir().join(unique("nats-"));
    let port = free_port();
    let mut nats = NatsServer::start(port, dir.clone());
    wait_for_port(port).await;
    let url = nats.url();
    let env = [("RECON_RELAY__BATCH", "200")];
    let relay = Relay::spawn(&pool, &url, &env);
    // Stop the broker once part of the backlog is relayed; the relay waits and retries.
    let start = Instant::now();
    while backlog(&pool, "relay").await.unwrap_or(i64::MAX) > (events.len() as i64) * 2 / 3 {
        assert!(start.elapsed() < LIMIT, "{}", relay.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nats.stop();
    let stopped_at = backlog(&pool, "relay").await.unwrap();
    let start = Instant::now();
    while !relay.log().contains("relaying failed") {
        assert!(start.elapsed() < LIMIT, "no retry logged:\n{}", relay.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped_at > 0 && backlog(&pool, "relay").await.unwrap() > 0);
    let nats = NatsServer::start(port, nats.dir.clone());
    wait_for_port(port).await;
    wait_relayed(&pool, "relay", &relay).await;

    let ids = jetstream_ids(&nats.url(), "ROTESSA").await;
    let unique_ids: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique_ids.len(), events.len(), "nothing lost");
    assert_eq!(ids.len(), events.len(), "nothing stored twice");
    assert_per_aggregate_order(&events, &ids);
    let retries = relay.log().matches("relaying failed").count();
    println!(
        "broker restart: {} events, {retries} retries logged while NATS was down, none lost",
        events.len()
    );
    drop(relay);
    drop(nats);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn waves_never_hold_two_events_of_one_aggregate() {
    use rotessa_recon::relay::waves;
    let event = |aggregate: &str, seq: i64| rotessa_recon::outbox::Event {
        id: uuid::Uuid::now_v7(),
        aggregatetype: "transaction".into(),
        aggregateid: aggregate.into(),
        event_type: "transaction.status_changed".into(),
        payload: serde_json::json!({}),
        occurred_at: chrono::Utc::now(),
        seq,
        txid: 1,
    };
    let batch = vec![
        event("1", 1),
        event("2", 2),
        event("1", 3),
        event("3", 4),
        event("2", 5),
    ];
    let sizes: Vec<Vec<i64>> = waves(&batch)
        .iter()
        .map(|w| w.iter().map(|e| e.seq).collect())
        .collect();
    assert_eq!(sizes, vec![vec![1, 2], vec![3, 4, 5]]);
    // Never more in flight than JetStream's client allows unacknowledged.
    let many: Vec<_> = (0..5000).map(|i| event(&i.to_string(), i)).collect();
    let sizes: Vec<usize> = waves(&many).iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        vec![
            rotessa_recon::relay::MAX_WAVE,
            5000 - rotessa_recon::relay::MAX_WAVE
        ]
    );
}

#[sqlx::test]
async fn the_broker_password_never_reaches_the_logs(pool: PgPool) {
    sqlx::query("select rotessa.outbox_register('relay', 'beginning')")
        .execute(&pool)
        .await
        .unwrap();
    common::outbox::commit_events(&pool, [1, 2, 3]).await;
    // Nothing listens on port 1: every attempt fails and is logged.
    let relay = Relay::spawn(&pool, "amqp://guest:relay-pw-93c1@127.0.0.1:1/%2f", &[]);
    let start = Instant::now();
    while relay.log().matches("relaying failed").count() < 2 {
        assert!(start.elapsed() < LIMIT, "{}", relay.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = relay.log();
    assert!(!log.contains("relay-pw-93c1"), "{log}");
    assert!(log.contains("guest:[redacted]@127.0.0.1:1"), "{log}");
    assert_eq!(backlog(&pool, "relay").await, Some(3), "nothing acked");
}

#[sqlx::test]
async fn the_daemon_runs_the_relay_when_enabled(pool: PgPool) {
    let sim = common::daemon::simulator(1500, 0).await;
    let stream = unique("RELAYDAEMON");
    let prefix = unique("relaydaemon");
    let db = database_url(&pool);
    let daemon = common::daemon::Daemon::spawn(
        &db,
        &sim.base_url(),
        &[
            ("RECON_RELAY__ENABLED", "true"),
            ("RECON_RELAY__TO", NATS),
            ("RECON_RELAY__NATS_STREAM", stream.as_str()),
            ("RECON_RELAY__SUBJECT_PREFIX", prefix.as_str()),
        ],
    );
    let start = Instant::now();
    loop {
        let events = count(&pool, "rotessa.outbox").await;
        if events >= 1500 && backlog(&pool, "relay").await == Some(0) {
            break;
        }
        assert!(start.elapsed() < LIMIT, "{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids = jetstream_ids(NATS, &stream).await;
    assert_eq!(ids.len() as i64, count(&pool, "rotessa.outbox").await);
}

#[sqlx::test]
async fn an_exchange_no_queue_is_bound_to_gets_nothing_acked(pool: PgPool) {
    sqlx::query("select rotessa.outbox_register('relay', 'beginning')")
        .execute(&pool)
        .await
        .unwrap();
    common::outbox::commit_events(&pool, [1, 2, 3]).await;
    let exchange = unique("relaytest.unbound.");
    let relay = Relay::spawn(
        &pool,
        AMQP,
        &[("RECON_RELAY__AMQP_EXCHANGE", exchange.as_str())],
    );
    let start = Instant::now();
    while relay.log().matches("no queue is bound").count() < 2 {
        assert!(start.elapsed() < LIMIT, "{}", relay.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        backlog(&pool, "relay").await,
        Some(3),
        "nothing acked into nowhere"
    );
}
