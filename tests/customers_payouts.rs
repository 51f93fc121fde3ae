//! The customers and payouts streams against a mock Rotessa: the documentation's samples land
//! with exact values, re-syncs with nothing changed write and emit nothing, a changed customer
//! gives one event, schedules that disappear are marked, payouts are never duplicated, and
//! refused rows are quarantined without personal data.

mod common;

use common::platform::*;
use common::*;
use rotessa_recon::sync::{PassOptions, RunOutcome, RunReport, Stream, Syncer};
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::MockServer;

const CLIENT: i64 = 1001;

/// "Get all customers for a specific client", as documented (shared/seeds/001).
const DOCUMENTED_CUSTOMER: &str = r#"{
    "account_number": "23123132",
    "active": true,
    "address": {
      "address_1": "123 Main Street",
      "address_2": "Unit 4",
      "city": "Toronto",
      "id": 242317,
      "postal_code": "M1B 0B7",
      "province_code": "QC"
    },
    "authorization_type": null,
    "bank_account_type": null,
    "bank_name": "Scotiabank",
    "created_at": "2020-10-22T13:27:34.000-05:00",
    "custom_identifier": "MikeS",
    "customer_type": "Personal",
    "email": "[email protected]",
    "financial_transactions": [
      {
        "account_number": "****32",
        "amount": "100.00",
        "comment": "Monthly Fees",
        "created_at": "2021-03-26T16:02:05.338-05:00",
        "custom_identifier": "16472",
        "customer_id": 174527,
        "earliest_approval_date": "2021-04-02",
        "id": 12341234,
        "institution_number": "*33",
        "process_date": "2021-03-27",
        "settlement_date": "2021-04-05",
        "status": "Approved",
        "status_reason": null,
        "transaction_number": "INV1234123",
        "transaction_schedule_id": 1234321,
        "transit_number": "***11",
        "updated_at": "2021-04-05T11:02:20.222-05:00",
        "zapier_identifier": null
      }
    ],
    "home_phone": null,
    "id": 174527,
    "identifier": "MIKESMIT0007",
    "institution_number": "333",
    "name": "Mike Smith",
    "phone": null,
    "routing_number": null,
    "transaction_schedules": [
      {
        "active": true,
        "amount": "100.00",
        "comment": "Monthly Fees",
        "created_at": "2021-03-26T10:00:01.117-05:00",
        "frequency": "Monthly",
        "id": 1234321,
        "installments": 5,
        "next_process_date": "2021-04-27",
        "process_date": "2021-03-27",
        "updated_at": "2021-03-26T16:03:08.725-05:00"
      }
    ],
    "transit_number": "11111",
    "updated_at": "2020-10-22T13:28:42.000-05:00"
  }"#;

/// "Get payout report", as documented (shared/seeds/001).
const DOCUMENTED_PAYOUT: &str = r#"{
    "amount": "1.0",
    "customer": {
      "account_number": "23123132",
      "active": true,
      "authorization_type": null,
      "bank_account_type": null,
      "bank_name": "Scotiabank",
      "created_at": "2020-10-22T13:27:34.000-05:00",
      "custom_identifier": "MikeSmith",
      "customer_type": "Personal",
      "email": "[email protected]",
      "home_phone": null,
      "id": 174527,
      "identifier": "MIKESMIT0007",
      "institution_number": "333",
      "name": "Mike Smith",
      "phone": "",
      "routing_number": null,
      "transit_number": "11111",
      "updated_at": "2020-10-22T13:35:29.000-05:00"
    },
    "financial_transaction": null,
    "id": null,
    "status": "Future",
    "transaction_amount": "100.00"
  }"#;

fn documented_customer() -> Value {
    serde_json::from_str(DOCUMENTED_CUSTOMER).unwrap()
}

fn documented_payout() -> Value {
    serde_json::from_str(DOCUMENTED_PAYOUT).unwrap()
}

