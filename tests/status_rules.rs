//! SPEC.md "Status rules": Rotessa's clock decides. Two reports that disagree for a while (one
//! lagging behind the other), reversals and resubmissions, stale observations, the page cache
//! and two writers at once, each asserting the exact outbox: one event per real transition,
//! never a flap.
//!
//! A mock Rotessa (`wiremock`, `tests/common/platform.rs`) serves rows stamped with the
//! `updated_at` each test chooses; real PostgreSQL (`#[sqlx::test]`).

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::daemon::wait_until;
use common::platform::*;
use common::*;
use rotessa_recon::sync::{PassOptions, RunOutcome, RunReport, Stream, Syncer};
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::MockServer;

const TODAY: &str = "2026-11-22";
const CLIENT: i64 = 1001;
/// Rotessa's clock, in order: the row's first state, then later changes.
const T0: &str = "2026-11-02T08:00:00.000-06:00";
const T1: &str = "2026-11-05T10:00:00.000-06:00";
const T2: &str = "2026-11-09T11:30:00.000-06:00";
const T3: &str = "2026-11-12T16:45:00.000-06:00";

fn platform_settings(
    server: &MockServer,
    extra: &[(&str, &str)],
) -> rotessa_recon::config::Settings {
    // One transactions window; the decline report read back to September at every run.
    let mut env = vec![
        ("RECON_SYNC__TODAY", TODAY),
        ("RECON_SYNC__TRANSACTIONS__WINDOW_DAYS", "400"),
        ("RECON_SYNC__DECLINES__OVERLAP_DAYS", "60"),
    ];
    env.extend_from_slice(extra);
    settings(&server.uri(), &env)
}

fn one_client() -> Platform {
    Platform {
        clients: vec![CLIENT],
        ..Platform::default()
    }
}

/// `row` with Rotessa's `updated_at` set to `at`.
fn stamped(row: &Value, at: &str) -> Value {
    let mut r = row.clone();
    r["updated_at"] = json!(at);
    r
}

/// Transaction `id` of the client with `status`, stamped `at`.
fn tx(id: i64, status: &str, at: &str) -> Value {
    stamped(&txn(id, CLIENT, status, "25.00", "2026-11-10"), at)
}

