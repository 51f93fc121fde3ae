//! The simulator against its contract (SPEC.md "The simulator", the Rotessa docs in
//! shared/seeds): paging, determinism, the lifecycle under a moving clock, settlements that
//! add up (under both chargeback models), reports that disagree, rows Rotessa stops reporting,
//! faults at the configured rate, and the core sync converging under 20% faults.
//!
//! HTTP goes through reqwest against a running simulator; the sync test uses a real PostgreSQL
//! database from `#[sqlx::test]` (DATABASE_URL). No sleeps, no timing thresholds.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use reqwest::StatusCode;
use rotessa_recon::config::Settings;
use rotessa_recon::rotessa::Client;
use rotessa_recon::sim::{ChargebackOn, SimConfig, SimReport, SimServer};
use rotessa_recon::store::Store;
use rotessa_recon::sync::{Clock, PassOptions, RunOutcome, Stream, Syncer};
use serde_json::Value;
use sqlx::PgPool;

const REASONS: [&str; 10] = [
    "NSF",
    "Payment Stopped/Recalled",
    "Edit Reject",
    "Funds Not Cleared",
    "Account Closed",
    "Invalid/Incorrect Account No.",
    "Account Not Found",
    "Account Frozen",
    "Agreement Revoked",
    "No Debit Allowed",
];

/// The documented fields of a v2 transaction report row.
const V2_FIELDS: [&str; 20] = [
    "account_number",
    "amount",
    "client_id",
    "created_at",
    "comment",
    "custom_identifier",
    "customer_id",
    "decline_date",
    "earliest_approval_date",
    "id",
    "institution_number",
    "process_date",
    "settlement_date",
    "status",
    "status_reason",
    "transaction_custom_identifieer",
    "transaction_number",
    "transaction_schedule_id",
    "transit_number",
    "updated_at",
];

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A Monday, so business-day arithmetic is easy to follow.
fn today() -> NaiveDate {
    d("2026-11-23")
}

fn config(transactions: u32) -> SimConfig {
    SimConfig {
        transactions,
        today: today(),
        ..SimConfig::default()
    }
}

async fn start(config: SimConfig) -> SimServer {
    SimServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn auth(sim: &SimServer) -> String {
    format!("Token token=\"{}\"", sim.api_key())
}

/// One GET with the right key; the status and the body.
async fn get(
    http: &reqwest::Client,
    sim: &SimServer,
    path: &str,
    query: &[(&str, String)],
) -> (StatusCode, Vec<u8>) {
    let response = http
        .get(format!("{}{path}", sim.base_url()))
        .header("Authorization", auth(sim))
        .query(query)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

fn rows(body: &[u8]) -> Vec<Value> {
    serde_json::from_slice::<Vec<Value>>(body).unwrap()
}

/// Every row of a report, page by page, until a short page.
async fn all_rows(
    http: &reqwest::Client,
    sim: &SimServer,
    path: &str,
    query: &[(&str, String)],
) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let mut q = query.to_vec();
        q.push(("page", page.to_string()));
        let (status, body) = get(http, sim, path, &q).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page_rows = rows(&body);
        let n = page_rows.len();
        assert!(n <= 1000);
        out.extend(page_rows);
        if n < 1000 {
            return out;
        }
    }
    out
}

fn wide(start: NaiveDate, end: NaiveDate) -> Vec<(&'static str, String)> {
    vec![
        ("start_date", start.to_string()),
        ("end_date", end.to_string()),
    ]
}

fn str_of<'a>(row: &'a Value, key: &str) -> Option<&'a str> {
    row.get(key).and_then(Value::as_str)
}