/// A settled payout of transaction `ft`.
fn payout(id: i64, ft: i64, status: &str, amount: &str) -> Value {
    json!({
        "amount": amount,
        "customer": {"id": 174527, "account_number": "23123132", "name": "Mike Smith"},
        "financial_transaction": {"id": ft, "amount": "100.00", "process_date": "2026-11-02",
                                  "settlement_date": "2026-11-06", "status": status,
                                  "updated_at": "2026-11-06T09:00:00.000-06:00"},
        "id": id,
        "status": status,
        "transaction_amount": "100.00"
    })
}

fn platform() -> Platform {
    let mut p = Platform {
        clients: vec![CLIENT],
        payouts: vec![documented_payout(), payout(9001, 1101, "Approved", "2.26")],
        ..Platform::default()
    };
    p.customers.insert(CLIENT, vec![documented_customer()]);
    p
}

fn test_settings(server: &MockServer, extra: &[(&str, &str)]) -> rotessa_recon::config::Settings {
    let mut env = vec![("RECON_SYNC__TODAY", "2026-11-22")];
    env.extend_from_slice(extra);
    settings(&server.uri(), &env)
}

async fn run(syncer: &Syncer, stream: Stream) -> Vec<RunReport> {
    let reports = syncer.run(stream, &PassOptions::default()).await;
    for r in &reports {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
    reports
}

async fn sync_new_streams(syncer: &Syncer) {
    run(syncer, Stream::Customers).await;
    run(syncer, Stream::Payouts).await;
}

async fn events(pool: &PgPool, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar("select payload from rotessa.outbox where type = $1 order by txid, seq")
        .bind(event_type)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn the_documented_samples_land_with_exact_values(pool: PgPool) {
    let server = MockServer::start().await;
    platform().mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    sync_new_streams(&syncer).await;

    let customer: Value = sqlx::query_scalar(
        "select to_jsonb(c) - 'first_seen_at' - 'changed_at' from rotessa.customers c",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        customer,
        json!({
            "id": 174527, "client_id": CLIENT, "custom_identifier": "MikeS",
            "identifier": "MIKESMIT0007", "name": "Mike Smith", "email": "[email protected]",
            "customer_type": "Personal", "active": true, "bank_name": "Scotiabank",
            "authorization_type": null, "bank_account_type": null,
            "account_number": "*****132", "transit_number": "**111", "institution_number": "*33",
            "routing_number": null, "phone": null, "home_phone": null, "address": null,
            "api_created_at": "2020-10-22T18:27:34+00:00",
            "api_updated_at": "2020-10-22T18:28:42+00:00",
            "extra": null, "removed_at": null
        })
    );
    let schedule: Value = sqlx::query_scalar(
        "select to_jsonb(s) - 'first_seen_at' - 'changed_at' from rotessa.transaction_schedules s",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        schedule,
        json!({
            "id": 1234321, "customer_id": 174527, "client_id": CLIENT, "amount": 100.00,
            "frequency": "Monthly", "installments": 5, "process_date": "2021-03-27",
            "next_process_date": "2021-04-27", "active": true, "comment": "Monthly Fees",
            "api_created_at": "2021-03-26T15:00:01.117+00:00",
            "api_updated_at": "2021-03-26T21:03:08.725+00:00",
            "extra": null, "removed_at": null
        })
    );

    let payouts: Vec<Value> = sqlx::query_scalar(
        "select jsonb_build_array(payout_key, payout_id, financial_transaction_id, customer_id,
                                  amount::text, transaction_amount::text, status)
         from rotessa.payouts order by payout_key desc",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        payouts,
        vec![
            json!([
                "payout:9001",
                9001,
                1101,
                174527,
                "2.26",
                "100.00",
                "Approved"
            ]),
            json!([
                "future:174527:100.00:1.00:1",
                null,
                null,
                174527,
                "1.00",
                "100.00",
                "Future"
            ]),
        ],
        "the null id is kept as null, \"1.0\" is 1.00"
    );
    let extra: Option<Value> =
        sqlx::query_scalar("select extra from rotessa.payouts where payout_key like 'future:%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(extra, None, "the nested customer is not kept");
    assert_eq!(events(&pool, "customer.changed").await.len(), 1);
    assert_eq!(events(&pool, "payout.changed").await.len(), 2);
    let event = &events(&pool, "customer.changed").await[0];
    assert_eq!(event["current"]["name"], "Mike Smith");
    assert_eq!(event["previous"], Value::Null);
}

#[sqlx::test]
async fn a_resync_with_nothing_changed_writes_nothing_and_emits_nothing(pool: PgPool) {
    let server = MockServer::start().await;
    platform().mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    sync_new_streams(&syncer).await;
    let before = count(&pool, "rotessa.outbox").await;
    let stamps = "select string_agg(changed_at::text, ',' order by 1) from (
        select changed_at from rotessa.customers union all
        select changed_at from rotessa.transaction_schedules union all
        select changed_at from rotessa.payouts) t";
    let changed_before: String = sqlx::query_scalar(stamps).fetch_one(&pool).await.unwrap();

    sync_new_streams(&syncer).await;
    let written: i64 = scalar(
        &pool,
        "select (sum(rows_inserted + rows_updated))::bigint from rotessa.sync_runs
         where id > (select min(id) from rotessa.sync_runs where stream = 'customers') + 1",
    )
    .await;
    assert_eq!(written, 0, "the second runs wrote nothing");
    assert_eq!(
        count(&pool, "rotessa.outbox").await,
        before,
        "and emitted nothing"
    );
    let changed_after: String = sqlx::query_scalar(stamps).fetch_one(&pool).await.unwrap();
    assert_eq!(changed_after, changed_before);
}

#[sqlx::test]
async fn a_changed_customer_gives_one_event(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = platform();
    p.mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    sync_new_streams(&syncer).await;

    let c = &mut p.customers.get_mut(&CLIENT).unwrap()[0];
    c["email"] = json!("mike.smith at example.org");
    c["updated_at"] = json!("2026-11-20T10:00:00.000-06:00");
    p.mount(&server).await;
    sync_new_streams(&syncer).await;
    sync_new_streams(&syncer).await;

    let changed = events(&pool, "customer.changed").await;
    assert_eq!(
        changed.len(),
        2,
        "first sight, then one change: {changed:?}"
    );
    assert_eq!(changed[1]["changed"], json!(["email"]));
    assert!(
        !changed[1].to_string().contains("example.org")
            && changed[1]["current"].get("email").is_none(),
        "events carry no contact data: {}",
        changed[1]
    );
    assert!(
        !changed[1].to_string().contains("23123132"),
        "events carry masked bank numbers only"
    );

    // An older view of the customer (a lagging replica) is not applied.
    let c = &mut p.customers.get_mut(&CLIENT).unwrap()[0];
    c["email"] = json!("mike (old address)");
    c["updated_at"] = json!("2026-11-01T10:00:00.000-06:00");
    p.mount(&server).await;
    sync_new_streams(&syncer).await;
    let email: String = sqlx::query_scalar("select email from rotessa.customers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(email, "mike.smith at example.org");
    assert_eq!(events(&pool, "customer.changed").await.len(), 2);
}

#[sqlx::test]
async fn a_schedule_that_disappears_is_marked_removed_and_comes_back(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = platform();
    let second = json!({"active": true, "amount": "25.00", "comment": null, "frequency": "Weekly",
                        "id": 1234322, "installments": null, "next_process_date": "2026-11-29",
                        "process_date": "2026-11-01", "created_at": null, "updated_at": null});
    p.customers.get_mut(&CLIENT).unwrap()[0]["transaction_schedules"]
        .as_array_mut()
        .unwrap()
        .push(second.clone());
    p.mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    run(&syncer, Stream::Customers).await;
    assert_eq!(count(&pool, "rotessa.transaction_schedules").await, 2);

    p.customers.get_mut(&CLIENT).unwrap()[0]["transaction_schedules"]
        .as_array_mut()
        .unwrap()
        .pop();
    p.mount(&server).await;
    run(&syncer, Stream::Customers).await;
    let removed: Vec<(i64, bool)> = sqlx::query_as(
        "select id, removed_at is not null from rotessa.transaction_schedules order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        removed,
        vec![(1234321, false), (1234322, true)],
        "marked, not deleted"
    );
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.customers where removed_at is null"
        )
        .await,
        1
    );

    p.customers.get_mut(&CLIENT).unwrap()[0]["transaction_schedules"]
        .as_array_mut()
        .unwrap()
        .push(second);
    p.mount(&server).await;
    run(&syncer, Stream::Customers).await;
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.transaction_schedules where removed_at is null"
        )
        .await,
        2,
        "a schedule listed again is no longer marked"
    );

    // A customer gone from the list is marked, with its schedules.
    p.customers.insert(CLIENT, Vec::new());
    p.mount(&server).await;
    run(&syncer, Stream::Customers).await;
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.customers where removed_at is not null"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.transaction_schedules where removed_at is null"
        )
        .await,
        0
    );
}