fn assert_succeeded(reports: &[RunReport]) {
    assert!(!reports.is_empty());
    for r in reports {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
}

/// One run of `stream` (for the one client); a per-client stream's first run may sync the
/// clients first.
async fn run(syncer: &Syncer, stream: Stream) -> RunReport {
    let reports = syncer.run(stream, &PassOptions::default()).await;
    assert_succeeded(&reports);
    let mut own = reports.into_iter().filter(|r| r.stream == stream.as_str());
    let report = own.next().expect("a run of the stream");
    assert!(own.next().is_none(), "one run of {stream}");
    report
}

/// Every event, as (transaction, from, to, source, reversal), in delivery order.
type Event = (String, Option<String>, String, String, bool);

async fn outbox(pool: &PgPool) -> Vec<Event> {
    sqlx::query_as(
        "select aggregateid, payload->>'from_status', payload->>'to_status',
                payload->>'source', (payload->>'reversal')::bool
         from rotessa.outbox where aggregatetype = 'transaction' order by txid, seq",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn event(id: i64, from: Option<&str>, to: &str, source: &str, reversal: bool) -> Event {
    (
        id.to_string(),
        from.map(str::to_owned),
        to.to_owned(),
        source.to_owned(),
        reversal,
    )
}

const REPORT: &str = "transaction_report";
const DECLINES: &str = "transaction_decline_report";

async fn stored(pool: &PgPool, id: i64) -> (String, Option<DateTime<Utc>>) {
    sqlx::query_as("select status, api_updated_at from rotessa.transactions where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The anomalies recorded for `id`: (kind, stored status, observed status, source).
async fn anomalies_of(pool: &PgPool, id: i64) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "select kind, stored_status, observed_status, source from rotessa.status_anomalies
         where transaction_id = $1 order by kind, source",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn anomaly(
    kind: &str,
    stored: &str,
    observed: &str,
    source: &str,
) -> (String, String, String, String) {
    (kind.into(), stored.into(), observed.into(), source.into())
}

/// Other rows of the same transaction-report page: 20 pending transactions, of which pass `n`
/// approves one more (so the page body changes at every pass and is compared row by row).
fn other_rows(pass: usize) -> Vec<Value> {
    (100..120)
        .map(|id| {
            if id < 100 + pass as i64 {
                tx(id, "Approved", T2)
            } else {
                tx(id, "Pending", T0)
            }
        })
        .collect()
}

/// Transaction `id`, processed before the transactions window: only the decline report
/// returns it.
fn old_txn(id: i64) -> Value {
    txn_on(id, CLIENT, "Pending", "25.00", "2026-07-01", "2026-07-06")
}

/// Other rows of the same decline-report page: pass `n` adds one more declined transaction,
/// processed before the transactions window (only the decline report returns it).
fn other_declines(pass: usize) -> Vec<Value> {
    (200..200 + pass as i64)
        .map(|id| as_decline(&stamped(&old_txn(id), T2), "Declined", "NSF", "2026-11-09"))
        .collect()
}

#[sqlx::test]
async fn a_decline_report_ahead_of_a_lagging_transaction_report_emits_one_transition(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    let approved = tx(7, "Approved", T1);
    let mut p = one_client();
    p.transactions = [vec![approved.clone()], other_rows(0)].concat();
    p.mount(&server).await;
    run(&syncer, Stream::Clients).await;
    run(&syncer, Stream::Transactions).await;
    run(&syncer, Stream::Declines).await;

    // Rotessa declines transaction 7 at T2. The decline report says so at once; the transaction
    // report keeps showing it Approved at T1 for four passes, while other rows of both pages
    // change, and the streams run in alternating order.
    let declined = stamped(&as_decline(&approved, "Declined", "NSF", "2026-11-09"), T2);
    let mut last_updated_at = stored(&pool, 7).await.1;
    let mut stale_seen = 0;
    for pass in 1..=6 {
        let caught_up = pass > 4;
        let mut report_row = approved.clone();
        if caught_up {
            report_row = stamped(
                &declined_in_report(&approved, "Declined", "NSF", "2026-11-09"),
                T2,
            );
        }
        p.transactions = [vec![report_row], other_rows(pass)].concat();
        p.declines.insert(
            CLIENT,
            [vec![declined.clone()], other_declines(pass)].concat(),
        );
        p.mount(&server).await;
        let order = if pass % 2 == 1 {
            [Stream::Declines, Stream::Transactions]
        } else {
            [Stream::Transactions, Stream::Declines]
        };
        for stream in order {
            let r = run(&syncer, stream).await;
            if stream == Stream::Transactions {
                stale_seen += r.progress.stale;
            }
            let (status, updated_at) = stored(&pool, 7).await;
            assert!(
                updated_at >= last_updated_at,
                "api_updated_at moved backward"
            );
            last_updated_at = updated_at;
            assert_eq!(status, "Declined", "pass {pass}, after {stream}");
        }
    }
    assert_eq!(stored(&pool, 7).await.0, "Declined");
    assert_eq!(stale_seen, 4, "the four lagging passes were stale");

    let mut expected = vec![
        event(7, None, "Approved", REPORT, false),
        event(7, Some("Approved"), "Declined", DECLINES, false),
    ];
    for id in 100..120 {
        expected.push(event(id, None, "Pending", REPORT, false));
        if id < 106 {
            expected.push(event(id, Some("Pending"), "Approved", REPORT, false));
        }
    }
    for id in 200..206 {
        expected.push(event(id, None, "Declined", DECLINES, false));
    }
    let mut actual = outbox(&pool).await;
    actual.sort();
    expected.sort();
    assert_eq!(actual, expected);
    assert_eq!(
        anomalies_of(&pool, 7).await,
        vec![anomaly("stale", "Declined", "Approved", REPORT)]
    );
}

#[sqlx::test]
async fn a_transaction_report_ahead_of_a_lagging_decline_report_emits_one_transition(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    // Transaction 8 was declined at T1, and both reports said so.
    let pending = tx(8, "Pending", T0);
    let declined = stamped(
        &declined_in_report(&pending, "Declined", "NSF", "2026-11-04"),
        T1,
    );
    let in_declines = stamped(&as_decline(&pending, "Declined", "NSF", "2026-11-04"), T1);
    let mut p = one_client();
    p.transactions = [vec![declined.clone()], other_rows(0)].concat();
    p.declines.insert(CLIENT, vec![in_declines.clone()]);
    p.mount(&server).await;
    run(&syncer, Stream::Clients).await;
    run(&syncer, Stream::Transactions).await;
    run(&syncer, Stream::Declines).await;

    // Rotessa corrects it to Approved at T3; the decline report lags for four passes.
    let mut approved = stamped(&pending, T3);
    approved["status"] = json!("Approved");
    for pass in 1..=5 {
        p.transactions = [vec![approved.clone()], other_rows(pass)].concat();
        let lagging = if pass <= 4 {
            vec![in_declines.clone()]
        } else {
            vec![]
        };
        p.declines
            .insert(CLIENT, [lagging, other_declines(pass)].concat());
        p.mount(&server).await;
        let order = if pass % 2 == 1 {
            [Stream::Transactions, Stream::Declines]
        } else {
            [Stream::Declines, Stream::Transactions]
        };
        for stream in order {
            run(&syncer, stream).await;
        }
        assert_eq!(stored(&pool, 8).await.0, "Approved", "pass {pass}");
    }
    let transitions: Vec<Event> = outbox(&pool)
        .await
        .into_iter()
        .filter(|e| e.0 == "8")
        .collect();
    assert_eq!(
        transitions,
        vec![
            event(8, None, "Declined", REPORT, false),
            event(8, Some("Declined"), "Approved", REPORT, false),
        ]
    );
    assert_eq!(
        anomalies_of(&pool, 8).await,
        vec![anomaly("stale", "Approved", "Declined", DECLINES)]
    );
}

#[sqlx::test]
async fn a_decline_resubmitted_as_future_is_applied_once_as_a_reversal(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    let pending = tx(9, "Pending", T0);
    let declined = stamped(
        &declined_in_report(&pending, "Declined", "NSF", "2026-11-04"),
        T1,
    );
    let in_declines = stamped(&as_decline(&pending, "Declined", "NSF", "2026-11-04"), T1);
    let mut p = one_client();
    p.transactions = vec![declined];
    p.declines.insert(CLIENT, vec![in_declines.clone()]);
    p.mount(&server).await;
    run(&syncer, Stream::Clients).await;
    run(&syncer, Stream::Transactions).await;
    run(&syncer, Stream::Declines).await;

    // Rotessa resubmits it: Future again, a new process date, a newer updated_at. The decline
    // report still lists the decline.
    let mut resubmitted = stamped(&pending, T2);
    resubmitted["status"] = json!("Future");
    resubmitted["process_date"] = json!("2026-11-27");
    resubmitted["settlement_date"] = json!("2026-12-02");
    p.transactions = vec![resubmitted];
    p.mount(&server).await;
    for _ in 0..3 {
        run(&syncer, Stream::Transactions).await;
        run(&syncer, Stream::Declines).await;
    }
    let (status, process_date): (String, chrono::NaiveDate) =
        sqlx::query_as("select status, process_date from rotessa.transactions where id = 9")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), process_date.to_string().as_str()),
        ("Future", "2026-11-27")
    );
    assert_eq!(
        outbox(&pool).await,
        vec![
            event(9, None, "Declined", REPORT, false),
            event(9, Some("Declined"), "Future", REPORT, true),
        ]
    );
    let reversals: Vec<(String, String, i32)> = sqlx::query_as(
        "select stored_status, observed_status, times_seen from rotessa.status_anomalies
         where transaction_id = 9 and kind = 'reversal'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(reversals, vec![("Declined".into(), "Future".into(), 1)]);
    assert_eq!(
        anomalies_of(&pool, 9).await,
        vec![
            anomaly("reversal", "Declined", "Future", REPORT),
            anomaly("stale", "Future", "Declined", DECLINES),
        ]
    );

    // The customer's schedule is edited: the Future row moves to another date, reported as
    // Future rows are, without an `updated_at`. The edit is written, without an event.
    let mut moved = pending.clone();
    moved["status"] = json!("Future");
    moved["updated_at"] = Value::Null;
    moved["process_date"] = json!("2026-11-30");
    moved["settlement_date"] = json!("2026-12-03");
    p.transactions = vec![moved];
    p.mount(&server).await;
    run(&syncer, Stream::Transactions).await;
    run(&syncer, Stream::Declines).await;
    let process_date: chrono::NaiveDate =
        sqlx::query_scalar("select process_date from rotessa.transactions where id = 9")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(process_date.to_string(), "2026-11-30");
    assert_eq!(outbox(&pool).await.len(), 2, "a field edit emits nothing");
}

/// (xmin, xmax) of a row: a write changes xmin, a row lock sets xmax.
async fn row_version(pool: &PgPool, id: i64) -> (String, String) {
    sqlx::query_as("select xmin::text, xmax::text from rotessa.transactions where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_stale_observation_writes_nothing_emits_nothing_and_is_counted(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    let declined = stamped(
        &declined_in_report(&tx(11, "Pending", T0), "Declined", "NSF", "2026-11-09"),
        T2,
    );
    let mut p = one_client();
    p.transactions = vec![declined.clone()];
    p.mount(&server).await;
    run(&syncer, Stream::Transactions).await;
    let version = row_version(&pool, 11).await;
    let events = count(&pool, "rotessa.outbox").await;

    // An older view in which every other field differs too.
    let mut older = tx(11, "Approved", T1);
    for (field, value) in [
        ("amount", json!("99.99")),
        ("comment", json!("an older comment")),
        ("account_number", json!("****77")),
        ("transaction_number", json!("INV-OLD")),
        ("settlement_date", json!("2026-11-06")),
        ("customer_id", json!(12)),
    ] {
        older[field] = value;
    }
    p.transactions = vec![older];
    p.mount(&server).await;
    let report = run(&syncer, Stream::Transactions).await;
    assert_eq!(
        row_version(&pool, 11).await,
        version,
        "neither written nor locked"
    );
    assert_eq!(count(&pool, "rotessa.outbox").await, events);
    let p = report.progress;
    assert_eq!((p.stale, p.updated, p.events, p.anomalies), (1, 0, 0, 1));
    let recorded: (i64, i64) =
        sqlx::query_as("select rows_stale, anomalies from rotessa.sync_runs where id = $1")
            .bind(report.run_id.unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recorded, (1, 1));
    let stored: (String, String, DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "select amount::text, status, api_updated_at, latest_updated_at
         from rotessa.transactions where id = 11",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (stored.0.as_str(), stored.1.as_str()),
        ("25.00", "Declined")
    );
    assert_eq!(stored.2, stored.3);
    let (kind, observed_at): (String, Option<DateTime<Utc>>) = sqlx::query_as(
        "select kind, observed_updated_at from rotessa.status_anomalies where transaction_id = 11",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kind, "stale");
    assert_eq!(
        observed_at.map(|t| t.to_rfc3339()),
        Some("2026-11-05T16:00:00+00:00".to_owned())
    );
}

#[sqlx::test]
async fn the_page_cache_never_hides_a_write_by_another_writer(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    let approved = tx(121, "Approved", T1);
    let mut p = one_client();
    p.transactions = [vec![approved.clone()], other_rows(0)].concat();
    p.mount(&server).await;
    run(&syncer, Stream::Clients).await;
    run(&syncer, Stream::Transactions).await;
    // The same body again is skipped unparsed: every row counts as unchanged, nothing is stale.
    let skipped = run(&syncer, Stream::Transactions).await.progress;
    assert_eq!((skipped.unchanged, skipped.stale), (21, 0));

    // 1. The declines stream writes row 121 (a newer decline). The transaction report's page is
    //    byte-identical, but one of its rows was written since: it is compared again (its
    //    lagging row counts as stale), and the newer value stays.
    let declines_page = vec![
        stamped(&as_decline(&approved, "Declined", "NSF", "2026-11-09"), T2),
        stamped(
            &as_decline(&old_txn(300), "Declined", "NSF", "2026-11-09"),
            T2,
        ),
    ];
    p.declines.insert(CLIENT, declines_page);
    p.mount(&server).await;
    run(&syncer, Stream::Declines).await;
    let compared = run(&syncer, Stream::Transactions).await.progress;
    assert_eq!((compared.unchanged, compared.stale), (20, 1));
    assert_eq!(stored(&pool, 121).await.0, "Declined");
    // Compared once, the page is cached again; so is the decline report's.
    let skipped = run(&syncer, Stream::Transactions).await.progress;
    assert_eq!((skipped.unchanged, skipped.stale), (21, 0));
    let skipped = run(&syncer, Stream::Declines).await.progress;
    assert_eq!((skipped.unchanged, skipped.stale), (2, 0));

    // The other way round, through a page whose ids are far apart (checked row by row, not as
    // a range): the transaction report writes row 121 (a newer reason); the decline report's
    // identical page is compared again, and its older row is stale.
    let corrected = stamped(&corrected_row(&approved), T3);
    p.transactions = [vec![corrected.clone()], other_rows(0)].concat();
    p.mount(&server).await;
    assert_eq!(run(&syncer, Stream::Transactions).await.progress.events, 1);
    let compared = run(&syncer, Stream::Declines).await.progress;
    assert_eq!((compared.unchanged, compared.stale), (1, 1));
    let sparse: Vec<(String, bool)> = sqlx::query_as(
        "select distinct stream, id_from is null from rotessa.page_digests where row_count > 0
         order by stream",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        sparse,
        vec![("declines".into(), true), ("transactions".into(), false)],
        "the decline report's page is checked row by row, the other as a range"
    );

    // 2. A writer outside the sync puts an older state back (a restore from backup, say): row
    //    100 returns to what it was before the page was last applied. The identical page is
    //    compared, and its newer value wins.
    let mut p2 = p.clone();
    p2.transactions = [vec![corrected], other_rows(1)].concat();
    let before: Value =
        sqlx::query_scalar("select to_jsonb(t) from rotessa.transactions t where id = 100")
            .fetch_one(&pool)
            .await
            .unwrap();
    p2.mount(&server).await;
    run(&syncer, Stream::Transactions).await;
    run(&syncer, Stream::Transactions).await;
    sqlx::query(
        "update rotessa.transactions t
         set (status, api_updated_at, latest_updated_at, fingerprint)
           = (r.status, r.api_updated_at, r.latest_updated_at, r.fingerprint)
         from jsonb_populate_record(null::rotessa.transactions, $1) r
         where t.id = 100",
    )
    .bind(&before)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(stored(&pool, 100).await.0, "Pending");
    let compared = run(&syncer, Stream::Transactions).await.progress;
    assert_eq!((compared.updated, compared.events), (1, 1));
    assert_eq!(stored(&pool, 100).await.0, "Approved");
}

/// Transaction `row` declined for "Account Closed", as the transaction report shows it.
fn corrected_row(row: &Value) -> Value {
    declined_in_report(row, "Declined", "Account Closed", "2026-11-09")
}

#[sqlx::test]
async fn an_older_view_committed_last_by_another_process_changes_nothing(pool: PgPool) {
    let database_url = database_url(&pool);
    let (a_server, b_server) = (MockServer::start().await, MockServer::start().await);
    // Both start from transactions 5 and 9, Pending at T0.
    let mut start = one_client();
    start.transactions = vec![tx(5, "Pending", T0), tx(9, "Pending", T0)];
    start.mount(&b_server).await;
    let b = syncer(&pool, platform_settings(&b_server, &[]));
    run(&b, Stream::Transactions).await;

    // Process A sees an older view: 5 and 9 Approved at T1. Process B, later, a newer one: 9
    // Declined at T2 (and 5 as it was).
    let mut older = one_client();
    older.transactions = vec![tx(5, "Approved", T1), tx(9, "Approved", T1)];
    older.mount(&a_server).await;
    let mut newer = one_client();
    newer.transactions = vec![
        tx(5, "Pending", T0),
        stamped(
            &declined_in_report(&tx(9, "Pending", T0), "Declined", "NSF", "2026-11-09"),
            T2,
        ),
    ];
    newer.mount(&b_server).await;

    // Row 5 is held, so A (the real binary) fetches its page, then waits for the lock on 5
    // before it can lock 9.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("select 1 from rotessa.transactions where id = 5 for update")
        .execute(&mut *holder)
        .await
        .unwrap();
    let a_server_uri = a_server.uri();
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("RECON_ROTESSA__BASE_URL", a_server_uri.as_str()),
        ("RECON_ROTESSA__API_KEY", API_KEY),
        ("RECON_SYNC__TODAY", TODAY),
        ("RECON_SYNC__TRANSACTIONS__WINDOW_DAYS", "400"),
        ("RECON_LOG__LEVEL", "warn"),
    ];
    let a = std::process::Command::new(env!("CARGO_BIN_EXE_rotessa-recon"))
        .args(["sync", "--stream", "transactions", "--no-migrate"])
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start process A");
    wait_until(
        "process A waits for the row lock",
        Duration::from_secs(60),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity
             where application_name = 'rotessa-recon' and wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            waiting > 0
        },
    )
    .await;
    assert_eq!(a_server.received_requests().await.unwrap().len(), 1);

    // B applies its newer view and commits first; then A gets its locks and commits last.
    run(&b, Stream::Transactions).await;
    assert_eq!(stored(&pool, 9).await.0, "Declined");
    holder.rollback().await.unwrap();
    let out = tokio::task::spawn_blocking(move || a.wait_with_output())
        .await
        .unwrap()
        .expect("process A ends");
    assert!(out.status.success(), "{}", output_text(&out));

    assert_eq!(stored(&pool, 9).await.0, "Declined");
    assert_eq!(stored(&pool, 5).await.0, "Approved");
    let mut events = outbox(&pool).await;
    events.sort();
    assert_eq!(
        events,
        vec![
            event(5, None, "Pending", REPORT, false),
            event(5, Some("Pending"), "Approved", REPORT, false),
            event(9, None, "Pending", REPORT, false),
            event(9, Some("Pending"), "Declined", REPORT, false),
        ]
    );
    assert_eq!(
        anomalies_of(&pool, 9).await,
        vec![anomaly("stale", "Declined", "Approved", REPORT)]
    );
}

