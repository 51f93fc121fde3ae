//! Least privilege with real roles (created per test, dropped after): the writer runs a full
//! `sync --no-migrate` and can create, alter or drop nothing; a reader runs every README
//! accounting query and can write nothing, nor read payloads or contact details; a consumer
//! role reaches its own consumers only, and another role's offset stays put whatever it tries.

mod common;

use common::outbox::commit_events;
use common::readme::accounting_queries;
use common::roles::{DENIED, Roles, connect_as, grant, sqlstate, url_as};
use common::simulated::{sim_syncer, sync_all};
use common::*;
use rotessa_recon::sim::{SimConfig, SimServer};
use sqlx::PgPool;

async fn simulator() -> SimServer {
    SimServer::start(
        SimConfig {
            seed: 5,
            clients: 2,
            customers: 40,
            transactions: 500,
            today: "2026-11-24".parse().unwrap(),
            history_days: 30,
            future_days: 15,
            api_key: API_KEY.to_owned(),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Every access list of the schema: tables, columns, functions, the schema, default privileges.
async fn acls(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select 'rel ' || c.relname::text || ' ' || coalesce(c.relacl::text, '') from pg_class c
         where c.relnamespace = 'rotessa'::regnamespace
         union all
         select 'col ' || a.attrelid::regclass::text || '.' || a.attname::text || ' ' || a.attacl::text
         from pg_attribute a join pg_class c on c.oid = a.attrelid
         where c.relnamespace = 'rotessa'::regnamespace and a.attacl is not null
         union all
         select 'fn ' || p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '') from pg_proc p
         where p.pronamespace = 'rotessa'::regnamespace
         union all
         select 'schema ' || coalesce(nspacl::text, '') from pg_namespace where nspname = 'rotessa'
         union all
         select 'default ' || d.defaclobjtype::text || ' ' || d.defaclacl::text from pg_default_acl d
         order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn the_writer_runs_a_full_sync_and_can_create_alter_or_drop_nothing(pool: PgPool) {
    let roles = Roles::create(&pool, &["writer"]).await;
    let writer = roles.name("writer").to_owned();
    let printed = grant(&pool, &["--writer", &writer, "--print"]);
    assert!(
        printed.contains("grant select, insert, update, delete on rotessa.\"transactions\""),
        "{printed}"
    );
    let as_writer = connect_as(&pool, &writer).await;
    assert_eq!(
        sqlstate(&as_writer, "select count(*) from rotessa.transactions").await,
        Some(DENIED.into()),
        "--print changed nothing"
    );
    grant(&pool, &["--writer", &writer]);
    let rights = acls(&pool).await;
    grant(&pool, &["--writer", &writer]);
    assert_eq!(acls(&pool).await, rights, "a second grant changes no right");
    // Naming the schema owner (a superuser here) would strip its own rights: refused.
    let refused = run_binary(
        &["grant", "--writer", "postgres"],
        &[("DATABASE_URL", &database_url(&pool))],
    );
    assert!(
        !refused.status.success() && output_text(&refused).contains("superuser"),
        "{}",
        output_text(&refused)
    );

    let sim = simulator().await;
    let out = run_binary_async(
        &["sync", "--no-migrate"],
        &[
            ("DATABASE_URL", &url_as(&pool, &writer)),
            ("ROTESSA_API_KEY", API_KEY),
            ("RECON_ROTESSA__BASE_URL", &sim.base_url()),
            ("RECON_SYNC__TODAY", "2026-11-24"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    for table in [
        "rotessa.transactions",
        "rotessa.settlements",
        "rotessa.customers",
        "rotessa.payouts",
        "rotessa.outbox",
        "rotessa.reconciliation_state",
    ] {
        assert!(count(&pool, table).await > 0, "{table} is empty");
    }
    // The relay and `outbox tail --consumer` run as the writer: it registers and acks its own.
    assert_eq!(
        sqlstate(&as_writer, "select rotessa.outbox_register('relay')").await,
        None
    );

    for ddl in [
        "create table rotessa.extra_table (id int)",
        "create table public.extra_table (id int)",
        "create schema extra_schema",
        "create index on rotessa.transactions (amount)",
        "alter table rotessa.transactions add column extra_column int",
        "alter table rotessa.outbox disable trigger all",
        "drop table rotessa.outbox",
        "drop view rotessa.settlement_reconciliation",
        "truncate rotessa.transactions",
        "create function rotessa.extra_function() returns int language sql as 'select 1'",
        "create or replace function rotessa.outbox_read(after_txid xid8, after_seq bigint, max integer default 100) returns setof rotessa.outbox language sql as 'select * from rotessa.outbox'",
        "drop function rotessa.outbox_ack(text, xid8, bigint)",
        "update rotessa.outbox_consumers set last_seq = 0",
        "delete from rotessa.outbox_parked",
    ] {
        assert_eq!(
            sqlstate(&as_writer, ddl).await,
            Some(DENIED.into()),
            "{ddl}"
        );
    }
    let migrate = run_binary(&["migrate"], &[("DATABASE_URL", &url_as(&pool, &writer))]);
    assert!(!migrate.status.success(), "the writer cannot migrate");
    as_writer.close().await;
    roles.drop_all().await;
}

#[sqlx::test]
async fn a_reader_runs_every_accounting_query_and_writes_nothing(pool: PgPool) {
    let sim = simulator().await;
    sync_all(&sim_syncer(&pool, &sim, &[])).await;
    let roles = Roles::create(&pool, &["reader"]).await;
    let reader = roles.name("reader").to_owned();
    grant(&pool, &["--reader", &reader]);
    let as_reader = connect_as(&pool, &reader).await;

    let queries = accounting_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for sql in &queries {
        assert_eq!(sqlstate(&as_reader, sql).await, None, "{sql}");
    }
    for sql in [
        "insert into rotessa.settlements (client_id, settlement_date, number_approved, number_declined, number_chargeback, number_payout, total_approved, total_declined, total_chargeback, total_payout) values (1, '2026-01-01', 0, 0, 0, 0, 0, 0, 0, 0)",
        "update rotessa.transactions set amount = 0",
        "delete from rotessa.customers",
        "delete from rotessa.outbox",
        "select rotessa.outbox_register('reader')",
        "select * from rotessa.outbox",
        "select * from rotessa.outbox_consumers",
        "select raw from rotessa.clients",
        "select phone, address from rotessa.customers",
        "select account_number from rotessa.customers",
        "select extra from rotessa.transactions",
        "select * from rotessa.leases",
        "create table rotessa.extra_table (id int)",
    ] {
        assert_eq!(
            sqlstate(&as_reader, sql).await,
            Some(DENIED.into()),
            "{sql}"
        );
    }
    as_reader.close().await;
    roles.drop_all().await;
}

/// Consumer B's position, read as the owner.
async fn position(pool: &PgPool, name: &str) -> Option<String> {
    sqlx::query_scalar(
        "select last_txid::text || ':' || last_seq from rotessa.outbox_consumers where name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_consumer_role_reaches_its_own_consumers_only(pool: PgPool) {
    commit_events(&pool, 1..=5).await;
    let roles = Roles::create(&pool, &["billing", "ledger"]).await;
    let (a, b) = (
        roles.name("billing").to_owned(),
        roles.name("ledger").to_owned(),
    );
    grant(&pool, &["--consumer", &a, "--consumer", &b]);
    let (as_a, as_b) = (connect_as(&pool, &a).await, connect_as(&pool, &b).await);

    // B registers, reads and acks the first two events.
    let registered: bool = sqlx::query_scalar("select rotessa.outbox_register('ledger-feed')")
        .fetch_one(&as_b)
        .await
        .unwrap();
    assert!(registered);
    let (txid, seq): (String, i64) = sqlx::query_as(
        "select txid::text, seq from rotessa.outbox_poll('ledger-feed', 2) order by txid, seq desc limit 1",
    )
    .fetch_one(&as_b)
    .await
    .unwrap();
    let acked: bool = sqlx::query_scalar("select rotessa.outbox_ack('ledger-feed', $1::xid8, $2)")
        .bind(&txid)
        .bind(seq)
        .fetch_one(&as_b)
        .await
        .unwrap();
    assert!(acked);
    let b_position = position(&pool, "ledger-feed").await;
    assert!(b_position.is_some());

    // A registers, polls and acks its own.
    assert_eq!(
        sqlstate(&as_a, "select rotessa.outbox_register('billing-feed')").await,
        None
    );
    let events: Vec<(String, i64)> =
        sqlx::query_as("select txid::text, seq from rotessa.outbox_poll('billing-feed', 100)")
            .fetch_all(&as_a)
            .await
            .unwrap();
    assert_eq!(events.len(), 5);
    let (last_txid, last_seq) = events.last().unwrap().clone();
    let acked: bool = sqlx::query_scalar("select rotessa.outbox_ack('billing-feed', $1::xid8, $2)")
        .bind(&last_txid)
        .bind(last_seq)
        .fetch_one(&as_a)
        .await
        .unwrap();
    assert!(acked);
    assert_eq!(
        count(&as_a, "rotessa.outbox").await,
        5,
        "the outbox stays readable"
    );

    // Everything A tries on B's consumer fails with a permission error.
    let ack_b =
        format!("select rotessa.outbox_ack('ledger-feed', '{last_txid}'::xid8, {last_seq})");
    for sql in [
        "select * from rotessa.outbox_poll('ledger-feed', 100)",
        ack_b.as_str(),
        "update rotessa.outbox_consumers set last_seq = last_seq + 1000 where name = 'ledger-feed'",
        "delete from rotessa.outbox_consumers where name = 'ledger-feed'",
        "select rotessa.outbox_unregister('ledger-feed')",
        "select rotessa.outbox_register('ledger-feed')",
        "select * from rotessa.outbox_consumers",
        "insert into rotessa.outbox_consumers (name, last_txid, last_seq) values ('x', '0', 0)",
        "select rotessa.outbox_prune('0 seconds', 1000, true)",
    ] {
        assert_eq!(sqlstate(&as_a, sql).await, Some(DENIED.into()), "{sql}");
    }
    assert_eq!(
        position(&pool, "ledger-feed").await,
        b_position,
        "B's offset stayed put"
    );
    assert_eq!(
        count(&pool, "rotessa.outbox").await,
        5,
        "nothing was pruned"
    );

    // A's own consumer goes when A unregisters it; B's stays.
    let gone: bool = sqlx::query_scalar("select rotessa.outbox_unregister('billing-feed')")
        .fetch_one(&as_a)
        .await
        .unwrap();
    assert!(gone);
    assert_eq!(position(&pool, "billing-feed").await, None);
    assert_eq!(position(&pool, "ledger-feed").await, b_position);
    // An operator (the schema owner) may retire any consumer, for instance one whose team's role
    // was dropped.
    let retired: bool = sqlx::query_scalar("select rotessa.outbox_unregister('ledger-feed')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(retired);
    as_a.close().await;
    as_b.close().await;
    roles.drop_all().await;
}
