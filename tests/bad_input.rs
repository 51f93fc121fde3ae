//! A corpus of bad input (tests/corpus/): wrong JSON shapes, an HTML error page with status
//! 200, cut-off and empty bodies, a very large page, and rows with every kind of bad field. No
//! panic, clear errors, bad rows quarantined, no good row lost.

mod common;

use common::*;
use rotessa_recon::sync::RunOutcome;
use serde_json::Value;
use sqlx::PgPool;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FROM: &str = "2019-03-01";
const TO: &str = "2019-03-12";

fn corpus(name: &str) -> Vec<u8> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

async fn serve_body(server: &MockServer, page: u32, body: Vec<u8>, content_type: &str) {
    Mock::given(method("GET"))
        .and(path("/v2/transaction_report"))
        .and(query_param("page", page.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, content_type))
        .mount(server)
        .await;
}

#[sqlx::test]
async fn bodies_that_are_not_a_json_array_fail_the_run_clearly_after_retries(pool: PgPool) {
    for (file, kind) in [
        ("wrong_shape.json", "application/json"),
        ("html_error_page.html", "text/html"),
        ("truncated.json", "application/json"),
        ("empty_body.json", "application/json"),
        ("null_body.json", "application/json"),
    ] {
        let server = MockServer::start().await;
        serve_body(&server, 1, corpus(file), kind).await;
        let reports = sync_window(&syncer(&pool, settings(&server.uri(), &[])), FROM, TO).await;
        let RunOutcome::Failed(error) = &reports[0].outcome else {
            panic!("{file}: {reports:?}")
        };
        assert!(
            error.contains(
                "transaction_report: unexpected response body: expected a JSON array of rows"
            ),
            "{file}: {error}"
        );
        assert!(
            error.contains("gave up after 5 attempts"),
            "{file}: {error}"
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 5, "{file}");
        assert_eq!(count(&pool, "rotessa.transactions").await, 0, "{file}");
    }
}

#[sqlx::test]
async fn rows_with_every_kind_of_bad_field_are_quarantined_and_good_rows_land(pool: PgPool) {
    let server = MockServer::start().await;
    serve_body(&server, 1, corpus("bad_fields.json"), "application/json").await;
    let reports = sync_window(&syncer(&pool, settings(&server.uri(), &[])), FROM, TO).await;
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded, "{reports:?}");
    let p = reports[0].progress;
    assert_eq!((p.rows_seen, p.inserted, p.rejected), (25, 6, 18));

    let landed: Vec<(i64, String, Option<i64>)> =
        sqlx::query_as("select id, amount::text, client_id from rotessa.transactions order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        landed,
        vec![
            (1, "10.00".into(), Some(7)),
            (8, "10.00".into(), Some(7)),
            (10, "10.00".into(), Some(7)),
            (11, "10.00".into(), Some(7)),
            (14, "10.00".into(), None),
            (15, "12.50".into(), Some(7)),
        ]
    );
    // Row 14's unparseable optional fields are NULL, their text kept in extra.
    let extra: Value = sqlx::query_scalar("select extra from rotessa.transactions where id = 14")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        extra,
        serde_json::json!({"client_id": "seven", "settlement_date": "2019-02-30", "created_at": "yesterday"})
    );
    let errors: Vec<String> =
        sqlx::query_scalar("select error from rotessa.rejected_records order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    for expected in [
        "`process_date`: \"2019-02-29\" is not a date",
        "`process_date`: \"2019-13-01\" is not a date",
        "`amount`: -5.00 is negative",
        "`amount`: \"99999999999999999999999999999999.00\" is not a decimal amount",
        "`amount`: 100000000000000000000 is too large for numeric(14,2)",
        "`status`: unknown status \"Settled\"",
        "`id`: \"abc\" is not an integer id",
        "`amount`: 10.005 has more than two decimal places",
        "id 10 appears earlier in the page with different content",
        "missing required field `status`",
        "`amount`: {\"value\":10} is not a decimal amount",
        "`id`: 16.5 is not an integer id",
        "invalid type: sequence, expected a transaction row object",
        "invalid type: string \"row\", expected a transaction row object",
        "invalid type: null, expected a transaction row object",
        "missing required field `id`",
        "`comment` contains a NUL character",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "no rejection says {expected:?}: {errors:#?}"
        );
    }
    assert_eq!(errors.len(), 18);
}

#[sqlx::test]
async fn a_very_large_page_lands_whole(pool: PgPool) {
    let server = MockServer::start().await;
    let big = rows(1..=20_000, "Approved");
    serve_body(
        &server,
        1,
        serde_json::to_vec(&big).unwrap(),
        "application/json",
    )
    .await;
    serve_body(&server, 2, b"[]".to_vec(), "application/json").await;
    let reports = sync_window(&syncer(&pool, settings(&server.uri(), &[])), FROM, TO).await;
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded, "{reports:?}");
    assert_eq!(count(&pool, "rotessa.transactions").await, 20_000);
    assert_eq!(count(&pool, "rotessa.outbox").await, 20_000);
}