#[sqlx::test]
async fn without_updated_at_the_lifecycle_decides_and_resubmissions_apply(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    let unstamped = |status: &str| {
        let mut r = tx(31, status, T0);
        r["updated_at"] = Value::Null;
        r
    };
    let pass = |row: Value| {
        let p = Platform {
            transactions: vec![row],
            ..one_client()
        };
        let (server, syncer) = (&server, &syncer);
        async move {
            p.mount(server).await;
            run(syncer, Stream::Transactions).await.progress
        }
    };
    pass(unstamped("Future")).await;
    pass(unstamped("Pending")).await;
    // Pending -> Future is backward: refused.
    assert_eq!(pass(unstamped("Future")).await.anomalies, 1);
    pass(declined_in_report(
        &unstamped("Pending"),
        "Declined",
        "NSF",
        "2026-11-04",
    ))
    .await;
    // Declined -> Future: a resubmission, applied and marked.
    pass(unstamped("Future")).await;
    assert_eq!(
        outbox(&pool).await,
        vec![
            event(31, None, "Future", REPORT, false),
            event(31, Some("Future"), "Pending", REPORT, false),
            event(31, Some("Pending"), "Declined", REPORT, false),
            event(31, Some("Declined"), "Future", REPORT, true),
        ]
    );
    assert_eq!(
        anomalies_of(&pool, 31).await,
        vec![
            anomaly("backward", "Pending", "Future", REPORT),
            anomaly("reversal", "Declined", "Future", REPORT),
        ]
    );
}

