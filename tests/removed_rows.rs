//! SPEC.md "Status rules": a row Rotessa stops reporting inside a window read in full (absent
//! from two consecutive complete reads) is marked `removed_at` with a `transaction.removed`
//! event, never deleted; if it comes back, `transaction.restored`. A mock transaction report
//! (`wiremock`), real PostgreSQL (`#[sqlx::test]`), the page cache on (so identical pages are
//! skipped and their rows known from their digests).

mod common;

use common::*;
use rotessa_recon::sync::RunOutcome;
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::MockServer;

const FROM: &str = "2019-03-01";
const TO: &str = "2019-03-12";

/// Future rows, as Rotessa reports a schedule's coming transactions (no `updated_at`).
fn future(ids: impl IntoIterator<Item = i64>) -> Vec<Value> {
    ids.into_iter()
        .map(|id| {
            let mut r = row(id, "Future");
            r["updated_at"] = Value::Null;
            r
        })
        .collect()
}

async fn sync(syncer: &rotessa_recon::sync::Syncer) {
    let reports = sync_window(syncer, FROM, TO).await;
    for r in &reports {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
}

/// (type, transaction) of every event after the first sightings, in order.
async fn later_events(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "select type, aggregateid from rotessa.outbox
         where not (type = 'transaction.status_changed' and payload->>'from_status' is null)
         order by txid, seq",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn removed(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar(
        "select id from rotessa.transactions where removed_at is not null order by id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_row_gone_from_two_complete_reads_is_removed_and_restored_when_it_returns(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &future(1..=5)).await;
    sync(&syncer).await;

    // A schedule is deleted: Rotessa stops reporting transaction 3.
    serve_report(&server, &future([1, 2, 4, 5])).await;
    sync(&syncer).await;
    assert_eq!(
        removed(&pool).await,
        Vec::<i64>::new(),
        "one read is not enough"
    );
    sync(&syncer).await;
    assert_eq!(removed(&pool).await, vec![3]);
    sync(&syncer).await;
    assert_eq!(
        later_events(&pool).await,
        vec![("transaction.removed".to_owned(), "3".to_owned())]
    );
    assert_eq!(
        absent_reads(&pool, 3).await,
        2,
        "a removed row keeps its count through reads that return every other row"
    );
    let payload: Value =
        sqlx::query_scalar("select payload from rotessa.outbox where type = 'transaction.removed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(payload["transaction_id"], 3);
    assert_eq!(payload["from_status"], "Future");
    assert_eq!(payload["to_status"], "Future");
    assert_eq!(payload["amount"], "25.00");
    assert_eq!(payload["source"], "transaction_report");

    // It comes back.
    serve_report(&server, &future(1..=5)).await;
    sync(&syncer).await;
    sync(&syncer).await;
    assert_eq!(removed(&pool).await, Vec::<i64>::new());
    assert_eq!(
        later_events(&pool).await,
        vec![
            ("transaction.removed".to_owned(), "3".to_owned()),
            ("transaction.restored".to_owned(), "3".to_owned()),
        ]
    );
    let history: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "select change, from_status, to_status from rotessa.transaction_status_history
         where transaction_id = 3 order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![
            ("status".into(), None, "Future".into()),
            ("removed".into(), Some("Future".into()), "Future".into()),
            ("restored".into(), Some("Future".into()), "Future".into()),
        ]
    );
    // A removed Future row is expected (a deleted schedule): no anomaly.
    assert_eq!(count(&pool, "rotessa.status_anomalies").await, 0);
}

async fn absent_reads(pool: &PgPool, id: i64) -> i16 {
    sqlx::query_scalar("select absent_reads from rotessa.transactions where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_row_the_parser_refuses_is_never_taken_for_removed(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &future(1..=5)).await;
    sync(&syncer).await;
    // Row 3 is still reported, in a shape the parser refuses: the read does not know whether
    // it was returned, however many times the same page comes back.
    let mut page = future(1..=5);
    page[2]["amount"] = json!("abc");
    serve_report(&server, &page).await;
    for _ in 0..4 {
        sync(&syncer).await;
    }
    assert_eq!(removed(&pool).await, Vec::<i64>::new());
    assert_eq!(absent_reads(&pool, 3).await, 0);
    assert_eq!(later_events(&pool).await, Vec::<(String, String)>::new());
}

#[sqlx::test]
async fn a_row_marked_removed_behind_an_unchanged_page_is_restored_by_it(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &future(1..=5)).await;
    sync(&syncer).await;
    // Another writer (a read of another window, an older process) marked row 3 removed; the
    // report, byte for byte the page last applied, still returns it.
    sqlx::query(
        "update rotessa.transactions set removed_at = now(), absent_reads = 2 where id = 3",
    )
    .execute(&pool)
    .await
    .unwrap();
    sync(&syncer).await;
    assert_eq!(removed(&pool).await, Vec::<i64>::new());
    assert_eq!(
        later_events(&pool).await,
        vec![("transaction.restored".to_owned(), "3".to_owned())]
    );
    assert_eq!(absent_reads(&pool, 3).await, 0);
}

#[sqlx::test]
async fn a_row_back_in_another_status_is_restored_then_changes(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &future(1..=3)).await;
    sync(&syncer).await;
    serve_report(&server, &future(1..=2)).await;
    sync(&syncer).await;
    sync(&syncer).await;
    assert_eq!(removed(&pool).await, vec![3]);
    // Back, and processed meanwhile: restored as it was, then the transition, once each.
    let mut back = future(1..=2);
    back.push(row(3, "Pending"));
    serve_report(&server, &back).await;
    sync(&syncer).await;
    sync(&syncer).await;
    let events: Vec<(String, String, String)> = sqlx::query_as(
        "select type, payload->>'from_status', payload->>'to_status' from rotessa.outbox
         where aggregateid = '3' and payload->>'from_status' is not null order by txid, seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let e = |t: &str, from: &str, to: &str| (t.to_owned(), from.to_owned(), to.to_owned());
    assert_eq!(
        events,
        vec![
            e("transaction.removed", "Future", "Future"),
            e("transaction.restored", "Future", "Future"),
            e("transaction.status_changed", "Future", "Pending"),
        ]
    );
}

#[sqlx::test]
async fn rows_outside_the_windows_read_are_never_marked(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    // A backfill of 2018 stored transaction 90; the default windows never read 2018 again.
    let mut old = row(90, "Approved");
    old["process_date"] = json!("2018-06-01");
    serve_report(&server, &[old]).await;
    let reports = sync_window(&syncer, "2018-06-01", "2018-06-30").await;
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded);
    serve_report(&server, &future(1..=3)).await;
    for _ in 0..3 {
        sync(&syncer).await;
    }
    assert_eq!(removed(&pool).await, Vec::<i64>::new());
    let absent: i16 =
        sqlx::query_scalar("select absent_reads from rotessa.transactions where id = 90")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(absent, 0, "not even counted");
}

