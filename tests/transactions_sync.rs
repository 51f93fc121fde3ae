//! The transactions stream against a mock Rotessa and a real PostgreSQL: exact values, paging,
//! change detection without writes, status rules, rejected rows, concurrent writers.

mod common;

use chrono::NaiveDate;
use common::*;
use rotessa_recon::sync::RunOutcome;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::MockServer;

const FROM: &str = "2019-02-15";
const TO: &str = "2019-03-12";

/// The two sample rows of "Show a transaction report for all clients" (seed 001), verbatim.
const DOC_SAMPLE: &str = r#"[
  {
    "account_number": 111111,
    "amount": "100.00",
    "client_id": 4321,
    "created_at": "2019-01-29T15:46:03.000-05:00",
    "comment": "May Fees",
    "custom_identifier": "MIKEY",
    "customer_id": 1,
    "decline_date": null,
    "earliest_approval_date": null,
    "id": 1233,
    "institution_number": null,
    "process_date": "2019-02-28",
    "settlement_date": "2019-03-7",
    "status": "Future",
    "status_reason": null,
    "transaction_custom_identifieer": "TS1234",
    "transaction_number": null,
    "transaction_schedule_id": 330374,
    "transit_number": null,
    "updated_at": null
  },
  {
    "account_number": 121212,
    "amount": "100.00",
    "client_id": 4325,
    "created_at": "2019-02-29T14:55:16.000-05:00",
    "comment": null,
    "custom_identifier": "MIKEY",
    "customer_id": 1,
    "decline_date": null,
    "earliest_approval_date": null,
    "id": 1234,
    "institution_number": null,
    "process_date": "2019-03-07",
    "settlement_date": "2019-03-14",
    "status": "Future",
    "status_reason": null,
    "transaction_custom_identifieer": null,
    "transaction_number": null,
    "transaction_schedule_id": 330374,
    "transit_number": null,
    "updated_at": null
  }
]"#;

