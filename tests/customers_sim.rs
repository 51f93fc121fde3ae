//! The customers and payouts streams against the simulator: no full bank number, phone or
//! address lands anywhere by default (every column of the new tables, the outbox and the
//! quarantine are scanned for the simulator's unmasked values), names and schedules land, and
//! `store_contact = true` keeps exactly what it promises.

mod common;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use common::simulated::{sim_syncer, sync_all};
use common::*;
use rotessa_recon::sim::{SimConfig, SimServer};
use rotessa_recon::sync::{PassOptions, RunOutcome, Stream};
use serde_json::Value;
use sqlx::PgPool;

async fn simulator() -> SimServer {
    SimServer::start(
        SimConfig {
            seed: 13,
            clients: 2,
            customers: 80,
            transactions: 800,
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            history_days: 60,
            future_days: 45,
            api_key: API_KEY.to_owned(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Every customer object the simulator serves, straight from its API.
async fn served_customers(sim: &SimServer) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    for id in sim.handle().client_ids() {
        let list: Vec<Value> = http
            .get(format!("{}/v2/clients/{id}/customers", sim.base_url()))
            .header("Authorization", format!("Token token=\"{API_KEY}\""))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.extend(list);
    }
    all
}

/// The simulator's unmasked values: full bank numbers, phone numbers and street addresses.
fn private_values(customers: &[Value]) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    for c in customers {
        for field in ["account_number", "transit_number", "routing_number"] {
            if let Some(v) = c[field].as_str().filter(|v| v.len() >= 5) {
                values.insert(v.to_owned());
            }
        }
        for field in ["phone", "home_phone"] {
            if let Some(v) = c[field].as_str().filter(|v| !v.is_empty()) {
                values.insert(v.to_owned());
            }
        }
        if let Some(street) = c["address"]["address_1"].as_str() {
            values.insert(street.to_owned());
        }
    }
    values
}

/// Every column of every row of the tables that could hold customer data, as text.
async fn stored_text(pool: &PgPool) -> Vec<String> {
    let mut texts = Vec::new();
    for table in [
        "rotessa.customers",
        "rotessa.transaction_schedules",
        "rotessa.payouts",
        "rotessa.outbox",
        "rotessa.rejected_records",
    ] {
        let sql = format!("select t::text from {table} t");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap();
        texts.extend(rows);
    }
    texts
}

/// The values that occur in some text as a whole token (not inside a longer number or id: a
/// 5-digit transit number is a substring of many transaction ids and UUIDs).
fn found(texts: &[String], values: &BTreeSet<String>) -> Vec<String> {
    let token = |text: &str, v: &str| {
        text.match_indices(v).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + v.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        })
    };
    values
        .iter()
        .filter(|v| texts.iter().any(|t| token(t, v)))
        .cloned()
        .collect()
}

#[sqlx::test]
async fn no_full_bank_number_phone_or_address_is_stored_by_default(pool: PgPool) {
    let sim = simulator().await;
    let syncer = sim_syncer(&pool, &sim, &[]);
    sync_all(&syncer).await;

    let served = served_customers(&sim).await;
    let private = private_values(&served);
    assert!(
        private.iter().any(|v| v.len() >= 7) && private.len() > 100,
        "the simulator serves unmasked numbers and phones: {private:?}"
    );
    let texts = stored_text(&pool).await;
    assert_eq!(
        found(&texts, &private),
        Vec::<String>::new(),
        "private values stored"
    );

    // What is kept landed: every customer with its name, masked numbers, and schedules.
    assert_eq!(count(&pool, "rotessa.customers").await, served.len() as i64);
    let unnamed = scalar(
        &pool,
        "select count(*) from rotessa.customers where name is null",
    )
    .await;
    assert_eq!(unnamed, 0);
    let unmasked = scalar(
        &pool,
        "select count(*) from rotessa.customers where account_number !~ '^\\*+[0-9]{1,3}$'",
    )
    .await;
    assert_eq!(unmasked, 0, "every stored account number is masked");
    assert!(count(&pool, "rotessa.transaction_schedules").await > 0);
    assert!(count(&pool, "rotessa.payouts").await > 0);
    let named: i64 = scalar(
        &pool,
        "select count(*) from rotessa.transactions t join rotessa.customers c on c.id = t.customer_id",
    )
    .await;
    assert_eq!(
        named,
        count(&pool, "rotessa.transactions").await,
        "every transaction's customer is known"
    );

    // Nothing changed: a second pass writes no customer, schedule or payout and emits nothing.
    let events = count(&pool, "rotessa.outbox").await;
    let last_run = scalar(&pool, "select max(id) from rotessa.sync_runs").await;
    for stream in [Stream::Customers, Stream::Payouts] {
        for r in syncer.run(stream, &PassOptions::default()).await {
            assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
        }
    }
    let written: Vec<(String, i64)> = sqlx::query_as(
        "select stream, (rows_inserted + rows_updated)::bigint from rotessa.sync_runs
         where id > $1 and rows_inserted + rows_updated > 0",
    )
    .bind(last_run)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(written, Vec::<(String, i64)>::new());
    assert_eq!(count(&pool, "rotessa.outbox").await, events);
    sim.shutdown().await;
}

