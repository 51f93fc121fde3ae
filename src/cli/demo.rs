//! `demo`: one command for a newcomer. Starts the simulator in-process, syncs every stream into
//! a database of its own (`rotessa_recon_demo`, reset on each run, never the user's data),
//! advances the simulated clock a few times with a sync after each step, and prints what landed.

use std::collections::HashMap;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chrono::NaiveDate;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::Failure;
use crate::config::{DatabaseUrl, Settings};
use crate::rotessa::Client;
use crate::sim::{SimConfig, SimServer};
use crate::store::Store;
use crate::sync::{Clock, PassOptions, RunOutcome, Stream, Syncer};

/// The demo's own database on the user's server.
pub const DEMO_DATABASE: &str = "rotessa_recon_demo";
/// The server used when `DATABASE_URL` is not set.
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Clock steps after the first sync: this many, of this many days each.
const STEPS: u32 = 3;
const STEP_DAYS: u32 = 3;

/// Runs the demo; exit 0 when every sync run succeeded.
pub async fn run() -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let server = std::env::var("DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let demo_url = prepare_database(&server).await?;

    let sim = SimServer::start(
        SimConfig {
            seed: 42,
            clients: 3,
            customers: 400,
            transactions: 4000,
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .map_err(|e| Failure::Failed(e.into()))?;

    let env: HashMap<String, String> = [
        ("RECON_ROTESSA__BASE_URL", sim.base_url()),
        ("RECON_ROTESSA__API_KEY", sim.api_key().to_owned()),
        ("RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS", "50".to_owned()),
        ("RECON_ROTESSA__RETRY__MAX_BACKOFF_MS", "400".to_owned()),
        ("RECON_DATABASE__URL", demo_url.expose().to_owned()),
        ("RECON_LOG__LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Arc::new(Settings::load_from(None, &env)?);
    // Logs only: the demo's settings never turn traces on.
    let _telemetry = crate::telemetry::init(&settings.log)?;
    let client = Client::new(&settings.rotessa, settings.api_key()?)
        .map_err(|e| Failure::Failed(e.into()))?;
    let store = Store::connect(&settings.database).await?;
    store
        .migrate()
        .await
        .context("migrating the demo database")?;
    let syncer = Syncer::new(store.clone(), client, Arc::clone(&settings))
        .with_clock(Clock::Dynamic(sim.handle().clock()));

    let stats = sim.stats();
    println!("rotessa-recon demo");
    println!("==================");
    println!(
        "database:  {} (the demo's own; reset on every run)",
        demo_url.redacted()
    );
    println!(
        "simulator: {} with {} clients, {} customers, {} transactions; simulated today {}",
        sim.base_url(),
        stats.clients,
        stats.customers,
        stats.transactions,
        sim.today()
    );
    let mut failed = 0;
    println!("\n[{}] first sync", sim.today());
    failed += sync_all(&syncer).await;
    for step in 1..=STEPS {
        if step == STEPS {
            inject_mismatch(&store, &sim).await?;
        }
        let today = sim.advance(STEP_DAYS);
        println!("\n[{today}] the simulated clock moved {STEP_DAYS} days; sync again");
        failed += sync_all(&syncer).await;
    }

    summary(&store, sim.today()).await?;
    println!("\nExplore further:");
    println!("  psql '{}'", demo_url.redacted());
    for sql in EXPLORE {
        println!("    {sql}");
    }
    println!(
        "\nFollow the events: rotessa-recon outbox tail --follow (with DATABASE_URL set to the demo's), \
         or from any language: select rotessa.outbox_register('me'); \
         select * from rotessa.outbox_poll('me', 100); select rotessa.outbox_ack('me', txid, seq) \
         (docs/outbox-consumers.md)"
    );
    println!(
        "Run the simulator on its own with `rotessa-recon sim` (see docs/simulator.md) to build one offline."
    );
    sim.shutdown().await;
    println!(
        "\ndemo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::Failed(anyhow!(
            "{failed} sync runs did not succeed"
        )))
    }
}

const EXPLORE: [&str; 6] = [
    "select status, count(*), sum(amount) from rotessa.transactions where removed_at is null group by status;",
    "select c.name, t.status, count(*), sum(t.amount) from rotessa.transactions t join rotessa.customers c on c.id = t.customer_id group by 1, 2 order by 1, 2 limit 20;",
    "select * from rotessa.transaction_status_history where from_status is not null order by observed_at desc limit 20;",
    "select seq, type, payload from rotessa.outbox order by txid, seq limit 20;",
    "select id, stream, client_id, status, pages, rows_seen, rows_inserted, rows_updated, events_emitted from rotessa.sync_runs order by id;",
    "select client_id, settlement_date, status, count(*), sum(amount) from rotessa.transactions where removed_at is null group by 1, 2, 3 order by 2 desc limit 20;",
];

/// Runs every stream once; prints a line per run; returns how many runs did not succeed.
async fn sync_all(syncer: &Syncer) -> usize {
    let mut failed = 0;
    for stream in Stream::ALL {
        for report in syncer.run(stream, &PassOptions::default()).await {
            if report.outcome != RunOutcome::Succeeded {
                failed += 1;
            }
            println!("  {}", super::sync::summary(&report));
        }
    }
    failed
}

/// Connects to the server's `postgres` database, creates the demo database when missing, and
/// empties it; returns its URL.
async fn prepare_database(server: &str) -> Result<DatabaseUrl, Failure> {
    let server_url = DatabaseUrl::new(server);
    let options = PgConnectOptions::from_str(server).map_err(|e| {
        Failure::Usage(format!(
            "DATABASE_URL {} is not a PostgreSQL URL: {e}",
            server_url.redacted()
        ))
    })?;
    let mut url = reqwest::Url::parse(server).map_err(|e| {
        Failure::Usage(format!(
            "DATABASE_URL {} is not a URL: {e}",
            server_url.redacted()
        ))
    })?;
    url.set_path(&format!("/{DEMO_DATABASE}"));
    let demo_url = DatabaseUrl::new(url.to_string());
    let target = format!("{}:{}", options.get_host(), options.get_port());

    // The server's `postgres` database, or failing that the one DATABASE_URL names.
    let mut admin = match connect(options.clone().database("postgres")).await {
        Ok(conn) => conn,
        Err(first) => connect(options.clone())
            .await
            .map_err(|_| Failure::Failed(anyhow!(no_server_help(&target, &first))))?,
    };
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(DEMO_DATABASE)
            .fetch_one(&mut admin)
            .await
            .context("looking for the demo database")?;
    if !exists {
        sqlx::query("create database rotessa_recon_demo")
            .execute(&mut admin)
            .await
            .with_context(|| {
                format!(
                    "creating database {DEMO_DATABASE} on {target} (the user in DATABASE_URL needs CREATEDB)"
                )
            })?;
    }
    let _ = admin.close().await;

    let mut demo = connect(options.database(DEMO_DATABASE))
        .await
        .map_err(|e| anyhow!("connecting to {DEMO_DATABASE} on {target}: {e}"))?;
    for sql in [
        "drop schema if exists rotessa cascade",
        "drop table if exists public._sqlx_migrations",
    ] {
        sqlx::query(sql)
            .execute(&mut demo)
            .await
            .with_context(|| format!("resetting the demo database ({sql})"))?;
    }
    let _ = demo.close().await;
    Ok(demo_url)
}

async fn connect(options: PgConnectOptions) -> Result<PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(crate::error_chain(&e)),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}

