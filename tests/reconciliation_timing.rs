//! SPEC.md "Outbox and events": a settlement date is reconciled once both of its sides are in
//! (no false alarm while transactions lag behind), every date whose computed side changes is
//! reconciled again, `reconciliation_state` agrees with the view after every completed pass,
//! and the chargeback model is a setting. Real PostgreSQL (`#[sqlx::test]`); a mock Rotessa,
//! the simulator, and the real daemon against the simulator with API latency.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::daemon::{Daemon, wait_until};
use common::platform::*;
use common::*;
use rotessa_recon::sim::{ChargebackOn, SimConfig, SimServer};
use rotessa_recon::sync::{Clock, PassOptions, RunOutcome, Stream, Syncer};
use serde_json::json;
use sqlx::PgPool;
use wiremock::MockServer;

/// Dates on which `rotessa.reconciliation_state` disagrees with the view (or lacks one).
async fn disagreements(pool: &PgPool) -> Vec<(i64, NaiveDate)> {
    sqlx::query_as(
        "select v.client_id, v.settlement_date
         from rotessa.settlement_reconciliation v
         left join rotessa.reconciliation_state s using (client_id, settlement_date)
         where s.matched is distinct from v.matched
         order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn events_of(pool: &PgPool, kind: &str) -> Vec<String> {
    sqlx::query_scalar("select aggregateid from rotessa.outbox where type = $1 order by seq")
        .bind(kind)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Every stream once, in `--stream all` order; every run must succeed.
async fn pass(syncer: &Syncer) {
    for stream in Stream::ALL {
        for r in syncer.run(stream, &PassOptions::default()).await {
            assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
        }
    }
}

#[sqlx::test]
async fn a_late_decline_outside_the_settlements_window_is_reconciled_again(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = Platform {
        clients: vec![1001],
        ..Platform::default()
    };
    // Approved and settled on 2026-08-25, long before the settlements window of later runs
    // (cursor - 14 days) but inside the transactions window.
    let approved = txn_on(5, 1001, "Approved", "100.00", "2026-08-20", "2026-08-25");
    p.transactions = vec![approved.clone()];
    p.settlements.insert(
        1001,
        vec![settlement(
            "2026-08-25",
            (1, "100.00"),
            (0, "0.00"),
            (0, "0.00"),
        )],
    );
    p.mount(&server).await;
    let syncer = syncer(
        &pool,
        settings(&server.uri(), &[("RECON_SYNC__TODAY", "2026-11-22")]),
    );
    pass(&syncer).await;
    assert_eq!(
        events_of(&pool, "reconciliation.matched").await,
        ["1001:2026-08-25"]
    );
    assert_eq!(disagreements(&pool).await, vec![]);

    // Three months on, Rotessa reports it declined (a late return), in both reports.
    let mut declined = declined_in_report(&approved, "Declined", "NSF", "2026-11-20");
    declined["updated_at"] = json!("2026-11-20T10:00:00.000-06:00");
    p.transactions = vec![declined.clone()];
    p.declines.insert(
        1001,
        vec![as_decline(&declined, "Declined", "NSF", "2026-11-20")],
    );
    p.mount(&server).await;
    pass(&syncer).await;
    assert_eq!(
        events_of(&pool, "reconciliation.mismatch").await,
        ["1001:2026-08-25"]
    );
    assert_eq!(disagreements(&pool).await, vec![]);
    let state: bool = sqlx::query_scalar(
        "select matched from rotessa.reconciliation_state where settlement_date = '2026-08-25'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!state);
    // Nothing changed: nothing more.
    pass(&syncer).await;
    assert_eq!(count(&pool, "rotessa.outbox").await, 5);
}

#[sqlx::test]
async fn a_settlement_is_reconciled_only_once_its_transactions_were_read_after_it(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = Platform {
        clients: vec![1001],
        ..Platform::default()
    };
    p.transactions = vec![txn(1, 1001, "Pending", "40.00", "2026-11-20")];
    p.mount(&server).await;
    let syncer = syncer(
        &pool,
        settings(&server.uri(), &[("RECON_SYNC__TODAY", "2026-11-22")]),
    );
    pass(&syncer).await;

    // Rotessa settles the transaction, and the settlements are read first: the transaction
    // report read before them still said Pending. No reconciliation yet, so no false alarm.
    p.settlements.insert(
        1001,
        vec![settlement(
            "2026-11-20",
            (1, "40.00"),
            (0, "0.00"),
            (0, "0.00"),
        )],
    );
    let mut approved = txn(1, 1001, "Approved", "40.00", "2026-11-20");
    approved["updated_at"] = json!("2026-11-19T09:00:00.000-06:00");
    p.transactions = vec![approved];
    p.mount(&server).await;
    let none = PassOptions::default();
    for r in syncer.run(Stream::Settlements, &none).await {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
    assert_eq!(count(&pool, "rotessa.reconciliation_state").await, 0);
    assert_eq!(count(&pool, "rotessa.reconciliation_pending").await, 1);
    // The transactions are read after the settlement; the declines too: now it is reconciled.
    syncer.run(Stream::Transactions, &none).await;
    assert_eq!(
        count(&pool, "rotessa.reconciliation_state").await,
        0,
        "declines not yet"
    );
    syncer.run(Stream::Declines, &none).await;
    assert_eq!(
        events_of(&pool, "reconciliation.matched").await,
        ["1001:2026-11-20"]
    );
    assert_eq!(
        events_of(&pool, "reconciliation.mismatch").await,
        Vec::<String>::new()
    );
    assert_eq!(count(&pool, "rotessa.reconciliation_pending").await, 0);
    assert_eq!(disagreements(&pool).await, vec![]);
}

/// Syncs every stream of a simulator at its today and after each of `steps` days.
async fn through_time(syncer: &Syncer, sim: &SimServer, steps: &[u32]) {
    for days in steps {
        sim.advance(*days);
        pass(syncer).await;
    }
}

#[sqlx::test]
async fn with_chargebacks_counted_on_their_settlement_date_a_matching_rotessa_reconciles(
    pool: PgPool,
) {
    let sim = SimServer::start(
        SimConfig {
            seed: 7,
            transactions: 6000,
            today: "2026-11-23".parse().unwrap(),
            chargeback_on: ChargebackOn::SettlementDate,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    // Under this model a chargeback up to 90 days after its debit changes a settlement up to
    // about 87 days old: the settlements are read over 100 days (and the transactions ten days
    // further back, so that the oldest settlement's transactions are in), every few days.
    let settings_with = |model: &str| {
        settings(
            &sim.base_url(),
            &[
                ("RECON_ROTESSA__API_KEY", sim.api_key()),
                ("RECON_RECONCILIATION__CHARGEBACK_ON", model),
                ("RECON_SYNC__SETTLEMENTS__LOOKBACK_DAYS", "100"),
                ("RECON_SYNC__TRANSACTIONS__LOOKBACK_DAYS", "110"),
            ],
        )
    };
    let clock = Clock::Dynamic(sim.handle().clock());
    let syncer = syncer(&pool, settings_with("settlement_date")).with_clock(clock.clone());
    through_time(&syncer, &sim, &[0, 5, 5, 5, 5, 5, 5]).await;
    let chargebacks: i64 =
        sqlx::query_scalar("select count(*) from rotessa.transactions where status = 'Chargeback'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(chargebacks > 0, "the data has chargebacks");
    let mismatched: i64 = sqlx::query_scalar(
        "select count(*) from rotessa.settlement_reconciliation where not matched",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    assert_eq!(
        events_of(&pool, "reconciliation.mismatch").await,
        Vec::<String>::new()
    );
    assert_eq!(disagreements(&pool).await, vec![]);

    // The other model on the same data: the dates with chargebacks mismatch, and switching
    // reconciles every date again at the next pass.
    let other = syncer_for_model(&pool, settings_with("decline_date"), clock);
    pass(&other).await;
    assert!(!events_of(&pool, "reconciliation.mismatch").await.is_empty());
    assert_eq!(disagreements(&pool).await, vec![]);
    let out = run_binary(
        &["reconcile", "--from", "2026-08-01", "--to", "2026-12-31"],
        &[
            ("DATABASE_URL", &database_url(&pool)),
            ("RECON_ROTESSA__API_KEY", "unused"),
        ],
    );
    let text = output_text(&out);
    assert!(
        text.contains("chargebacks counted on their decline date"),
        "{text}"
    );
}

fn syncer_for_model(
    pool: &PgPool,
    settings: rotessa_recon::config::Settings,
    clock: Clock,
) -> Syncer {
    syncer(pool, settings).with_clock(clock)
}

#[sqlx::test]
async fn the_daemons_first_catch_up_raises_no_false_alarm_and_a_real_mismatch_still_does(
    pool: PgPool,
) {
    // Transactions take many pages at 200 ms each, settlements a few requests per client: in the
    // catch-up (every stream at once) the settlements finish long before the transactions.
    let sim = SimServer::start(
        SimConfig {
            seed: 11,
            transactions: 30_000,
            today: "2019-03-12".parse().unwrap(),
            history_days: 40,
            future_days: 0,
            api_key: API_KEY.to_owned(),
            latency_ms: 200,
            retry_after_secs: 0,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let every_2s = "*/2 * * * * *";
    let daemon = Daemon::spawn(
        &database_url(&pool),
        &sim.base_url(),
        &[
            ("RECON_SYNC__TRANSACTIONS__LOOKBACK_DAYS", "45"),
            ("RECON_SYNC__TRANSACTIONS__WINDOW_DAYS", "10"),
            ("RECON_SYNC__CLIENTS__ENABLED", "true"),
            ("RECON_SYNC__DECLINES__ENABLED", "true"),
            ("RECON_SYNC__SETTLEMENTS__ENABLED", "true"),
            ("RECON_SYNC__TRANSACTIONS__SCHEDULE", every_2s),
            ("RECON_SYNC__DECLINES__SCHEDULE", every_2s),
            ("RECON_SYNC__SETTLEMENTS__SCHEDULE", every_2s),
        ],
    );
    let limit = Duration::from_secs(120);
    // Caught up: every settlement date reconciled, after runs that read everything.
    wait_until("every settlement date is reconciled", limit, || async {
        let settled = count(&pool, "rotessa.settlements").await;
        let reconciled = count(&pool, "rotessa.reconciliation_state").await;
        settled > 0 && reconciled == settled
    })
    .await;
    assert_eq!(
        events_of(&pool, "reconciliation.mismatch").await,
        Vec::<String>::new()
    );
    let matched = events_of(&pool, "reconciliation.matched").await;
    assert!(!matched.is_empty());

    // A real mismatch on one date: one event, once its transactions were read after it.
    let date: NaiveDate = "2019-03-05".parse().unwrap();
    let client = sim.handle().client_ids()[0];
    sim.handle().adjust_settlement(client, date, 500).unwrap();
    let key = format!("{client}:{date}");
    wait_until("the mismatch is reported", limit, || async {
        events_of(&pool, "reconciliation.mismatch")
            .await
            .contains(&key)
    })
    .await;
    assert_eq!(events_of(&pool, "reconciliation.mismatch").await, vec![key]);
    drop(daemon);
    assert_eq!(disagreements(&pool).await, vec![]);
}
