//! The README's accounting queries run as written against a synced database.

mod common;

use common::platform::*;
use common::readme::accounting_queries;
use common::*;
use rotessa_recon::sync::{PassOptions, RunOutcome, Stream};
use sqlx::PgPool;
use wiremock::MockServer;

#[sqlx::test]
async fn every_accounting_query_runs(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = Platform {
        clients: vec![7],
        ..Platform::default()
    };
    let declined = txn(2, 7, "Pending", "30.00", "2026-11-10");
    p.transactions = vec![
        txn(1, 7, "Approved", "100.00", "2026-11-10"),
        declined_in_report(&declined, "Declined", "NSF", "2026-11-09"),
    ];
    p.settlements.insert(
        7,
        vec![settlement(
            "2026-11-10",
            (1, "99.00"),
            (1, "30.00"),
            (0, "0.00"),
        )],
    );
    p.customers.insert(
        7,
        vec![serde_json::json!({
            "id": 10, "name": "Mike Smith", "custom_identifier": "MikeS", "active": true,
            "account_number": "23123132", "transaction_schedules": [
                {"id": 5, "amount": "100.00", "frequency": "Monthly", "installments": 5,
                 "process_date": "2026-09-01", "next_process_date": "2026-12-01", "active": true}
            ]
        })],
    );
    p.payouts = vec![serde_json::json!({
        "amount": "2.26", "id": 900, "status": "Approved", "transaction_amount": "100.00",
        "customer": {"id": 10},
        "financial_transaction": {"id": 1, "settlement_date": "2026-11-10"}
    })];
    p.mount(&server).await;
    let syncer = syncer(
        &pool,
        settings(&server.uri(), &[("RECON_SYNC__TODAY", "2026-11-22")]),
    );
    for stream in Stream::ALL {
        for r in syncer.run(stream, &PassOptions::default()).await {
            assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
        }
    }
    let queries = accounting_queries();
    assert!(queries.len() >= 5, "{queries:?}");
    let mut returned = Vec::new();
    for sql in &queries {
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("README query failed: {e}\n{sql}"));
        returned.push(rows.len());
    }
    // Approved per settlement date, and the injected mismatch, are found.
    assert_eq!(returned[0], 1, "approved amount per settlement date");
    assert_eq!(returned[4], 1, "reconciliation mismatches");
    assert_eq!(returned[10], 1, "platform payouts per month");
}
