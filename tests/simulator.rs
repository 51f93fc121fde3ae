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

// ---------------------------------------------------------------------------------------------
// Customers, schedules and the payout report.

/// The documented keys of a customer in `GET /v2/clients/{id}/customers`.
const CUSTOMER_FIELDS: [&str; 21] = [
    "account_number",
    "active",
    "address",
    "authorization_type",
    "bank_account_type",
    "bank_name",
    "created_at",
    "custom_identifier",
    "customer_type",
    "email",
    "financial_transactions",
    "home_phone",
    "id",
    "identifier",
    "institution_number",
    "name",
    "phone",
    "routing_number",
    "transaction_schedules",
    "transit_number",
    "updated_at",
];

/// The documented keys of a customer's nested financial transaction.
const NESTED_TRANSACTION_FIELDS: [&str; 18] = [
    "account_number",
    "amount",
    "comment",
    "created_at",
    "custom_identifier",
    "customer_id",
    "earliest_approval_date",
    "id",
    "institution_number",
    "process_date",
    "settlement_date",
    "status",
    "status_reason",
    "transaction_number",
    "transaction_schedule_id",
    "transit_number",
    "updated_at",
    "zapier_identifier",
];

/// The documented keys of a customer's nested transaction schedule.
const SCHEDULE_FIELDS: [&str; 10] = [
    "active",
    "amount",
    "comment",
    "created_at",
    "frequency",
    "id",
    "installments",
    "next_process_date",
    "process_date",
    "updated_at",
];

/// The documented keys of a v1 customer (doc 002, "Get All Customers").
const V1_CUSTOMER_FIELDS: [&str; 12] = [
    "active",
    "bank_name",
    "created_at",
    "custom_identifier",
    "customer_type",
    "email",
    "home_phone",
    "id",
    "identifier",
    "name",
    "phone",
    "updated_at",
];

/// The documentation's "Get all customers for a specific client" sample (doc 001), transcribed
/// here independently of the simulator's copy (its email has a no-break space, as the doc's text).
const DOC_CUSTOMER: &str = "{\"account_number\":\"23123132\",\"active\":true,\"address\":{\
    \"address_1\":\"123 Main Street\",\"address_2\":\"Unit 4\",\"city\":\"Toronto\",\"id\":242317,\
    \"postal_code\":\"M1B 0B7\",\"province_code\":\"QC\"},\"authorization_type\":null,\
    \"bank_account_type\":null,\"bank_name\":\"Scotiabank\",\
    \"created_at\":\"2020-10-22T13:27:34.000-05:00\",\"custom_identifier\":\"MikeS\",\
    \"customer_type\":\"Personal\",\"email\":\"[email\u{a0}protected]\",\
    \"financial_transactions\":[{\"account_number\":\"****32\",\"amount\":\"100.00\",\
    \"comment\":\"Monthly Fees\",\"created_at\":\"2021-03-26T16:02:05.338-05:00\",\
    \"custom_identifier\":\"16472\",\"customer_id\":174527,\"earliest_approval_date\":\"2021-04-02\",\
    \"id\":12341234,\"institution_number\":\"*33\",\"process_date\":\"2021-03-27\",\
    \"settlement_date\":\"2021-04-05\",\"status\":\"Approved\",\"status_reason\":null,\
    \"transaction_number\":\"INV1234123\",\"transaction_schedule_id\":1234321,\
    \"transit_number\":\"***11\",\"updated_at\":\"2021-04-05T11:02:20.222-05:00\",\
    \"zapier_identifier\":null}],\"home_phone\":null,\"id\":174527,\"identifier\":\"MIKESMIT0007\",\
    \"institution_number\":\"333\",\"name\":\"Mike Smith\",\"phone\":null,\"routing_number\":null,\
    \"transaction_schedules\":[{\"active\":true,\"amount\":\"100.00\",\"comment\":\"Monthly Fees\",\
    \"created_at\":\"2021-03-26T10:00:01.117-05:00\",\"frequency\":\"Monthly\",\"id\":1234321,\
    \"installments\":5,\"next_process_date\":\"2021-04-27\",\"process_date\":\"2021-03-27\",\
    \"updated_at\":\"2021-03-26T16:03:08.725-05:00\"}],\"transit_number\":\"11111\",\
    \"updated_at\":\"2020-10-22T13:28:42.000-05:00\"}";

