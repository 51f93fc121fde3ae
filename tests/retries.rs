//! The retry policy against a mock Rotessa: transient failures are retried until success,
//! Retry-After is honoured, and 4xx answers fail at once with the API's own message.

mod common;

use std::time::Duration;

use common::*;
use rotessa_recon::sync::RunOutcome;
use serde_json::json;
use sqlx::PgPool;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FROM: &str = "2019-02-15";
const TO: &str = "2019-03-12";

/// Serves `first` once, then the real page.
async fn fail_once_then_serve(first: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=10, "Pending")).await;
    Mock::given(method("GET"))
        .and(path("/v2/transaction_report"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({"errors": [{"error_code": code, "error_message": message}]})
}

#[sqlx::test]
async fn server_errors_are_retried_until_the_page_arrives(pool: PgPool) {
    for status in [500, 502, 503, 504] {
        sqlx::query("truncate rotessa.transactions, rotessa.outbox, rotessa.page_digests")
            .execute(&pool)
            .await
            .unwrap();
        let server = fail_once_then_serve(
            ResponseTemplate::new(status).set_body_json(error_body("oops", "try later")),
        )
        .await;
        let syncer = syncer(&pool, settings(&server.uri(), &[]));
        let reports = sync_window(&syncer, FROM, TO).await;
        assert_eq!(reports[0].outcome, RunOutcome::Succeeded, "{status}");
        assert_eq!(
            requests(&server).await,
            2,
            "{status}: one failure, one success"
        );
        assert_eq!(count(&pool, "rotessa.transactions").await, 10);
    }
}

#[sqlx::test]
async fn retry_after_is_honoured_instead_of_the_backoff(pool: PgPool) {
    let server = fail_once_then_serve(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "0")
            .set_body_json(error_body("rate_limited", "slow down")),
    )
    .await;
    // A ten-minute backoff: only the server's Retry-After: 0 lets this finish promptly.
    let syncer = syncer(
        &pool,
        settings(
            &server.uri(),
            &[
                ("RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS", "600000"),
                ("RECON_ROTESSA__RETRY__MAX_BACKOFF_MS", "600000"),
            ],
        ),
    );
    let reports = tokio::time::timeout(Duration::from_secs(120), sync_window(&syncer, FROM, TO))
        .await
        .expect("Retry-After: 0 was not honoured");
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded);
    assert_eq!(requests(&server).await, 2);
}

#[sqlx::test]
async fn cut_off_bodies_and_timeouts_are_transient(pool: PgPool) {
    let server =
        fail_once_then_serve(ResponseTemplate::new(200).set_body_string(r#"[{"id": 1, "amou"#))
            .await;
    let reports = sync_window(&syncer(&pool, settings(&server.uri(), &[])), FROM, TO).await;
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded);
    assert_eq!(requests(&server).await, 2);

    let server = fail_once_then_serve(
        ResponseTemplate::new(200)
            .set_body_json(rows(1..=10, "Pending"))
            .set_delay(Duration::from_secs(30)),
    )
    .await;
    let settings = settings(
        &server.uri(),
        &[("RECON_ROTESSA__REQUEST_TIMEOUT_SECS", "1")],
    );
    let reports = sync_window(&syncer(&pool, settings), FROM, TO).await;
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded);
    assert_eq!(requests(&server).await, 2);
}

#[sqlx::test]
async fn persistent_failures_give_up_after_the_configured_retries(pool: PgPool) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(error_body("maintenance", "We're temporarily offline")),
        )
        .mount(&server)
        .await;
    let reports = sync_window(&syncer(&pool, settings(&server.uri(), &[])), FROM, TO).await;
    let RunOutcome::Failed(message) = &reports[0].outcome else {
        panic!("expected a failure: {reports:?}")
    };
    assert!(
        message.contains("HTTP 503: maintenance: We're temporarily offline"),
        "{message}"
    );
    assert!(message.contains("gave up after 5 attempts"), "{message}");
    assert_eq!(requests(&server).await, 5, "1 attempt + 4 retries");
    let (status, error): (String, String) =
        sqlx::query_as("select status, error from rotessa.sync_runs")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(error.contains("HTTP 503"));
}

#[sqlx::test]
async fn client_errors_fail_at_once_with_the_api_message(pool: PgPool) {
    for (status, code, text) in [
        (401, "unauthorized", "Your API key is not valid"),
        (422, "invalid_date", "start_date is invalid"),
        (
            400,
            "bad_request",
            "Your request includes invalid parameters",
        ),
        (
            404,
            "not_found",
            "The specified resource could not be found",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_json(error_body(code, text)))
            .mount(&server)
            .await;
        let reports = sync_window(&syncer(&pool, settings(&server.uri(), &[])), FROM, TO).await;
        let RunOutcome::Failed(message) = &reports[0].outcome else {
            panic!("{status} should fail: {reports:?}")
        };
        assert!(
            message.contains(&format!("HTTP {status}: {code}: {text}")),
            "{message}"
        );
        assert_eq!(requests(&server).await, 1, "{status} is not retried");
    }
}
