//! The relay's throughput (README "The relay"): 100,000 outbox events relayed by the real
//! binary (`outbox relay`) to NATS JetStream and to RabbitMQ on this machine, from spawn until
//! the outbox consumer has acked the last one; and the relay's CPU time for it.
//!
//! `cargo bench --bench relay` (`-- --events N` for another count). Needs PostgreSQL
//! (`DATABASE_URL`, default the local server), NATS with JetStream on 127.0.0.1:4222 and
//! RabbitMQ on 127.0.0.1:5672 (guest/guest).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sqlx::{Connection as _, PgConnection};

const NATS: &str = "nats://127.0.0.1:4222";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn fresh_database(name: &str) -> String {
    let mut admin = PgConnection::connect(&base_url())
        .await
        .expect("connect to PostgreSQL");
    for sql in [
        format!("drop database if exists {name} with (force)"),
        format!("create database {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("create database");
    }
    let base = base_url();
    let (prefix, _) = base.rsplit_once('/').expect("DATABASE_URL has a database");
    format!("{prefix}/{name}")
}

fn binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotessa-recon"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RECON_LOG__LEVEL", "warn")
        .env("RECON_HTTP__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start rotessa-recon")
}

/// User + system CPU seconds of a live process, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn backlog(conn: &mut PgConnection, consumer: &str) -> Option<i64> {
    sqlx::query_scalar("select backlog from rotessa.outbox_consumer_lag where name = $1")
        .bind(consumer)
        .fetch_optional(conn)
        .await
        .expect("backlog")
}

/// Relays every event as `consumer`; returns (seconds, relay CPU seconds).
async fn relay(db: &str, to: &str, consumer: &str, env: &[(&str, &str)]) -> (f64, f64) {
    let mut conn = PgConnection::connect(db).await.expect("connect");
    let mut all = vec![("DATABASE_URL", db)];
    all.extend_from_slice(env);
    let started = Instant::now();
    let mut child = binary(
        &["outbox", "relay", "--to", to, "--consumer", consumer],
        &all,
    );
    let mut cpu = 0.0;
    loop {
        cpu = f64::max(cpu, cpu_secs(child.id()));
        if backlog(&mut conn, consumer).await == Some(0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "relay too slow"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    cpu = f64::max(cpu, cpu_secs(child.id()));
    let _ = child.kill();
    let _ = child.wait();
    (wall, cpu)
}

#[tokio::main]
async fn main() {
    let mut events: i64 = 100_000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--events") {
        events = args[i + 1].parse().expect("--events N");
    }
    let db = fresh_database("rotessa_recon_bench_relay").await;
    let status = binary(&["migrate"], &[("DATABASE_URL", &db)])
        .wait()
        .expect("migrate");
    assert!(status.success());
    let mut conn = PgConnection::connect(&db).await.expect("connect");
    // Events shaped like transaction.status_changed, five per aggregate.
    sqlx::query(
        "insert into rotessa.outbox (id, aggregatetype, aggregateid, type, payload)
         select gen_random_uuid(), 'transaction', (i % ($1 / 5 + 1))::text,
                'transaction.status_changed',
                jsonb_build_object('event_version', 1, 'transaction_id', i % ($1 / 5 + 1),
                  'client_id', 4321, 'customer_id', 180000 + i % 400, 'amount', '100.00',
                  'from_status', 'Pending', 'to_status', 'Approved', 'status_reason', null,
                  'process_date', '2026-11-20', 'settlement_date', '2026-11-26',
                  'decline_date', null, 'transaction_number', 'INV' || i,
                  'custom_identifier', null, 'observed_at', now(),
                  'source', 'transaction_report', 'reversal', false)
         from generate_series(1, $1) i",
    )
    .bind(events)
    .execute(&mut conn)
    .await
    .expect("insert events");
    println!("relay benchmark: {events} outbox events, relay.batch 5000 (the default), 2 cores");

    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
    let stream = format!("BENCH{suffix}");
    let prefix = format!("bench{suffix}");
    let (wall, cpu) = relay(
        &db,
        NATS,
        "bench-nats",
        &[
            ("RECON_RELAY__NATS_STREAM", &stream),
            ("RECON_RELAY__SUBJECT_PREFIX", &prefix),
        ],
    )
    .await;
    println!(
        "  NATS JetStream: {:.0} events/s ({wall:.2} s), relay CPU {cpu:.2} s ({:.0}% of one core)",
        events as f64 / wall,
        100.0 * cpu / wall
    );
    if let Ok(client) = async_nats::connect(NATS).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(&stream)
            .await;
    }

    // A durable queue bound to the exchange, so that confirms mean "persisted in a queue".
    let exchange = format!("bench.{suffix}");
    let amqp = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    let channel = amqp.create_channel().await.expect("channel");
    channel
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    let queue = format!("bench-{suffix}");
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
        .expect("queue");
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let (wall, cpu) = relay(
        &db,
        AMQP,
        "bench-rabbitmq",
        &[("RECON_RELAY__AMQP_EXCHANGE", &exchange)],
    )
    .await;
    println!(
        "  RabbitMQ (durable queue, publisher confirms): {:.0} events/s ({wall:.2} s), relay CPU {cpu:.2} s ({:.0}% of one core)",
        events as f64 / wall,
        100.0 * cpu / wall
    );
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
}
