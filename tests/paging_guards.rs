//! The paging guards (SPEC.md "Sync streams"): a server that ignores `page`, or a window with more
//! than `rotessa.max_pages` pages, fails the run loudly instead of looping; a window of exactly
//! `max_pages` full pages still succeeds.

mod common;

use common::*;
use rotessa_recon::sync::RunOutcome;
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FROM: &str = "2019-03-01";
const TO: &str = "2019-03-12";

fn failure(reports: &[rotessa_recon::sync::RunReport]) -> String {
    assert_eq!(reports.len(), 1, "{reports:?}");
    match &reports[0].outcome {
        RunOutcome::Failed(e) => e.clone(),
        other => panic!("the run should fail, it ended {other:?}"),
    }
}

async fn cursor_rows(pool: &PgPool) -> i64 {
    count(pool, "rotessa.sync_state").await
}

#[sqlx::test]
async fn a_server_repeating_the_same_page_fails_the_run_instead_of_looping(pool: PgPool) {
    let server = MockServer::start().await;
    // Every page number gets the same full page, as from a server that ignores `page`.
    Mock::given(method("GET"))
        .and(path("/v2/transaction_report"))
        .respond_with(ResponseTemplate::new(200).set_body_json(rows(1..=1000, "Pending")))
        .mount(&server)
        .await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let reports = sync_window(&syncer, FROM, TO).await;

    let error = failure(&reports);
    assert!(
        error.contains("page 2 repeats the rows of page 1"),
        "{error}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // Page 1 committed on its own; the cursor did not move.
    assert_eq!(count(&pool, "rotessa.transactions").await, 1000);
    assert_eq!(cursor_rows(&pool).await, 0);
}

#[sqlx::test]
async fn a_page_with_the_same_ids_in_another_body_is_a_repeat_too(pool: PgPool) {
    let server = MockServer::start().await;
    let first = rows(1..=1000, "Pending");
    let mut second = rows(1..=1000, "Approved");
    second.reverse();
    Mock::given(method("GET"))
        .and(path("/v2/transaction_report"))
        .and(wiremock::matchers::query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(first))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/transaction_report"))
        .and(wiremock::matchers::query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(second))
        .mount(&server)
        .await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let error = failure(&sync_window(&syncer, FROM, TO).await);
    assert!(
        error.contains("page 2 repeats the rows of page 1"),
        "{error}"
    );
    // The repeated page was not applied: no row moved to Approved.
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.transactions where status <> 'Pending'"
        )
        .await,
        0
    );
}

#[sqlx::test]
async fn a_window_of_exactly_max_pages_full_pages_succeeds(pool: PgPool) {
    let server = MockServer::start().await;
    // Pages 1 and 2 full, page 3 empty.
    serve_report(&server, &rows(1..=2000, "Pending")).await;
    // The window starts where the stream's next run would (today - 11 days), so its success
    // records the cursor.
    let syncer = syncer(
        &pool,
        settings(
            &server.uri(),
            &[
                ("RECON_ROTESSA__MAX_PAGES", "2"),
                ("RECON_SYNC__TRANSACTIONS__LOOKBACK_DAYS", "11"),
            ],
        ),
    );
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded, "{reports:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_eq!(count(&pool, "rotessa.transactions").await, 2000);
    assert_eq!(cursor_rows(&pool).await, 1);
}

#[sqlx::test]
async fn more_than_max_pages_fails_the_run_loudly(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=2500, "Pending")).await;
    let syncer = syncer(
        &pool,
        settings(&server.uri(), &[("RECON_ROTESSA__MAX_PAGES", "2")]),
    );
    let error = failure(&sync_window(&syncer, FROM, TO).await);
    assert!(
        error.contains("more than rotessa.max_pages (2) pages in one window"),
        "{error}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    // The pages within the limit committed; the one past it did not, and the cursor stayed.
    assert_eq!(count(&pool, "rotessa.transactions").await, 2000);
    assert_eq!(cursor_rows(&pool).await, 0);
    let status: String = sqlx::query_scalar("select status from rotessa.sync_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
}