/// The documentation's "Payout Report" sample (doc 001), transcribed independently.
const DOC_PAYOUT: &str = "{\"amount\":\"1.0\",\"customer\":{\"account_number\":\"23123132\",\
    \"active\":true,\"authorization_type\":null,\"bank_account_type\":null,\
    \"bank_name\":\"Scotiabank\",\"created_at\":\"2020-10-22T13:27:34.000-05:00\",\
    \"custom_identifier\":\"MikeSmith\",\"customer_type\":\"Personal\",\
    \"email\":\"[email\u{a0}protected]\",\"home_phone\":null,\"id\":174527,\
    \"identifier\":\"MIKESMIT0007\",\"institution_number\":\"333\",\"name\":\"Mike Smith\",\
    \"phone\":\"\",\"routing_number\":null,\"transit_number\":\"11111\",\
    \"updated_at\":\"2020-10-22T13:35:29.000-05:00\"},\"financial_transaction\":null,\"id\":null,\
    \"status\":\"Future\",\"transaction_amount\":\"100.00\"}";

fn keys_of(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn set_of<const N: usize>(keys: [&'static str; N]) -> BTreeSet<&'static str> {
    keys.into_iter().collect()
}

fn timestamp(v: &Value, key: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(str_of(v, key).unwrap())
        .unwrap_or_else(|e| panic!("{key} of {v}: {e}"))
}

/// The raw customer list of `client`.
async fn customers_body(http: &reqwest::Client, sim: &SimServer, client: i64) -> Vec<u8> {
    let (status, body) = get(http, sim, &format!("/v2/clients/{client}/customers"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    body
}

/// Every client's customers: customer id -> (client id, customer object).
async fn all_customers(http: &reqwest::Client, sim: &SimServer) -> BTreeMap<i64, (i64, Value)> {
    let mut out = BTreeMap::new();
    for client in sim.handle().client_ids() {
        let list = rows(&customers_body(http, sim, client).await);
        let listed: Vec<i64> = list.iter().map(|c| c["id"].as_i64().unwrap()).collect();
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "id order");
        for c in list {
            let id = c["id"].as_i64().unwrap();
            assert!(out.insert(id, (client, c)).is_none(), "{id} listed twice");
        }
    }
    out
}

/// One payout report, by query string.
async fn payouts_of(
    http: &reqwest::Client,
    sim: &SimServer,
    start: NaiveDate,
    end: NaiveDate,
) -> Vec<Value> {
    let (status, body) = get(http, sim, "/v2/payout_report", &wide(start, end)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    rows(&body)
}

/// A payout amount as the documentation writes it ("1.0", "2.3", "2.26") in cents.
fn payout_cents(text: &str) -> i64 {
    let (units, frac) = text.split_once('.').unwrap();
    let frac = match frac.len() {
        1 => frac.parse::<i64>().unwrap() * 10,
        2 => {
            assert!(
                !frac.ends_with('0'),
                "{text}: one place when the cent digit is 0"
            );
            frac.parse::<i64>().unwrap()
        }
        _ => panic!("{text}"),
    };
    units.parse::<i64>().unwrap() * 100 + frac
}

/// The last two characters of a masked number (`"*****42"` -> `"42"`).
fn last2(masked: &str) -> &str {
    &masked[masked.len() - 2..]
}

#[tokio::test]
async fn customers_are_listed_as_documented_and_agree_with_the_reports() {
    let sim = start(config(4000)).await;
    let http = reqwest::Client::new();
    let today = sim.today();
    let customers = all_customers(&http, &sim).await;
    assert_eq!(customers.len(), 2000, "every customer of the account, once");
    let report = all_rows(
        &http,
        &sim,
        "/v2/transaction_report",
        &wide(d("2025-01-01"), d("2027-12-31")),
    )
    .await;
    assert_eq!(report.len(), 4000);

    // The documented shapes, nested objects included.
    let mut american = 0;
    for (client, c) in customers.values() {
        assert_eq!(keys_of(c), set_of(CUSTOMER_FIELDS), "{c}");
        assert_eq!(
            keys_of(&c["address"]),
            set_of([
                "address_1",
                "address_2",
                "city",
                "id",
                "postal_code",
                "province_code"
            ])
        );
        assert_eq!(c["active"], true);
        assert!(matches!(
            str_of(c, "customer_type"),
            Some("Personal" | "Business")
        ));
        let account = str_of(c, "account_number").unwrap();
        assert!(account.len() >= 5 && account.bytes().all(|b| b.is_ascii_digit()));
        if let Some(phone) = str_of(c, "phone") {
            assert!(phone.len() == 10 && phone.bytes().all(|b| b.is_ascii_digit()));
        }
        let digits = |key: &str, n: usize| {
            let v = str_of(c, key).unwrap();
            v.len() == n && v.bytes().all(|b| b.is_ascii_digit())
        };
        if c["routing_number"].is_null() {
            assert!(
                digits("institution_number", 3) && digits("transit_number", 5),
                "{c}"
            );
            assert!(c["bank_account_type"].is_null() && c["authorization_type"].is_null());
        } else {
            american += 1;
            assert!(digits("routing_number", 9), "{c}");
            assert_eq!(
                (
                    c["institution_number"].as_str(),
                    c["transit_number"].as_str()
                ),
                (Some(""), Some(""))
            );
            assert!(matches!(
                str_of(c, "bank_account_type"),
                Some("Checking" | "Savings")
            ));
            assert!(matches!(
                str_of(c, "authorization_type"),
                Some("Online" | "In Person")
            ));
        }
        assert!(timestamp(c, "updated_at") >= timestamp(c, "created_at"));
        for t in c["financial_transactions"].as_array().unwrap() {
            assert_eq!(keys_of(t), set_of(NESTED_TRANSACTION_FIELDS), "{t}");
        }
        for s in c["transaction_schedules"].as_array().unwrap() {
            assert_eq!(keys_of(s), set_of(SCHEDULE_FIELDS), "{s}");
            assert_eq!(s["frequency"], "Monthly");
        }
        assert!(sim.handle().client_ids().contains(client));
    }
    assert!((120..300).contains(&american), "about 1 in 10: {american}");

    // The unmasked numbers end with the reports' masked digits, and the report rows belong to
    // the client whose list has their customer.
    let mut by_customer: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for row in &report {
        let (client, c) = &customers[&row["customer_id"].as_i64().unwrap()];
        assert_eq!(row["client_id"], *client);
        assert_eq!(row["custom_identifier"], c["custom_identifier"]);
        let account = str_of(c, "account_number").unwrap();
        match &row["account_number"] {
            Value::String(masked) => assert_eq!(last2(masked), last2(account)),
            number => assert_eq!(number.to_string(), account, "the numeric quirk"),
        }
        if row["institution_number"].is_string() && c["routing_number"].is_null() {
            let masked = |key: &str| last2(str_of(row, key).unwrap()).to_owned();
            assert_eq!(
                masked("institution_number"),
                last2(str_of(c, "institution_number").unwrap())
            );
            assert_eq!(
                masked("transit_number"),
                last2(str_of(c, "transit_number").unwrap())
            );
        }
        by_customer
            .entry(row["customer_id"].as_i64().unwrap())
            .or_default()
            .push(row);
    }

    // Schedules: one per schedule id of the reports, with its installments, dates and amount;
    // the nested transactions: the three most recent processed by today, as the report says.
    let mut listed_schedules = 0;
    for (id, (_, c)) in &customers {
        let rows = by_customer.get(id).cloned().unwrap_or_default();
        let mut schedules: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
        for row in &rows {
            schedules
                .entry(row["transaction_schedule_id"].as_i64().unwrap())
                .or_default()
                .push(row);
        }
        let served = c["transaction_schedules"].as_array().unwrap();
        assert_eq!(
            served
                .iter()
                .map(|s| s["id"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            schedules.keys().copied().collect::<Vec<_>>(),
            "customer {id}"
        );
        listed_schedules += served.len();
        for s in served {
            let txs = &schedules[&s["id"].as_i64().unwrap()];
            assert_eq!(s["installments"].as_u64().unwrap() as usize, txs.len());
            let dates: Vec<NaiveDate> = txs
                .iter()
                .map(|r| date_of(r, "process_date").unwrap())
                .collect();
            assert_eq!(date_of(s, "process_date"), dates.iter().min().copied());
            let next = dates.iter().filter(|d| **d > today).min().copied();
            assert_eq!(date_of(s, "next_process_date"), next);
            assert_eq!(s["active"], next.is_some());
            assert!(txs.iter().all(|r| r["amount"] == s["amount"]));
            assert!(timestamp(s, "created_at") >= timestamp(c, "created_at"));
        }
        if let Some(first) = rows.iter().map(|r| timestamp(r, "created_at")).min() {
            assert!(
                timestamp(c, "created_at") < first,
                "created before its first transaction"
            );
        }
        let processed: Vec<&&Value> = rows
            .iter()
            .filter(|r| date_of(r, "process_date").unwrap() <= today)
            .collect();
        let recent = &processed[processed.len().saturating_sub(3)..];
        let nested = c["financial_transactions"].as_array().unwrap();
        assert_eq!(nested.len(), recent.len(), "customer {id}");
        for (t, row) in nested.iter().zip(recent) {
            for key in [
                "id",
                "amount",
                "status",
                "status_reason",
                "updated_at",
                "transaction_number",
            ] {
                assert_eq!(t[key], row[key], "{key} of {t}");
            }
            assert_eq!(t["transaction_schedule_id"], row["transaction_schedule_id"]);
            assert_eq!(
                date_of(t, "settlement_date"),
                date_of(row, "settlement_date")
            );
            assert_eq!(
                last2(str_of(t, "account_number").unwrap()),
                last2(str_of(c, "account_number").unwrap())
            );
            assert!(str_of(t, "account_number").unwrap().starts_with("****"));
        }
    }
    assert!(listed_schedules > 2000);

    // Two reads with nothing changed are byte-identical; the clock changes the schedules.
    let a = customers_body(&http, &sim, 4325).await;
    assert_eq!(a, customers_body(&http, &sim, 4325).await);
    sim.advance(20);
    let later = customers_body(&http, &sim, 4325).await;
    assert_ne!(a, later);
    assert_eq!(later, customers_body(&http, &sim, 4325).await);
    // The same seed gives the same bytes.
    let twin = start(config(4000)).await;
    twin.advance(20);
    assert_eq!(later, customers_body(&http, &twin, 4325).await);

    // An unknown client is a documented 404.
    let (status, body) = get(&http, &sim, "/v2/clients/999/customers", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
}

#[tokio::test]
async fn v1_customers_have_the_v1_shape() {
    let sim = start(config(2000)).await;
    let http = reqwest::Client::new();
    let (status, body) = get(&http, &sim, "/v1/customers", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let v1 = rows(&body);
    let v2 = all_customers(&http, &sim).await;
    assert_eq!(v1.len(), v2.len());
    for c in &v1 {
        assert_eq!(keys_of(c), set_of(V1_CUSTOMER_FIELDS), "{c}");
        let (_, full) = &v2[&c["id"].as_i64().unwrap()];
        for key in V1_CUSTOMER_FIELDS {
            assert_eq!(c[key], full[key], "{key}");
        }
    }
    let ids: Vec<i64> = v1.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(body, get(&http, &sim, "/v1/customers", &[]).await.1);
}

#[tokio::test]
async fn customer_edits_and_schedule_removals_change_later_reads() {
    let sim = start(config(3000)).await;
    let http = reqwest::Client::new();
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    let report_before = get(&http, &sim, "/v2/transaction_report", &q).await.1;
    let before = all_customers(&http, &sim).await;
    let version = admin_state(&http, &sim).await["scenario_version"]
        .as_u64()
        .unwrap();
    let (&id, (client, original)) = before.iter().nth(7).unwrap();
    let client = *client;

    // A name, by JSON body: the answer and the lists show it, updated today.
    let edited: Value = http
        .post(format!("{}/_sim/customer", sim.base_url()))
        .json(&serde_json::json!({"id": id, "name": "Jane Q Doe"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(edited["id"], id);
    assert_eq!(edited["name"], "Jane Q Doe");
    assert_eq!(edited["email"], original["email"]);
    let updated = timestamp(&edited, "updated_at");
    assert_eq!(updated.date_naive(), sim.today());
    let after = all_customers(&http, &sim).await;
    let now = &after[&id].1;
    assert_eq!(now["name"], "Jane Q Doe");
    assert_eq!(now["updated_at"], edited["updated_at"]);
    assert!(timestamp(now, "updated_at") > timestamp(original, "updated_at"));
    for (other, (_, c)) in &before {
        if *other != id {
            assert_eq!(&after[other].1, c, "customer {other} unchanged");
        }
    }
    for key in CUSTOMER_FIELDS {
        if !["name", "updated_at"].contains(&key) {
            assert_eq!(now[key], original[key], "{key}");
        }
    }
    let state = admin_state(&http, &sim).await;
    assert_eq!(state["customers_edited"], 1);
    assert!(state["scenario_version"].as_u64().unwrap() > version);

    // An email, by query string, later the same day: a later updated_at, the name kept; v1 and
    // the payouts show the customer as it is now.
    let (status, again) = admin(
        &http,
        &sim,
        "customer",
        &[("id", id.to_string()), ("email", "jane@example.org".into())],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["name"].as_str(), again["email"].as_str()),
        (Some("Jane Q Doe"), Some("jane@example.org"))
    );
    assert!(timestamp(&again, "updated_at") > updated);
    let v1 = rows(&get(&http, &sim, "/v1/customers", &[]).await.1);
    let mine = v1.iter().find(|c| c["id"] == id).unwrap();
    assert_eq!(
        (mine["name"].as_str(), mine["email"].as_str()),
        (Some("Jane Q Doe"), Some("jane@example.org"))
    );
    assert_eq!(mine["updated_at"], again["updated_at"]);
    let payouts = payouts_of(&http, &sim, d("2025-01-01"), d("2027-12-31")).await;
    let theirs: Vec<&Value> = payouts
        .iter()
        .filter(|p| p["customer"]["id"] == id)
        .collect();
    assert!(!theirs.is_empty());
    assert!(theirs.iter().all(|p| p["customer"]["name"] == "Jane Q Doe"
        && p["customer"]["updated_at"] == again["updated_at"]));
    // The reports do not change.
    assert_eq!(
        get(&http, &sim, "/v2/transaction_report", &q).await.1,
        report_before
    );

    // Refusals: an unknown customer, no id, nothing to change, a bad email.
    let (status, answer) = admin(
        &http,
        &sim,
        "customer",
        &[("id", "42".into()), ("name", "X".into())],
    )
    .await;
    assert_eq!(
        (status, error_of(&answer).0),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _) = admin(&http, &sim, "customer", &[("name", "X".into())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin(&http, &sim, "customer", &[("id", id.to_string())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = admin(
        &http,
        &sim,
        "customer",
        &[("id", id.to_string()), ("email", "no at sign".into())],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A schedule removed: gone from its customer's list, its transactions still reported.
    let list = rows(&customers_body(&http, &sim, client).await);
    let owner = list
        .iter()
        .find(|c| !c["transaction_schedules"].as_array().unwrap().is_empty())
        .unwrap();
    let schedule = owner["transaction_schedules"][0]["id"].as_i64().unwrap();
    let schedule_rows = |rows: &[Value]| {
        rows.iter()
            .filter(|r| r["transaction_schedule_id"] == schedule)
            .count()
    };
    let reported = schedule_rows(&all_rows(&http, &sim, "/v2/transaction_report", &q).await);
    assert!(reported > 0);
    let removed: Value = http
        .post(format!("{}/_sim/schedule_remove", sim.base_url()))
        .json(&serde_json::json!({"id": schedule}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(removed["id"], schedule);
    assert_eq!(removed["customer_id"], owner["id"]);
    assert_eq!(removed["removed_on"], sim.today().to_string());
    let list_after = rows(&customers_body(&http, &sim, client).await);
    let owner_after = list_after.iter().find(|c| c["id"] == owner["id"]).unwrap();
    let remaining: Vec<&Value> = owner_after["transaction_schedules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(remaining.iter().all(|s| s["id"] != schedule));
    assert_eq!(
        remaining.len() + 1,
        owner["transaction_schedules"].as_array().unwrap().len()
    );
    assert_eq!(
        owner_after["updated_at"], owner["updated_at"],
        "only /_sim/customer updates it"
    );
    assert_eq!(
        schedule_rows(&all_rows(&http, &sim, "/v2/transaction_report", &q).await),
        reported
    );
    assert_eq!(admin_state(&http, &sim).await["schedules_removed"], 1);
    // Gone for good, and the same bytes on every read.
    sim.advance(3);
    let body = customers_body(&http, &sim, client).await;
    assert_eq!(body, customers_body(&http, &sim, client).await);
    assert!(rows(&body).iter().all(|c| {
        c["transaction_schedules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != schedule)
    }));
    // Refusals: removed already, unknown.
    let (status, answer) = admin(
        &http,
        &sim,
        "schedule_remove",
        &[("id", schedule.to_string())],
    )
    .await;
    assert_eq!(
        (status, error_of(&answer).0),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition")
    );
    for unknown in [1, 330_000, 330_001 + 2 * 2000] {
        let (status, _) = admin(
            &http,
            &sim,
            "schedule_remove",
            &[("id", unknown.to_string())],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    }
    let (status, _) = admin(&http, &sim, "schedule_remove", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_payout_report_has_one_payout_per_transaction() {
    let sim = start(config(3000)).await;
    let http = reqwest::Client::new();
    for step in 0..2 {
        if step == 1 {
            // Changes made on demand move payouts and settlements alike.
            let charged = sim.transaction_ids_with_status("Chargeback");
            sim.reverse(charged[0]).unwrap();
            let declined = sim.transaction_ids_with_status("Declined");
            sim.resubmit(declined[0], None).unwrap();
            sim.advance(25);
        }
        let today = sim.today();
        // A window: one payout per transaction of the report's window, in the same order.
        let (from, to) = (today - chrono::Days::new(20), today + chrono::Days::new(20));
        let payouts = payouts_of(&http, &sim, from, to).await;
        let txs = all_rows(&http, &sim, "/v2/transaction_report", &wide(from, to)).await;
        assert_eq!(payouts.len(), txs.len());
        assert!(payouts.len() > 500);
        let mut futures = 0;
        for (p, row) in payouts.iter().zip(&txs) {
            assert_eq!(
                keys_of(p),
                set_of([
                    "amount",
                    "customer",
                    "financial_transaction",
                    "id",
                    "status",
                    "transaction_amount"
                ])
            );
            assert_eq!(p["amount"], "2.26");
            assert_eq!(payout_cents(str_of(p, "amount").unwrap()), 226);
            assert_eq!(p["status"], row["status"]);
            assert_eq!(p["transaction_amount"], row["amount"]);
            assert_eq!(p["customer"]["id"], row["customer_id"]);
            let customer_keys: BTreeSet<&str> = set_of(CUSTOMER_FIELDS)
                .into_iter()
                .filter(|k| {
                    !["address", "financial_transactions", "transaction_schedules"].contains(k)
                })
                .collect();
            assert_eq!(keys_of(&p["customer"]), customer_keys);
            if row["status"] == "Future" {
                futures += 1;
                assert!(
                    p["id"].is_null() && p["financial_transaction"].is_null(),
                    "{p}"
                );
            } else {
                assert!(p["id"].as_i64().is_some(), "{p}");
                let t = &p["financial_transaction"];
                assert_eq!(keys_of(t), set_of(NESTED_TRANSACTION_FIELDS));
                assert_eq!(t["id"], row["id"]);
                assert_eq!(date_of(t, "process_date"), date_of(row, "process_date"));
                assert_eq!(
                    date_of(t, "settlement_date"),
                    date_of(row, "settlement_date")
                );
                assert_eq!(t["updated_at"], row["updated_at"]);
            }
        }
        assert!(futures > 0 && futures < payouts.len());
        let payout_ids: Vec<i64> = payouts.iter().filter_map(|p| p["id"].as_i64()).collect();
        assert!(
            payout_ids.windows(2).all(|w| w[0] < w[1]),
            "unique, in transaction order"
        );

        // Everything: the approved payouts of each client by settlement date are the
        // settlements' number_payout and total_payout (a charged-back transaction still counts
        // as approved on its settlement date under the default model).
        let all = payouts_of(&http, &sim, d("2025-01-01"), d("2027-12-31")).await;
        assert_eq!(all.len(), 3000);
        let client_of: HashMap<i64, i64> = all_rows(
            &http,
            &sim,
            "/v2/transaction_report",
            &wide(d("2025-01-01"), d("2027-12-31")),
        )
        .await
        .iter()
        .map(|r| {
            (
                r["customer_id"].as_i64().unwrap(),
                r["client_id"].as_i64().unwrap(),
            )
        })
        .collect();
        let mut paid: BTreeMap<(i64, NaiveDate), (i64, i64)> = BTreeMap::new();
        for p in &all {
            let Some(settled) = date_of(&p["financial_transaction"], "settlement_date") else {
                continue;
            };
            if settled <= today && matches!(p["status"].as_str(), Some("Approved" | "Chargeback")) {
                let client = client_of[&p["customer"]["id"].as_i64().unwrap()];
                let e = paid.entry((client, settled)).or_default();
                e.0 += 1;
                e.1 += payout_cents(str_of(p, "amount").unwrap());
            }
        }
        let mut expected: BTreeMap<(i64, NaiveDate), (i64, i64)> = BTreeMap::new();
        for client in sim.handle().client_ids() {
            let answer: Vec<Value> = http
                .post(format!(
                    "{}/v2/clients/{client}/settlements/show_by_settlement_date",
                    sim.base_url()
                ))
                .header("Authorization", auth(&sim))
                .json(&serde_json::json!({"start_date": "2025-01-01"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for s in answer {
                let n = s["number_payout"].as_i64().unwrap();
                if n > 0 {
                    expected.insert(
                        (client, date_of(&s, "settlement_date").unwrap()),
                        (n, cents(str_of(&s, "total_payout").unwrap())),
                    );
                }
            }
        }
        assert!(!expected.is_empty());
        assert_eq!(paid, expected, "on {today}");
    }

    // Parameters as the reports take them: the same bytes from a JSON body; start_date required.
    let q = wide(d("2026-11-01"), d("2026-11-30"));
    let by_query = get(&http, &sim, "/v2/payout_report", &q).await.1;
    let by_body = http
        .get(format!("{}/v2/payout_report", sim.base_url()))
        .header("Authorization", auth(&sim))
        .json(&serde_json::json!({"start_date": "2026-11-01", "end_date": "2026-11-30"}))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(by_query, by_body.to_vec());
    assert_eq!(by_query, get(&http, &sim, "/v2/payout_report", &q).await.1);
    let (status, body) = get(&http, &sim, "/v2/payout_report", &[]).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "missing_parameter")
    );
    let (status, _) = get(
        &http,
        &sim,
        "/v2/payout_report",
        &[("start_date", "2026-13-01".into())],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = get(
        &http,
        &sim,
        "/v2/payout_report",
        &[("start_date", "2030-01-01".into())],
    )
    .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"[]"[..]));
}

#[tokio::test]
async fn documented_samples_are_served_verbatim() {
    use rotessa_recon::sim::customers::{DOCUMENTED_CUSTOMER, DOCUMENTED_PAYOUT};
    let sim = start(SimConfig {
        documented_samples: true,
        ..config(1000)
    })
    .await;
    let plain = start(config(1000)).await;
    let http = reqwest::Client::new();
    let doc_customer: Value = serde_json::from_str(DOC_CUSTOMER).unwrap();
    let doc_payout: Value = serde_json::from_str(DOC_PAYOUT).unwrap();

    // The first client's list starts with the documented customer, byte for byte.
    let body = customers_body(&http, &sim, 4321).await;
    assert!(body.starts_with(format!("[{DOCUMENTED_CUSTOMER},").as_bytes()));
    let list = rows(&body);
    assert_eq!(list[0], doc_customer);
    let generated = rows(&customers_body(&http, &plain, 4321).await);
    assert_eq!(list[1..], generated[..], "then the generated customers");
    for client in [4325, 4329] {
        assert_eq!(
            customers_body(&http, &sim, client).await,
            customers_body(&http, &plain, client).await
        );
    }

    // Every payout report starts with the documented payout, whatever its window.
    for (from, to) in [("2026-11-01", "2026-11-30"), ("2030-01-01", "2030-01-31")] {
        let q = wide(d(from), d(to));
        let body = get(&http, &sim, "/v2/payout_report", &q).await.1;
        assert!(body.starts_with(format!("[{DOCUMENTED_PAYOUT}").as_bytes()));
        let payouts = rows(&body);
        assert_eq!(payouts[0], doc_payout);
        assert_eq!(
            payouts[1..],
            rows(&get(&http, &plain, "/v2/payout_report", &q).await.1)[..]
        );
    }
    // Off by default: the documentation's customer is nowhere.
    assert!(generated.iter().all(|c| c["id"] != 174527));
    // The reports are the same either way.
    let q = wide(d("2025-01-01"), d("2027-12-31"));
    assert_eq!(
        get(&http, &sim, "/v2/transaction_report", &q).await,
        get(&http, &plain, "/v2/transaction_report", &q).await
    );
}

#[tokio::test]
async fn the_customer_and_payout_routes_need_the_key_and_are_faulted() {
    let sim = start(SimConfig {
        fault_rate: 1.0,
        ..config(300)
    })
    .await;
    let http = reqwest::Client::new();
    let paths = [
        "/v2/clients/4321/customers",
        "/v1/customers",
        "/v2/payout_report?start_date=2026-11-01",
    ];
    // Every request faulted: never a complete answer.
    for path in paths {
        for _ in 0..10 {
            let sent = http
                .get(format!("{}{path}", sim.base_url()))
                .header("Authorization", auth(&sim))
                .send()
                .await;
            let Ok(response) = sent else { continue };
            let status = response.status();
            if let Ok(body) = response.bytes().await {
                let complete = serde_json::from_slice::<Vec<Value>>(&body).is_ok();
                assert!(!(status == StatusCode::OK && complete), "{path}: a fault");
            }
        }
    }
    let stats = sim.stats();
    assert_eq!((stats.requests_served, stats.faults.total()), (30, 30));

    // Without the key: 401, once faults are off.
    sim.set_faults(0.0, std::time::Duration::ZERO);
    for path in paths {
        let r = http
            .get(format!("{}{path}", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let r = http
            .get(format!("{}{path}", sim.base_url()))
            .header("Authorization", auth(&sim))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}
