//! The event contract as data (issue 18): `schemas/<type>.v<event_version>.json` describes every
//! payload the daemon writes, `schemas/envelope.json` an outbox row, and
//! `schemas/asyncapi.yaml` refers to every one. A simulator synced through time with every
//! stream and the reconciliation (a mismatching chargeback model, removals) and a mock report
//! that drops and restores a transaction write every event type; each event must match its
//! schema. The schemas must also reject what they should (a wrong type, a missing or unknown
//! field, an unknown status, a bad date), or the check above would prove nothing. The
//! guarantee suites (`guarantees_faults.rs`, `guarantees_crashes.rs`) run the same check on
//! everything they emit.

mod common;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use common::schemas::{Schemas, assert_outbox_matches_schemas, check_outbox, files};
use common::simulated::{sim_syncer, sync_all};
use common::*;
use rotessa_recon::sim::{SimConfig, SimServer};
use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::MockServer;

/// Every event type the daemon writes (src/sync/events.rs).
const TYPES: [&str; 8] = [
    "customer.changed",
    "payout.changed",
    "reconciliation.matched",
    "reconciliation.mismatch",
    "settlement.changed",
    "transaction.removed",
    "transaction.restored",
    "transaction.status_changed",
];

#[test]
fn every_event_type_has_a_schema_and_the_asyncapi_document_refers_to_each() {
    let schemas = Schemas::load();
    let versions: BTreeSet<String> = schemas.versions().map(|(t, _)| t.clone()).collect();
    assert_eq!(versions, TYPES.iter().map(|t| (*t).to_owned()).collect());
    let asyncapi = std::fs::read_to_string(common::schemas::dir().join("asyncapi.yaml"))
        .expect("schemas/asyncapi.yaml");
    assert!(asyncapi.contains("\nasyncapi: 3.0.0\n"), "AsyncAPI 3.0");
    for (name, schema) in files() {
        // definitions.json is reached through the others.
        let referred = asyncapi
            .lines()
            .any(|l| l.contains("$ref") && l.contains(&format!("./{name}")));
        assert!(
            referred || name == "definitions.json",
            "schemas/asyncapi.yaml refers to {name}"
        );
        assert!(schema["title"].is_string(), "{name} has a title");
        assert!(
            schema["description"].is_string(),
            "{name} has a description"
        );
    }
    for t in TYPES {
        for (what, name) in [
            ("NATS subject", format!("{{prefix}}.{t}")),
            ("routing key", format!("address: {t}")),
        ] {
            assert!(asyncapi.contains(&name), "asyncapi.yaml: the {what} of {t}");
        }
    }
    // The envelope's list of types is the same.
    let envelope = &files()["envelope.json"];
    let listed: BTreeSet<&str> = envelope["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(listed, TYPES.into_iter().collect());
}

/// Every property of every schema (nested ones included) says what it means.
#[test]
fn every_property_has_a_description() {
    fn walk(name: &str, path: &str, v: &Value, missing: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (key, prop) in props {
                        // Properties inside if/then/allOf narrow one described elsewhere.
                        let narrowing = path.contains("/allOf") || path.contains("/then");
                        if !narrowing && prop.get("description").is_none() {
                            missing.push(format!("{name}: {path}/properties/{key}"));
                        }
                    }
                }
                for (k, child) in map {
                    walk(name, &format!("{path}/{k}"), child, missing);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(name, &format!("{path}/{i}"), child, missing);
                }
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for (name, schema) in files() {
        walk(&name, "#", &schema, &mut missing);
    }
    assert_eq!(missing, Vec::<String>::new());
}

/// A transaction.status_changed payload as the daemon writes it (src/sync/events.rs).
fn status_changed() -> Value {
    json!({
        "event_version": 1, "transaction_id": 7, "client_id": 4321, "customer_id": null,
        "amount": "25.00", "from_status": "Pending", "to_status": "Declined",
        "status_reason": "NSF", "process_date": "2019-03-01", "settlement_date": "2019-03-08",
        "decline_date": null, "transaction_number": "INV7", "custom_identifier": null,
        "observed_at": "2019-03-12T15:04:05.123456Z", "source": "transaction_decline_report",
        "reversal": false
    })
}

/// A change that breaks a valid payload.
type Change = fn(&mut Value);

#[test]
fn the_schemas_reject_what_the_daemon_never_writes() {
    let schemas = Schemas::load();
    let t = "transaction.status_changed";
    assert_eq!(
        schemas.payload_errors(t, &status_changed()),
        Vec::<String>::new()
    );
    // Written before `reversal` existed: still version 1.
    let mut old = status_changed();
    old.as_object_mut().unwrap().remove("reversal");
    assert_eq!(schemas.payload_errors(t, &old), Vec::<String>::new());

    let cases: Vec<(&str, Change)> = vec![
        ("amount as a number", |p| p["amount"] = json!(25.0)),
        ("amount with three decimals", |p| {
            p["amount"] = json!("25.001")
        }),
        ("a negative amount", |p| p["amount"] = json!("-25.00")),
        ("a missing field", |p| {
            p.as_object_mut().unwrap().remove("to_status");
        }),
        ("a missing nullable field", |p| {
            p.as_object_mut().unwrap().remove("decline_date");
        }),
        ("an unknown field", |p| {
            p["account_number"] = json!("23123132")
        }),
        ("an unknown status", |p| p["to_status"] = json!("Settled")),
        ("a date that is not ISO", |p| {
            p["process_date"] = json!("03/01/2019")
        }),
        ("an impossible date", |p| {
            p["process_date"] = json!("2019-02-30")
        }),
        ("a time that is not RFC 3339", |p| {
            p["observed_at"] = json!("yesterday")
        }),
        ("the id as a string", |p| p["transaction_id"] = json!("7")),
        ("another version", |p| p["event_version"] = json!(2)),
        ("an unknown source", |p| p["source"] = json!("settlements")),
    ];
    for (what, change) in cases {
        let mut p = status_changed();
        change(&mut p);
        assert!(
            !schemas.payload_errors(t, &p).is_empty(),
            "{what} is rejected: {p}"
        );
    }
    // A type without a schema, and one a payload of another type does not fit.
    assert!(
        !schemas
            .payload_errors("transaction.deleted", &status_changed())
            .is_empty()
    );
    assert!(
        !schemas
            .payload_errors("settlement.changed", &status_changed())
            .is_empty()
    );
    // Closed nested objects, masked numbers, the matched/mismatch split.
    let customer = json!({
        "event_version": 1, "customer_id": 1, "client_id": 2, "changed": null, "previous": null,
        "current": {
            "id": 1, "client_id": 2, "custom_identifier": null, "identifier": null,
            "name": "A", "customer_type": "Personal", "active": true, "bank_name": null,
            "authorization_type": null, "bank_account_type": null,
            "account_number": "*****132", "transit_number": null, "institution_number": null,
            "routing_number": null
        }
    });
    assert_eq!(
        schemas.payload_errors("customer.changed", &customer),
        Vec::<String>::new()
    );
    for (what, pointer, value) in [
        (
            "an unmasked account number",
            "/current/account_number",
            json!("23123132"),
        ),
        ("an email", "/current/email", json!("a@example.com")),
        ("an unknown changed field", "/changed", json!(["phone"])),
    ] {
        let mut c = customer.clone();
        match c.pointer_mut(pointer) {
            Some(slot) => *slot = value,
            None => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                c.pointer_mut(parent).unwrap()[key] = value;
            }
        }
        assert!(
            !schemas.payload_errors("customer.changed", &c).is_empty(),
            "{what} is rejected"
        );
    }
    let figures = json!({
        "number_approved": 1, "total_approved": "25.00", "number_declined": 0,
        "total_declined": "0.00", "number_chargeback": 0, "total_chargeback": "0.00"
    });
    let zero = json!({
        "number_approved": 0, "total_approved": "0.00", "number_declined": 0,
        "total_declined": "0.00", "number_chargeback": 0, "total_chargeback": "0.00"
    });
    let reconciliation = |matched: bool, difference: &Value| {
        json!({
            "event_version": 1, "client_id": 2, "settlement_date": "2019-03-08",
            "matched": matched, "rotessa": figures, "computed": figures,
            "difference": difference
        })
    };
    let off = json!({
        "number_approved": 1, "total_approved": "25.00", "number_declined": 0,
        "total_declined": "0.00", "number_chargeback": 0, "total_chargeback": "0.00"
    });
    let ok = |t: &str, p: &Value| schemas.payload_errors(t, p).is_empty();
    assert!(ok("reconciliation.matched", &reconciliation(true, &zero)));
    assert!(ok("reconciliation.mismatch", &reconciliation(false, &off)));
    assert!(!ok("reconciliation.matched", &reconciliation(true, &off)));
    assert!(!ok(
        "reconciliation.mismatch",
        &reconciliation(false, &zero)
    ));
    assert!(!ok("reconciliation.mismatch", &reconciliation(true, &off)));
}

