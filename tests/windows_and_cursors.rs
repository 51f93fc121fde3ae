//! SPEC.md "Sync streams": "today" is Rotessa's date, and a cursor only ever means "everything up
//! to here was read". A mock Rotessa (`wiremock`, `tests/common/platform.rs`) that filters rows
//! by the requested dates; real PostgreSQL (`#[sqlx::test]`).

mod common;

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use common::platform::*;
use common::*;
use rotessa_recon::sync::{Clock, PassOptions, RunOutcome, RunReport, Stream, Syncer};
use serde_json::Value;
use sqlx::PgPool;
use wiremock::MockServer;

const CLIENT: i64 = 1001;

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn assert_succeeded(reports: &[RunReport]) {
    assert!(!reports.is_empty());
    for r in reports {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
}

async fn cursor(pool: &PgPool, stream: &str) -> Option<NaiveDate> {
    sqlx::query_scalar(
        "select cursor_date from rotessa.sync_state where stream = $1 and client_id = $2",
    )
    .bind(stream)
    .bind(CLIENT)
    .fetch_optional(pool)
    .await
    .unwrap()
    .flatten()
}

fn on(syncer: &Syncer, day: &str) -> Syncer {
    syncer.clone().with_clock(Clock::Fixed(date(day)))
}

async fn run(syncer: &Syncer, stream: Stream, from: Option<&str>, to: Option<&str>) {
    let opts = PassOptions {
        client: None,
        from: from.map(date),
        to: to.map(date),
    };
    assert_succeeded(&syncer.run(stream, &opts).await);
}

#[sqlx::test]
async fn a_partial_backfill_never_moves_a_cursor_across_unread_dates(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = Platform {
        clients: vec![CLIENT],
        ..Platform::default()
    };
    p.mount(&server).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    // Both cursors at 2026-10-01.
    let first = on(&syncer, "2026-10-01");
    run(&first, Stream::Declines, None, None).await;
    run(&first, Stream::Settlements, None, None).await;
    assert_eq!(cursor(&pool, "declines").await, Some(date("2026-10-01")));
    assert_eq!(cursor(&pool, "settlements").await, Some(date("2026-10-01")));

    // Meanwhile a chargeback dated 2026-10-15 and a settlement on 2026-10-15: inside the gap
    // that the backfill below would open if it moved the cursors to 2026-11-10.
    let approved = txn_on(42, CLIENT, "Approved", "80.00", "2026-08-20", "2026-08-25");
    p.declines.insert(
        CLIENT,
        vec![as_decline(
            &approved,
            "Chargeback",
            "Payment Stopped/Recalled",
            "2026-10-15",
        )],
    );
    p.settlements.insert(
        CLIENT,
        vec![settlement(
            "2026-10-15",
            (1, "10.00"),
            (0, "0.00"),
            (0, "0.00"),
        )],
    );
    p.mount(&server).await;
    let today = on(&syncer, "2026-11-22");
    for stream in [Stream::Declines, Stream::Settlements] {
        run(&today, stream, Some("2026-11-01"), Some("2026-11-10")).await;
    }
    assert_eq!(cursor(&pool, "declines").await, Some(date("2026-10-01")));
    assert_eq!(cursor(&pool, "settlements").await, Some(date("2026-10-01")));

    // The next default runs start at the cursor (minus the overlap): the gap is read.
    run(&today, Stream::Declines, None, None).await;
    run(&today, Stream::Settlements, None, None).await;
    let status: String =
        sqlx::query_scalar("select status from rotessa.transactions where id = 42")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "Chargeback");
    assert_eq!(count(&pool, "rotessa.settlements").await, 1);
    assert_eq!(cursor(&pool, "declines").await, Some(date("2026-11-22")));
    assert_eq!(cursor(&pool, "settlements").await, Some(date("2026-11-22")));

    // A backfill that reaches back to where the next run starts does move it (forward only).
    run(
        &today,
        Stream::Declines,
        Some("2026-09-01"),
        Some("2026-12-31"),
    )
    .await;
    assert_eq!(cursor(&pool, "declines").await, Some(date("2026-11-22")));
}