#[sqlx::test]
async fn store_contact_keeps_phones_and_addresses_and_still_masks_bank_numbers(pool: PgPool) {
    let sim = simulator().await;
    let syncer = sim_syncer(
        &pool,
        &sim,
        &[("RECON_SYNC__CUSTOMERS__STORE_CONTACT", "true")],
    );
    sync_all(&syncer).await;

    let served = served_customers(&sim).await;
    let texts = stored_text(&pool).await;
    let phones: BTreeSet<String> = served
        .iter()
        .filter_map(|c| c["phone"].as_str().filter(|p| !p.is_empty()))
        .map(str::to_owned)
        .collect();
    assert!(!phones.is_empty());
    assert_eq!(
        found(&texts, &phones),
        phones.iter().cloned().collect::<Vec<_>>(),
        "the scan finds what is stored"
    );
    let accounts: BTreeSet<String> = served
        .iter()
        .filter_map(|c| c["account_number"].as_str().filter(|a| a.len() >= 5))
        .map(str::to_owned)
        .collect();
    assert_eq!(found(&texts, &accounts), Vec::<String>::new());
    let outbox: Vec<String> = sqlx::query_scalar("select payload::text from rotessa.outbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        found(&outbox, &phones),
        Vec::<String>::new(),
        "events carry no contact data"
    );

    // Turned off again: the next run clears what was kept, without an event.
    let events = count(&pool, "rotessa.outbox").await;
    let syncer = sim_syncer(&pool, &sim, &[]);
    for r in syncer.run(Stream::Customers, &PassOptions::default()).await {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
    let texts = stored_text(&pool).await;
    assert_eq!(found(&texts, &phones), Vec::<String>::new());
    assert_eq!(count(&pool, "rotessa.outbox").await, events);
    sim.shutdown().await;
}

#[sqlx::test]
async fn the_simulators_documented_samples_land_as_documented(pool: PgPool) {
    let sim = SimServer::start(
        SimConfig {
            seed: 13,
            clients: 1,
            customers: 5,
            transactions: 20,
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            api_key: API_KEY.to_owned(),
            documented_samples: true,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let syncer = sim_syncer(&pool, &sim, &[]);
    sync_all(&syncer).await;
    let mike: (String, String, String, Option<String>) = sqlx::query_as(
        "select name, account_number, transit_number, address::text from rotessa.customers
         where id = 174527",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        mike,
        ("Mike Smith".into(), "*****132".into(), "**111".into(), None)
    );
    let future: (Option<i64>, String, String) = sqlx::query_as(
        "select payout_id, amount::text, status from rotessa.payouts
         where payout_key = 'future:174527:100.00:1.00:1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(future, (None, "1.00".into(), "Future".into()));
    assert_eq!(
        scalar(
            &pool,
            "select count(*) from rotessa.payouts where customer_id = 174527"
        )
        .await,
        1,
        "the sample heads every window's report and is stored once"
    );
    sim.shutdown().await;
}
