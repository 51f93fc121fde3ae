//! Where sqlx's record of applied migrations lives: in `rotessa._sqlx_migrations`, whatever the
//! migrating role's `search_path`; an earlier version's record (in `public`, or in a role's own
//! schema as PostgreSQL 15 set-ups have it) is adopted, never re-applied; another application's
//! sqlx table is left alone.

mod common;

use std::time::Duration;

use common::daemon::{Daemon, simulator, wait_until};
use common::roles::{Roles, connect_as, url_as};
use common::*;
use rotessa_recon::store::{MIGRATOR, Store, migrations};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// A login role with a schema of its own, first in its `search_path` (`"$user", public`), that
/// may create schemas in the test database: PostgreSQL 15's usual per-application set-up.
async fn role_with_own_schema(admin: &PgPool) -> Roles {
    let roles = Roles::create(admin, &["app"]).await;
    let app = roles.name("app");
    let db: String = sqlx::query_scalar("select current_database()")
        .fetch_one(admin)
        .await
        .unwrap();
    for sql in [
        format!("create schema {app} authorization {app}"),
        format!("grant create on database \"{db}\" to {app}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(admin)
            .await
            .unwrap();
    }
    roles
}

/// Where `_sqlx_migrations` tables exist, schema-qualified, sorted.
async fn migration_tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select n.nspname || '.' || c.relname from pg_class c
         join pg_namespace n on n.oid = c.relnamespace
         where c.relname = '_sqlx_migrations' order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn migrate_output(url: &str) -> String {
    let out = run_binary(&["migrate"], &[("DATABASE_URL", url)]);
    let text = output_text(&out);
    assert!(out.status.success(), "migrate: {text}");
    text
}

#[sqlx::test(migrations = false)]
async fn a_role_with_its_own_schema_migrates_once_and_becomes_ready(admin: PgPool) {
    let roles = role_with_own_schema(&admin).await;
    let app = roles.name("app").to_owned();
    let url = url_as(&admin, &app);

    assert!(
        migrate_output(&url).contains(&format!("migrations: {} applied", MIGRATOR.iter().count()))
    );
    // The second run finds them applied (it used to find the record in the role's schema and
    // report every migration again).
    assert!(migrate_output(&url).contains("migrations: 0 applied"));
    assert_eq!(
        migration_tables(&admin).await,
        vec!["rotessa._sqlx_migrations".to_string()]
    );

    // The daemon, told not to migrate, becomes ready as that role (it used to wait forever).
    let sim = simulator(10, 0).await;
    let daemon = Daemon::spawn_with_args(&["--no-migrate"], &url, &sim.base_url(), &[]);
    wait_until("ready", Duration::from_secs(60), || async {
        matches!(daemon.readyz().await, Some((200, _)))
    })
    .await;
    drop(daemon);
    roles.drop_all().await;
}

#[sqlx::test(migrations = false)]
async fn an_earlier_record_in_the_roles_schema_is_adopted_not_reapplied(admin: PgPool) {
    let roles = role_with_own_schema(&admin).await;
    let app = roles.name("app").to_owned();
    let as_app = connect_as(&admin, &app).await;

    // An installation of an earlier version: sqlx's default table, found through search_path.
    let mut earlier = Migrator::new(std::path::Path::new("./migrations"))
        .await
        .unwrap();
    earlier.dangerous_set_table_name("_sqlx_migrations");
    earlier.run(&as_app).await.unwrap();
    assert_eq!(
        migration_tables(&admin).await,
        vec![format!("{app}._sqlx_migrations")]
    );
    sqlx::query("insert into rotessa.clients (id, raw) values (7, '{}')")
        .execute(&as_app)
        .await
        .unwrap();

    let store = Store::from_pool(as_app.clone());
    // Ready before adoption: the earlier record says everything is applied.
    assert_eq!(store.pending_migrations().await.unwrap(), 0);
    // Migrating adopts it (re-applying the first migration would fail on existing tables).
    store.migrate().await.unwrap();
    assert_eq!(store.pending_migrations().await.unwrap(), 0);
    assert_eq!(
        migration_tables(&admin).await,
        vec![
            "rotessa._sqlx_migrations".to_string(),
            format!("{app}._sqlx_migrations"),
        ]
    );
    let copied: i64 = sqlx::query_scalar("select count(*) from rotessa._sqlx_migrations")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(copied as usize, MIGRATOR.iter().count());
    assert_eq!(count(&admin, "rotessa.clients").await, 1);
    // And again: nothing more to do.
    store.migrate().await.unwrap();

    as_app.close().await;
    roles.drop_all().await;
}

#[sqlx::test(migrations = false)]
async fn an_earlier_record_in_public_is_adopted(admin: PgPool) {
    let mut earlier = Migrator::new(std::path::Path::new("./migrations"))
        .await
        .unwrap();
    earlier.dangerous_set_table_name("public._sqlx_migrations");
    earlier.run(&admin).await.unwrap();

    let store = Store::from_pool(admin.clone());
    assert_eq!(store.pending_migrations().await.unwrap(), 0);
    store.migrate().await.unwrap();
    assert_eq!(
        migration_tables(&admin).await,
        vec![
            "public._sqlx_migrations".to_string(),
            migrations::TABLE.into()
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn another_applications_sqlx_table_is_left_alone(admin: PgPool) {
    // Another application keeps its own sqlx record in public.
    for sql in [
        "create table public._sqlx_migrations (version bigint primary key, description text not null,
             installed_on timestamptz not null default now(), success boolean not null,
             checksum bytea not null, execution_time bigint not null)",
        "insert into public._sqlx_migrations values (1, 'theirs', now(), true, '\\x00', 1)",
    ] {
        sqlx::query(sql).execute(&admin).await.unwrap();
    }
    let store = Store::from_pool(admin.clone());
    assert_eq!(
        store.pending_migrations().await.unwrap(),
        MIGRATOR.iter().count()
    );
    store.migrate().await.unwrap();
    assert_eq!(store.pending_migrations().await.unwrap(), 0);
    let theirs: i64 = sqlx::query_scalar("select count(*) from public._sqlx_migrations")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(theirs, 1, "their record is untouched");
}

#[sqlx::test(migrations = false)]
async fn another_applications_unreadable_table_does_not_stop_the_migration(admin: PgPool) {
    let roles = role_with_own_schema(&admin).await;
    let other = Roles::create(&admin, &["other"]).await;
    let app = roles.name("app").to_owned();
    // Another application's record in public, which our role may not even read.
    for sql in [
        "create table public._sqlx_migrations (version bigint primary key, checksum bytea)"
            .to_string(),
        format!(
            "alter table public._sqlx_migrations owner to {}",
            other.name("other")
        ),
        "revoke all on public._sqlx_migrations from public".to_string(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    let as_app = connect_as(&admin, &app).await;
    let store = Store::from_pool(as_app.clone());
    assert_eq!(
        store.pending_migrations().await.unwrap(),
        MIGRATOR.iter().count()
    );
    store.migrate().await.unwrap();
    assert_eq!(store.pending_migrations().await.unwrap(), 0);
    as_app.close().await;
    sqlx::query("drop table public._sqlx_migrations")
        .execute(&admin)
        .await
        .unwrap();
    other.drop_all().await;
    roles.drop_all().await;
}

#[sqlx::test(migrations = false)]
async fn only_the_owner_may_change_the_record(admin: PgPool) {
    let roles = Roles::create(&admin, &["writer"]).await;
    let writer = roles.name("writer").to_owned();
    // An earlier installation, and `grant --writer`'s default privileges from then.
    let mut earlier = Migrator::new(std::path::Path::new("./migrations"))
        .await
        .unwrap();
    earlier.dangerous_set_table_name("public._sqlx_migrations");
    earlier.run(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter default privileges in schema rotessa grant select, insert, update, delete on tables to {writer}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    // The upgrade adopts the record into a new table, which those default privileges would open.
    Store::from_pool(admin.clone()).migrate().await.unwrap();
    let can = |privilege: &'static str| {
        let (admin, writer) = (admin.clone(), writer.clone());
        async move {
            sqlx::query_scalar::<_, bool>(
                "select has_table_privilege($1, 'rotessa._sqlx_migrations', $2)",
            )
            .bind(writer)
            .bind(privilege)
            .fetch_one(&admin)
            .await
            .unwrap()
        }
    };
    assert!(can("SELECT").await, "the writer reads it (readiness)");
    for privilege in ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
        assert!(
            !can(privilege).await,
            "the writer may {privilege} the record"
        );
    }
    roles.drop_all().await;
}