#[sqlx::test]
async fn payouts_are_never_duplicated_across_overlapping_windows(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = platform();
    // Two identical Future payouts in one response are two payouts.
    p.payouts.push(documented_payout());
    p.mount(&server).await;
    // Ten-day windows over 160 days: a mock that ignores the dates returns every payout in
    // each of the 16 windows.
    let syncer = syncer(
        &pool,
        test_settings(&server, &[("RECON_SYNC__PAYOUTS__WINDOW_DAYS", "10")]),
    );
    run(&syncer, Stream::Payouts).await;
    let overlapping = PassOptions {
        from: Some("2026-11-01".parse().unwrap()),
        to: Some("2026-12-31".parse().unwrap()),
        ..PassOptions::default()
    };
    syncer.run(Stream::Payouts, &overlapping).await;
    run(&syncer, Stream::Payouts).await;
    let keys: Vec<String> = sqlx::query_scalar("select payout_key from rotessa.payouts order by 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        keys,
        vec![
            "future:174527:100.00:1.00:1",
            "future:174527:100.00:1.00:2",
            "payout:9001"
        ]
    );
    assert_eq!(events(&pool, "payout.changed").await.len(), 3);

    // The second Future payout is processed: the forecast it was is marked removed, its own
    // payout arrives under its id, and an amount change is one event.
    p.payouts.pop();
    p.payouts[1] = payout(9001, 1101, "Approved", "2.50");
    p.payouts.push(payout(9002, 1102, "Pending", "1.00"));
    p.mount(&server).await;
    run(&syncer, Stream::Payouts).await;
    let rows: Vec<(String, bool, String)> = sqlx::query_as(
        "select payout_key, removed_at is not null, amount::text from rotessa.payouts order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("future:174527:100.00:1.00:1".into(), false, "1.00".into()),
            ("future:174527:100.00:1.00:2".into(), true, "1.00".into()),
            ("payout:9001".into(), false, "2.50".into()),
            ("payout:9002".into(), false, "1.00".into()),
        ]
    );
    let changed = events(&pool, "payout.changed").await;
    assert_eq!(changed.len(), 5, "{changed:#?}");
    assert_eq!(changed[3]["previous"]["amount"], "2.26");
    assert_eq!(changed[3]["current"]["amount"], "2.50");
}