async fn last_success(pool: &PgPool, stream: &str) -> Option<(i64, chrono::DateTime<Utc>)> {
    sqlx::query_as(
        "select last_run_id, last_success_started_at from rotessa.sync_state
         where stream = $1 and client_id = $2 and last_run_id is not null",
    )
    .bind(stream)
    .bind(CLIENT)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn only_a_run_of_the_whole_window_counts_as_the_last_success(pool: PgPool) {
    let server = MockServer::start().await;
    let p = Platform {
        clients: vec![CLIENT],
        ..Platform::default()
    };
    p.mount(&server).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let today = on(&syncer, "2026-11-22");

    // A backfill from the start that stops short of today: it moves the cursor (everything up
    // to its end was read) but did not read the days since, so it is no success of the stream.
    run(&today, Stream::Declines, None, Some("2026-11-10")).await;
    assert_eq!(cursor(&pool, "declines").await, Some(date("2026-11-10")));
    assert_eq!(last_success(&pool, "declines").await, None);

    run(&today, Stream::Declines, None, None).await;
    let whole = last_success(&pool, "declines")
        .await
        .expect("a last success");
    assert_eq!(cursor(&pool, "declines").await, Some(date("2026-11-22")));

    // Another short backfill leaves the last success where the whole run put it.
    run(
        &today,
        Stream::Declines,
        Some("2026-09-01"),
        Some("2026-11-01"),
    )
    .await;
    assert_eq!(last_success(&pool, "declines").await, Some(whole));
    assert_eq!(cursor(&pool, "declines").await, Some(date("2026-11-22")));
}

/// The `start_date` and `end_date` of every report request, by path (from the query string or
/// the JSON body, as the client sends them).
async fn requested_dates(server: &MockServer) -> BTreeMap<String, Vec<(String, String)>> {
    let mut by_path: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for req in server.received_requests().await.unwrap() {
        let mut params: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) {
            for (k, v) in body {
                params.insert(k, v.as_str().map_or(v.to_string(), str::to_owned));
            }
        }
        if let (Some(start), Some(end)) = (params.get("start_date"), params.get("end_date")) {
            by_path
                .entry(req.url.path().to_owned())
                .or_default()
                .push((start.clone(), end.clone()));
        }
    }
    by_path
}

#[sqlx::test]
async fn every_request_ends_on_rotessas_date_not_the_utc_one(pool: PgPool) {
    let winnipeg = "America/Winnipeg".parse().unwrap();
    // 2026-12-03 23:30 UTC is 17:30 in Winnipeg; 2026-12-04 05:30 UTC is 23:30 on the 3rd.
    for instant in [
        Utc.with_ymd_and_hms(2026, 12, 3, 23, 30, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 12, 4, 5, 30, 0).unwrap(),
    ] {
        let server = MockServer::start().await;
        Platform {
            clients: vec![CLIENT],
            ..Platform::default()
        }
        .mount(&server)
        .await;
        let syncer =
            syncer(&pool, settings(&server.uri(), &[])).with_clock(Clock::At(instant, winnipeg));
        for stream in Stream::ALL {
            assert_succeeded(&syncer.run(stream, &PassOptions::default()).await);
        }
        let dates = requested_dates(&server).await;
        let ends = |path: &str| -> Vec<String> {
            dates[path].iter().map(|(_, end)| end.clone()).collect()
        };
        let declines = format!("/v2/clients/{CLIENT}/transaction_decline_report");
        let settlements = format!("/v2/clients/{CLIENT}/settlements/show_by_settlement_date");
        for path in [&declines, &settlements] {
            let last = ends(path).into_iter().max().unwrap();
            assert_eq!(last, "2026-12-03", "{path} at {instant}");
        }
        // The transactions window ends 60 days after Rotessa's today.
        let last = ends("/v2/transaction_report").into_iter().max().unwrap();
        assert_eq!(last, "2027-02-01", "transactions at {instant}");
        assert_eq!(cursor(&pool, "declines").await, Some(date("2026-12-03")));
        truncate(&pool).await;
    }
}

async fn truncate(pool: &PgPool) {
    common::guarantees::truncate_rotessa(pool).await;
}
