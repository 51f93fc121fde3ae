//! The `rotessa-outbox` crate (crates/rotessa-outbox) against a database the daemon synced from
//! the simulator: its consumer observes every event exactly once, in delivery order; every real
//! payload decodes to its type and encodes back to the same JSON; a handler failing on one event
//! gets it parked after its retries while the rest flow, the parked event survives retention and
//! is handled once unparked; and the crate's normal dependencies stay slim.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use common::outbox::{PATIENCE, age_events, outbox_ids, wait_deliverable};
use common::simulated::{sim_syncer, sync_all};
use common::*;
use rotessa_outbox::payload::types;
use rotessa_outbox::{Consumer, Event, Handler, Options, Payload, RetryPolicy, StartFrom, sql};
use rotessa_recon::outbox::{Retention, prune};
use rotessa_recon::sim::{SimConfig, SimServer};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

async fn simulator(transactions: u32) -> SimServer {
    SimServer::start(
        SimConfig {
            seed: 18,
            clients: 2,
            customers: 60,
            transactions,
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            history_days: 60,
            future_days: 30,
            api_key: API_KEY.to_owned(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Records every event it is handed; fails (while `poisoned`) on the event `poison`.
#[derive(Default)]
struct Recorder {
    handled: Mutex<Vec<Event>>,
    attempts: Mutex<HashMap<Uuid, u32>>,
    poison: Option<Uuid>,
    poisoned: AtomicBool,
}

impl Recorder {
    fn poisoning(id: Uuid) -> Self {
        Self {
            poison: Some(id),
            poisoned: AtomicBool::new(true),
            ..Self::default()
        }
    }

    fn ids(&self) -> Vec<Uuid> {
        self.handled.lock().unwrap().iter().map(|e| e.id).collect()
    }

    fn attempts(&self, id: Uuid) -> u32 {
        self.attempts.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

impl Handler for Recorder {
    type Error = String;

    async fn handle(&self, event: &Event) -> Result<(), String> {
        *self.attempts.lock().unwrap().entry(event.id).or_default() += 1;
        if Some(event.id) == self.poison && self.poisoned.load(Ordering::SeqCst) {
            return Err(format!("the ledger refuses {}", event.aggregate_id));
        }
        self.handled.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// Every `(id, type, payload)` of the outbox, in delivery order.
async fn outbox_rows(pool: &PgPool) -> Vec<(Uuid, String, Value)> {
    sqlx::query_as("select id, type, payload from rotessa.outbox order by txid, seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn assert_no_duplicates(ids: &[Uuid]) {
    let unique: HashSet<&Uuid> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event was handled twice");
}

fn fast_options() -> Options {
    Options {
        batch_size: 250,
        poll_interval: Duration::from_millis(200),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        },
        ..Options::default()
    }
}

/// Waits until `recorder` has handled `want` events (or `PATIENCE` twice over).
async fn wait_handled(recorder: &Recorder, want: impl Fn(&[Uuid]) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    while !want(&recorder.ids()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer handled {} events",
            recorder.ids().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn the_crate_consumer_observes_every_event_of_a_synced_database_once_in_order(pool: PgPool) {
    let sim = simulator(1500).await;
    let consumer = Consumer::new(pool.clone(), "crate-follow").with_options(fast_options());
    assert!(consumer.register(StartFrom::Beginning).await.unwrap());
    assert!(!consumer.register(StartFrom::Beginning).await.unwrap());

    // The consumer follows (LISTEN and polling) while the daemon's syncer writes.
    let recorder = Arc::new(Recorder::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn({
        let (consumer, recorder) = (consumer.clone(), Arc::clone(&recorder));
        async move {
            consumer
                .run(&*recorder, async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    sync_all(&sim_syncer(&pool, &sim, &[])).await;
    let expected = outbox_ids(&pool).await;
    assert!(expected.len() > 1000, "{} events", expected.len());
    wait_handled(&recorder, |ids| ids.len() >= expected.len()).await;
    stop.send(()).unwrap();
    let stats = running.await.unwrap().unwrap();

    let seen = recorder.ids();
    assert_no_duplicates(&seen);
    assert_eq!(seen, expected, "every event once, in delivery order");
    assert_eq!(stats.handled, expected.len() as u64);
    assert_eq!((stats.parked, stats.replayed), (0, 0));
    // Acked: nothing is left for it.
    assert!(
        sql::poll(&pool, "crate-follow", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = consumer
        .run_until_caught_up(&Recorder::default(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(again.handled, 0);

    // Every real payload decodes to its own type (none Unknown), equal to what the handler
    // was given, and encodes back to exactly the stored JSON.
    let handled: HashMap<Uuid, Payload> = recorder
        .handled
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.id, e.payload.clone()))
        .collect();
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for (id, event_type, payload) in outbox_rows(&pool).await {
        let decoded = Payload::from_parts(&event_type, payload.clone())
            .unwrap_or_else(|e| panic!("{event_type} {id}: {e}"));
        assert!(!decoded.is_unknown(), "{event_type} {id}");
        assert_eq!(decoded.event_type(), event_type);
        assert_eq!(decoded.to_value().unwrap(), payload, "{event_type} {id}");
        assert_eq!(handled.get(&id), Some(&decoded));
        *by_type.entry(event_type).or_default() += 1;
    }
    for t in [
        types::TRANSACTION_STATUS_CHANGED,
        types::SETTLEMENT_CHANGED,
        types::CUSTOMER_CHANGED,
        types::PAYOUT_CHANGED,
    ] {
        assert!(by_type.contains_key(t), "no {t} among {by_type:?}");
    }
    assert!(
        by_type.contains_key(types::RECONCILIATION_MATCHED)
            || by_type.contains_key(types::RECONCILIATION_MISMATCH),
        "no reconciliation event among {by_type:?}"
    );

    // A second consumer from the beginning, until caught up (what `examples/consume.rs
    // --until-caught-up` runs): the same events, once each.
    wait_deliverable(&pool, expected.len()).await;
    let late = Consumer::new(pool.clone(), "crate-catch-up").with_options(Options {
        batch_size: 100,
        ..fast_options()
    });
    late.register(StartFrom::Beginning).await.unwrap();
    let recorder = Recorder::default();
    let stats = late
        .run_until_caught_up(&recorder, std::future::pending())
        .await
        .unwrap();
    assert_eq!(recorder.ids(), expected);
    assert_eq!(stats.handled, expected.len() as u64);

    // The crate's example consumer itself, as a process: every id printed once, then nothing.
    let example = example_binary();
    let run = || {
        std::process::Command::new(&example)
            .args(["crate-example", "--until-caught-up"])
            .env("DATABASE_URL", database_url(&pool))
            .output()
            .expect("run the consume example")
    };
    let out = run();
    assert!(out.status.success(), "{}", output_text(&out));
    let printed: Vec<Uuid> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().expect("an event id per line"))
        .collect();
    assert_no_duplicates(&printed);
    assert_eq!(
        printed, expected,
        "the example prints every event once, in order"
    );
    let out = run();
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(out.stdout.is_empty(), "acked: a second run prints nothing");
}

/// `crates/rotessa-outbox/examples/consume.rs`, as `cargo test` builds it (examples are compiled
/// beside the test binaries, in `<target>/<profile>/examples/`).
fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("<target>/<profile>/deps")
        .join("examples")
        .join("consume");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds it; alone, run `cargo build -p rotessa-outbox --example consume` first",
        path.display()
    );
    path
}

#[sqlx::test]
async fn an_unregistered_consumer_is_an_error_that_says_how_to_register(pool: PgPool) {
    let err = Consumer::new(pool.clone(), "typo")
        .run_until_caught_up(&Recorder::default(), std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(err, rotessa_outbox::Error::UnknownConsumer(ref n) if n == "typo"),
        "{err}"
    );
    assert!(err.to_string().contains("outbox_register('typo')"), "{err}");
}

/// One row of `rotessa.outbox_parked_list`.
async fn parked(pool: &PgPool, consumer: &str) -> Vec<(Uuid, String, String, i32)> {
    sqlx::query_as(
        "select event_id, state, error, times_parked from rotessa.outbox_parked_list($1)",
    )
    .bind(consumer)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_failing_event_is_parked_after_its_retries_survives_retention_and_replays(pool: PgPool) {
    let sim = simulator(300).await;
    sync_all(&sim_syncer(&pool, &sim, &[])).await;
    let all = outbox_ids(&pool).await;
    assert!(all.len() > 100, "{} events", all.len());
    wait_deliverable(&pool, all.len()).await;
    let poison = all[all.len() / 3];
    let others: Vec<Uuid> = all.iter().copied().filter(|id| *id != poison).collect();

    let name = "crate-parking";
    let consumer = Consumer::new(pool.clone(), name).with_options(Options {
        batch_size: 40,
        ..fast_options()
    });
    consumer.register(StartFrom::Beginning).await.unwrap();
    let recorder = Arc::new(Recorder::poisoning(poison));

    // 1. The poison event is tried 3 times, parked, and everything else flows, once each.
    let stats = consumer
        .run_until_caught_up(&*recorder, std::future::pending())
        .await
        .unwrap();
    assert_eq!(recorder.attempts(poison), 3);
    assert_no_duplicates(&recorder.ids());
    assert_eq!(recorder.ids(), others);
    assert_eq!((stats.handled, stats.parked), (others.len() as u64, 1));
    assert!(others.iter().all(|id| recorder.attempts(*id) == 1));
    // Acked past it: a poll finds nothing.
    assert!(sql::poll(&pool, name, 10).await.unwrap().is_empty());
    let listed = parked(&pool, name).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (id, state, error, times) = &listed[0];
    assert_eq!((id, state.as_str(), *times), (&poison, "parked", 1));
    assert!(error.starts_with("the ledger refuses "), "{error}");

    // 2. Retention with 0 days deletes every acked event but the parked one.
    age_events(&pool, 2).await;
    let retention = Retention {
        days: 0,
        batch_size: 50,
        without_consumers: false,
    };
    let deleted = prune(&pool, &retention).await.unwrap();
    assert_eq!(deleted, others.len() as u64);
    assert_eq!(outbox_ids(&pool).await, vec![poison]);
    assert_eq!(parked(&pool, name).await.len(), 1);

    // 3. Unparked while the cause persists: replayed, fails its retries again, parked again.
    assert_eq!(sql::unpark(&pool, name, None).await.unwrap(), 1);
    let stats = consumer
        .run_until_caught_up(&*recorder, std::future::pending())
        .await
        .unwrap();
    assert_eq!((stats.handled, stats.parked, stats.replayed), (0, 1, 0));
    assert_eq!(recorder.attempts(poison), 6);
    let listed = parked(&pool, name).await;
    assert_eq!((listed[0].1.as_str(), listed[0].3), ("parked", 2));

    // 4. The cause fixed and the event unparked, a running consumer handles it on its next
    //    round, once; it is no longer parked and retention may now delete it.
    recorder.poisoned.store(false, Ordering::SeqCst);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn({
        let (consumer, recorder) = (consumer.clone(), Arc::clone(&recorder));
        async move {
            consumer
                .run(&*recorder, async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    assert_eq!(sql::unpark(&pool, name, Some(poison)).await.unwrap(), 1);
    wait_handled(&recorder, |ids| ids.contains(&poison)).await;
    stop.send(()).unwrap();
    let stats = running.await.unwrap().unwrap();
    assert_eq!((stats.handled, stats.parked, stats.replayed), (0, 0, 1));
    let ids = recorder.ids();
    assert_no_duplicates(&ids);
    assert_eq!(ids.len(), all.len());
    assert_eq!(recorder.attempts(poison), 7);
    assert!(parked(&pool, name).await.is_empty());
    assert_eq!(prune(&pool, &retention).await.unwrap(), 1);
    assert!(outbox_ids(&pool).await.is_empty());
}

/// The crate's normal dependencies (what an application that uses it compiles) include no HTTP
/// client or server, scheduler, configuration framework or TLS stack.
#[test]
fn the_consumer_crate_depends_on_no_heavy_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "rotessa-outbox",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crates: HashSet<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains("rotessa-outbox") && crates.contains("sqlx"),
        "{stdout}"
    );
    let forbidden = [
        "axum",
        "reqwest",
        "tokio-cron-scheduler",
        "config",
        "hyper",
        "rustls",
        "native-tls",
        "openssl",
        "aws-lc-rs",
        "ring",
    ];
    let found: Vec<&str> = forbidden
        .into_iter()
        .filter(|c| crates.contains(c))
        .collect();
    assert!(
        found.is_empty(),
        "rotessa-outbox pulls in {found:?}:\n{stdout}"
    );
}