#[sqlx::test]
async fn refused_rows_are_quarantined_without_personal_data(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = platform();
    let mut bad = documented_customer();
    bad["id"] = json!("not-an-id");
    bad["account_number"] = json!("99988877");
    bad["phone"] = json!("2045559876");
    p.customers.get_mut(&CLIENT).unwrap().push(bad);
    let mut bad_payout = documented_payout();
    bad_payout["amount"] = json!("1.005");
    bad_payout["customer"]["account_number"] = json!("55566677");
    p.payouts.push(bad_payout);
    p.mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    sync_new_streams(&syncer).await;

    let quarantined: Vec<(String, String)> =
        sqlx::query_as("select stream, raw from rotessa.rejected_records order by stream")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    for (_, raw) in &quarantined {
        for secret in ["99988877", "2045559876", "55566677", "Main Street"] {
            assert!(!raw.contains(secret), "{secret} stored in {raw}");
        }
    }
    // A refused row might be a listed customer: the list says nothing of removals then.
    p.customers.get_mut(&CLIENT).unwrap().remove(0);
    p.mount(&server).await;
    run(&syncer, Stream::Customers).await;
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.customers where removed_at is not null"
        )
        .await,
        0
    );
}

#[sqlx::test]
async fn an_older_view_of_a_customer_changes_none_of_its_schedules(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = platform();
    let c = &mut p.customers.get_mut(&CLIENT).unwrap()[0];
    c["updated_at"] = json!("2026-11-20T10:00:00.000-06:00");
    c["transaction_schedules"][0]["updated_at"] = Value::Null;
    p.mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    run(&syncer, Stream::Customers).await;

    // A lagging copy: older customer, its schedule at another amount, a schedule missing.
    let c = &mut p.customers.get_mut(&CLIENT).unwrap()[0];
    c["updated_at"] = json!("2026-11-01T10:00:00.000-06:00");
    c["transaction_schedules"][0]["amount"] = json!("9.00");
    p.mount(&server).await;
    run(&syncer, Stream::Customers).await;
    let schedule: (String, bool) = sqlx::query_as(
        "select amount::text, removed_at is not null from rotessa.transaction_schedules",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(schedule, ("100.00".into(), false));
    let c = &mut p.customers.get_mut(&CLIENT).unwrap()[0];
    c["transaction_schedules"] = json!([]);
    p.mount(&server).await;
    run(&syncer, Stream::Customers).await;
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.transaction_schedules where removed_at is null"
        )
        .await,
        1,
        "an older view's missing schedule is not marked removed"
    );
}