fn assert_succeeded(reports: &[rotessa_recon::sync::RunReport]) {
    assert!(!reports.is_empty());
    for r in reports {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
}

#[sqlx::test]
async fn documented_sample_rows_land_with_exact_values(pool: PgPool) {
    let server = MockServer::start().await;
    let rows: Vec<Value> = serde_json::from_str(DOC_SAMPLE).unwrap();
    serve_report(&server, &rows).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    assert_succeeded(&sync_window(&syncer, "2018-09-12", TO).await);

    type Row = (
        Decimal,
        Option<NaiveDate>,
        Option<String>,
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<i64>,
        String,
    );
    let (amount, settlement, account, schedule_ci, updated, client, amount_text): Row =
        sqlx::query_as(
            "select amount, settlement_date, account_number, schedule_custom_identifier,
                    api_updated_at, client_id, amount::text
             from rotessa.transactions where id = 1233",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(amount, Decimal::new(10000, 2));
    assert_eq!(amount_text, "100.00");
    assert_eq!(settlement, NaiveDate::from_ymd_opt(2019, 3, 7));
    assert_eq!(account.as_deref(), Some("111111"));
    assert_eq!(schedule_ci.as_deref(), Some("TS1234"));
    assert_eq!(updated, None);
    assert_eq!(client, Some(4321));
    let created: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select api_created_at from rotessa.transactions where id = 1233")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(created.to_rfc3339(), "2019-01-29T20:46:03+00:00");

    // The second row's impossible created_at is NULL, its text kept in extra.
    let (created, extra): (Option<chrono::DateTime<chrono::Utc>>, Option<Value>) =
        sqlx::query_as("select api_created_at, extra from rotessa.transactions where id = 1234")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(created, None);
    assert_eq!(
        extra,
        Some(json!({"created_at": "2019-02-29T14:55:16.000-05:00"}))
    );
    assert_eq!(count(&pool, "rotessa.outbox").await, 2);
    assert_eq!(count(&pool, "rotessa.rejected_records").await, 0);
}

#[sqlx::test]
async fn pages_of_1000_1000_500_all_land_in_exactly_three_requests(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=2500, "Pending")).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_succeeded(&reports);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_eq!(count(&pool, "rotessa.transactions").await, 2500);
    assert_eq!(reports[0].progress.pages, 3);
    assert_eq!(reports[0].progress.inserted, 2500);
    let run: (i32, i64, i64, String) = sqlx::query_as(
        "select pages, rows_inserted, events_emitted, status from rotessa.sync_runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(run, (3, 2500, 2500, "succeeded".to_owned()));
}

/// Every row's (id, xmin, xmax): a write changes xmin, a row lock sets xmax.
async fn row_versions(pool: &PgPool) -> Vec<(i64, String, String)> {
    sqlx::query_as("select id, xmin::text, xmax::text from rotessa.transactions order by id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn unchanged_data_rewrites_and_locks_nothing_and_emits_nothing(pool: PgPool) {
    let server = MockServer::start().await;
    serve_report(&server, &rows(1..=1500, "Approved")).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    assert_succeeded(&sync_window(&syncer, FROM, TO).await);
    let before = row_versions(&pool).await;
    let events_before = count(&pool, "rotessa.outbox").await;
    assert!(before.iter().all(|(_, _, xmax)| xmax == "0"));

    let reports = sync_window(&syncer, FROM, TO).await;
    assert_succeeded(&reports);
    assert_eq!(
        row_versions(&pool).await,
        before,
        "no row rewritten or locked"
    );
    assert_eq!(count(&pool, "rotessa.outbox").await, events_before);
    assert_eq!(
        count(&pool, "rotessa.transaction_status_history").await,
        1500
    );
    let p = reports[0].progress;
    assert_eq!(
        (p.unchanged, p.inserted, p.updated, p.events),
        (1500, 0, 0, 0)
    );
}

#[sqlx::test]
async fn forward_moves_emit_once_and_backward_moves_become_anomalies(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &[row(7, "Pending")]).await;
    assert_succeeded(&sync_window(&syncer, FROM, TO).await);

    let mut approved = row(7, "Approved");
    approved["earliest_approval_date"] = json!("2019-03-05");
    serve_report(&server, &[approved]).await;
    assert_succeeded(&sync_window(&syncer, FROM, TO).await);

    let history: Vec<(Option<String>, String, String)> = sqlx::query_as(
        "select from_status, to_status, source from rotessa.transaction_status_history
         where transaction_id = 7 order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![
            (None, "Pending".into(), "transaction_report".into()),
            (
                Some("Pending".into()),
                "Approved".into(),
                "transaction_report".into()
            ),
        ]
    );
    let events: Vec<(String, String, String, Value)> = sqlx::query_as(
        "select aggregatetype, aggregateid, type, payload from rotessa.outbox order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    let (kind, key, event_type, payload) = &events[1];
    assert_eq!((kind.as_str(), key.as_str()), ("transaction", "7"));
    assert_eq!(event_type, "transaction.status_changed");
    let observed_at = payload["observed_at"].as_str().unwrap().to_owned();
    assert!(observed_at.ends_with('Z'), "{observed_at}");
    assert_eq!(
        payload,
        &json!({
            "event_version": 1,
            "transaction_id": 7,
            "client_id": 4321,
            "customer_id": 1,
            "amount": "25.00",
            "from_status": "Pending",
            "to_status": "Approved",
            "status_reason": null,
            "process_date": "2019-03-01",
            "settlement_date": "2019-03-08",
            "decline_date": null,
            "transaction_number": "INV7",
            "custom_identifier": "C7",
            "observed_at": observed_at,
            "source": "transaction_report",
            "reversal": false
        })
    );

    // Approved -> Pending is a report lagging behind: refused, recorded, silent.
    let before = row_versions(&pool).await;
    serve_report(&server, &[row(7, "Pending")]).await;
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_succeeded(&reports);
    assert_eq!(reports[0].progress.anomalies, 1);
    assert_eq!(count(&pool, "rotessa.outbox").await, 2);
    assert_eq!(count(&pool, "rotessa.transaction_status_history").await, 2);
    let status: String = sqlx::query_scalar("select status from rotessa.transactions where id = 7")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "Approved");
    assert_eq!(
        row_versions(&pool).await[0].1,
        before[0].1,
        "row not rewritten"
    );
    let anomaly: (String, String, String, i32) = sqlx::query_as(
        "select stored_status, observed_status, source, times_seen from rotessa.status_anomalies
         where transaction_id = 7",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        anomaly,
        (
            "Approved".into(),
            "Pending".into(),
            "transaction_report".into(),
            1
        )
    );

    // A byte-identical page is skipped (the page cache): nothing is read or recorded again.
    let times_seen = || async {
        sqlx::query_scalar::<_, i32>("select times_seen from rotessa.status_anomalies")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_succeeded(&reports);
    assert_eq!((reports[0].progress.unchanged, times_seen().await), (1, 1));
    // Compared row by row, the same disagreement is counted on the same anomaly row.
    let uncached = syncer_for(&pool, &server, &[("RECON_SYNC__PAGE_CACHE", "false")]);
    assert_succeeded(&sync_window(&uncached, FROM, TO).await);
    assert_eq!(times_seen().await, 2);
    assert_eq!(count(&pool, "rotessa.status_anomalies").await, 1);
}

fn syncer_for(
    pool: &PgPool,
    server: &MockServer,
    extra: &[(&str, &str)],
) -> rotessa_recon::sync::Syncer {
    syncer(pool, settings(&server.uri(), extra))
}

#[sqlx::test]
async fn a_new_status_reason_is_an_event_but_other_field_changes_are_not(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let mut declined = row(9, "Declined");
    declined["status_reason"] = json!("NSF");
    declined["decline_date"] = json!("2019-03-04");
    serve_report(&server, &[declined.clone()]).await;
    assert_succeeded(&sync_window(&syncer, FROM, TO).await);

    declined["comment"] = json!("called the customer");
    serve_report(&server, &[declined.clone()]).await;
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_eq!(
        (reports[0].progress.updated, reports[0].progress.events),
        (1, 0)
    );

    declined["status_reason"] = json!("Account Closed");
    serve_report(&server, &[declined]).await;
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_eq!(
        (reports[0].progress.updated, reports[0].progress.events),
        (1, 1)
    );
    let (comment, reason): (Option<String>, Option<String>) =
        sqlx::query_as("select comment, status_reason from rotessa.transactions where id = 9")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(comment.as_deref(), Some("called the customer"));
    assert_eq!(reason.as_deref(), Some("Account Closed"));
    assert_eq!(count(&pool, "rotessa.outbox").await, 2);
}

#[sqlx::test]
async fn malformed_rows_are_quarantined_and_the_rest_of_the_page_lands(pool: PgPool) {
    let server = MockServer::start().await;
    let mut page = rows(1..=5, "Pending");
    let mut no_id = row(100, "Pending");
    no_id.as_object_mut().unwrap().remove("id");
    let mut bad_amount = row(101, "Pending");
    bad_amount["amount"] = json!("abc");
    let unknown_status = row(102, "Settled");
    page.insert(1, no_id);
    page.insert(3, bad_amount);
    page.push(unknown_status);
    serve_report(&server, &page).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_succeeded(&reports);
    assert_eq!(reports[0].progress.rejected, 3);

    let ids: Vec<i64> = sqlx::query_scalar("select id from rotessa.transactions order by id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    let rejected: Vec<(String, String, String, i64)> = sqlx::query_as(
        "select stream, raw, error, client_id from rotessa.rejected_records order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rejected.len(), 3);
    let errors: Vec<&str> = rejected.iter().map(|r| r.2.as_str()).collect();
    assert!(
        errors[0].contains("missing required field `id`"),
        "{errors:?}"
    );
    assert!(errors[1].contains("`amount`"), "{errors:?}");
    assert!(
        errors[2].contains("unknown status \"Settled\""),
        "{errors:?}"
    );
    for (stream, raw, _, _) in &rejected {
        assert_eq!(stream, "transactions");
        let parsed: Value = serde_json::from_str(raw).expect("raw JSON kept as sent");
        assert!(parsed.is_object());
    }

    // Seen again, the same bad rows are counted, not stored twice.
    assert_succeeded(&sync_window(&syncer, FROM, TO).await);
    assert_eq!(count(&pool, "rotessa.rejected_records").await, 3);
}

#[sqlx::test]
async fn two_syncs_at_once_emit_each_transition_exactly_once(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &rows(1..=3000, "Pending")).await;
    assert_succeeded(&sync_window(&syncer, FROM, TO).await);

    // Half the rows move forward; the rest gain a new row each.
    let mut changed = rows(1..=1500, "Approved");
    changed.extend(rows(1501..=3000, "Pending"));
    changed.extend(rows(3001..=3500, "Pending"));
    serve_report(&server, &changed).await;
    let other = syncer.clone();
    let (a, b) = tokio::join!(
        sync_window(&syncer, FROM, TO),
        sync_window(&other, FROM, TO)
    );
    assert_succeeded(&a);
    assert_succeeded(&b);

    let per_transition: Vec<(String, i64)> = sqlx::query_as(
        "select coalesce(payload->>'from_status', 'new') || '->' || (payload->>'to_status'),
                count(*)
         from rotessa.outbox group by 1 order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        per_transition,
        vec![
            ("Pending->Approved".to_owned(), 1500),
            ("new->Pending".to_owned(), 3500),
        ]
    );
    let duplicates: i64 = sqlx::query_scalar(
        "select count(*) from (select aggregateid, payload->>'to_status'
                               from rotessa.outbox group by 1, 2 having count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(duplicates, 0);
    assert_eq!(
        count(&pool, "rotessa.transaction_status_history").await,
        5000
    );
    let emitted: i64 = a.iter().chain(&b).map(|r| r.progress.events).sum();
    assert_eq!(emitted, 2000);
}

#[sqlx::test]
async fn identical_pages_are_skipped_and_changed_ones_compared(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    serve_report(&server, &rows(1..=1500, "Pending")).await;
    assert_succeeded(&sync_window(&syncer, FROM, TO).await);
    let digests: Vec<(i32, i32)> =
        sqlx::query_as("select page, row_count from rotessa.page_digests order by page")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(digests, vec![(1, 1000), (2, 500)]);

    // Only the second page changes: the first is skipped unparsed, the second compared.
    let mut changed = rows(1..=1500, "Pending");
    changed[1200] = row(1201, "Approved");
    serve_report(&server, &changed).await;
    let reports = sync_window(&syncer, FROM, TO).await;
    assert_succeeded(&reports);
    let p = reports[0].progress;
    assert_eq!((p.pages, p.unchanged, p.updated, p.events), (2, 1499, 1, 1));

    // A run over other windows forgets this window's digests (windows move with "today").
    assert_succeeded(&sync_window(&syncer, "2019-03-13", "2019-03-20").await);
    let left: Vec<(chrono::NaiveDate,)> =
        sqlx::query_as("select distinct window_from from rotessa.page_digests")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, vec![("2019-03-13".parse().unwrap(),)]);
}