fn no_server_help(target: &str, error: &str) -> String {
    format!(
        "cannot reach PostgreSQL at {target}: {error}\n\n\
         The demo needs a PostgreSQL server (13 or newer) it may create a database on.\n\
         Start the local one:\n    \
         pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
         or install one first:\n    \
         apt-get install -y postgresql\n\
         or point DATABASE_URL at another server, e.g.\n    \
         DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres rotessa-recon demo"
    )
}

/// Makes one settlement disagree with its transactions by 1.00, so the reconciliation has a
/// mismatch to show.
async fn inject_mismatch(store: &Store, sim: &SimServer) -> Result<(), Failure> {
    let Some(&client) = sim.handle().client_ids().first() else {
        return Ok(());
    };
    let latest: Option<NaiveDate> = sqlx::query_scalar(
        "select max(settlement_date) from rotessa.transactions \
         where client_id = $1 and status = 'Approved' and settlement_date <= $2 \
           and removed_at is null",
    )
    .bind(client)
    .bind(sim.today())
    .fetch_one(store.pool())
    .await
    .context("finding a settlement to skew")?;
    if let Some(date) = latest {
        sim.handle()
            .adjust_settlement(client, date, 100)
            .map_err(|e| Failure::Failed(anyhow!(e)))?;
        println!(
            "\n(injected: client {client}'s settlement of {date} now reports 1.00 more than its \
             transactions, via POST /_sim/settlement_adjust)"
        );
    }
    Ok(())
}

/// A status change as the demo prints it, with its customer's name.
#[derive(sqlx::FromRow)]
struct ChangeLine {
    transaction_id: i64,
    from_status: String,
    to_status: String,
    status_reason: Option<String>,
    amount: rust_decimal::Decimal,
    customer: Option<String>,
}

