//! Shared test helpers: settings pointing at a mock Rotessa, a syncer over the test database,
//! report rows as the API sends them, and the real binary.
#![allow(dead_code)]

pub mod chromium;
pub mod daemon;
pub mod guarantees;
pub mod outbox;
pub mod platform;
pub mod proxy;
pub mod readme;
pub mod roles;
pub mod schemas;
pub mod simulated;
pub mod tempdir;

use std::collections::HashMap;
use std::process::Output;
use std::sync::Arc;

use rotessa_recon::config::Settings;
use rotessa_recon::rotessa::Client;
use rotessa_recon::store::Store;
use rotessa_recon::sync::{PassOptions, RunReport, Stream, Syncer};
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The API key tests use; it must never show up in output.
pub const API_KEY: &str = "test-key-5f3c9a";

/// Settings for a mock Rotessa at `base_url`: fast retries, a fixed today, `extra` on top.
pub fn settings(base_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("RECON_ROTESSA__BASE_URL", base_url),
        ("RECON_ROTESSA__API_KEY", API_KEY),
        ("RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS", "1"),
        ("RECON_ROTESSA__RETRY__MAX_BACKOFF_MS", "5"),
        ("RECON_ROTESSA__RETRY__JITTER", "false"),
        ("RECON_SYNC__TODAY", "2019-03-12"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::load_from(None, &env).expect("test settings are valid")
}

/// A syncer over the test database's pool.
pub fn syncer(pool: &PgPool, settings: Settings) -> Syncer {
    let client = Client::new(&settings.rotessa, settings.api_key().expect("key")).expect("client");
    Syncer::new(Store::from_pool(pool.clone()), client, Arc::new(settings))
}

/// One pass of the transactions stream over a single window, `from..=to`.
pub async fn sync_window(syncer: &Syncer, from: &str, to: &str) -> Vec<RunReport> {
    let opts = PassOptions {
        client: None,
        from: Some(from.parse().expect("date")),
        to: Some(to.parse().expect("date")),
    };
    syncer.run(Stream::Transactions, &opts).await
}

/// A transaction report row as the API sends it.
pub fn row(id: i64, status: &str) -> Value {
    json!({
        "account_number": "****32",
        "amount": "25.00",
        "client_id": 4321,
        "created_at": "2019-01-29T15:46:03.000-05:00",
        "comment": null,
        "custom_identifier": format!("C{id}"),
        "customer_id": 1,
        "decline_date": null,
        "earliest_approval_date": null,
        "id": id,
        "institution_number": "*23",
        "process_date": "2019-03-01",
        "settlement_date": "2019-03-08",
        "status": status,
        "status_reason": null,
        "transaction_custom_identifieer": "TS1",
        "transaction_number": format!("INV{id}"),
        "transaction_schedule_id": 330374,
        "transit_number": "***45",
        "updated_at": "2019-03-01T10:00:00.000-05:00"
    })
}

/// Rows `ids` with `status`.
pub fn rows(ids: std::ops::RangeInclusive<i64>, status: &str) -> Vec<Value> {
    ids.map(|id| row(id, status)).collect()
}

/// Serves `rows` from `/v2/transaction_report` in pages of 1000, replacing earlier mocks.
pub async fn serve_report(server: &MockServer, rows: &[Value]) {
    serve_report_slowly(server, rows, std::time::Duration::ZERO).await;
}

/// Like [`serve_report`], each page answered after `delay`.
pub async fn serve_report_slowly(server: &MockServer, rows: &[Value], delay: std::time::Duration) {
    server.reset().await;
    let pages: Vec<&[Value]> = if rows.is_empty() {
        vec![&[]]
    } else {
        rows.chunks(1000).collect()
    };
    let full_last = rows.len().is_multiple_of(1000) && !rows.is_empty();
    for (i, page) in pages.iter().enumerate() {
        mount_page(server, i + 1, page, delay).await;
    }
    if full_last {
        mount_page(server, pages.len() + 1, &[], delay).await;
    }
}

async fn mount_page(
    server: &MockServer,
    number: usize,
    rows: &[Value],
    delay: std::time::Duration,
) {
    Mock::given(method("GET"))
        .and(path("/v2/transaction_report"))
        .and(query_param("page", number.to_string()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(rows)
                .set_delay(delay),
        )
        .mount(server)
        .await;
}

/// A single `bigint` from a query.
pub async fn scalar(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// The most pages any run has committed so far (has a sync got going?).
pub async fn pages_committed(pool: &PgPool) -> i64 {
    scalar(
        pool,
        "select coalesce(max(pages), 0)::bigint from rotessa.sync_runs",
    )
    .await
}

/// Counts rows of a table.
pub async fn count(pool: &PgPool, table: &str) -> i64 {
    let sql = format!("select count(*) from {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .expect("count")
}

/// The URL of the test database the pool is connected to.
pub fn database_url(pool: &PgPool) -> String {
    let db = pool
        .connect_options()
        .get_database()
        .expect("test database name")
        .to_owned();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    format!("{prefix}/{db}")
}

/// Runs the real binary with `args` and exactly the given environment (plus PATH).
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rotessa-recon"));
    cmd.args(args).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rotessa-recon")
}

/// [`run_binary`] off the async runtime's thread, so that an in-process simulator on the same
/// runtime can answer the binary meanwhile.
pub async fn run_binary_async(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_binary(&args, &env)
    })
    .await
    .expect("the binary's thread")
}

/// stdout and stderr of a finished command, as one string.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