/// Every stream of a simulator through a few weeks: first sightings, transitions with
/// chargebacks, settlements, customers, payouts, removals, and a reconciliation whose
/// chargeback model differs from the simulator's (so some dates mismatch) beside matched ones.
#[sqlx::test]
async fn every_event_a_simulated_sync_writes_matches_its_schema(pool: PgPool) {
    let sim = SimServer::start(
        SimConfig {
            seed: 18,
            clients: 2,
            customers: 120,
            transactions: 2500,
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            api_key: API_KEY.to_owned(),
            quirk_rate: 0.05,
            report_lag_rate: 0.2,
            report_lag_days: 3,
            removal_rate: 0.05,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let syncer = sim_syncer(
        &pool,
        &sim,
        &[
            ("RECON_RECONCILIATION__CHARGEBACK_ON", "settlement_date"),
            ("RECON_LOG__LEVEL", "error"),
        ],
    );
    for days in [0, 6, 10, 14] {
        sim.advance(days);
        sync_all(&syncer).await;
    }
    let by_type = assert_outbox_matches_schemas(&pool).await;
    println!("events checked: {by_type:?}");
    for t in TYPES {
        if t != "transaction.restored" {
            assert!(by_type.get(t).is_some_and(|n| *n > 0), "{t}: {by_type:?}");
        }
    }
    // Zeros are written "0.00" (the schemas still accept the "0" of older daemons): the
    // reconciliation's figures include zeros, and none is written without its decimals.
    let bare_zeros: i64 = sqlx::query_scalar(
        r#"select count(*) from rotessa.outbox where payload::text ~ '": "-?0"'"#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(bare_zeros, 0, "an amount written as \"0\"");
    let zeros: i64 = sqlx::query_scalar(
        r#"select count(*) from rotessa.outbox where payload::text ~ '": "0.00"'"#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(zeros > 0, "the sync wrote no zero amount to check");
    // The check can fail: one event's amount made a number, then one event's type unknown.
    let schemas = Schemas::load();
    sqlx::query(
        "update rotessa.outbox set payload = jsonb_set(payload, '{amount}', '25')
         where seq = (select min(seq) from rotessa.outbox where type = 'transaction.removed')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let checked = check_outbox(&pool, &schemas).await;
    assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
    let problem = &checked.problems[0];
    assert!(
        problem.contains("(transaction.removed)") && problem.contains("amount"),
        "the failure names the event, its type and the field: {problem}"
    );
    sqlx::query(
        "update rotessa.outbox set type = 'transaction.vanished'
         where seq = (select min(seq) from rotessa.outbox)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let checked = check_outbox(&pool, &schemas).await;
    assert!(
        checked
            .problems
            .iter()
            .any(|p| p.contains("no schema for transaction.vanished version 1")),
        "a type without a schema fails: {:?}",
        checked.problems
    );
}

/// A transaction that Rotessa stops reporting and then reports again (as in
/// `removed_rows.rs`): `transaction.removed` and `transaction.restored` match their schemas.
#[sqlx::test]
async fn removed_and_restored_events_match_their_schemas(pool: PgPool) {
    let server = MockServer::start().await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let future = |ids: &[i64]| -> Vec<Value> {
        ids.iter()
            .map(|id| {
                let mut r = row(*id, "Future");
                r["updated_at"] = Value::Null;
                r
            })
            .collect()
    };
    for (rows, reads) in [
        (future(&[1, 2, 3]), 1),
        (future(&[1, 3]), 2),
        (future(&[1, 2, 3]), 1),
    ] {
        serve_report(&server, &rows).await;
        for _ in 0..reads {
            for r in sync_window(&syncer, "2019-03-01", "2019-03-12").await {
                assert_eq!(
                    r.outcome,
                    rotessa_recon::sync::RunOutcome::Succeeded,
                    "{r:?}"
                );
            }
        }
    }
    let by_type = assert_outbox_matches_schemas(&pool).await;
    assert_eq!(by_type.get("transaction.removed"), Some(&1), "{by_type:?}");
    assert_eq!(by_type.get("transaction.restored"), Some(&1), "{by_type:?}");
}
