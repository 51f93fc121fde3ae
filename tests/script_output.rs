//! Output for scripts: `status --output json`, `reconcile --format csv|json` and
//! `outbox stats --output json` parse, and carry what the database holds.

mod common;

use common::simulated::{sim_syncer, sync_all};
use common::tempdir::TempDir;
use common::*;
use rotessa_recon::sim::{SimConfig, SimServer};
use serde_json::Value;
use sqlx::PgPool;

const TODAY: &str = "2026-11-24";
const FROM: &str = "2026-10-01";

async fn simulator() -> SimServer {
    SimServer::start(
        SimConfig {
            seed: 5,
            clients: 2,
            customers: 30,
            transactions: 300,
            today: TODAY.parse().unwrap(),
            history_days: 40,
            future_days: 10,
            api_key: API_KEY.to_owned(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Runs the binary against the test database and returns its stdout, which must be exit 0.
async fn stdout_of(pool: &PgPool, args: &[&str]) -> String {
    let db = database_url(pool);
    let out = run_binary_async(args, &[("DATABASE_URL", db.as_str())]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        output_text(&out)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A minimal RFC 4180 reader for the test: records of fields, quotes honoured.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && record.is_empty(), "unterminated record");
    records
}

/// The reconciliation as the database formats it (`numeric(14,2)` text), in the CSV's columns.
async fn reconciliation_rows(pool: &PgPool) -> Vec<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select concat_ws(',', client_id, settlement_date,
                    case when matched then 'matched' else 'mismatch' end,
                    rotessa_total_approved::numeric(14,2), rotessa_number_approved,
                    computed_total_approved, computed_number_approved, diff_total_approved,
                    rotessa_total_declined::numeric(14,2), rotessa_number_declined,
                    computed_total_declined, computed_number_declined, diff_total_declined,
                    rotessa_total_chargeback::numeric(14,2), rotessa_number_chargeback,
                    computed_total_chargeback, computed_number_chargeback, diff_total_chargeback)
         from rotessa.settlement_reconciliation
         where settlement_date between $1::date and $2::date
         order by matched, settlement_date desc, client_id",
    )
    .bind(FROM)
    .bind(TODAY)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(line,)| line.split(',').map(str::to_owned).collect())
        .collect()
}

#[sqlx::test]
async fn reconcile_csv_and_json_carry_the_view_and_outbox_stats_the_backlog(pool: PgPool) {
    let sim = simulator().await;
    sync_all(&sim_syncer(&pool, &sim, &[])).await;
    // One mismatched date, by 0.50 more approved on Rotessa's side.
    let (client, date): (i64, chrono::NaiveDate) = sqlx::query_as(
        "update rotessa.settlements set total_approved = total_approved + 0.5
         where (client_id, settlement_date) = (select client_id, max(settlement_date)
             from rotessa.settlements where settlement_date <= $1::date
             group by client_id order by client_id limit 1)
         returning client_id, settlement_date",
    )
    .bind(TODAY)
    .fetch_one(&pool)
    .await
    .unwrap();
    let expected = reconciliation_rows(&pool).await;
    assert!(expected.len() > 5, "{expected:?}");

    let csv = stdout_of(
        &pool,
        &[
            "reconcile",
            "--format",
            "csv",
            "--from",
            FROM,
            "--to",
            TODAY,
        ],
    )
    .await;
    let records = parse_csv(&csv);
    assert_eq!(
        records[0].join(","),
        "client_id,settlement_date,outcome,\
         approved_rotessa_total,approved_rotessa_count,approved_ours_total,approved_ours_count,approved_diff_total,\
         declined_rotessa_total,declined_rotessa_count,declined_ours_total,declined_ours_count,declined_diff_total,\
         chargeback_rotessa_total,chargeback_rotessa_count,chargeback_ours_total,chargeback_ours_count,chargeback_diff_total"
    );
    assert_eq!(records[1..], expected[..]);
    // Mismatches first, money as plain decimals.
    assert_eq!(
        records[1][..3],
        [client.to_string(), date.to_string(), "mismatch".into()]
    );
    assert_eq!(records[1][7], "0.50");
    assert!(records[2..].iter().all(|r| r[2] == "matched"));

    let json: Value = serde_json::from_str(
        &stdout_of(
            &pool,
            &[
                "reconcile",
                "--format",
                "json",
                "--from",
                FROM,
                "--to",
                TODAY,
            ],
        )
        .await,
    )
    .expect("reconcile --format json parses");
    let array = json.as_array().expect("an array");
    assert_eq!(array.len(), expected.len());
    for (object, record) in array.iter().zip(&records[1..]) {
        for (key, value) in records[0].iter().zip(record) {
            let got = match &object[key] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("{key}: {other}"),
            };
            assert_eq!(&got, value, "{key} in {object}");
        }
        assert!(
            object["approved_rotessa_total"].is_string(),
            "money is a string"
        );
        assert!(object["client_id"].is_i64());
    }

    // --format and --html do not go together: a usage error, nothing written.
    let dir = TempDir::new("script-output");
    let html = dir.path().join("page.html");
    let db = database_url(&pool);
    let out = run_binary_async(
        &[
            "reconcile",
            "--format",
            "csv",
            "--html",
            html.to_str().unwrap(),
        ],
        &[("DATABASE_URL", db.as_str())],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("cannot be used with"),
        "{}",
        output_text(&out)
    );
    assert!(!html.exists());

    // outbox stats: the summary, and a consumer that has read nothing yet.
    stdout_of(&pool, &["outbox", "register", "scripts"]).await;
    let stats: Value =
        serde_json::from_str(&stdout_of(&pool, &["outbox", "stats", "--output", "json"]).await)
            .expect("outbox stats --output json parses");
    let events = count(&pool, "rotessa.outbox").await;
    assert!(events > 0);
    assert_eq!(stats["events"], events);
    // Any transaction open on the server (another test's) holds events behind the fence.
    assert!(
        stats["behind_fence"].as_i64().unwrap() <= events,
        "{stats:#}"
    );
    assert_eq!(stats["retention_days"], 30);
    let (oldest, newest): (String, String) = sqlx::query_as(
        "select to_char(min(occurred_at) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                to_char(max(occurred_at) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
         from rotessa.outbox",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stats["oldest_at"], oldest);
    assert_eq!(stats["newest_at"], newest);
    let consumers = stats["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 1, "{stats:#}");
    assert_eq!(consumers[0]["name"], "scripts");
    assert_eq!(consumers[0]["backlog"], events);
    assert_eq!(consumers[0]["oldest_unacked_at"], oldest);
    assert!(consumers[0]["oldest_unacked_age_secs"].is_i64());
    assert!(consumers[0]["last_ack_at"].as_str().unwrap().ends_with('Z'));
}

#[sqlx::test]
async fn status_json_has_the_facts_of_the_tables(pool: PgPool) {
    sqlx::query(
        "insert into rotessa.sync_runs (stream, client_id, status, started_at, finished_at,
                                        heartbeat_at, pages, rows_seen, rows_inserted,
                                        rows_updated, rows_rejected, events_emitted, error)
         values ('transactions', 0, 'running', now() - interval '1 hour', null,
                 now() - interval '1 hour', 0, 0, 0, 0, 0, 0, null),
                ('settlements', 4321, 'succeeded', '2026-11-24 10:00:00+00',
                 '2026-11-24 10:00:07+00', '2026-11-24 10:00:07+00', 3, 120, 100, 15, 2, 9, null),
                ('declines', 0, 'failed', '2026-11-24 11:00:00+00', '2026-11-24 11:00:05+00',
                 '2026-11-24 11:00:05+00', 0, 0, 0, 0, 0, 0, 'HTTP 500: \"boom\", twice')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into rotessa.sync_state (stream, client_id, cursor_date, last_success_at)
         values ('settlements', 4321, '2026-11-20', now() - interval '2 hours')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into rotessa.leases (name, holder, token, expires_at)
         values ('scheduler', 'host-a:4242', 7, now() + interval '1 minute')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let text = stdout_of(&pool, &["status", "--output", "json"]).await;
    let status: Value = serde_json::from_str(&text).expect("status --output json parses");

    assert_eq!(status["leader"]["holder"], "host-a:4242");
    assert_eq!(status["leader"]["token"], 7);
    let generated = status["generated_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(generated).is_ok(),
        "{generated}"
    );
    let streams = status["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 3, "{status:#}");
    let stream = |name: &str| {
        streams
            .iter()
            .find(|s| s["stream"] == name)
            .unwrap_or_else(|| panic!("no {name} in {status:#}"))
    };
    let abandoned = stream("transactions");
    assert_eq!(abandoned["outcome"], "abandoned");
    assert_eq!(abandoned["recorded_status"], "running");
    assert_eq!(abandoned["client_id"], Value::Null);
    assert_eq!(abandoned["finished_at"], Value::Null);
    assert_eq!(abandoned["lag_secs"], Value::Null);

    let settled = stream("settlements");
    assert_eq!(settled["client_id"], 4321);
    assert_eq!(settled["outcome"], "succeeded");
    assert_eq!(settled["started_at"], "2026-11-24T10:00:00Z");
    assert_eq!(settled["finished_at"], "2026-11-24T10:00:07Z");
    assert_eq!(settled["cursor_date"], "2026-11-20");
    assert_eq!(settled["pages"], 3);
    assert_eq!(settled["rows_seen"], 120);
    assert_eq!(settled["rows_written"], 115);
    assert_eq!(settled["rows_rejected"], 2);
    assert_eq!(settled["events_emitted"], 9);
    let lag = settled["lag_secs"].as_i64().unwrap();
    assert!((7190..7300).contains(&lag), "{lag}");

    let errors = status["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{status:#}");
    assert_eq!(errors[0]["stream"], "declines");
    assert_eq!(errors[0]["status"], "failed");
    assert_eq!(errors[0]["at"], "2026-11-24T11:00:05Z");
    assert_eq!(errors[0]["error"], "HTTP 500: \"boom\", twice");

    // The default is still the text.
    let text = stdout_of(&pool, &["status"]).await;
    assert!(
        text.starts_with("leader: host-a:4242 (lease token 7)"),
        "{text}"
    );
}

#[sqlx::test]
async fn an_empty_database_gives_empty_lists(pool: PgPool) {
    stdout_of(&pool, &["migrate"]).await;
    let status: Value =
        serde_json::from_str(&stdout_of(&pool, &["status", "--output", "json"]).await).unwrap();
    assert_eq!(status["leader"], Value::Null);
    assert_eq!(status["streams"], serde_json::json!([]));
    assert_eq!(status["recent_errors"], serde_json::json!([]));
    let csv = stdout_of(
        &pool,
        &[
            "reconcile",
            "--format",
            "csv",
            "--from",
            FROM,
            "--to",
            TODAY,
        ],
    )
    .await;
    assert_eq!(parse_csv(&csv).len(), 1, "the header alone: {csv}");
    let json = stdout_of(
        &pool,
        &[
            "reconcile",
            "--format",
            "json",
            "--from",
            FROM,
            "--to",
            TODAY,
        ],
    )
    .await;
    assert_eq!(json.trim(), "[]");
}