#[sqlx::test]
async fn a_decline_report_without_updated_at_never_flaps_a_row(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    // The decline report as its documented example shows it: `updated_at: null`. The
    // transaction report lags, still Approved at T1, for three passes, then catches up.
    let approved = tx(41, "Approved", T1);
    let mut unstamped = as_decline(&approved, "Declined", "NSF", "2026-11-09");
    unstamped["updated_at"] = Value::Null;
    let mut p = one_client();
    p.transactions = vec![approved.clone()];
    p.mount(&server).await;
    run(&syncer, Stream::Clients).await;
    run(&syncer, Stream::Transactions).await;
    p.declines.insert(CLIENT, vec![unstamped]);
    for pass in 1..=5 {
        if pass == 4 {
            p.transactions = vec![stamped(
                &declined_in_report(&approved, "Declined", "NSF", "2026-11-09"),
                T3,
            )];
        }
        p.mount(&server).await;
        run(&syncer, Stream::Declines).await;
        run(&syncer, Stream::Transactions).await;
        assert_eq!(stored(&pool, 41).await.0, "Declined", "pass {pass}");
    }
    assert_eq!(
        outbox(&pool).await,
        vec![
            event(41, None, "Approved", REPORT, false),
            event(41, Some("Approved"), "Declined", DECLINES, false),
        ]
    );
    // Caught up, the transaction report's fields and updated_at are kept: the decline report,
    // without a clock, does not write them back.
    let (_, updated_at) = stored(&pool, 41).await;
    assert_eq!(
        updated_at.map(|t| t.to_rfc3339()),
        Some("2026-11-12T22:45:00+00:00".to_owned())
    );
}

