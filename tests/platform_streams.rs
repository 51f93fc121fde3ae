//! The platform streams against a mock Rotessa with three clients: clients, declines,
//! settlements, the reconciliation and its events, client isolation, v1 accounts.

mod common;

use chrono::NaiveDate;
use common::platform::*;
use common::*;
use rotessa_recon::sync::{Clock, PassOptions, RunOutcome, RunReport, Stream, Syncer};
use serde_json::Value;
use sqlx::PgPool;
use wiremock::MockServer;

const TODAY: &str = "2026-11-22";

fn platform_settings(
    server: &MockServer,
    extra: &[(&str, &str)],
) -> rotessa_recon::config::Settings {
    let mut env = vec![
        ("RECON_SYNC__TODAY", TODAY),
        ("RECON_SYNC__TRANSACTIONS__WINDOW_DAYS", "400"),
    ];
    env.extend_from_slice(extra);
    settings(&server.uri(), &env)
}

/// Every stream in `--stream all` order.
async fn sync_all(syncer: &Syncer) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for stream in Stream::ALL {
        reports.extend(syncer.run(stream, &PassOptions::default()).await);
    }
    reports
}

fn assert_all_succeeded(reports: &[RunReport]) {
    for r in reports {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
}

/// Three clients, each: two approved and one declined transaction settling on 2026-11-10, one
/// pending settling later; the matching decline row and settlement.
fn three_clients() -> Platform {
    let mut p = Platform {
        clients: vec![1001, 1002, 1003],
        ..Platform::default()
    };
    for c in &p.clients {
        let base = c * 100;
        let declined = txn(base + 3, *c, "Pending", "30.00", "2026-11-10");
        p.transactions.extend([
            txn(base + 1, *c, "Approved", "100.00", "2026-11-10"),
            txn(base + 2, *c, "Approved", "50.00", "2026-11-10"),
            declined_in_report(&declined, "Declined", "NSF", "2026-11-09"),
            txn(base + 4, *c, "Pending", "20.00", "2026-11-20"),
        ]);
        p.declines.insert(
            *c,
            vec![as_decline(&declined, "Declined", "NSF", "2026-11-09")],
        );
        p.settlements.insert(
            *c,
            vec![settlement(
                "2026-11-10",
                (2, "150.00"),
                (1, "30.00"),
                (0, "0.00"),
            )],
        );
    }
    p
}

async fn events_by_type(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("select type, count(*) from rotessa.outbox group by 1 order by 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn transitions_of(pool: &PgPool, id: i64) -> Vec<(Option<String>, String, String)> {
    sqlx::query_as(
        "select payload->>'from_status', payload->>'to_status', payload->>'source'
         from rotessa.outbox where aggregatetype = 'transaction' and aggregateid = $1 order by seq",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn all_three_reports_sync_for_three_clients(pool: PgPool) {
    let server = MockServer::start().await;
    three_clients().mount(&server).await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    let reports = sync_all(&syncer).await;
    assert_all_succeeded(&reports);
    let names: Vec<(&str, i64)> = reports.iter().map(|r| (r.stream, r.client_id)).collect();
    assert_eq!(
        names,
        vec![
            ("clients", 0),
            ("customers", 1001),
            ("customers", 1002),
            ("customers", 1003),
            ("settlements", 1001),
            ("settlements", 1002),
            ("settlements", 1003),
            ("transactions", 0),
            ("declines", 1001),
            ("declines", 1002),
            ("declines", 1003),
            ("payouts", 0),
        ]
    );
    assert_eq!(count(&pool, "rotessa.clients").await, 3);
    let raw: Vec<Value> = sqlx::query_scalar("select raw from rotessa.clients")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        raw.iter()
            .all(|r| r.get("api_keys").is_none() && r.get("owners").is_some())
    );
    assert_eq!(count(&pool, "rotessa.transactions").await, 12);
    assert_eq!(count(&pool, "rotessa.settlements").await, 3);
    assert_eq!(
        events_by_type(&pool).await,
        vec![
            ("reconciliation.matched".to_owned(), 3),
            ("settlement.changed".to_owned(), 3),
            ("transaction.status_changed".to_owned(), 12),
        ]
    );
    let matched: Vec<bool> = sqlx::query_scalar(
        "select matched from rotessa.settlement_reconciliation order by client_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(matched, vec![true, true, true]);

    // Nothing changed: nothing written, nothing emitted.
    let reports = sync_all(&syncer).await;
    assert_all_succeeded(&reports);
    assert!(
        reports
            .iter()
            .all(|r| r.progress.events == 0 && r.progress.inserted == 0)
    );
    assert_eq!(count(&pool, "rotessa.outbox").await, 18);
}

#[sqlx::test]
async fn a_late_chargeback_outside_the_transactions_window_is_caught_once(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = Platform {
        clients: vec![1001],
        ..Platform::default()
    };
    let approved = txn_on(42, 1001, "Approved", "80.00", "2026-09-01", "2026-09-04");
    p.transactions = vec![approved.clone()];
    p.mount(&server).await;
    // A 30-day look-back, as the alternatives use: 2026-09-01 leaves it by October.
    let settings = platform_settings(
        &server,
        &[("RECON_SYNC__TRANSACTIONS__LOOKBACK_DAYS", "30")],
    );
    let at = |day: &str| {
        syncer(&pool, settings.clone()).with_clock(Clock::Fixed(day.parse::<NaiveDate>().unwrap()))
    };
    assert_all_succeeded(&sync_all(&at("2026-09-05")).await);

    // Sixty days after the debit, the chargeback: the transaction report would show it, but the
    // transactions window [today - 30, today + 60] no longer reaches back to 2026-09-01.
    let charged = declined_in_report(
        &approved,
        "Chargeback",
        "Payment Stopped/Recalled",
        "2026-10-31",
    );
    p.transactions = vec![charged.clone()];
    p.declines.insert(
        1001,
        vec![as_decline(
            &approved,
            "Chargeback",
            "Payment Stopped/Recalled",
            "2026-10-31",
        )],
    );
    p.mount(&server).await;
    let late = at("2026-10-31");
    assert_all_succeeded(&sync_all(&late).await);
    assert_all_succeeded(&sync_all(&late).await);
    assert_eq!(
        transitions_of(&pool, 42).await,
        vec![
            (None, "Approved".into(), "transaction_report".into()),
            (
                Some("Approved".into()),
                "Chargeback".into(),
                "transaction_decline_report".into()
            ),
        ]
    );
    // A backfill through the transaction report sees the same chargeback: no second event.
    let opts = PassOptions {
        from: "2026-08-01".parse().ok(),
        to: "2026-09-30".parse().ok(),
        ..PassOptions::default()
    };
    assert_all_succeeded(&late.run(Stream::Transactions, &opts).await);
    assert_eq!(transitions_of(&pool, 42).await.len(), 2);
    let status: String =
        sqlx::query_scalar("select status from rotessa.transactions where id = 42")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "Chargeback");
}

#[sqlx::test]
async fn a_transition_reported_by_both_reports_is_emitted_once(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = Platform {
        clients: vec![1001, 1002],
        ..Platform::default()
    };
    let a = txn(1, 1001, "Pending", "10.00", "2026-11-10");
    let b = txn(2, 1002, "Pending", "10.00", "2026-11-10");
    p.transactions = vec![a.clone(), b.clone()];
    p.mount(&server).await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    assert_all_succeeded(&sync_all(&syncer).await);

    // Transaction 1 is seen declined by the transaction report first, transaction 2 by the
    // decline report first; then each report repeats what the other said.
    let a_declined = declined_in_report(&a, "Declined", "NSF", "2026-11-20");
    let b_declined = declined_in_report(&b, "Declined", "NSF", "2026-11-20");
    p.transactions = vec![a_declined.clone(), b.clone()];
    p.declines
        .insert(1001, vec![as_decline(&a, "Declined", "NSF", "2026-11-20")]);
    p.declines
        .insert(1002, vec![as_decline(&b, "Declined", "NSF", "2026-11-20")]);
    p.mount(&server).await;
    let none = PassOptions::default();
    assert_all_succeeded(&syncer.run(Stream::Transactions, &none).await);
    assert_all_succeeded(&syncer.run(Stream::Declines, &none).await);
    p.transactions = vec![a_declined, b_declined];
    p.mount(&server).await;
    assert_all_succeeded(&syncer.run(Stream::Transactions, &none).await);
    assert_all_succeeded(&syncer.run(Stream::Declines, &none).await);
    for (id, source) in [(1, "transaction_report"), (2, "transaction_decline_report")] {
        let transitions = transitions_of(&pool, id).await;
        assert_eq!(
            transitions,
            vec![
                (None, "Pending".to_owned(), "transaction_report".to_owned()),
                (
                    Some("Pending".to_owned()),
                    "Declined".to_owned(),
                    source.to_owned()
                ),
            ],
            "transaction {id}"
        );
    }
}

#[sqlx::test]
async fn changed_settlement_totals_emit_once_and_the_reconciliation_flags_the_mismatch(
    pool: PgPool,
) {
    let server = MockServer::start().await;
    let mut p = three_clients();
    p.mount(&server).await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    assert_all_succeeded(&sync_all(&syncer).await);
    let before = count(&pool, "rotessa.outbox").await;

    // Rotessa now reports one cent more approved for client 1002 than its transactions add up to.
    p.settlements.insert(
        1002,
        vec![settlement(
            "2026-11-10",
            (2, "150.01"),
            (1, "30.00"),
            (0, "0.00"),
        )],
    );
    p.mount(&server).await;
    assert_all_succeeded(&sync_all(&syncer).await);
    let new: Vec<(String, String, Value)> = sqlx::query_as(
        "select type, aggregateid, payload from rotessa.outbox where seq > (
             select max(seq) from (select seq from rotessa.outbox order by seq limit $1) s)
         order by seq",
    )
    .bind(before)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(new.len(), 2, "{new:?}");
    let (kind, key, payload) = &new[0];
    assert_eq!(
        (kind.as_str(), key.as_str()),
        ("settlement.changed", "1002:2026-11-10")
    );
    assert_eq!(payload["previous"]["total_approved"], "150.00");
    assert_eq!(payload["current"]["total_approved"], "150.01");
    assert_eq!(payload["event_version"], 1);
    let (kind, key, payload) = &new[1];
    assert_eq!(
        (kind.as_str(), key.as_str()),
        ("reconciliation.mismatch", "1002:2026-11-10")
    );
    assert_eq!(payload["matched"], false);
    assert_eq!(payload["difference"]["total_approved"], "0.01");
    assert_eq!(payload["rotessa"]["total_approved"], "150.01");
    assert_eq!(payload["computed"]["total_approved"], "150.00");
    let mismatched: Vec<(i64, bool)> = sqlx::query_as(
        "select client_id, matched from rotessa.settlement_reconciliation where not matched",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(mismatched, vec![(1002, false)]);

    // Unchanged: nothing more.
    assert_all_succeeded(&sync_all(&syncer).await);
    assert_eq!(count(&pool, "rotessa.outbox").await, before + 2);

    // The mismatch grows: the settlement changed, and so did the comparison.
    p.settlements.insert(
        1002,
        vec![settlement(
            "2026-11-10",
            (2, "150.05"),
            (1, "30.00"),
            (0, "0.00"),
        )],
    );
    p.mount(&server).await;
    assert_all_succeeded(&sync_all(&syncer).await);
    let last: Vec<(String, Value)> =
        sqlx::query_as("select type, payload from rotessa.outbox order by seq desc limit 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(count(&pool, "rotessa.outbox").await, before + 4);
    assert_eq!(last[0].0, "reconciliation.mismatch");
    assert_eq!(last[0].1["difference"]["total_approved"], "0.05");
    assert_eq!(last[1].0, "settlement.changed");

    // Corrected: one change and the date matches again.
    p.settlements.insert(
        1002,
        vec![settlement(
            "2026-11-10",
            (2, "150.00"),
            (1, "30.00"),
            (0, "0.00"),
        )],
    );
    p.mount(&server).await;
    assert_all_succeeded(&sync_all(&syncer).await);
    let last: Vec<String> =
        sqlx::query_scalar("select type from rotessa.outbox order by seq desc limit 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(last, vec!["reconciliation.matched", "settlement.changed"]);
}

#[sqlx::test]
async fn a_settlement_changed_only_outside_its_totals_is_written_without_an_event(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = three_clients();
    p.mount(&server).await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    assert_all_succeeded(&sync_all(&syncer).await);
    let before = count(&pool, "rotessa.outbox").await;

    // A field this version does not know appears: kept in `extra`, the totals are the same.
    let mut row = settlement("2026-11-10", (2, "150.00"), (1, "30.00"), (0, "0.00"));
    row["batch_label"] = serde_json::json!("B-7");
    p.settlements.insert(1002, vec![row]);
    p.mount(&server).await;
    assert_all_succeeded(&sync_all(&syncer).await);

    let extra: Option<Value> = sqlx::query_scalar(
        "select extra from rotessa.settlements
         where client_id = 1002 and settlement_date = '2026-11-10'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(extra.unwrap()["batch_label"], "B-7");
    assert_eq!(
        count(&pool, "rotessa.outbox").await,
        before,
        "no settlement.changed without a change of totals"
    );
}

#[sqlx::test]
async fn comparisons_recorded_before_differences_were_are_filled_in_without_events(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = three_clients();
    p.settlements.insert(
        1002,
        vec![settlement(
            "2026-11-10",
            (2, "150.01"),
            (1, "30.00"),
            (0, "0.00"),
        )],
    );
    p.mount(&server).await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    assert_all_succeeded(&sync_all(&syncer).await);
    // As a database upgraded from a version that kept only the outcome.
    sqlx::query("update rotessa.reconciliation_state set difference = null")
        .execute(&pool)
        .await
        .unwrap();
    let before = count(&pool, "rotessa.outbox").await;

    assert_all_succeeded(&sync_all(&syncer).await);
    assert_eq!(count(&pool, "rotessa.outbox").await, before, "no event");
    let differences: Vec<Option<Value>> = sqlx::query_scalar(
        "select difference from rotessa.reconciliation_state order by client_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(differences.len(), 3);
    assert!(differences.iter().all(Option::is_some), "{differences:?}");
    assert_eq!(differences[1].as_ref().unwrap()["total_approved"], "0.01");
}

#[sqlx::test]
async fn an_outcome_flipped_without_its_difference_forgets_the_stale_one(pool: PgPool) {
    // As an older binary would write during a rolling upgrade: `matched` only.
    sqlx::query(
        "insert into rotessa.reconciliation_state (client_id, settlement_date, matched, difference)
         values (1002, '2026-11-10', false, '{\"total_approved\": \"0.01\"}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("update rotessa.reconciliation_state set matched = true")
        .execute(&pool)
        .await
        .unwrap();
    let difference: Option<Value> =
        sqlx::query_scalar("select difference from rotessa.reconciliation_state")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(difference, None);
    // The current binary writes both: kept.
    sqlx::query(
        "update rotessa.reconciliation_state
         set matched = false, difference = '{\"total_approved\": \"0.02\"}'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let difference: Option<Value> =
        sqlx::query_scalar("select difference from rotessa.reconciliation_state")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(difference.unwrap()["total_approved"], "0.02");
}

#[sqlx::test]
async fn one_clients_error_fails_only_that_clients_run(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = three_clients();
    p.decline_errors
        .insert(1002, (404, "not_found", "Client could not be found"));
    p.mount(&server).await;
    let syncer = syncer(&pool, platform_settings(&server, &[]));
    let reports = sync_all(&syncer).await;
    for r in &reports {
        if (r.stream, r.client_id) == ("declines", 1002) {
            let RunOutcome::Failed(e) = &r.outcome else {
                panic!("{r:?}")
            };
            assert!(
                e.contains("HTTP 404: not_found: Client could not be found"),
                "{e}"
            );
        } else {
            assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
        }
    }

    // The command says which client failed and why, and exits 1.
    let db = database_url(&pool);
    let uri = server.uri();
    let out = run_binary(
        &["sync", "--stream", "declines"],
        &[
            ("RECON_ROTESSA__BASE_URL", uri.as_str()),
            ("RECON_ROTESSA__API_KEY", API_KEY),
            ("RECON_SYNC__TODAY", TODAY),
            ("DATABASE_URL", db.as_str()),
        ],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("declines [client 1001] run"), "{text}");
    assert!(text.contains("declines [client 1002] run"), "{text}");
    assert!(
        text.contains("1 of 3 runs did not succeed: declines [client 1002]"),
        "{text}"
    );
    assert!(
        text.contains("HTTP 404: not_found: Client could not be found"),
        "{text}"
    );
}

#[sqlx::test]
async fn reconcile_prints_mismatches_first(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = three_clients();
    p.settlements.insert(
        1003,
        vec![settlement(
            "2026-11-10",
            (3, "170.00"),
            (1, "30.00"),
            (0, "0.00"),
        )],
    );
    p.mount(&server).await;
    assert_all_succeeded(&sync_all(&syncer(&pool, platform_settings(&server, &[]))).await);
    let db = database_url(&pool);
    let out = run_binary(
        &["reconcile", "--from", "2026-11-01", "--to", "2026-11-30"],
        &[("DATABASE_URL", db.as_str())],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("3 dates, 1 mismatched"), "{text}");
    assert!(
        lines[2].starts_with("1003") && lines[2].contains("MISMATCH"),
        "{text}"
    );
    assert!(
        lines[2].contains("170.00 (3) / 150.00 (2) / 20.00"),
        "{text}"
    );
    assert!(
        lines[3].contains("matched") && lines[4].contains("matched"),
        "{text}"
    );
}

#[sqlx::test]
async fn a_v1_account_runs_transactions_and_customers_only(pool: PgPool) {
    let server = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/transaction_report"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(rows(1..=3, "Approved")))
        .mount(&server)
        .await;
    // v1's list, as documented: no bank numbers, no schedules.
    wiremock::Mock::given(wiremock::matchers::path("/v1/customers"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!([
            {"active": true, "bank_name": "Scotiabank", "created_at": "2015-02-10T23:50:45.000-06:00",
             "custom_identifier": "Mikey", "customer_type": "Personal", "email": "mike at example",
             "home_phone": "(204) 555 4444", "id": 1, "identifier": "MikeSmith0001",
             "name": "Mike Smith", "phone": "(204) 555 5555",
             "updated_at": "2015-04-24T15:56:23.000-05:00"}
        ])))
        .mount(&server)
        .await;
    let db = database_url(&pool);
    let uri = server.uri();
    let env = [
        ("RECON_ROTESSA__BASE_URL", uri.as_str()),
        ("RECON_ROTESSA__API_KEY", API_KEY),
        ("RECON_ROTESSA__API_VERSION", "v1"),
        ("RECON_SYNC__TODAY", "2019-03-12"),
        ("DATABASE_URL", db.as_str()),
    ];
    let out = run_binary(&["sync"], &env);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        text.matches("v1 (single-merchant) account").count(),
        1,
        "{text}"
    );
    assert!(text.contains("transactions [all clients] run"), "{text}");
    assert!(text.contains("customers [all clients] run"), "{text}");
    assert!(
        !text.contains("declines")
            || text.contains("clients, declines, settlements and payouts need")
    );
    assert_eq!(count(&pool, "rotessa.transactions").await, 3);
    let customer: (Option<i64>, String, Option<String>) =
        sqlx::query_as("select client_id, name, phone from rotessa.customers")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(customer, (None, "Mike Smith".to_owned(), None));
    for r in server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() != "/v1/customers")
    {
        assert_eq!(r.url.path(), "/v1/transaction_report");
        let query = r.url.query().unwrap_or_default();
        assert!(
            query.contains("status=All") && query.contains("filter=All"),
            "{query}"
        );
    }

    let out = run_binary(&["sync", "--stream", "declines"], &env);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("the declines stream needs the v2 platform API"),
        "{text}"
    );
}
