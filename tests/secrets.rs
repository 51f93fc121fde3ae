//! The API key goes to the configured host only: a redirect elsewhere is not followed, so the
//! other host never sees the key (or any request).

mod common;

use common::*;
use rotessa_recon::sync::RunOutcome;
use sqlx::PgPool;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[sqlx::test]
async fn a_redirect_to_another_host_does_not_carry_the_key(pool: PgPool) {
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(rows(1..=3, "Pending")))
        .mount(&elsewhere)
        .await;
    let configured = MockServer::start().await;
    for status in [301, 302, 307, 308] {
        configured.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).insert_header(
                "Location",
                format!("{}/v2/transaction_report", elsewhere.uri()),
            ))
            .mount(&configured)
            .await;
        let reports = sync_window(
            &syncer(&pool, settings(&configured.uri(), &[])),
            "2019-03-01",
            "2019-03-12",
        )
        .await;
        let RunOutcome::Failed(error) = &reports[0].outcome else {
            panic!("{status}: {reports:?}")
        };
        assert!(error.contains(&format!("HTTP {status}")), "{error}");
        assert!(error.contains("a redirect, not followed"), "{error}");
        assert!(!error.contains(API_KEY), "{error}");
    }
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the other host was contacted"
    );
    for request in configured.received_requests().await.unwrap() {
        let auth = request.headers.get("authorization").unwrap();
        assert_eq!(auth.to_str().unwrap(), format!("Token token=\"{API_KEY}\""));
    }
}