/// The simulator's own disagreeing reports, through every stream: a chargeback reversed and a
/// decline resubmitted while the decline report lags behind for that row, read over several
/// passes in alternating order: each change is one event, marked as a reversal.
#[sqlx::test]
async fn the_simulators_reversal_and_resubmission_are_one_event_each(pool: PgPool) {
    use rotessa_recon::sim::{SimConfig, SimReport, SimServer};
    use rotessa_recon::sync::Clock;

    let sim = SimServer::start(
        SimConfig {
            transactions: 4000,
            today: "2026-11-23".parse().unwrap(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let settings = settings(
        &sim.base_url(),
        &[
            ("RECON_ROTESSA__API_KEY", sim.api_key()),
            ("RECON_SYNC__DECLINES__OVERLAP_DAYS", "100"),
        ],
    );
    let syncer = syncer(&pool, settings).with_clock(Clock::Dynamic(sim.handle().clock()));
    let all = |order: [Stream; 2]| {
        let syncer = syncer.clone();
        async move {
            for stream in [Stream::Clients, order[0], order[1], Stream::Settlements] {
                assert_succeeded(&syncer.run(stream, &PassOptions::default()).await);
            }
        }
    };
    all([Stream::Transactions, Stream::Declines]).await;

    // A charged-back and a declined transaction inside the transactions window.
    let pick = |status: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select id from rotessa.transactions
                 where status = $1 and process_date >= date '2026-08-20' order by id limit 1",
            )
            .bind(status)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (charged, declined) = (pick("Chargeback").await, pick("Declined").await);
    let events_before = outbox(&pool).await.len();
    sim.reverse(charged).unwrap();
    let resubmitted = sim.resubmit(declined, None).unwrap();
    sim.lag(declined, SimReport::DeclineReport, 10).unwrap();
    for pass in 0..4 {
        let order = if pass % 2 == 0 {
            [Stream::Declines, Stream::Transactions]
        } else {
            [Stream::Transactions, Stream::Declines]
        };
        all(order).await;
    }
    let mut new_events: Vec<Event> = outbox(&pool).await.split_off(events_before);
    new_events.sort();
    let mut expected = vec![
        event(charged, Some("Chargeback"), "Approved", REPORT, true),
        event(declined, Some("Declined"), "Future", REPORT, true),
    ];
    expected.sort();
    assert_eq!(new_events, expected, "one reversal each, nothing else");
    let (status, process_date): (String, chrono::NaiveDate) =
        sqlx::query_as("select status, process_date from rotessa.transactions where id = $1")
            .bind(declined)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), process_date),
        ("Future", resubmitted.process_date)
    );
    let kinds: Vec<(i64, String)> =
        sqlx::query_as("select transaction_id, kind from rotessa.status_anomalies order by 1, 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut expected = vec![
        (charged, "reversal".to_owned()),
        (declined, "reversal".to_owned()),
        (declined, "stale".to_owned()),
    ];
    expected.sort();
    assert_eq!(kinds, expected);
}
