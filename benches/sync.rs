//! The sync benchmark: rotessa-recon against the physical limit, measured side by side in one
//! run (SPEC.md "Performance and reliability"; these machines are shared, so ratios are the
//! figures, not times).
//!
//! `cargo bench --bench sync` (1,000,000 transactions), `cargo bench --bench sync -- --quick`
//! (100,000). Steps:
//!  1. the simulator, in this process, with N transactions over the transactions window;
//!  2. a backfill by the real binary into a fresh database: rows/s, events/s, peak RSS;
//!  3. the same final rows of transactions, history and outbox COPYed into fresh tables with the
//!     same indexes: the physical limit, and our rate as a share of it;
//!  4. the clock advanced a day (about 1% of rows change), a re-sync: rows written and events
//!     emitted must equal the rows and statuses that changed;
//!  5. a re-sync with nothing changed: no row written or locked (xmin/xmax), no event, and its
//!     speed as a multiple of the backfill's, with the page cache (the steady state) and
//!     without it (every row compared);
//!  6. with 200 ms of latency per request, the wall time of a re-sync against the ideal
//!     pages x 0.2 s / concurrency.

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rotessa_recon::sim::{SimConfig, SimServer};
use sqlx::{Connection, PgConnection};

const CONCURRENCY: usize = 4;

struct Args {
    transactions: u32,
    latency_ms: u64,
    skip_latency: bool,
}

fn args() -> Args {
    let mut a = Args {
        transactions: 1_000_000,
        latency_ms: 200,
        skip_latency: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.transactions = 100_000,
            "--transactions" => {
                a.transactions = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.transactions)
            }
            "--latency-ms" => {
                a.latency_ms = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.latency_ms)
            }
            "--skip-latency" => a.skip_latency = true,
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn db_url(name: &str) -> String {
    let base = base_url();
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("DATABASE_URL has a database name");
    format!("{prefix}/{name}")
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
    db_url(name)
}

/// What one run of the binary cost.
struct Measured {
    wall: Duration,
    peak_rss_kib: u64,
}

/// Runs `rotessa-recon <args>` with `env`, sampling its peak RSS (`VmHWM`) while it runs.
fn run_binary(args: &[&str], env: &[(&str, String)]) -> Measured {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotessa-recon"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RECON_LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start rotessa-recon");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            peak = peak.max(vm_hwm_kib(&text));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        panic!("rotessa-recon {args:?} failed: {err}");
    }
    Measured {
        wall,
        peak_rss_kib: peak,
    }
}

fn vm_hwm_kib(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The last run's own duration (from `rotessa.sync_runs`): the daemon's cost of a pass, without
/// the process start-up (TLS and connection setup) a one-shot command adds.
async fn last_run_secs(conn: &mut PgConnection) -> f64 {
    sqlx::query_scalar(
        "select extract(epoch from finished_at - started_at)::float8
         from rotessa.sync_runs order by id desc limit 1",
    )
    .fetch_one(conn)
    .await
    .expect("run duration")
}

async fn scalar(conn: &mut PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.expect(sql)
}

/// A digest of every transaction row's identity and version: equal digests mean no row was
/// written or locked (a write changes xmin, a lock sets xmax).
async fn row_versions(conn: &mut PgConnection) -> String {
    sqlx::query_scalar(
        "select md5(string_agg(id::text || ':' || xmin::text || ':' || xmax::text, ',' order by id))
         from rotessa.transactions",
    )
    .fetch_one(conn)
    .await
    .expect("row versions")
}

/// The write set, as COPY binary data per table: (target statement, data).
async fn export(conn: &mut PgConnection) -> Vec<(&'static str, Vec<u8>)> {
    let tables = [
        (
            "copy rotessa.transactions to stdout (format binary)",
            "copy rotessa.transactions from stdin (format binary)",
        ),
        (
            "copy (select transaction_id, from_status, to_status, status_reason, decline_date,
                          observed_at, source, sync_run_id
                   from rotessa.transaction_status_history) to stdout (format binary)",
            "copy rotessa.transaction_status_history (transaction_id, from_status, to_status,
                  status_reason, decline_date, observed_at, source, sync_run_id)
             from stdin (format binary)",
        ),
        (
            "copy (select id, aggregatetype, aggregateid, type, payload, occurred_at
                   from rotessa.outbox) to stdout (format binary)",
            "copy rotessa.outbox (id, aggregatetype, aggregateid, type, payload, occurred_at)
             from stdin (format binary)",
        ),
    ];
    let mut out = Vec::new();
    for (read, write) in tables {
        let mut data = Vec::new();
        let mut stream = conn.copy_out_raw(read).await.expect("copy out");
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk.expect("copy out chunk"));
        }
        drop(stream);
        out.push((write, data));
    }
    out
}