async fn summary(store: &Store, today: chrono::NaiveDate) -> Result<(), Failure> {
    let pool = store.pool();
    println!("\nWhat landed");
    println!("-----------");
    let statuses: Vec<(String, i64, rust_decimal::Decimal)> = sqlx::query_as(
        "select status, count(*), sum(amount) from rotessa.transactions where removed_at is null \
         group by status \
         order by array_position(array['Future','Pending','Approved','Declined','Chargeback'], status)",
    )
    .fetch_all(pool)
    .await
    .context("counting transactions")?;
    println!("rotessa.transactions by status (rows Rotessa still reports):");
    for (status, n, amount) in &statuses {
        println!("  {status:<11} {n:>6} rows  {amount:>12}");
    }

    let changes: Vec<(Option<String>, String, i64)> = sqlx::query_as(
        "select from_status, to_status, count(*) from rotessa.transaction_status_history \
         group by 1, 2 order by (from_status is null) desc, 3 desc",
    )
    .fetch_all(pool)
    .await
    .context("counting status changes")?;
    println!("\nStatus changes seen (rotessa.transaction_status_history):");
    for (from, to, n) in &changes {
        let from = from.as_deref().unwrap_or("(first seen)");
        println!("  {from:>12} -> {to:<11} {n:>6}");
    }

    let recent: Vec<ChangeLine> = sqlx::query_as(
        "select h.transaction_id, h.from_status, h.to_status, h.status_reason, t.amount, \
                coalesce(c.name, 'customer ' || t.customer_id) as customer \
         from rotessa.transaction_status_history h \
         join rotessa.transactions t on t.id = h.transaction_id \
         left join rotessa.customers c on c.id = t.customer_id \
         where h.from_status is not null and h.change = 'status' \
         order by h.observed_at desc, h.id desc limit 8",
    )
    .fetch_all(pool)
    .await
    .context("reading recent status changes")?;
    println!("\nLatest status changes, with the customer (rotessa.customers):");
    for c in &recent {
        let reason = c
            .status_reason
            .as_deref()
            .map_or(String::new(), |r| format!(" ({r})"));
        println!(
            "  transaction {}  {:<22} {:>9}  {} -> {}{reason}",
            c.transaction_id,
            c.customer.as_deref().unwrap_or("-"),
            c.amount,
            c.from_status,
            c.to_status
        );
    }

    let (customers, schedules, payouts, payout_total): (i64, i64, i64, rust_decimal::Decimal) =
        sqlx::query_as(
            "select (select count(*) from rotessa.customers where removed_at is null), \
                    (select count(*) from rotessa.transaction_schedules where removed_at is null), \
                    (select count(*) from rotessa.payouts where removed_at is null), \
                    (select coalesce(sum(amount), 0) from rotessa.payouts \
                     where removed_at is null and status = 'Approved')",
        )
        .fetch_one(pool)
        .await
        .context("counting customers and payouts")?;
    println!(
        "\nrotessa.customers: {customers}; rotessa.transaction_schedules: {schedules}; \
         rotessa.payouts: {payouts} (approved payouts to the platform: {payout_total})"
    );

    let (events, transitions): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where type = 'transaction.status_changed' \
                                             and payload->>'from_status' is not null) \
         from rotessa.outbox",
    )
    .fetch_one(pool)
    .await
    .context("counting outbox events")?;
    let by_type: Vec<(String, i64)> =
        sqlx::query_as("select type, count(*) from rotessa.outbox group by 1 order by 2 desc, 1")
            .fetch_all(pool)
            .await
            .context("counting outbox events by type")?;
    let by_type: Vec<String> = by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!(
        "\nOutbox: {events} events ({transitions} status transitions); by type: {}; a few:",
        by_type.join(", ")
    );
    let samples: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "(select type, payload from rotessa.outbox where type = 'transaction.status_changed' \
            and payload->>'from_status' is null order by seq limit 1) \
         union all \
         (select distinct on (payload->>'to_status') type, payload from rotessa.outbox \
          where type = 'transaction.status_changed' and payload->>'from_status' is not null \
          order by payload->>'to_status', seq desc)",
    )
    .fetch_all(pool)
    .await
    .context("reading outbox events")?;
    for (kind, payload) in &samples {
        println!("  {kind} {payload}");
    }

    let from = today - chrono::Days::new(30);
    let rows = crate::store::reconciliation::report(pool, None, from, today).await?;
    let model = crate::store::reconciliation::chargeback_on(pool).await?;
    println!("\nSettlement reconciliation, last 30 days (mismatches first):");
    for line in super::reconcile::render(&rows, from, today, 8, &model).lines() {
        println!("  {line}");
    }
    Ok(())
}