#[sqlx::test]
async fn two_payouts_of_one_transaction_are_two_and_a_conflicting_repeat_is_refused(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = platform();
    let mut reversal = payout(9003, 1101, "Chargeback", "-2.26");
    reversal["status"] = json!("Chargeback");
    let mut conflicting = payout(9001, 1101, "Approved", "9.99");
    conflicting["transaction_amount"] = json!("100.00");
    p.payouts.extend([
        reversal,
        payout(9001, 1101, "Approved", "2.26"),
        conflicting,
    ]);
    p.mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    run(&syncer, Stream::Payouts).await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select payout_key, amount::text from rotessa.payouts
         where financial_transaction_id = 1101 order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("payout:9001".into(), "2.26".into()),
            ("payout:9003".into(), "-2.26".into())
        ]
    );
    let (runs_rejected, quarantined): (i64, String) = sqlx::query_as(
        "select r.rows_rejected, q.error from rotessa.sync_runs r, rotessa.rejected_records q
         where r.stream = 'payouts'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(runs_rejected, 1);
    assert!(quarantined.contains("payout:9001"), "{quarantined}");
}

#[sqlx::test]
async fn fields_rotessa_may_add_that_look_personal_never_reach_extra(pool: PgPool) {
    let server = MockServer::start().await;
    let mut p = platform();
    let c = &mut p.customers.get_mut(&CLIENT).unwrap()[0];
    c["mobile_phone"] = json!("2045557777");
    c["date_of_birth"] = json!("1980-06-01");
    c["preferred_language"] = json!("en");
    p.customers
        .get_mut(&CLIENT)
        .unwrap()
        .push(json!("2045551234"));
    p.mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    run(&syncer, Stream::Customers).await;
    let extra: Value = sqlx::query_scalar("select extra from rotessa.customers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(extra, json!({"preferred_language": "en"}));
    let quarantined: String =
        sqlx::query_scalar("select raw || ' ' || error from rotessa.rejected_records")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!quarantined.contains("2045551234"), "{quarantined}");
}

/// A read that started before another process wrote a customer never marks it removed.
#[sqlx::test]
async fn a_customer_written_by_a_newer_read_is_never_marked_removed_by_an_older_one(pool: PgPool) {
    use rotessa_recon::store::customers;
    let server = MockServer::start().await;
    platform().mount(&server).await;
    let syncer = syncer(&pool, test_settings(&server, &[]));
    let before: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&pool)
        .await
        .unwrap();
    run(&syncer, Stream::Customers).await;
    let mut tx = pool.begin().await.unwrap();
    let marked = customers::mark_removed(&mut tx, Some(CLIENT), &[], before)
        .await
        .unwrap();
    assert_eq!(marked, Vec::<i64>::new(), "written after that read began");
    let later: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select clock_timestamp()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let marked = customers::mark_removed(&mut tx, Some(CLIENT), &[], later)
        .await
        .unwrap();
    assert_eq!(marked, vec![174527], "a read that began later may mark it");
}