/// COPYs the write set into a fresh database with the same schema; `parallel` uses one
/// connection per table at once.
async fn copy_in(url: &str, set: &[(&'static str, Vec<u8>)], parallel: bool) -> Duration {
    let mut conns = Vec::new();
    for _ in set {
        conns.push(PgConnection::connect(url).await.expect("connect"));
    }
    let started = Instant::now();
    let one = |mut conn: PgConnection, statement: &'static str, data: Vec<u8>| async move {
        let mut copy = conn.copy_in_raw(statement).await.expect("copy in");
        for chunk in data.chunks(1 << 20) {
            copy.send(chunk).await.expect("copy chunk");
        }
        copy.finish().await.expect("copy finish");
    };
    if parallel {
        let tasks: Vec<_> = conns
            .into_iter()
            .zip(set.iter().cloned())
            .map(|(conn, (statement, data))| tokio::spawn(one(conn, statement, data)))
            .collect();
        for task in tasks {
            task.await.expect("copy task");
        }
    } else {
        for (conn, (statement, data)) in conns.into_iter().zip(set.iter().cloned()) {
            one(conn, statement, data).await;
        }
    }
    started.elapsed()
}

fn rate(n: i64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let n = args.transactions;
    println!("rotessa-recon sync benchmark: {n} transactions, concurrency {CONCURRENCY}");
    println!(
        "(PostgreSQL at {}; figures are ratios measured in this run)\n",
        base_url()
    );

    // 1. The simulator: every process date inside the transactions window.
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("date");
    let config = SimConfig {
        transactions: n,
        customers: (n / 20).max(100),
        today,
        history_days: 100,
        future_days: 60,
        ..SimConfig::default()
    };
    let sim = SimServer::start(config.clone(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    println!(
        "simulator: generated in {:.2} s at {}",
        sim.generated_in().as_secs_f64(),
        sim.base_url()
    );

    let db = fresh_database("rotessa_bench").await;
    let env = |today: chrono::NaiveDate, base: &str| -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", db.clone()),
            ("RECON_ROTESSA__BASE_URL", base.to_owned()),
            ("RECON_ROTESSA__API_KEY", config.api_key.clone()),
            ("RECON_ROTESSA__CONCURRENCY", CONCURRENCY.to_string()),
            ("RECON_SYNC__TODAY", today.to_string()),
        ]
    };
    run_binary(&["migrate"], &env(today, &sim.base_url()));
    let sync = ["sync", "--stream", "transactions", "--no-migrate"];
    let mut conn = PgConnection::connect(&db).await.expect("connect");

    // 2. Backfill.
    let backfill = run_binary(&sync, &env(sim.today(), &sim.base_url()));
    let backfill_secs = last_run_secs(&mut conn).await;
    let rows = scalar(&mut conn, "select count(*) from rotessa.transactions").await;
    let events = scalar(&mut conn, "select count(*) from rotessa.outbox").await;
    let pages = scalar(
        &mut conn,
        "select sum(pages)::bigint from rotessa.sync_runs",
    )
    .await;
    assert_eq!(rows, i64::from(n), "every transaction landed");
    println!(
        "backfill:  {rows} rows, {events} events, {pages} pages: run {backfill_secs:.2} s ({:.0} rows/s, {:.0} events/s), process {:.2} s, peak RSS {:.1} MiB",
        rows as f64 / backfill_secs,
        events as f64 / backfill_secs,
        backfill.wall.as_secs_f64(),
        backfill.peak_rss_kib as f64 / 1024.0
    );

    // 3. The physical limit: COPY of the same final rows into fresh tables, same indexes.
    let set = export(&mut conn).await;
    let mb: usize = set.iter().map(|(_, d)| d.len()).sum::<usize>() >> 20;
    let copy_db = fresh_database("rotessa_bench_copy").await;
    run_binary(&["migrate"], &[("DATABASE_URL", copy_db.clone())]);
    let sequential = copy_in(&copy_db, &set, false).await;
    let copy_db2 = fresh_database("rotessa_bench_copy2").await;
    run_binary(&["migrate"], &[("DATABASE_URL", copy_db2.clone())]);
    let parallel = copy_in(&copy_db2, &set, true).await;
    println!(
        "COPY:      the same {rows} transactions + {events} history + {events} outbox rows ({mb} MiB binary): sequential {:.2} s ({:.0} rows/s), 3 tables in parallel {:.2} s ({:.0} rows/s)",
        sequential.as_secs_f64(),
        rate(rows, sequential),
        parallel.as_secs_f64(),
        rate(rows, parallel)
    );
    let best_copy = sequential.min(parallel);
    println!(
        "ratio:     backfill rate / COPY rate = {:.0}% of the faster COPY ({:.0}% of sequential COPY); by process time {:.0}%",
        100.0 * best_copy.as_secs_f64() / backfill_secs,
        100.0 * sequential.as_secs_f64() / backfill_secs,
        100.0 * best_copy.as_secs_f64() / backfill.wall.as_secs_f64()
    );

    // 4. About 1% changes: a day later.
    let before_events = events;
    sqlx::raw_sql(
        "create temp table before as select id, fingerprint, status, status_reason, decline_date
         from rotessa.transactions",
    )
    .execute(&mut conn)
    .await
    .expect("snapshot");
    sim.advance(1);
    let changed = run_binary(&sync, &env(sim.today(), &sim.base_url()));
    let written = scalar(
        &mut conn,
        "select (rows_inserted + rows_updated)::bigint from rotessa.sync_runs order by id desc limit 1",
    )
    .await;
    let emitted = scalar(&mut conn, "select count(*) from rotessa.outbox").await - before_events;
    let rows_changed = scalar(
        &mut conn,
        "select count(*) from rotessa.transactions t left join before b using (id)
         where b.id is null or b.fingerprint <> t.fingerprint",
    )
    .await;
    let statuses_changed = scalar(
        &mut conn,
        "select count(*) from rotessa.transactions t left join before b using (id)
         where b.id is null
            or (b.status, b.status_reason, b.decline_date)
               is distinct from (t.status, t.status_reason, t.decline_date)",
    )
    .await;
    println!(
        "1% change: {rows_changed} rows changed ({:.2}%), {written} written; {statuses_changed} status changes, {emitted} events; run {:.2} s, process {:.2} s",
        100.0 * rows_changed as f64 / rows as f64,
        last_run_secs(&mut conn).await,
        changed.wall.as_secs_f64()
    );
    assert_eq!(
        written, rows_changed,
        "rows written must equal rows changed"
    );
    assert_eq!(
        emitted, statuses_changed,
        "events must equal status changes"
    );

    // 5. Nothing changed: the steady state (pages byte-identical, skipped unparsed), and the
    //    same with every row compared (the page cache off; what the first run after the
    //    windows move costs).
    let versions = row_versions(&mut conn).await;
    let events_now = scalar(&mut conn, "select count(*) from rotessa.outbox").await;
    let unchanged = run_binary(&sync, &env(sim.today(), &sim.base_url()));
    let unchanged_secs = last_run_secs(&mut conn).await;
    let mut no_cache = env(sim.today(), &sim.base_url());
    no_cache.push(("RECON_SYNC__PAGE_CACHE", "false".to_owned()));
    let compared = run_binary(&sync, &no_cache);
    let compared_secs = last_run_secs(&mut conn).await;
    assert_eq!(
        row_versions(&mut conn).await,
        versions,
        "a row was written or locked"
    );
    let emitted = scalar(&mut conn, "select count(*) from rotessa.outbox").await - events_now;
    assert_eq!(emitted, 0, "events emitted with nothing changed");
    println!(
        "no change: 0 rows written or locked (xmin/xmax digest unchanged), 0 events; run {unchanged_secs:.2} s: {:.1}x faster than the backfill (by process time {:.1}x), peak RSS {:.1} MiB",
        backfill_secs / unchanged_secs,
        backfill.wall.as_secs_f64() / unchanged.wall.as_secs_f64(),
        unchanged.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "           with every row compared (sync.page_cache = false): run {compared_secs:.2} s: {:.1}x faster than the backfill (by process time {:.1}x)",
        backfill_secs / compared_secs,
        backfill.wall.as_secs_f64() / compared.wall.as_secs_f64(),
    );

    // 6. Latency: a re-sync with nothing to write, 200 ms per request.
    if !args.skip_latency {
        sim.set_faults(0.0, Duration::from_millis(args.latency_ms));
        run_binary(&sync, &no_cache);
        let slow_secs = last_run_secs(&mut conn).await;
        let requests = scalar(
            &mut conn,
            "select pages::bigint from rotessa.sync_runs order by id desc limit 1",
        )
        .await;
        let ideal = requests as f64 * args.latency_ms as f64 / 1000.0 / CONCURRENCY as f64;
        println!(
            "latency:   {} ms per request, {requests} pages: run {slow_secs:.1} s against the ideal {:.1} s (pages x latency / concurrency): {:+.0}%",
            args.latency_ms,
            ideal,
            100.0 * (slow_secs / ideal - 1.0)
        );
    }
    sim.shutdown().await;
}
