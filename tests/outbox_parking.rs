//! Parking poison events against a real PostgreSQL (migration 20261206000001): a consumer parks
//! an event it cannot process, acks past it and goes on; the parked event is listed (store, and
//! the real binary's `outbox parked`), kept by retention however old, marked for replay
//! (`outbox unpark`), polled again and finished; unregistering drops it; and another role can
//! neither see nor touch a consumer's parked events.

mod common;

use common::outbox::*;
use common::roles::{DENIED, Roles, connect_as, grant, sqlstate};
use common::*;
use rotessa_recon::outbox::{Consumer, Retention, StartFrom, prune};
use rotessa_recon::store::outbox_parked::{self, ParkState};
use rotessa_recon::store::{self, outbox_consumers};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

async fn registered(pool: &PgPool, name: &str) -> Consumer {
    assert!(
        Consumer::register(pool, name, StartFrom::Beginning)
            .await
            .unwrap()
    );
    Consumer::new(pool.clone(), name)
}

fn ids(events: &[rotessa_recon::outbox::Event]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

fn zero_days() -> Retention {
    Retention {
        days: 0,
        batch_size: 2,
        without_consumers: false,
    }
}

#[sqlx::test]
async fn a_parked_event_is_acked_past_listed_and_later_events_flow(pool: PgPool) {
    let written = commit_events(&pool, 1..=5).await;
    let billing = registered(&pool, "billing").await;

    // The consumer processes events 1-2, fails on 3 and parks it, acking past it.
    let events = poll_until(&billing, 5).await;
    assert_eq!(ids(&events), written);
    outbox_parked::park(&pool, "billing", events[2].id, "no such customer: 77")
        .await
        .unwrap();
    assert!(billing.ack(events[2].position()).await.unwrap());

    // Later events flow: the poison event is not delivered again.
    assert_eq!(
        ids(&billing.poll(100).await.unwrap()),
        written[3..].to_vec()
    );
    let later = commit_events(&pool, 6..=7).await;
    let events = poll_until(&billing, 4).await;
    assert_eq!(ids(&events), [&written[3..], &later[..]].concat());
    assert!(billing.ack(events[3].position()).await.unwrap());
    assert!(billing.poll(100).await.unwrap().is_empty());

    // Listed, with the event's own facts.
    let parked = outbox_parked::list(&pool, "billing").await.unwrap();
    assert_eq!(parked.len(), 1);
    let p = &parked[0];
    assert_eq!(p.event_id, written[2]);
    assert_eq!(p.state, ParkState::Parked);
    assert_eq!(p.error, "no such customer: 77");
    assert_eq!(p.times_parked, 1);
    assert_eq!(p.event_type.as_deref(), Some("transaction.status_changed"));
    assert_eq!(p.aggregateid.as_deref(), Some("3"));
    assert!(p.occurred_at.is_some());
    assert_eq!(p.first_parked_at, p.parked_at);

    // Parking it again (a replay that failed too) counts it and keeps the latest error.
    outbox_parked::park(&pool, "billing", written[2], "customer 77 still missing")
        .await
        .unwrap();
    let p = &outbox_parked::list(&pool, "billing").await.unwrap()[0];
    assert_eq!(
        (p.times_parked, p.error.as_str()),
        (2, "customer 77 still missing")
    );
    assert!(p.parked_at >= p.first_parked_at);

    // Another consumer's list is its own.
    registered(&pool, "erp").await;
    assert!(outbox_parked::list(&pool, "erp").await.unwrap().is_empty());

    // Through the real binary: the table and the JSON.
    let db = database_url(&pool);
    let env = [("DATABASE_URL", db.as_str())];
    let out = run_binary(&["outbox", "parked", "--consumer", "billing"], &env);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with(&written[2].to_string()))
        .unwrap_or_else(|| panic!("no line for the parked event: {text}"));
    assert!(line.contains("parked") && line.contains("transaction.status_changed"));
    assert!(line.ends_with("customer 77 still missing"), "{line}");
    assert!(text.contains("1 parked, 0 awaiting replay"), "{text}");

    let out = run_binary(
        &[
            "outbox",
            "parked",
            "--consumer",
            "billing",
            "--output",
            "json",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{json:#}");
    assert_eq!(rows[0]["event_id"], written[2].to_string());
    assert_eq!(rows[0]["state"], "parked");
    assert_eq!(rows[0]["times_parked"], 2);
    assert_eq!(rows[0]["type"], "transaction.status_changed");
    assert_eq!(rows[0]["aggregateid"], "3");
    assert!(rows[0]["parked_at"].as_str().unwrap().ends_with('Z'));

    let out = run_binary(&["outbox", "parked", "--consumer", "erp"], &env);
    assert!(
        output_text(&out).contains("has no parked events"),
        "{}",
        output_text(&out)
    );
    // An unregistered consumer is a usage error that says how to register it.
    let out = run_binary(&["outbox", "parked", "--consumer", "nobody"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(output_text(&out).contains("outbox register nobody"));
}

#[sqlx::test]
async fn parking_needs_a_registered_consumer_and_an_existing_event(pool: PgPool) {
    let written = commit_events(&pool, 1..=1).await;
    let missing = Uuid::now_v7();
    match outbox_parked::park(&pool, "nobody", written[0], "x").await {
        Err(store::Error::UnknownConsumer(name)) => assert_eq!(name, "nobody"),
        other => panic!("expected UnknownConsumer, got {other:?}"),
    }
    registered(&pool, "billing").await;
    match outbox_parked::park(&pool, "billing", missing, "x").await {
        Err(store::Error::Invalid(message)) => {
            assert!(message.contains(&missing.to_string()), "{message}");
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    for unknown in [
        outbox_parked::unpark(&pool, "nobody", None).await.err(),
        outbox_parked::replay_poll(&pool, "nobody", 10).await.err(),
        outbox_parked::replay_done(&pool, "nobody", written[0])
            .await
            .err(),
        outbox_parked::list(&pool, "nobody").await.err(),
    ] {
        assert!(
            matches!(unknown, Some(store::Error::UnknownConsumer(_))),
            "{unknown:?}"
        );
    }
    assert!(
        outbox_parked::list(&pool, "billing")
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test]
async fn retention_deletes_acked_events_but_never_a_parked_one(pool: PgPool) {
    let written = commit_events(&pool, 1..=8).await;
    age_events(&pool, 400).await;
    let billing = registered(&pool, "billing").await;
    let erp = registered(&pool, "erp").await;
    let events = poll_until(&billing, 8).await;
    // billing parks event 2 (and later marks it for replay); erp parks event 5; both ack all.
    outbox_parked::park(&pool, "billing", written[1], "bad payload")
        .await
        .unwrap();
    outbox_parked::park(&pool, "erp", written[4], "downstream said 422")
        .await
        .unwrap();
    billing.ack(events[7].position()).await.unwrap();
    erp.ack(events[7].position()).await.unwrap();
    assert_eq!(
        outbox_parked::unpark(&pool, "billing", None).await.unwrap(),
        1
    );

    // Zero days, batches of two: everything acked goes except the two parked events, in
    // either state, and parked events do not stall the batches behind them.
    assert_eq!(prune(&pool, &zero_days()).await.unwrap(), 6);
    assert_eq!(outbox_ids(&pool).await, vec![written[1], written[4]]);
    assert_eq!(prune(&pool, &zero_days()).await.unwrap(), 0);

    // Replayed and done: that event is no longer held.
    let replay = outbox_parked::replay_poll(&pool, "billing", 10)
        .await
        .unwrap();
    assert_eq!(ids(&replay), vec![written[1]]);
    assert!(
        outbox_parked::replay_done(&pool, "billing", written[1])
            .await
            .unwrap()
    );
    assert_eq!(prune(&pool, &zero_days()).await.unwrap(), 1);
    assert_eq!(outbox_ids(&pool).await, vec![written[4]]);

    // Unregistering erp deletes its parked events (cascade), and then its event may go too,
    // once the remaining consumer acked it.
    assert!(outbox_consumers::unregister(&pool, "erp").await.unwrap());
    assert_eq!(count(&pool, "rotessa.outbox_parked").await, 0);
    assert_eq!(prune(&pool, &zero_days()).await.unwrap(), 1);
    assert!(outbox_ids(&pool).await.is_empty());

    // The binary's prune keeps parked events as well.
    let more = commit_events(&pool, 9..=10).await;
    let events = poll_until(&billing, 2).await;
    outbox_parked::park(&pool, "billing", more[0], "x")
        .await
        .unwrap();
    billing.ack(events[1].position()).await.unwrap();
    let db = database_url(&pool);
    let out = run_binary(
        &["outbox", "prune", "--retention-days", "0"],
        &[("DATABASE_URL", db.as_str())],
    );
    assert!(
        output_text(&out).contains("deleted 1 events"),
        "{}",
        output_text(&out)
    );
    assert_eq!(outbox_ids(&pool).await, vec![more[0]]);
}

#[sqlx::test]
async fn unpark_replays_the_event_until_done(pool: PgPool) {
    let written = commit_events(&pool, 1..=4).await;
    let billing = registered(&pool, "billing").await;
    let events = poll_until(&billing, 4).await;
    for (i, error) in [(2, "timeout"), (0, "bad payload"), (3, "bad payload")] {
        outbox_parked::park(&pool, "billing", written[i], error)
            .await
            .unwrap();
    }
    billing.ack(events[3].position()).await.unwrap();

    // Nothing to replay until an operator says so.
    assert!(
        outbox_parked::replay_poll(&pool, "billing", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !outbox_parked::replay_done(&pool, "billing", written[2])
            .await
            .unwrap(),
        "not marked for replay"
    );

    // One event, then the rest; marking again counts nothing.
    assert_eq!(
        outbox_parked::unpark(&pool, "billing", Some(written[2]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        outbox_parked::unpark(&pool, "billing", Some(written[2]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        outbox_parked::unpark(&pool, "billing", Some(Uuid::now_v7()))
            .await
            .unwrap(),
        0
    );
    let replay = outbox_parked::replay_poll(&pool, "billing", 10)
        .await
        .unwrap();
    assert_eq!(ids(&replay), vec![written[2]]);
    assert_eq!(replay[0], events[2], "the event as outbox_poll returned it");
    assert_eq!(
        outbox_parked::unpark(&pool, "billing", None).await.unwrap(),
        2
    );
    // Oldest first (delivery order), not in the order they were parked or unparked; max holds.
    let replay = outbox_parked::replay_poll(&pool, "billing", 10)
        .await
        .unwrap();
    assert_eq!(ids(&replay), vec![written[0], written[2], written[3]]);
    let first_two = outbox_parked::replay_poll(&pool, "billing", 2)
        .await
        .unwrap();
    assert_eq!(ids(&first_two), vec![written[0], written[2]]);

    // Reading changes nothing; done removes the row; a replay that fails parks it again.
    assert_eq!(
        outbox_parked::replay_poll(&pool, "billing", 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        outbox_parked::replay_done(&pool, "billing", written[0])
            .await
            .unwrap()
    );
    assert!(
        !outbox_parked::replay_done(&pool, "billing", written[0])
            .await
            .unwrap()
    );
    outbox_parked::park(&pool, "billing", written[3], "still bad")
        .await
        .unwrap();
    assert_eq!(
        ids(&outbox_parked::replay_poll(&pool, "billing", 10)
            .await
            .unwrap()),
        vec![written[2]]
    );
    let listed = outbox_parked::list(&pool, "billing").await.unwrap();
    let states: Vec<(Uuid, ParkState, i32)> = listed
        .iter()
        .map(|p| (p.event_id, p.state, p.times_parked))
        .collect();
    assert_eq!(
        states,
        vec![
            (written[2], ParkState::Replay, 1),
            (written[3], ParkState::Parked, 2)
        ]
    );
    // The consumer's position never moved back.
    assert!(billing.poll(100).await.unwrap().is_empty());
}

#[sqlx::test]
async fn unpark_and_stats_through_the_binary(pool: PgPool) {
    let written = commit_events(&pool, 1..=3).await;
    let billing = registered(&pool, "billing").await;
    registered(&pool, "erp").await;
    let events = poll_until(&billing, 3).await;
    for id in &written {
        outbox_parked::park(&pool, "billing", *id, "bad")
            .await
            .unwrap();
    }
    billing.ack(events[2].position()).await.unwrap();
    let db = database_url(&pool);
    let env = [("DATABASE_URL", db.as_str())];

    // One event by id, then the rest with --all.
    let id = written[1].to_string();
    let out = run_binary(&["outbox", "unpark", "--consumer", "billing", &id], &env);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(output_text(&out).contains(&format!("marked event {id}")));
    // Already marked: a usage error that points at the list.
    let out = run_binary(&["outbox", "unpark", "--consumer", "billing", &id], &env);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(output_text(&out).contains("outbox parked --consumer billing"));

    let stats = |args: &[&str]| {
        let mut all = vec!["outbox", "stats"];
        all.extend_from_slice(args);
        let out = run_binary(&all, &env);
        assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = stats(&[]);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // consumer, backlog, oldest un-acked, parked, replay, ...
    assert_eq!(line("billing")[1..5], ["0", "-", "2", "1"], "{text}");
    assert!(text.contains("outbox parked --consumer NAME"), "{text}");
    let consumer = |json: &Value, name: &str| -> Value {
        json["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {json:#}"))
            .clone()
    };
    let json: Value = serde_json::from_str(&stats(&["--output", "json"])).unwrap();
    assert_eq!(consumer(&json, "billing")["parked"], 2, "{json:#}");
    assert_eq!(consumer(&json, "billing")["awaiting_replay"], 1, "{json:#}");
    assert_eq!(consumer(&json, "erp")["parked"], 0, "{json:#}");
    assert_eq!(consumer(&json, "erp")["awaiting_replay"], 0, "{json:#}");

    let out = run_binary(
        &["outbox", "unpark", "--consumer", "billing", "--all"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("marked 2 parked events"),
        "{}",
        output_text(&out)
    );
    let json: Value = serde_json::from_str(&stats(&["--output", "json"])).unwrap();
    assert_eq!(consumer(&json, "billing")["parked"], 0, "{json:#}");
    assert_eq!(consumer(&json, "billing")["awaiting_replay"], 3, "{json:#}");

    // EVENT_ID or --all, not both, not neither; an id must be a UUID.
    for args in [
        vec!["outbox", "unpark", "--consumer", "billing"],
        vec!["outbox", "unpark", "--consumer", "billing", "--all", &id],
        vec!["outbox", "unpark", "--consumer", "billing", "not-a-uuid"],
    ] {
        let out = run_binary(&args, &env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            output_text(&out)
        );
    }
}

#[sqlx::test]
async fn another_role_cannot_park_unpark_list_or_replay_a_consumers_events(pool: PgPool) {
    let written = commit_events(&pool, 1..=3).await;
    let roles = Roles::create(&pool, &["billing", "ledger"]).await;
    let (a, b) = (
        roles.name("billing").to_owned(),
        roles.name("ledger").to_owned(),
    );
    grant(&pool, &["--consumer", &a, "--consumer", &b]);
    let (as_a, as_b) = (connect_as(&pool, &a).await, connect_as(&pool, &b).await);

    // B's consumer parks event 1 and marks it for replay; event 2 stays parked.
    assert!(
        outbox_consumers::register(&as_b, "ledger-feed", StartFrom::Beginning)
            .await
            .unwrap()
    );
    for id in &written[..2] {
        outbox_parked::park(&as_b, "ledger-feed", *id, "bad")
            .await
            .unwrap();
    }
    assert_eq!(
        outbox_parked::unpark(&as_b, "ledger-feed", Some(written[0]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        outbox_parked::list(&as_b, "ledger-feed")
            .await
            .unwrap()
            .len(),
        2
    );
    let before = outbox_parked::list(&pool, "ledger-feed").await.unwrap();

    // A's own consumer works as usual.
    assert!(
        outbox_consumers::register(&as_a, "billing-feed", StartFrom::Beginning)
            .await
            .unwrap()
    );
    outbox_parked::park(&as_a, "billing-feed", written[2], "mine")
        .await
        .unwrap();
    assert_eq!(
        outbox_parked::list(&as_a, "billing-feed")
            .await
            .unwrap()
            .len(),
        1
    );

    // Everything A tries on B's consumer, or on the table, is refused.
    let (e0, e1) = (written[0], written[1]);
    for sql in [
        format!(
            "select rotessa.outbox_park('ledger-feed', '{}', 'x')",
            written[2]
        ),
        format!("select rotessa.outbox_park('ledger-feed', '{e1}', 'overwritten')"),
        format!("select rotessa.outbox_unpark('ledger-feed', '{e1}')"),
        "select rotessa.outbox_unpark('ledger-feed')".to_owned(),
        "select * from rotessa.outbox_replay_poll('ledger-feed', 10)".to_owned(),
        format!("select rotessa.outbox_replay_done('ledger-feed', '{e0}')"),
        "select * from rotessa.outbox_parked_list('ledger-feed')".to_owned(),
        "select * from rotessa.outbox_parked".to_owned(),
        "delete from rotessa.outbox_parked".to_owned(),
        format!("update rotessa.outbox_parked set state = 'replay' where event_id = '{e1}'"),
        format!(
            "insert into rotessa.outbox_parked (consumer, event_id, error) values ('ledger-feed', '{}', 'x')",
            written[2]
        ),
    ] {
        assert_eq!(sqlstate(&as_a, &sql).await, Some(DENIED.into()), "{sql}");
    }
    // The Rust API reports the same refusal.
    match outbox_parked::list(&as_a, "ledger-feed").await {
        Err(store::Error::Query {
            source: sqlx::Error::Database(db),
            ..
        }) => assert_eq!(db.code().as_deref(), Some(DENIED)),
        other => panic!("expected a permission error, got {other:?}"),
    }
    assert_eq!(
        outbox_parked::list(&pool, "ledger-feed").await.unwrap(),
        before,
        "B's parked events stayed as they were"
    );
    // The lag view shows A its own consumer and its counts only.
    let seen: Vec<(String, i64)> =
        sqlx::query_as("select name, parked from rotessa.outbox_consumer_lag")
            .fetch_all(&as_a)
            .await
            .unwrap();
    assert_eq!(seen, vec![("billing-feed".to_owned(), 1)]);

    // B replays and finishes its own.
    let replay = outbox_parked::replay_poll(&as_b, "ledger-feed", 10)
        .await
        .unwrap();
    assert_eq!(ids(&replay), vec![e0]);
    assert!(
        outbox_parked::replay_done(&as_b, "ledger-feed", e0)
            .await
            .unwrap()
    );
    // The operator (schema owner) may act on any consumer, e.g. to replay for a team.
    assert_eq!(
        outbox_parked::unpark(&pool, "ledger-feed", None)
            .await
            .unwrap(),
        1
    );

    as_a.close().await;
    as_b.close().await;
    roles.drop_all().await;
}