/// Dates as the reports send them, zero padding optional.
fn date_of(row: &Value, key: &str) -> Option<NaiveDate> {
    str_of(row, key).map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

/// "1037.48" -> 103748.
fn cents(text: &str) -> i64 {
    let (units, frac) = text.split_once('.').unwrap();
    assert_eq!(frac.len(), 2, "{text}");
    units.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert!(errors[0]["error_message"].as_str().is_some());
    errors[0]["error_code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn paging_matches_the_documentation() {
    let sim = start(config(2500)).await;
    let http = reqwest::Client::new();
    let q = wide(d("2025-01-01"), d("2027-12-31"));

    // 1000 a page, a short last page, then empty pages.
    let mut lens = Vec::new();
    let mut ids = Vec::new();
    for page in 1..=4 {
        let mut query = q.clone();
        query.push(("page", page.to_string()));
        let (status, body) = get(&http, &sim, "/v2/transaction_report", &query).await;
        assert_eq!(status, StatusCode::OK);
        let page_rows = rows(&body);
        lens.push(page_rows.len());
        ids.extend(page_rows.iter().map(|r| r["id"].as_i64().unwrap()));
    }
    assert_eq!(lens, vec![1000, 1000, 500, 0]);
    assert_eq!(ids.len(), 2500);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "stable id order");

    // The documented field set, with its quirks.
    let all = all_rows(&http, &sim, "/v2/transaction_report", &q).await;
    assert_eq!(all.len(), 2500);
    let mut numeric_accounts = 0;
    let mut unpadded = 0;
    for row in &all {
        let keys: HashSet<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, V2_FIELDS.into_iter().collect::<HashSet<_>>());
        assert!(str_of(row, "amount").is_some(), "amounts are strings");
        cents(str_of(row, "amount").unwrap());
        if row["account_number"].is_number() {
            numeric_accounts += 1;
        } else {
            assert!(str_of(row, "account_number").unwrap().starts_with('*'));
        }
        if str_of(row, "settlement_date").is_some_and(|s| s.len() == 9) {
            unpadded += 1;
        }
        assert!(str_of(row, "created_at").unwrap().ends_with(".000-05:00"));
        if str_of(row, "status") == Some("Future") {
            assert!(row["updated_at"].is_null() && row["institution_number"].is_null());
            assert!(row["transit_number"].is_null());
        } else {
            assert!(row["updated_at"].is_string() && row["institution_number"].is_string());
        }
    }
    assert!((300..700).contains(&numeric_accounts), "{numeric_accounts}");
    assert!(unpadded > 50, "{unpadded}");

    // The documented curl form: GET with a JSON body.
    let via_body = http
        .get(format!("{}/v2/transaction_report", sim.base_url()))
        .header("Authorization", auth(&sim))
        .header("Content-Type", "application/json")
        .body(r#"{"start_date":"2025-01-01","end_date":"2027-12-31","status":"All","page":2}"#)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut query = q.clone();
    query.push(("page", "2".into()));
    assert_eq!(
        get(&http, &sim, "/v2/transaction_report", &query).await.1,
        via_body
    );

    // Per client: the same rows, split; each row names its client.
    let mut per_client = 0;
    for id in sim.handle().client_ids() {
        let path = format!("/v2/clients/{id}/transaction_report");
        let client_rows = all_rows(&http, &sim, &path, &q).await;
        assert!(client_rows.iter().all(|r| r["client_id"] == id));
        per_client += client_rows.len();
    }
    assert_eq!(per_client, 2500);

    // A status filter, and v1 with its `filter` synonym and its own field set.
    let mut approved_q = q.clone();
    approved_q.push(("status", "Approved".into()));
    let approved = all_rows(&http, &sim, "/v2/transaction_report", &approved_q).await;
    let expected = all.iter().filter(|r| r["status"] == "Approved").count();
    assert_eq!(approved.len(), expected);
    let mut v1_q = q.clone();
    v1_q.push(("filter", "Approved".into()));
    let v1 = all_rows(&http, &sim, "/v1/transaction_report", &v1_q).await;
    assert_eq!(v1.len(), expected);
    for row in &v1 {
        assert_eq!(row["status"], "Approved");
        for absent in [
            "client_id",
            "decline_date",
            "transaction_custom_identifieer",
        ] {
            assert!(row.get(absent).is_none(), "v1 rows have no {absent}");
        }
    }

    // Exactly 2000 rows: two full pages, then an empty one.
    let even = start(config(2000)).await;
    let mut query = q.clone();
    query.push(("page", "3".into()));
    let (status, body) = get(&http, &even, "/v2/transaction_report", &query).await;
    assert_eq!((status, rows(&body).len()), (StatusCode::OK, 0));
}

#[tokio::test]
async fn errors_are_the_documented_ones() {
    let sim = start(config(100)).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v2/transaction_report?start_date=2026-11-01",
        sim.base_url()
    );

    let missing = http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&missing.bytes().await.unwrap()), "unauthorized");
    for wrong in [
        "Token token=\"nope\"",
        "Bearer sim-key",
        "Token token=sim-key",
    ] {
        let r = http
            .get(&url)
            .header("Authorization", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }

    type Query = Vec<(&'static str, String)>;
    let cases: [(&str, Query, StatusCode); 5] = [
        ("/v2/transaction_report", vec![], StatusCode::BAD_REQUEST),
        (
            "/v2/transaction_report",
            vec![("start_date", "2026-02-30".into())],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v2/transaction_report",
            vec![
                ("start_date", "2026-02-01".into()),
                ("status", "Bogus".into()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/v2/clients/999/transaction_report",
            vec![("start_date", "2026-02-01".into())],
            StatusCode::NOT_FOUND,
        ),
        (
            "/v2/clients/4321/transaction_decline_report",
            vec![],
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, query, expected) in cases {
        let (status, body) = get(&http, &sim, path, &query).await;
        assert_eq!(status, expected, "{path} {query:?}");
        error_code(&body);
    }

    // The clients list: the documented object, with a fake key that is not the API key.
    let (status, body) = get(&http, &sim, "/v2/clients", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let clients = rows(&body);
    assert_eq!(clients.len(), 3);
    assert_eq!(clients[0]["id"], 4321);
    assert_eq!(clients[1]["id"], 4325);
    let key = clients[0]["api_keys"][0]["key"].as_str().unwrap();
    assert_ne!(key, sim.api_key());
    for field in [
        "business_name",
        "operating_as",
        "status",
        "address",
        "owners",
    ] {
        assert!(clients[0].get(field).is_some(), "{field}");
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_bytes() {
    let http = reqwest::Client::new();
    let a = start(config(2500)).await;
    let b = start(config(2500)).await;
    let c = start(SimConfig {
        seed: 2,
        ..config(2500)
    })
    .await;
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    for page in ["1", "3"] {
        let mut query = q.clone();
        query.push(("page", page.into()));
        let pa = get(&http, &a, "/v2/transaction_report", &query).await.1;
        let pb = get(&http, &b, "/v2/transaction_report", &query).await.1;
        let pc = get(&http, &c, "/v2/transaction_report", &query).await.1;
        assert!(!pa.is_empty());
        assert_eq!(pa, pb, "page {page}");
        assert_ne!(pa, pc, "page {page}");
    }
    let settle = |sim: &SimServer| {
        let http = http.clone();
        let url = format!(
            "{}/v2/clients/4325/settlements/show_by_settlement_date",
            sim.base_url()
        );
        let key = auth(sim);
        async move {
            http.post(url)
                .header("Authorization", key)
                .json(&serde_json::json!({"start_date": "2026-06-01"}))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    };
    assert_eq!(settle(&a).await, settle(&b).await);
    assert_ne!(settle(&a).await, settle(&c).await);
    assert_eq!(
        get(&http, &a, "/v2/clients", &[]).await,
        get(&http, &b, "/v2/clients", &[]).await
    );
}

fn rank(status: &str) -> u8 {
    match status {
        "Future" => 0,
        "Pending" => 1,
        "Approved" | "Declined" => 2,
        "Chargeback" => 3,
        other => panic!("unknown status {other}"),
    }
}

#[tokio::test]
async fn advancing_the_clock_drives_the_lifecycle_forward_only() {
    let sim = start(SimConfig {
        transactions: 1500,
        history_days: 30,
        future_days: 30,
        ..config(0)
    })
    .await;
    let http = reqwest::Client::new();
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    let mut last: HashMap<i64, String> = HashMap::new();
    let mut moves: BTreeMap<(String, String), usize> = BTreeMap::new();
    for step in 0..130 {
        if step > 0 {
            sim.advance(1);
        }
        let today = sim.today();
        for row in all_rows(&http, &sim, "/v2/transaction_report", &q).await {
            let id = row["id"].as_i64().unwrap();
            let status = str_of(&row, "status").unwrap().to_owned();
            // Per status, the fields the documentation says go with it.
            let failed = status == "Declined" || status == "Chargeback";
            assert_eq!(row["decline_date"].is_string(), failed, "{row}");
            if failed {
                assert!(REASONS.contains(&str_of(&row, "status_reason").unwrap()));
                assert!(date_of(&row, "decline_date").unwrap() <= today);
            } else {
                assert!(row["status_reason"].is_null());
            }
            let approved = status == "Approved" || status == "Chargeback";
            assert_eq!(row["earliest_approval_date"].is_string(), approved, "{row}");
            assert_eq!(row["updated_at"].is_null(), status == "Future", "{row}");

            if let Some(before) = last.insert(id, status.clone())
                && before != status
            {
                assert!(
                    rank(&before) < rank(&status)
                        && !(before == "Declined" && status == "Chargeback"),
                    "transaction {id} moved {before} -> {status} on {today}"
                );
                *moves.entry((before, status)).or_default() += 1;
            }
        }
    }
    for (from, to) in [
        ("Future", "Pending"),
        ("Pending", "Approved"),
        ("Pending", "Declined"),
        ("Approved", "Chargeback"),
    ] {
        assert!(
            moves.contains_key(&(from.to_owned(), to.to_owned())),
            "never saw {from} -> {to}: {moves:?}"
        );
    }
    // With daily steps nothing skips Pending (it lasts at least two business days).
    assert!(
        moves
            .keys()
            .all(|(from, to)| from != "Future" || to == "Pending"),
        "{moves:?}"
    );
    let finals: HashSet<&str> = last.values().map(String::as_str).collect();
    assert!(
        !finals.contains("Future") && !finals.contains("Pending"),
        "{finals:?}"
    );
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Totals {
    number: [i64; 3],
    cents: [i64; 3],
}

/// The settlements of `client` from 2025 to 2027 by date: numbers and cents of approved,
/// declined and charged back (with the payout fields checked).
async fn settlements_of(
    http: &reqwest::Client,
    sim: &SimServer,
    client: i64,
) -> BTreeMap<NaiveDate, Totals> {
    let url = format!(
        "{}/v2/clients/{client}/settlements/show_by_settlement_date",
        sim.base_url()
    );
    let answer: Vec<Value> = http
        .post(&url)
        .header("Authorization", auth(sim))
        .json(&serde_json::json!({"start_date": "2025-01-01", "end_date": "2027-12-31"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut served: BTreeMap<NaiveDate, Totals> = BTreeMap::new();
    for s in &answer {
        let n = |k: &str| s[k].as_i64().unwrap();
        let c = |k: &str| cents(s[k].as_str().unwrap());
        assert_eq!(n("number_payout"), n("number_approved"));
        assert_eq!(c("total_payout"), 226 * n("number_approved"));
        served.insert(
            date_of(s, "settlement_date").unwrap(),
            Totals {
                number: [
                    n("number_approved"),
                    n("number_declined"),
                    n("number_chargeback"),
                ],
                cents: [
                    c("total_approved"),
                    c("total_declined"),
                    c("total_chargeback"),
                ],
            },
        );
    }
    served
}

/// Checks, for every client, that the settlements served equal what SQL over the transaction
/// report's rows would compute under the simulator's chargeback model (with `decline_date`,
/// the settlement_reconciliation view), and that the decline report has exactly the failed
/// rows; returns how many transaction rows were checked.
async fn check_settlements(http: &reqwest::Client, sim: &SimServer) -> usize {
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    let mut checked = 0;
    let today = sim.today();
    let model = admin_state(http, sim).await["chargeback_on"]
        .as_str()
        .unwrap()
        .parse::<ChargebackOn>()
        .unwrap();
    for client in sim.handle().client_ids() {
        let txs = all_rows(
            http,
            sim,
            &format!("/v2/clients/{client}/transaction_report"),
            &q,
        )
        .await;
        checked += txs.len();
        // What SQL over the synced rows would compute (the settlement_reconciliation view):
        // approved and declined by settlement date, a chargeback by its decline date; or, with
        // the settlement_date model, a chargeback by its settlement date instead of approved.
        let mut expected: BTreeMap<NaiveDate, Totals> = BTreeMap::new();
        let mut add = |day: NaiveDate, slot: usize, row: &Value| {
            let t = expected.entry(day).or_default();
            t.number[slot] += 1;
            t.cents[slot] += cents(str_of(row, "amount").unwrap());
        };
        for row in &txs {
            let settled = date_of(row, "settlement_date").unwrap();
            let status = str_of(row, "status").unwrap();
            if status == "Chargeback" {
                let charged = date_of(row, "decline_date").unwrap();
                assert!(charged <= today && charged > settled);
                if model == ChargebackOn::DeclineDate {
                    add(charged, 2, row);
                }
            }
            if settled > today {
                continue;
            }
            match status {
                "Chargeback" if model == ChargebackOn::SettlementDate => add(settled, 2, row),
                "Approved" | "Chargeback" => add(settled, 0, row),
                "Declined" => add(settled, 1, row),
                other => panic!("{other} transaction settled on {settled} <= {today}"),
            }
        }
        let served = settlements_of(http, sim, client).await;
        assert!(!served.is_empty());
        assert_eq!(served, expected, "client {client} on {today}");

        // The decline report: the same failed rows, by decline date, without client_id.
        let declines = all_rows(
            http,
            sim,
            &format!("/v2/clients/{client}/transaction_decline_report"),
            &[("start_date", "2025-01-01".into())],
        )
        .await;
        let expected_ids: Vec<i64> = txs
            .iter()
            .filter(|r| r["decline_date"].is_string())
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        let ids: Vec<i64> = declines.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, expected_ids);
        assert!(declines.iter().all(|r| r.get("client_id").is_none()));
    }
    checked
}

#[tokio::test]
async fn settlements_add_up_to_their_transactions() {
    let sim = start(config(3000)).await;
    let http = reqwest::Client::new();
    for step in 0..2 {
        if step == 1 {
            sim.advance(45);
        }
        check_settlements(&http, &sim).await;
    }

    // An injected mismatch moves exactly one settlement's total_approved.
    let date = sim.today() - chrono::Days::new(3);
    let fetch = || {
        let http = http.clone();
        let url = format!(
            "{}/v2/clients/4321/settlements/show_by_settlement_date",
            sim.base_url()
        );
        let key = auth(&sim);
        async move {
            let v: Vec<Value> = http
                .post(url)
                .header("Authorization", key)
                .json(&serde_json::json!({"start_date": "2025-01-01"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v.into_iter()
                .map(|s| {
                    (
                        date_of(&s, "settlement_date").unwrap(),
                        cents(s["total_approved"].as_str().unwrap()),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    let before = fetch().await;
    let target = *before.keys().rev().find(|k| **k <= date).unwrap();
    let adjusted: Value = http
        .post(format!(
            "{}/_sim/settlement_adjust?client=4321&date={target}&cents=250",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(adjusted["adjust_cents"], 250);
    let after = fetch().await;
    for (day, total) in &before {
        let delta = if *day == target { 250 } else { 0 };
        assert_eq!(after[day], total + delta, "{day}");
    }
}

#[tokio::test]
async fn settlements_add_up_under_the_settlement_date_model() {
    let sim = start(SimConfig {
        chargeback_on: ChargebackOn::SettlementDate,
        ..config(3000)
    })
    .await;
    // The same data under the default model, for comparison.
    let by_decline_date = start(config(3000)).await;
    let http = reqwest::Client::new();
    assert_eq!(
        admin_state(&http, &sim).await["chargeback_on"],
        "settlement_date"
    );
    assert_eq!(
        admin_state(&http, &by_decline_date).await["chargeback_on"],
        "decline_date"
    );
    let mut first: BTreeMap<i64, [BTreeMap<NaiveDate, Totals>; 2]> = BTreeMap::new();
    let mut past_changed = 0;
    for step in 0..2 {
        if step == 1 {
            sim.advance(45);
            by_decline_date.advance(45);
        }
        check_settlements(&http, &sim).await;
        let mut chargebacks = 0;
        for client in sim.handle().client_ids() {
            let by_settlement = settlements_of(&http, &sim, client).await;
            let by_decline = settlements_of(&http, &by_decline_date, client).await;
            // The same money moved: what the default model counts as approved on a date is
            // approved or charged back there in this one; declines are the same.
            let dates: HashSet<&NaiveDate> =
                by_settlement.keys().chain(by_decline.keys()).collect();
            for date in dates {
                let a = by_settlement.get(date).cloned().unwrap_or_default();
                let b = by_decline.get(date).cloned().unwrap_or_default();
                assert_eq!(b.number[0], a.number[0] + a.number[2], "{date}");
                assert_eq!(b.cents[0], a.cents[0] + a.cents[2], "{date}");
                assert_eq!(
                    (a.number[1], a.cents[1]),
                    (b.number[1], b.cents[1]),
                    "{date}"
                );
            }
            // Every chargeback so far counts once in each model.
            let total = |m: &BTreeMap<NaiveDate, Totals>| {
                m.values()
                    .fold((0, 0), |(n, c), t| (n + t.number[2], c + t.cents[2]))
            };
            assert_eq!(total(&by_settlement), total(&by_decline));
            chargebacks += total(&by_settlement).0;
            if step == 0 {
                first.insert(client, [by_settlement, by_decline]);
                continue;
            }
            // Later, the default model's past settlements are as they were; this model's change
            // where a transaction settled then was charged back since.
            let [then_settlement, then_decline] = &first[&client];
            for (date, totals) in then_decline {
                assert_eq!(by_decline.get(date), Some(totals), "{date}");
            }
            for (date, totals) in then_settlement {
                let now = by_settlement.get(date).unwrap();
                if now != totals {
                    assert!(now.number[2] > totals.number[2], "{date}");
                    assert_eq!(
                        now.number[0] + now.number[2],
                        totals.number[0] + totals.number[2]
                    );
                    past_changed += 1;
                }
            }
        }
        assert!(chargebacks > 0);
    }
    assert!(
        past_changed > 0,
        "a chargeback of the last 45 days moved a past settlement"
    );

    // Still true after reversals and resubmissions.
    let charged = sim.transaction_ids_with_status("Chargeback");
    for &id in &charged[..2] {
        sim.reverse(id).unwrap();
    }
    let declined = sim.transaction_ids_with_status("Declined");
    sim.resubmit(declined[0], None).unwrap();
    check_settlements(&http, &sim).await;
    sim.advance(10);
    check_settlements(&http, &sim).await;
}

#[tokio::test]
async fn faults_appear_at_about_the_configured_rate() {
    let sim = start(SimConfig {
        fault_rate: 0.3,
        retry_after_secs: 7,
        ..config(300)
    })
    .await;
    let http = reqwest::Client::new();
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    let (mut internal, mut unavailable, mut limited, mut cut, mut reset, mut fine) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for _ in 0..400 {
        let sent = http
            .get(format!("{}/v2/transaction_report", sim.base_url()))
            .header("Authorization", auth(&sim))
            .query(&q)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(_) => {
                reset += 1;
                continue;
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(_) => {
                reset += 1;
                continue;
            }
        };
        match status {
            StatusCode::INTERNAL_SERVER_ERROR => {
                assert_eq!(error_code(&body), "internal_server_error");
                internal += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                error_code(&body);
                unavailable += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                error_code(&body);
                assert_eq!(retry_after.as_deref(), Some("7"));
                limited += 1;
            }
            StatusCode::OK => match serde_json::from_slice::<Vec<Value>>(&body) {
                Ok(page) => {
                    assert_eq!(page.len(), 300);
                    fine += 1;
                }
                Err(_) => cut += 1,
            },
            other => panic!("unexpected status {other}"),
        }
    }
    let observed = internal + unavailable + limited + cut + reset;
    assert_eq!(observed + fine, 400);
    // Mean 120, standard deviation about 9: a bound no honest run misses.
    assert!((70..=170).contains(&observed), "{observed} faults in 400");
    let stats = sim.stats();
    assert_eq!(stats.requests_served, 400);
    assert_eq!(stats.faults.total(), observed);
    assert_eq!(
        (
            stats.faults.internal_error,
            stats.faults.unavailable,
            stats.faults.too_many_requests,
            stats.faults.cut_off,
            stats.faults.reset
        ),
        (internal, unavailable, limited, cut, reset)
    );
    for n in [internal, unavailable, limited, cut, reset] {
        assert!(n > 0, "every kind occurs");
    }

    // Admin routes are never faulted nor counted; faults can be switched off at run time.
    for _ in 0..30 {
        let state: Value = http
            .get(format!("{}/_sim/state", sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(state["faults_total"], observed);
    }
    let switched: Value = http
        .post(format!(
            "{}/_sim/faults?rate=0&latency_ms=0",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(switched["fault_rate"], 0.0);
    for _ in 0..50 {
        let (status, body) = get(&http, &sim, "/v2/transaction_report", &q).await;
        assert_eq!((status, rows(&body).len()), (StatusCode::OK, 300));
    }
    assert_eq!(sim.stats().requests_served, 450);
    assert_eq!(sim.stats().faults.total(), observed);
}

/// FNV-1a, 64 bits: a digest of answers that does not depend on any crate's version.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

/// A digest of a fixed set of answers of a simulator built from `config(2500)`: every report
/// flavor, a status filter, the decline report, settlements and clients, before and after a
/// clock advance.
async fn answers_digest(sim: &SimServer) -> u64 {
    let http = reqwest::Client::new();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    for step in 0..2 {
        if step == 1 {
            sim.advance(30);
        }
        let mut queries: Vec<(String, Vec<(&str, String)>)> = Vec::new();
        for page in ["1", "2", "3"] {
            let mut query = q.clone();
            query.push(("page", page.into()));
            queries.push(("/v2/transaction_report".into(), query));
        }
        let mut declined = q.clone();
        declined.push(("status", "Declined".into()));
        queries.push(("/v2/transaction_report".into(), declined));
        queries.push(("/v2/clients/4325/transaction_report".into(), q.clone()));
        queries.push(("/v1/transaction_report".into(), q.clone()));
        for client in [4321, 4325, 4329] {
            queries.push((
                format!("/v2/clients/{client}/transaction_decline_report"),
                vec![("start_date", "2025-01-01".into())],
            ));
        }
        queries.push(("/v2/clients".into(), vec![]));
        for (path, query) in &queries {
            let (status, body) = get(&http, sim, path, query).await;
            assert_eq!(status, StatusCode::OK);
            fnv(&mut hash, &body);
        }
        for client in [4321, 4325] {
            let body = http
                .post(format!(
                    "{}/v2/clients/{client}/settlements/show_by_settlement_date",
                    sim.base_url()
                ))
                .header("Authorization", auth(sim))
                .json(&serde_json::json!({"start_date": "2025-01-01"}))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            fnv(&mut hash, &body);
        }
    }
    hash
}

/// With the lag rate at 0, whatever the lag days, the answers are byte for byte those of the
/// simulator before lags, reversals and resubmissions existed: the digest was taken from that
/// build (commit 7e0629d). A lag set and then cleared leaves no trace either.
/// The digest of [`answers_digest`] before lags, reversals, resubmissions and removals existed
/// (commit 7e0629d).
const BEFORE_SCENARIOS: u64 = 0xf048_8c92_9cc4_34b5;

#[tokio::test]
async fn a_zero_lag_rate_changes_no_byte() {
    let plain = start(config(2500)).await;
    assert_eq!(answers_digest(&plain).await, BEFORE_SCENARIOS);
    let other_days = start(SimConfig {
        report_lag_days: 9,
        ..config(2500)
    })
    .await;
    assert_eq!(answers_digest(&other_days).await, BEFORE_SCENARIOS);
    let cleared = start(config(2500)).await;
    let id = cleared.transaction_ids_with_status("Declined")[0];
    cleared.lag(id, SimReport::DeclineReport, 3).unwrap();
    cleared.lag(id, SimReport::DeclineReport, 0).unwrap();
    assert_eq!(answers_digest(&cleared).await, BEFORE_SCENARIOS);
}

/// With the removal rate at 0 and chargebacks on their decline date (the defaults, spelled
/// out), the answers are byte for byte those of the simulator before removals existed, and a
/// row removed and restored on the same day leaves no trace. A removal rate gives answers of
/// its own, the same for the same seed; their digest was taken from the build that introduced
/// removals, so that a change of which rows the rate removes, or when, shows.
#[tokio::test]
async fn a_zero_removal_rate_changes_no_byte() {
    const WITH_REMOVALS: u64 = 0xbb07_6113_0563_3ffd;
    let spelled_out = start(SimConfig {
        removal_rate: 0.0,
        chargeback_on: ChargebackOn::DeclineDate,
        ..config(2500)
    })
    .await;
    assert_eq!(answers_digest(&spelled_out).await, BEFORE_SCENARIOS);
    let undone = start(config(2500)).await;
    for status in ["Future", "Approved", "Chargeback"] {
        let id = undone.transaction_ids_with_status(status)[0];
        undone.remove(id).unwrap();
        undone.restore(id).unwrap();
    }
    assert_eq!(answers_digest(&undone).await, BEFORE_SCENARIOS);

    let removing = SimConfig {
        removal_rate: 0.2,
        ..config(2500)
    };
    let a = answers_digest(&start(removing.clone()).await).await;
    let b = answers_digest(&start(removing).await).await;
    assert_eq!(a, b);
    assert_ne!(a, BEFORE_SCENARIOS);
    assert_eq!(a, WITH_REMOVALS, "{a:#x}");
}

/// One admin POST with query parameters: the status and the JSON answer.
async fn admin(
    http: &reqwest::Client,
    sim: &SimServer,
    path: &str,
    query: &[(&str, String)],
) -> (StatusCode, Value) {
    let response = http
        .post(format!("{}/_sim/{path}", sim.base_url()))
        .query(query)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn admin_state(http: &reqwest::Client, sim: &SimServer) -> Value {
    http.get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The row `id` in a report query, if it is there.
async fn row_in(
    http: &reqwest::Client,
    sim: &SimServer,
    path: &str,
    query: &[(&str, String)],
    id: i64,
) -> Option<Value> {
    all_rows(http, sim, path, query)
        .await
        .into_iter()
        .find(|r| r["id"] == id)
}

/// The row `id` of the whole transaction report.
async fn row_of(http: &reqwest::Client, sim: &SimServer, id: i64) -> Value {
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    row_in(http, sim, "/v2/transaction_report", &q, id)
        .await
        .unwrap_or_else(|| panic!("transaction {id} is not in the report"))
}

/// The decline report of `client` since 2025.
async fn declines_of(http: &reqwest::Client, sim: &SimServer, client: i64) -> Vec<Value> {
    all_rows(
        http,
        sim,
        &format!("/v2/clients/{client}/transaction_decline_report"),
        &[("start_date", "2025-01-01".into())],
    )
    .await
}

fn updated(row: &Value) -> Option<&str> {
    str_of(row, "updated_at")
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

fn error_of(answer: &Value) -> (&str, &str) {
    let e = &answer["errors"][0];
    (
        e["error_code"].as_str().unwrap(),
        e["error_message"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn a_lagging_report_shows_the_row_as_it_was() {
    let sim = start(config(20_000)).await;
    let http = reqwest::Client::new();
    let today = sim.today();
    let days = 4u32;
    let then = today - chrono::Days::new(days.into());
    // A row declined within the last 4 days: 4 days ago it was not declined yet.
    let all = all_rows(
        &http,
        &sim,
        "/v2/transaction_report",
        &wide(d("2025-01-01"), d("2027-12-31")),
    )
    .await;
    let row = all
        .iter()
        .find(|r| r["status"] == "Declined" && date_of(r, "decline_date").unwrap() > then)
        .expect("a recent decline")
        .clone();
    let id = row["id"].as_i64().unwrap();
    let client = row["client_id"].as_i64().unwrap();
    let process = date_of(&row, "process_date").unwrap();
    let window = wide(process, process);

    let (status, answer) = admin(
        &http,
        &sim,
        "lag",
        &[
            ("transaction", id.to_string()),
            ("report", "transaction_report".into()),
            ("days", days.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["shows_as_of"], then.to_string());

    // Every flavor of the transaction report: the older state and the older updated_at.
    for path in [
        "/v2/transaction_report".to_owned(),
        format!("/v2/clients/{client}/transaction_report"),
        "/v1/transaction_report".to_owned(),
    ] {
        let lagged = row_in(&http, &sim, &path, &window, id).await.unwrap();
        assert!(
            lagged["status"] == "Pending" || lagged["status"] == "Future",
            "{path}: {lagged}"
        );
        assert!(lagged["status_reason"].is_null(), "{path}: {lagged}");
        assert!(updated(&lagged) < updated(&row), "{path}: {lagged}");
    }
    // A status filter filters the lagging view.
    let mut declined_only = window.clone();
    declined_only.push(("status", "Declined".into()));
    let path = "/v2/transaction_report";
    assert!(
        row_in(&http, &sim, path, &declined_only, id)
            .await
            .is_none()
    );
    // The decline report shows today's truth.
    let declines = declines_of(&http, &sim, client).await;
    let current = declines.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(current["status"], "Declined");
    assert_eq!(current["updated_at"], row["updated_at"]);

    // The other way round: the decline report lags (the row is not in it yet), the transaction
    // report shows the truth again.
    sim.lag(id, SimReport::TransactionReport, 0).unwrap();
    sim.lag(id, SimReport::DeclineReport, days).unwrap();
    let declines = declines_of(&http, &sim, client).await;
    assert!(!ids(&declines).contains(&id));
    assert_eq!(row_in(&http, &sim, path, &window, id).await.unwrap(), row);
    let state = admin_state(&http, &sim).await;
    assert_eq!(state["lagging_rows"]["transaction_decline_report"], 1);
    assert_eq!(state["lagging_rows"]["transaction_report"], 0);
    assert_eq!(state["lag_settings"], 1);

    // Errors say what to fix.
    let cases: [(Vec<(&str, String)>, StatusCode); 5] = [
        (
            vec![
                ("transaction", "1".into()),
                ("report", "transaction_report".into()),
            ],
            StatusCode::NOT_FOUND,
        ),
        (
            vec![
                ("transaction", id.to_string()),
                ("report", "settlements".into()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![("transaction", id.to_string())],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("report", "transaction_report".into())],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("transaction", id.to_string()),
                ("report", "transaction_report".into()),
                ("days", "-1".into()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (query, expected) in cases {
        let (status, answer) = admin(&http, &sim, "lag", &query).await;
        assert_eq!(status, expected, "{query:?}: {answer}");
        assert!(!error_of(&answer).1.is_empty());
    }
}

/// Every row of the transaction report, by id.
async fn report_by_id(http: &reqwest::Client, sim: &SimServer) -> BTreeMap<i64, Value> {
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    all_rows(http, sim, "/v2/transaction_report", &q)
        .await
        .into_iter()
        .map(|r| (r["id"].as_i64().unwrap(), r))
        .collect()
}

/// Every client's decline report rows, by id.
async fn declines_by_id(http: &reqwest::Client, sim: &SimServer) -> BTreeMap<i64, Value> {
    let mut out = BTreeMap::new();
    for client in sim.handle().client_ids() {
        for r in declines_of(http, sim, client).await {
            out.insert(r["id"].as_i64().unwrap(), r);
        }
    }
    out
}

#[tokio::test]
async fn a_share_of_rows_lags_in_one_report_deterministically() {
    let http = reqwest::Client::new();
    let lagging = SimConfig {
        report_lag_rate: 0.3,
        report_lag_days: 2,
        ..config(20_000)
    };
    // The truth two days before and on the day the lagging simulators are read.
    let truth = start(config(20_000)).await;
    let (then_tx, then_dec) = (
        report_by_id(&http, &truth).await,
        declines_by_id(&http, &truth).await,
    );
    truth.advance(2);
    let (now_tx, now_dec) = (
        report_by_id(&http, &truth).await,
        declines_by_id(&http, &truth).await,
    );
    let a = start(lagging.clone()).await;
    let b = start(lagging).await;
    a.advance(2);
    b.advance(2);

    // Same seed, same bytes.
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    for page in ["1", "7", "20"] {
        let mut query = q.clone();
        query.push(("page", page.into()));
        let pa = get(&http, &a, "/v2/transaction_report", &query).await.1;
        assert_eq!(pa, get(&http, &b, "/v2/transaction_report", &query).await.1);
    }
    let path = "/v2/clients/4321/transaction_decline_report";
    let since = [("start_date", "2025-01-01".to_owned())];
    assert_eq!(
        get(&http, &a, path, &since).await,
        get(&http, &b, path, &since).await
    );

    // The transaction report: each row as it is, or as it was two days ago; about 15% (0.3,
    // half of them in this report) of the rows that changed meanwhile show the old state.
    let a_tx = report_by_id(&http, &a).await;
    assert_eq!(a_tx.len(), now_tx.len());
    let (mut changed, mut shown_old) = (0usize, 0usize);
    for (id, row) in &a_tx {
        let (old, new) = (&then_tx[id], &now_tx[id]);
        assert!(row == old || row == new, "{row}");
        if old != new {
            changed += 1;
            if row == old {
                shown_old += 1;
            }
        }
    }
    assert!(changed > 300, "{changed}");
    assert!(
        (changed * 7..=changed * 25).contains(&(shown_old * 100)),
        "{shown_old} of {changed} changed rows lag"
    );
    // The decline report: the rows of then or now; a lagging new decline is not in it yet.
    let a_dec = declines_by_id(&http, &a).await;
    for (id, row) in &a_dec {
        assert!(
            then_dec.get(id) == Some(row) || now_dec.get(id) == Some(row),
            "{row}"
        );
    }
    assert!(now_dec.len() > then_dec.len());
    assert!(a_dec.len() >= then_dec.len() && a_dec.len() <= now_dec.len());

    // The counts: about 3000 rows each (20,000 * 0.3 / 2); the statuses and the settlements
    // are the truth's.
    let state = admin_state(&http, &a).await;
    let truth_state = admin_state(&http, &truth).await;
    for report in ["transaction_report", "transaction_decline_report"] {
        let n = state["lagging_rows"][report].as_u64().unwrap();
        assert!((2700..3300).contains(&n), "{report}: {n}");
    }
    assert_eq!(state["statuses"], truth_state["statuses"]);
    for client in a.handle().client_ids() {
        let path = format!("/v2/clients/{client}/settlements/show_by_settlement_date");
        assert_eq!(
            get(&http, &a, &path, &since).await,
            get(&http, &truth, &path, &since).await
        );
    }
}

#[tokio::test]
async fn a_reversed_chargeback_is_approved_again_with_a_newer_updated_at() {
    let sim = start(config(5000)).await;
    let http = reqwest::Client::new();
    let today = sim.today();
    let charged = sim.transaction_ids_with_status("Chargeback");
    assert!(charged.len() > 5, "{}", charged.len());
    // The same list over HTTP, for curl users.
    let listed: Value = http
        .get(format!(
            "{}/_sim/transactions?status=chargeback&limit=3",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["count"], charged.len());
    assert_eq!(listed["ids"], serde_json::json!(charged[..3]));
    let id = charged[0];
    let before = row_of(&http, &sim, id).await;
    assert_eq!(before["status"], "Chargeback");
    let client = before["client_id"].as_i64().unwrap();
    assert!(ids(&declines_of(&http, &sim, client).await).contains(&id));
    let chargebacks = admin_state(&http, &sim).await["statuses"]["Chargeback"].clone();

    let (status, answer) = admin(&http, &sim, "reverse", &[("transaction", id.to_string())]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "Approved");
    let after = row_of(&http, &sim, id).await;
    assert_eq!(after["status"], "Approved");
    assert!(after["status_reason"].is_null() && after["decline_date"].is_null());
    for same in ["earliest_approval_date", "settlement_date", "process_date"] {
        assert_eq!(after[same], before[same], "{same}");
    }
    assert_eq!(after["updated_at"], answer["updated_at"]);
    let stamp = updated(&after).unwrap();
    assert!(Some(stamp) > updated(&before), "{stamp} {before}");
    // Today, late in the day (17:00-18:00), after any other change of that day.
    assert!(stamp.starts_with(&format!("{today}T17:")), "{stamp}");
    assert!(stamp.ends_with("-05:00"));
    assert!(!ids(&declines_of(&http, &sim, client).await).contains(&id));
    let state = admin_state(&http, &sim).await;
    assert_eq!(state["reversed"], 1);
    assert_eq!(
        state["statuses"]["Chargeback"].as_u64().unwrap() + 1,
        chargebacks.as_u64().unwrap()
    );
    assert!(!sim.transaction_ids_with_status("Chargeback").contains(&id));

    // Only a Chargeback can be reversed: not this one again, nor an approved one.
    let approved = sim.transaction_ids_with_status("Approved")[0];
    for other in [id, approved] {
        let (status, answer) = admin(
            &http,
            &sim,
            "reverse",
            &[("transaction", other.to_string())],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        let (code, message) = error_of(&answer);
        assert_eq!(code, "invalid_transition");
        assert!(message.contains("Approved"), "{message}");
        assert!(sim.reverse(other).is_err());
    }
    let (status, _) = admin(&http, &sim, "reverse", &[("transaction", "12".into())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(&http, &sim, "reverse", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The handle does the same; it answers the row as it is now.
    let row = sim.reverse(charged[1]).unwrap();
    assert_eq!(row.status, "Approved");
    assert!(row.updated_at.unwrap().starts_with(&format!("{today}T17:")));
}

#[tokio::test]
async fn a_resubmitted_decline_is_future_again_then_pending_then_approved() {
    let sim = start(config(5000)).await;
    let http = reqwest::Client::new();
    let today = sim.today(); // Monday 2026-11-23
    let declined = sim.transaction_ids_with_status("Declined");
    let id = declined[0];
    let before = row_of(&http, &sim, id).await;
    let old_date = date_of(&before, "process_date").unwrap();
    let client = before["client_id"].as_i64().unwrap();
    let path = "/v2/transaction_report";

    let (status, answer) = admin(&http, &sim, "resubmit", &[("transaction", id.to_string())]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Default: 5 business days after today.
    let new_date = d("2026-11-30");
    assert_eq!(answer["process_date"], new_date.to_string());
    let after = row_of(&http, &sim, id).await;
    assert_eq!(after["status"], "Future");
    assert_eq!(date_of(&after, "process_date"), Some(new_date));
    assert!(after["status_reason"].is_null() && after["decline_date"].is_null());
    assert!(after["earliest_approval_date"].is_null());
    assert_eq!(after["transaction_number"], before["transaction_number"]);
    assert!(after["institution_number"].is_string());
    let stamp = updated(&after).expect("a resubmitted Future row has an updated_at");
    assert!(Some(stamp) > updated(&before));
    assert!(stamp.starts_with(&format!("{today}T17:")), "{stamp}");
    assert_eq!(after["updated_at"], answer["updated_at"]);
    // It left its old date's windows for the new date's, in id order there.
    let old_window = all_rows(&http, &sim, path, &wide(old_date, old_date)).await;
    assert!(!ids(&old_window).contains(&id));
    let new_window = all_rows(&http, &sim, path, &wide(new_date, new_date)).await;
    let new_ids = ids(&new_window);
    assert!(new_ids.contains(&id));
    assert!(new_ids.windows(2).all(|w| w[0] < w[1]), "id order");
    let per_client = format!("/v2/clients/{client}/transaction_report");
    let client_window = all_rows(&http, &sim, &per_client, &wide(new_date, new_date)).await;
    assert!(ids(&client_window).contains(&id));
    let mut future_only = wide(new_date, new_date);
    future_only.push(("status", "Pending".into()));
    assert!(!ids(&all_rows(&http, &sim, path, &future_only).await).contains(&id));
    assert!(!ids(&declines_of(&http, &sim, client).await).contains(&id));
    assert_eq!(admin_state(&http, &sim).await["resubmitted"], 1);

    // Refused: this row again (it is Future now), a weekend, today, a date that is no date,
    // an approved row.
    let other = declined[1].to_string();
    let approved = sim.transaction_ids_with_status("Approved")[0].to_string();
    let refused: [(Vec<(&str, String)>, &str); 5] = [
        (vec![("transaction", id.to_string())], "invalid_transition"),
        (
            vec![
                ("transaction", other.clone()),
                ("process_date", "2026-11-28".into()),
            ],
            "invalid_parameter",
        ),
        (
            vec![
                ("transaction", other.clone()),
                ("process_date", today.to_string()),
            ],
            "invalid_parameter",
        ),
        (
            vec![
                ("transaction", other.clone()),
                ("process_date", "2026-02-30".into()),
            ],
            "invalid_date",
        ),
        (vec![("transaction", approved)], "invalid_transition"),
    ];
    for (query, expected) in refused {
        let (status, answer) = admin(&http, &sim, "resubmit", &query).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query:?}: {answer}"
        );
        let (code, message) = error_of(&answer);
        assert_eq!(code, expected, "{query:?}: {message}");
    }
    // A chosen date, through the handle.
    let row = sim.resubmit(declined[1], Some(d("2026-12-02"))).unwrap();
    assert_eq!((row.status, row.process_date), ("Future", d("2026-12-02")));

    // The lifecycle again from the new date: Pending from the business day before it, then
    // Approved, each change with a newer updated_at.
    let mut last = stamp.to_owned();
    let mut seen = vec!["Future".to_owned()];
    for _ in 0..12 {
        sim.advance(1);
        let row = row_of(&http, &sim, id).await;
        let status = str_of(&row, "status").unwrap().to_owned();
        let stamp = updated(&row).unwrap().to_owned();
        if seen.last() != Some(&status) {
            assert!(stamp > last, "{stamp} after {last}");
            seen.push(status.clone());
        } else {
            assert_eq!(stamp, last);
        }
        last = stamp;
        if status == "Pending" {
            assert!(sim.today() >= d("2026-11-27"));
        }
        if status == "Approved" {
            let approved_on = date_of(&row, "earliest_approval_date").unwrap();
            assert!(approved_on > new_date);
            assert!(date_of(&row, "settlement_date").unwrap() > approved_on);
            assert!(row["decline_date"].is_null());
        }
    }
    assert_eq!(seen, ["Future", "Pending", "Approved"]);
}

#[tokio::test]
async fn settlements_add_up_after_reversals_and_resubmissions() {
    let sim = start(config(3000)).await;
    let http = reqwest::Client::new();
    let checked = check_settlements(&http, &sim).await;
    let charged = sim.transaction_ids_with_status("Chargeback");
    let declined = sim.transaction_ids_with_status("Declined");
    assert!(charged.len() >= 3 && declined.len() >= 6);
    for &id in &charged[..3] {
        sim.reverse(id).unwrap();
    }
    for &id in &declined[..5] {
        sim.resubmit(id, None).unwrap();
    }
    sim.resubmit(declined[5], Some(d("2026-11-24"))).unwrap();
    assert_eq!(check_settlements(&http, &sim).await, checked);
    // Resolved and settled on their new dates.
    sim.advance(12);
    check_settlements(&http, &sim).await;
    let approved: HashSet<i64> = sim
        .transaction_ids_with_status("Approved")
        .into_iter()
        .collect();
    assert!(declined[..6].iter().all(|id| approved.contains(id)));
    assert!(charged[..3].iter().all(|id| approved.contains(id)));
    sim.advance(45);
    check_settlements(&http, &sim).await;
}

#[tokio::test]
async fn a_lagging_view_from_before_a_change_shows_the_old_state() {
    let sim = start(config(5000)).await;
    let http = reqwest::Client::new();
    let yesterday = sim.today() - chrono::Days::new(1);
    let path = "/v2/transaction_report";
    // Rows whose failure is older than the lagging view, so that it shows them as they are
    // before the change.
    let mut picks = Vec::new();
    for status in ["Chargeback", "Declined"] {
        let mut found = None;
        for id in sim.transaction_ids_with_status(status) {
            let row = row_of(&http, &sim, id).await;
            if date_of(&row, "decline_date").unwrap() < yesterday {
                found = Some(row);
                break;
            }
        }
        picks.push(found.expect(status));
    }
    let (charged, declined) = (picks[0].clone(), picks[1].clone());
    let cid = charged["id"].as_i64().unwrap();
    let did = declined["id"].as_i64().unwrap();
    sim.reverse(cid).unwrap();
    sim.resubmit(did, None).unwrap();
    let reversed_now = row_of(&http, &sim, cid).await;
    let resubmitted_now = row_of(&http, &sim, did).await;
    assert_eq!(reversed_now["status"], "Approved");
    assert_eq!(resubmitted_now["status"], "Future");

    // The transaction report one day behind: the old state, in the old window.
    sim.lag(cid, SimReport::TransactionReport, 1).unwrap();
    sim.lag(did, SimReport::TransactionReport, 1).unwrap();
    assert_eq!(row_of(&http, &sim, cid).await, charged);
    assert_eq!(row_of(&http, &sim, did).await, declined);
    let new_date = date_of(&resubmitted_now, "process_date").unwrap();
    let new_window = all_rows(&http, &sim, path, &wide(new_date, new_date)).await;
    assert!(!ids(&new_window).contains(&did));
    // The decline report (not lagging) shows neither; lagging, it shows both as before.
    for (row, id) in [(&charged, cid), (&declined, did)] {
        let client = row["client_id"].as_i64().unwrap();
        assert!(!ids(&declines_of(&http, &sim, client).await).contains(&id));
        sim.lag(id, SimReport::DeclineReport, 1).unwrap();
        let lagged = declines_of(&http, &sim, client).await;
        let shown = lagged.iter().find(|r| r["id"] == id).unwrap();
        assert_eq!(shown["status"], row["status"]);
        assert_eq!(shown["updated_at"], row["updated_at"]);
    }

    // A day later the lagging view reaches the change day and shows the new state.
    sim.advance(1);
    assert_eq!(row_of(&http, &sim, cid).await, reversed_now);
    let moved = row_of(&http, &sim, did).await;
    assert_eq!(moved["status"], "Future");
    assert_eq!(moved["updated_at"], resubmitted_now["updated_at"]);
    let new_window = all_rows(&http, &sim, path, &wide(new_date, new_date)).await;
    assert!(ids(&new_window).contains(&did));
}

/// Whether row `id` is in any flavor of the transaction report (v2, every client's, v1, and
/// v2 filtered by its `status`), or in the decline report of `client`.
async fn in_any_report(
    http: &reqwest::Client,
    sim: &SimServer,
    id: i64,
    client: i64,
    status: &str,
) -> bool {
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    let mut paths = vec![
        "/v2/transaction_report".to_owned(),
        "/v1/transaction_report".to_owned(),
    ];
    paths.extend(
        sim.handle()
            .client_ids()
            .iter()
            .map(|c| format!("/v2/clients/{c}/transaction_report")),
    );
    let mut found = false;
    for path in &paths {
        found |= row_in(http, sim, path, &q, id).await.is_some();
    }
    if status != "Future" {
        let mut filtered = q.clone();
        filtered.push(("status", status.to_owned()));
        found |= row_in(http, sim, "/v2/transaction_report", &filtered, id)
            .await
            .is_some();
    }
    found || ids(&declines_of(http, sim, client).await).contains(&id)
}

#[tokio::test]
async fn a_removed_row_is_in_no_report_until_restored() {
    let sim = start(config(5000)).await;
    // The same simulator without removals, moved along with it.
    let truth = start(config(5000)).await;
    let http = reqwest::Client::new();
    let today = sim.today();
    let days = |n: u64| today + chrono::Days::new(n);
    let all = report_by_id(&http, &sim).await;
    let pick =
        |what: &str, ok: &dyn Fn(&Value) -> bool| all.values().find(|r| ok(r)).expect(what).clone();
    let process = |r: &Value| date_of(r, "process_date").unwrap();
    // A Future row far ahead (still Future when restored), a Future row due in a few days
    // (never restored: it would have settled by the end), and a chargeback of before today (an
    // anomaly: Rotessa removes future transactions, but the product must cope).
    let far = pick("a far Future row", &|r| {
        r["status"] == "Future" && process(r) >= days(14)
    });
    let due = pick("a Future row due soon", &|r| {
        r["status"] == "Future" && process(r) >= days(2) && process(r) <= days(6)
    });
    let charged = pick("an older chargeback", &|r| {
        r["status"] == "Chargeback" && date_of(r, "decline_date").unwrap() < today
    });
    let id_of = |r: &Value| r["id"].as_i64().unwrap();
    let client_of = |r: &Value| r["client_id"].as_i64().unwrap();
    let (far_id, due_id, charged_id) = (id_of(&far), id_of(&due), id_of(&charged));
    let mut settled_before = BTreeMap::new();
    for client in sim.handle().client_ids() {
        settled_before.insert(client, settlements_of(&http, &sim, client).await);
    }

    // Through the endpoint and through the handle: the row as it was last reported.
    for row in [&far, &charged] {
        let (status, answer) = admin(
            &http,
            &sim,
            "remove",
            &[("transaction", id_of(row).to_string())],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], row["status"]);
        assert_eq!(answer["updated_at"], row["updated_at"]);
        assert_eq!(answer["removed_on"], today.to_string());
    }
    let removed = sim.remove(due_id).unwrap();
    assert_eq!(
        (removed.status, removed.removed_on),
        ("Future", Some(today))
    );

    // In no report, in no flavor, from today.
    for row in [&far, &due, &charged] {
        let status = str_of(row, "status").unwrap();
        assert!(
            !in_any_report(&http, &sim, id_of(row), client_of(row), status).await,
            "{row}"
        );
    }
    assert!(in_any_report(&http, &truth, charged_id, client_of(&charged), "Chargeback").await);
    assert_eq!(report_by_id(&http, &sim).await.len(), 4997);
    // Settlements are unchanged: the chargeback settled and was charged back before today,
    // the Future rows had not settled.
    for (client, before) in &settled_before {
        assert_eq!(&settlements_of(&http, &sim, *client).await, before);
        assert_eq!(&settlements_of(&http, &truth, *client).await, before);
    }
    let state = admin_state(&http, &sim).await;
    assert_eq!(
        state["removed"],
        serde_json::json!({"on_demand": 3, "by_rate": 0})
    );
    assert_eq!(state["restored"], 0);
    let statuses = state["statuses"].as_object().unwrap();
    assert_eq!(
        statuses.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        4997
    );
    let truth_statuses = admin_state(&http, &truth).await["statuses"].clone();
    assert_eq!(
        statuses["Chargeback"].as_u64().unwrap() + 1,
        truth_statuses["Chargeback"]
    );
    let mut gone = vec![far_id, due_id, charged_id];
    gone.sort_unstable();
    assert_eq!(sim.transaction_ids_with_status("Removed"), gone);
    let listed: Value = http
        .get(format!(
            "{}/_sim/transactions?status=removed",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (listed["status"].clone(), listed["ids"].clone()),
        ("Removed".into(), serde_json::json!(gone))
    );
    assert!(!sim.transaction_ids_with_status("Future").contains(&far_id));

    // Refused: a second removal, a restore of a row that is reported, a reversal of a removed
    // chargeback; an unknown id; no id.
    let approved = sim.transaction_ids_with_status("Approved")[0].to_string();
    let refused = [
        ("remove", Some(far_id.to_string()), "invalid_transition"),
        ("restore", Some(approved), "invalid_transition"),
        (
            "reverse",
            Some(charged_id.to_string()),
            "invalid_transition",
        ),
        ("remove", Some("12".to_owned()), "not_found"),
        ("restore", None, "missing_parameter"),
    ];
    for (path, id, code) in refused {
        let query: Vec<(&str, String)> = id.into_iter().map(|id| ("transaction", id)).collect();
        let (status, answer) = admin(&http, &sim, path, &query).await;
        let expected = match code {
            "not_found" => StatusCode::NOT_FOUND,
            "missing_parameter" => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        assert_eq!(status, expected, "{path} {query:?}: {answer}");
        let (got, message) = error_of(&answer);
        assert_eq!(got, code, "{path}: {message}");
    }
    assert!(sim.remove(far_id).is_err() && sim.reverse(charged_id).is_err());

    // A lagging view from before the removal still shows the row, in either report.
    let charged_client = client_of(&charged);
    sim.lag(charged_id, SimReport::TransactionReport, 1)
        .unwrap();
    assert_eq!(row_of(&http, &sim, charged_id).await, charged);
    sim.lag(charged_id, SimReport::DeclineReport, 1).unwrap();
    let lagged = declines_of(&http, &sim, charged_client).await;
    let shown = lagged.iter().find(|r| r["id"] == charged_id).unwrap();
    assert_eq!(shown["updated_at"], charged["updated_at"]);
    // A day later that view reaches the removal day.
    sim.advance(1);
    truth.advance(1);
    assert!(!in_any_report(&http, &sim, charged_id, charged_client, "Chargeback").await);
    sim.lag(charged_id, SimReport::TransactionReport, 0)
        .unwrap();
    sim.lag(charged_id, SimReport::DeclineReport, 0).unwrap();

    // Restored the next day: reported again exactly as without the removal.
    sim.advance(1);
    truth.advance(1);
    for id in [far_id, charged_id] {
        let (status, answer) =
            admin(&http, &sim, "restore", &[("transaction", id.to_string())]).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(answer["removed_on"].is_null());
        let row = row_of(&http, &sim, id).await;
        assert_eq!(row, row_of(&http, &truth, id).await);
        assert_eq!(answer["status"], row["status"]);
        assert_eq!(answer["updated_at"], row["updated_at"]);
    }
    assert_eq!(
        declines_of(&http, &sim, charged_client).await,
        declines_of(&http, &truth, charged_client).await
    );
    let state = admin_state(&http, &sim).await;
    assert_eq!(state["removed"]["on_demand"], 1);
    assert_eq!(state["restored"], 2);
    // Any status can be removed; removed and restored the same day, nothing happened.
    let approved = sim.transaction_ids_with_status("Approved")[0];
    assert_eq!(sim.remove(approved).unwrap().status, "Approved");
    sim.restore(approved).unwrap();
    assert_eq!(
        row_of(&http, &sim, approved).await,
        row_of(&http, &truth, approved).await
    );

    // The Future row never resolves: past its settlement date it is still in no report and
    // in no settlement, and the settlements add up to the rows reported.
    sim.advance(14);
    truth.advance(14);
    let resolved = row_of(&http, &truth, due_id).await;
    let settled = date_of(&resolved, "settlement_date").unwrap();
    assert!(settled <= sim.today(), "{resolved}");
    assert!(!in_any_report(&http, &sim, due_id, client_of(&due), "Approved").await);
    check_settlements(&http, &sim).await;
    let slot = match str_of(&resolved, "status").unwrap() {
        "Approved" | "Chargeback" => 0,
        "Declined" => 1,
        other => panic!("{other}"),
    };
    for client in sim.handle().client_ids() {
        let mut expected = settlements_of(&http, &truth, client).await;
        if client == client_of(&due) {
            let t = expected.get_mut(&settled).unwrap();
            t.number[slot] -= 1;
            t.cents[slot] -= cents(str_of(&due, "amount").unwrap());
        }
        let served = settlements_of(&http, &sim, client).await;
        assert_eq!(
            served,
            expected
                .into_iter()
                .filter(|(_, t)| *t != Totals::default())
                .collect()
        );
    }
    assert_eq!(
        row_of(&http, &sim, far_id).await,
        row_of(&http, &truth, far_id).await
    );
}

#[tokio::test]
async fn a_share_of_future_rows_is_removed_deterministically() {
    let http = reqwest::Client::new();
    let base = SimConfig {
        transactions: 3000,
        history_days: 10,
        future_days: 30,
        ..config(0)
    };
    let removing = SimConfig {
        removal_rate: 0.2,
        ..base.clone()
    };
    let a = start(removing.clone()).await;
    let b = start(removing).await;
    let truth = start(base).await;
    assert_eq!(admin_state(&http, &a).await["removal_rate"], 0.2);

    // Each day, every reported row is the row without removals; a row that is gone stays
    // gone, and it was Future, 3 to 20 days before its process date, when it went.
    let mut gone: HashSet<i64> = HashSet::new();
    let mut last_seen: HashMap<i64, Value> = HashMap::new();
    let mut went = 0;
    for day in 0..=35 {
        if day > 0 {
            for sim in [&a, &b, &truth] {
                sim.advance(1);
            }
        }
        let today = a.today();
        let shown = report_by_id(&http, &a).await;
        let all = report_by_id(&http, &truth).await;
        assert_eq!(all.len(), 3000);
        for (id, row) in &all {
            match shown.get(id) {
                Some(seen) => {
                    assert_eq!(seen, row, "a reported row is untouched");
                    assert!(!gone.contains(id), "{id} came back on {today}");
                    last_seen.insert(*id, seen.clone());
                }
                None => {
                    if gone.insert(*id)
                        && let Some(before) = last_seen.get(id)
                    {
                        went += 1;
                        assert_eq!(before["status"], "Future", "{before}");
                        assert_eq!(row["status"], "Future", "still Future on {today}: {row}");
                        let ahead = (date_of(row, "process_date").unwrap() - today).num_days();
                        assert!((3..=20).contains(&ahead), "{ahead} days: {row}");
                    }
                }
            }
        }
        let state = admin_state(&http, &a).await;
        assert_eq!(state["removed"]["by_rate"], gone.len(), "{today}");
        assert_eq!(state["removed"]["on_demand"], 0);
        let statuses = state["statuses"].as_object().unwrap();
        let reported: u64 = statuses.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(reported as usize + gone.len(), 3000);
        if day % 35 == 0 {
            // Removed Future rows never count: the settlements add up to the reported rows,
            // and the decline reports have exactly the reported failures.
            check_settlements(&http, &a).await;
        }
    }
    // Every process date is now past by far more than 20 days: every chosen row is gone. About
    // 600 (3000 * 0.2), standard deviation about 22.
    assert!((500..700).contains(&gone.len()), "{}", gone.len());
    // Those with a removal day after the first day (about 46%) were seen leaving.
    assert!(went > 200, "{went} seen leaving");
    assert_eq!(
        sim_removed(&a),
        gone.iter().copied().collect::<BTreeSet<_>>()
    );

    // The same seed removes the same rows on the same days: the same bytes.
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    for page in ["1", "2", "3"] {
        let mut query = q.clone();
        query.push(("page", page.into()));
        let pa = get(&http, &a, "/v2/transaction_report", &query).await.1;
        assert_eq!(pa, get(&http, &b, "/v2/transaction_report", &query).await.1);
    }
    for client in a.handle().client_ids() {
        assert_eq!(
            declines_of(&http, &a, client).await,
            declines_of(&http, &b, client).await
        );
        assert_eq!(
            settlements_of(&http, &a, client).await,
            settlements_of(&http, &b, client).await
        );
    }
}

/// The rows removed today, through the handle.
fn sim_removed(sim: &SimServer) -> BTreeSet<i64> {
    sim.transaction_ids_with_status("Removed")
        .into_iter()
        .collect()
}

/// The test's settings, through the same loading and validation as a user's.
fn settings_for(sim: &SimServer) -> Settings {
    let env: HashMap<String, String> = [
        ("RECON_ROTESSA__BASE_URL", sim.base_url()),
        ("RECON_ROTESSA__API_KEY", sim.api_key().to_owned()),
        ("RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS", "5".to_owned()),
        ("RECON_ROTESSA__RETRY__MAX_BACKOFF_MS", "20".to_owned()),
        ("RECON_ROTESSA__RETRY__MAX_RETRIES", "4".to_owned()),
        ("RECON_LOG__LEVEL", "error".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Settings::load_from(None, &env).unwrap()
}

/// What a sync left in the database, minus bookkeeping times and event ids.
#[derive(Debug, PartialEq)]
struct Outcome {
    rows: Vec<Value>,
    events: Vec<(String, String, Option<String>, Option<String>)>,
    anomalies: i64,
    rejected: i64,
}

async fn outcome(pool: &PgPool) -> Outcome {
    let rows: Vec<(Value,)> = sqlx::query_as(
        "select to_jsonb(t) - 'first_seen_at' - 'changed_at' - 'status_changed_at' \
         from rotessa.transactions t order by id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut events: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "select aggregateid, type, payload->>'from_status', payload->>'to_status' from rotessa.outbox",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    events.sort();
    let anomalies: i64 = sqlx::query_scalar("select count(*) from rotessa.status_anomalies")
        .fetch_one(pool)
        .await
        .unwrap();
    let rejected: i64 = sqlx::query_scalar("select count(*) from rotessa.rejected_records")
        .fetch_one(pool)
        .await
        .unwrap();
    Outcome {
        rows: rows.into_iter().map(|(v,)| v).collect(),
        events,
        anomalies,
        rejected,
    }
}

/// Syncs the transactions stream at the start and after each of 5 clock steps (1 to 10 days); a pass whose
/// runs fail (retries exhausted under faults) is run again at the same simulated day, as the
/// daemon's next schedule would. Returns the faults the simulator injected.
async fn sync_through_time(pool: &PgPool, fault_rate: f64) -> u64 {
    let sim = start(SimConfig {
        seed: 7,
        transactions: 8000,
        fault_rate,
        retry_after_secs: 0,
        ..config(0)
    })
    .await;
    let settings = settings_for(&sim);
    let client = Client::new(&settings.rotessa, settings.api_key().unwrap()).unwrap();
    let syncer = Syncer::new(Store::from_pool(pool.clone()), client, Arc::new(settings))
        .with_clock(Clock::Dynamic(sim.handle().clock()));
    let mut repeated = 0;
    for step in [0, 1, 2, 4, 7, 10] {
        sim.advance(step);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let reports = syncer
                .run(Stream::Transactions, &PassOptions::default())
                .await;
            assert!(!reports.is_empty());
            if reports.iter().all(|r| r.outcome == RunOutcome::Succeeded) {
                break;
            }
            assert!(
                attempts < 20,
                "no successful pass in 20 attempts: {reports:?}"
            );
            repeated += 1;
        }
    }
    let stats = sim.stats();
    println!(
        "fault rate {fault_rate}: {} requests, faults {:?}, {repeated} passes repeated",
        stats.requests_served, stats.faults
    );
    stats.faults.total()
}

#[sqlx::test]
async fn sync_under_faults_converges_to_the_fault_free_result(pool: PgPool) {
    assert_eq!(sync_through_time(&pool, 0.0).await, 0);
    let clean = outcome(&pool).await;
    assert!(clean.rows.len() > 2000, "{}", clean.rows.len());
    assert!(
        clean.events.iter().any(|e| e.2.is_some()),
        "the clock steps produced transitions"
    );

    sqlx::query(
        "do $$ declare t text; begin \
           for t in select format('%I.%I', schemaname, tablename) from pg_tables \
                    where schemaname = 'rotessa' loop \
             execute 'truncate ' || t || ' restart identity cascade'; \
           end loop; \
         end $$",
    )
    .execute(&pool)
    .await
    .unwrap();

    let faults = sync_through_time(&pool, 0.2).await;
    assert!(faults > 0, "faults were injected");
    let faulty = outcome(&pool).await;
    assert_eq!(faulty.rows.len(), clean.rows.len());
    assert_eq!(faulty.events, clean.events);
    assert_eq!(faulty, clean);
    assert_eq!((clean.anomalies, clean.rejected), (0, 0));
}

/// Serving speed at scale: generation time, time to first page, rows/s over every page of
/// 1,000,000 transactions, and resident memory. Run with
/// `cargo test --release --test simulator -- --ignored --nocapture serves_a_million_rows`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it explicitly in release mode"]
async fn serves_a_million_rows() {
    assert_eq!(
        serve_a_million_rows(config(1_000_000), |_| {}).await,
        1_000_000
    );
}

/// The same measurement with the scenario paths taken: 20% of the rows lag in one report and one
/// row is resubmitted (so the report's members are computed, once, instead of sliced). Run with
/// `cargo test --release --test simulator -- --ignored --nocapture serves_a_million_rows`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it explicitly in release mode"]
async fn serves_a_million_rows_with_scenarios() {
    let lagging = SimConfig {
        report_lag_rate: 0.2,
        ..config(1_000_000)
    };
    let rows = serve_a_million_rows(lagging, |sim| {
        let id = sim.transaction_ids_with_status("Declined")[0];
        sim.resubmit(id, None).unwrap();
    })
    .await;
    assert_eq!(rows, 1_000_000);
}

/// The same measurement with rows removed: 5% by the rate and one on demand (so the report's
/// members are computed, once, without the removed rows). Run with
/// `cargo test --release --test simulator -- --ignored --nocapture serves_a_million_rows`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it explicitly in release mode"]
async fn serves_a_million_rows_with_removals() {
    let removing = SimConfig {
        removal_rate: 0.05,
        ..config(1_000_000)
    };
    let rows = serve_a_million_rows(removing, |sim| {
        let id = sim.transaction_ids_with_status("Approved")[0];
        sim.remove(id).unwrap();
    })
    .await;
    // 5% of the rows whose removal day is today or earlier (about 73% of them): about 3.6%.
    assert!((955_000..975_000).contains(&rows), "{rows}");
}

/// Serves every page of the report of `config` (1,000,000 transactions) after `prepare`, prints
/// the figures, and returns how many rows were served.
async fn serve_a_million_rows(config: SimConfig, prepare: impl FnOnce(&SimServer)) -> usize {
    let started = Instant::now();
    let sim = start(config).await;
    let generated = started.elapsed();
    prepare(&sim);
    let http = reqwest::Client::new();
    let q = wide(d("2020-01-01"), d("2030-12-31"));
    let mut query = q.clone();
    query.push(("page", "1".into()));
    let first = Instant::now();
    let (status, body) = get(&http, &sim, "/v2/transaction_report", &query).await;
    assert_eq!(status, StatusCode::OK);
    let first_page = first.elapsed();
    drop(body);

    let serving = Instant::now();
    let (mut rows_seen, mut bytes) = (0usize, 0usize);
    for page in 1.. {
        let mut query = q.clone();
        query.push(("page", page.to_string()));
        let (status, body) = get(&http, &sim, "/v2/transaction_report", &query).await;
        assert_eq!(status, StatusCode::OK);
        let n = body
            .windows(18)
            .filter(|w| *w == b"{\"account_number\":")
            .count();
        rows_seen += n;
        bytes += body.len();
        if n < 1000 {
            break;
        }
    }
    let secs = serving.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mem: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .collect();
    println!(
        "generated 1,000,000 transactions in {:.2} s; first page in {:.1} ms; served {rows_seen} rows \
         ({:.0} MB) in {secs:.2} s = {:.0} rows/s ({:.0} MB/s), one connection, sequential pages; \
         process memory (simulator and client): {}",
        generated.as_secs_f64(),
        first_page.as_secs_f64() * 1000.0,
        bytes as f64 / 1e6,
        rows_seen as f64 / secs,
        bytes as f64 / 1e6 / secs,
        mem.join(", ")
    );
    rows_seen
}