#[sqlx::test]
async fn a_row_that_moved_between_pages_while_they_were_read_is_never_marked(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let all = future(1..=1500);
    serve_report(&server, &all).await;
    sync(&syncer).await;
    // While page 1 was read, a row before it went away and 1001 slid onto page 1: page 1 as
    // read ends at 1000, page 2 as read starts at 1002. The next read sees it again, and so on.
    let shifted = [&all[..1000], &all[1001..]].concat();
    for _ in 0..3 {
        serve_report(&server, &shifted).await;
        sync(&syncer).await;
        serve_report(&server, &all).await;
        sync(&syncer).await;
    }
    assert_eq!(removed(&pool).await, Vec::<i64>::new());
    assert_eq!(later_events(&pool).await, Vec::<(String, String)>::new());
    let absent: i16 =
        sqlx::query_scalar("select absent_reads from rotessa.transactions where id = 1001")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(absent, 0, "seen again: its count starts over");
}

#[sqlx::test]
async fn a_removed_approved_row_is_an_anomaly_too(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &rows(1..=3, "Approved")).await;
    sync(&syncer).await;
    serve_report(&server, &rows(1..=2, "Approved")).await;
    sync(&syncer).await;
    sync(&syncer).await;
    assert_eq!(removed(&pool).await, vec![3]);
    let anomaly: (String, String, String) = sqlx::query_as(
        "select kind, stored_status, observed_status from rotessa.status_anomalies
         where transaction_id = 3",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        anomaly,
        ("removed".into(), "Approved".into(), "Removed".into())
    );
}

#[sqlx::test]
async fn a_future_row_the_simulator_stops_reporting_is_removed_then_restored(pool: PgPool) {
    use rotessa_recon::sim::{SimConfig, SimServer};
    use rotessa_recon::sync::{Clock, PassOptions, Stream};

    let sim = SimServer::start(
        SimConfig {
            transactions: 3000,
            today: "2026-11-23".parse().unwrap(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let settings = settings(
        &sim.base_url(),
        &[("RECON_ROTESSA__API_KEY", sim.api_key())],
    );
    let syncer = syncer(&pool, settings).with_clock(Clock::Dynamic(sim.handle().clock()));
    let transactions = || async {
        for r in syncer
            .run(Stream::Transactions, &PassOptions::default())
            .await
        {
            assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
        }
    };
    transactions().await;
    let id = sim.handle().transaction_ids_with_status("Future")[0];
    sim.remove(id).unwrap();
    transactions().await;
    transactions().await;
    assert_eq!(removed(&pool).await, vec![id]);
    sim.restore(id).unwrap();
    transactions().await;
    transactions().await;
    assert_eq!(removed(&pool).await, Vec::<i64>::new());
    let events: Vec<(String, String)> = later_events(&pool).await;
    assert_eq!(
        events,
        vec![
            ("transaction.removed".to_owned(), id.to_string()),
            ("transaction.restored".to_owned(), id.to_string()),
        ]
    );
}
