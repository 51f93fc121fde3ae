//! Property tests of the report row parser: whatever arrives, no panic, every row accounted
//! for; and valid rows, with the documented quirks, keep their exact values.

use proptest::prelude::*;
use rotessa_recon::rotessa::wire::parse_report_page;
use rotessa_recon::sync::convert::to_transaction;
use serde_json::{Value, json};

/// Arbitrary JSON values, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}".prop_map(Value::from),
        "-?[0-9]{1,16}(\\.[0-9]{0,4})?".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names, mostly the report's own.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "amount",
            "status",
            "process_date",
            "settlement_date",
            "decline_date",
            "client_id",
            "customer_id",
            "account_number",
            "created_at",
            "updated_at",
            "transaction_custom_identifieer",
            "status_reason",
            "comment",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,10}",
    ]
}

/// 400 cases from a fixed seed, so that CI sees the same inputs on every run; set
/// `PROPTEST_RNG_SEED` to explore others.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(400);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x7e55_2019);
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_report_page(&body, Ok);
    }

    #[test]
    fn any_array_accounts_for_every_row(rows in prop::collection::vec(any_json(), 0..20)) {
        let body = serde_json::to_vec(&rows).unwrap();
        let page = parse_report_page(&body, |w| to_transaction(w, None)).unwrap();
        prop_assert_eq!(page.len, rows.len());
        prop_assert_eq!(page.rows.len() + page.rejected.len() + page.duplicates, rows.len());
        for r in &page.rejected {
            prop_assert!(!r.error.is_empty());
            prop_assert!(serde_json::from_str::<Value>(&r.raw).is_ok());
        }
    }

    #[test]
    fn valid_rows_keep_their_exact_values(
        id in 1i64..i64::MAX,
        cents in 0i64..100_000_000_000_000,
        (y, m, d) in (1990i32..2100, 1u32..=12, 1u32..=28),
        pad in any::<bool>(),
        numeric_account in any::<bool>(),
        status in prop::sample::select(vec!["Future", "Pending", "Approved", "Declined", "Chargeback"]),
    ) {
        let date = if pad { format!("{y:04}-{m:02}-{d:02}") } else { format!("{y}-{m}-{d}") };
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        let row = json!({
            "id": id, "amount": amount, "status": status, "process_date": date,
            "settlement_date": date,
            "account_number": if numeric_account { json!(111111) } else { json!("****32") },
            "transaction_custom_identifieer": "TS1",
        });
        let body = serde_json::to_vec(&vec![row]).unwrap();
        let page = parse_report_page(&body, |w| to_transaction(w, Some(4321))).unwrap();
        prop_assert!(page.rejected.is_empty(), "{:?}", page.rejected);
        let t = &page.rows[0];
        prop_assert_eq!(t.id, id);
        prop_assert_eq!(t.amount.to_string(), amount);
        prop_assert_eq!(t.status.as_str(), status);
        let expected = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        prop_assert_eq!(t.process_date, expected);
        prop_assert_eq!(t.settlement_date, Some(expected));
        prop_assert_eq!(t.client_id, Some(4321));
        prop_assert_eq!(t.schedule_custom_identifier.as_deref(), Some("TS1"));
        let account = if numeric_account { "111111" } else { "****32" };
        prop_assert_eq!(t.account_number.as_deref(), Some(account));
        prop_assert!(t.extra.is_none());
    }
}
