//! Where the record of applied migrations lives, and how it gets there.
//!
//! sqlx keeps the record in `rotessa._sqlx_migrations` (pinned in `sqlx.toml`, so the product's
//! schema holds it whatever the migrating role's `search_path` says). Versions before 0.9 of this
//! product let sqlx put `_sqlx_migrations` wherever `search_path` pointed first: `public`, or
//! with PostgreSQL 15's per-application schemas, the role's own. [`migrate`] adopts such a
//! record (copies it, leaves the old table in place for older replicas still running), and
//! [`pending`] reads the old record until then, so an upgrade neither re-runs migrations nor
//! reports them pending.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, PgPool};

use super::{Error, MIGRATOR, ResultExt};

/// The table sqlx records applied migrations in (as in `sqlx.toml`).
pub const TABLE: &str = "rotessa._sqlx_migrations";

/// The advisory lock replicas take around adoption and migration, so that two starting at once
/// neither copy the record twice nor race sqlx. (The bytes of "rotessa" in ASCII.)
pub const LOCK_KEY: i64 = 0x0072_6f74_6573_7361;

/// Applies pending migrations, adopting an earlier version's record first.
pub async fn migrate(pool: &PgPool) -> Result<(), Error> {
    let mut conn = pool.acquire().await.op("connecting to migrate")?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await
        .op("waiting for the migration lock")?;
    let result = async {
        adopt(&mut conn).await?;
        MIGRATOR.run(&mut *conn).await.map_err(Error::Migrate)?;
        keep_record_read_only(&mut conn).await
    }
    .await;
    let unlocked = sqlx::query("select pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // A session lock outlives the statement: never hand the connection back holding it.
        conn.detach();
    }
    result
}

/// How many of the compiled-in migrations are not recorded as applied (in the pinned table, or
/// before adoption, in an earlier version's).
pub async fn pending(pool: &PgPool) -> Result<usize, Error> {
    let mut conn = pool.acquire().await.op("connecting to read migrations")?;
    let applied: Vec<i64> = match record(&mut conn).await? {
        Some(table) => sqlx::query_scalar(AssertSqlSafe(format!(
            "select version from {table} where success"
        )))
        .fetch_all(&mut *conn)
        .await
        .op("reading applied migrations")?,
        None => Vec::new(),
    };
    Ok(count_pending(&MIGRATOR, &applied))
}

fn count_pending(migrator: &Migrator, applied: &[i64]) -> usize {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .count()
}

/// The table holding this database's record: the pinned one, else an earlier version's.
async fn record(conn: &mut PgConnection) -> Result<Option<String>, Error> {
    let pinned: Option<String> = sqlx::query_scalar("select to_regclass($1)::text")
        .bind(TABLE)
        .fetch_one(&mut *conn)
        .await
        .op("looking for the migrations table")?;
    match pinned {
        Some(table) => Ok(Some(table)),
        None => legacy(conn).await,
    }
}

/// An earlier version's record: `_sqlx_migrations` as `search_path` finds it, else in
/// `public`, and only if it is this product's (its first migration with the same checksum; another
/// application's sqlx table in the same schema is left alone).
async fn legacy(conn: &mut PgConnection) -> Result<Option<String>, Error> {
    const CANDIDATES: &str = r#"
        select distinct t::text
        from unnest(array[to_regclass('_sqlx_migrations'), to_regclass('public._sqlx_migrations')]) as t
        where t is not null and t::text <> $1
          -- Another application's table this role may not read is not ours to adopt.
          and has_table_privilege(t, 'SELECT')
    "#;
    let Some(first) = MIGRATOR.iter().next() else {
        return Ok(None);
    };
    let candidates: Vec<String> = sqlx::query_scalar(CANDIDATES)
        .bind(TABLE)
        .fetch_all(&mut *conn)
        .await
        .op("looking for an earlier migrations table")?;
    for table in candidates {
        let ours: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "select exists (select from {table} where version = $1 and checksum = $2)"
        )))
        .bind(first.version)
        .bind(first.checksum.as_ref())
        .fetch_one(&mut *conn)
        .await
        .op("reading an earlier migrations table")?;
        if ours {
            return Ok(Some(table));
        }
    }
    Ok(None)
}

/// Only the owner changes the record: the owner's default privileges (`grant --writer`) would
/// give the writer the right to change a record created after them (at adoption, say), so any
/// right but reading is withdrawn from everyone else after each migration. Reading stays
/// (readiness and `--no-migrate` read it).
async fn keep_record_read_only(conn: &mut PgConnection) -> Result<(), Error> {
    const SQL: &str = r#"
        do $$
        declare
            grantee text;
        begin
            for grantee in
                select distinct case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end
                from pg_class c
                cross join lateral aclexplode(c.relacl) a
                left join pg_roles r on r.oid = a.grantee
                where c.oid = 'rotessa._sqlx_migrations'::regclass
                  and a.grantee <> c.relowner
                  and a.privilege_type <> 'SELECT'
            loop
                execute format(
                    'revoke insert, update, delete, truncate, references, trigger on rotessa._sqlx_migrations from %s',
                    grantee);
            end loop;
        end
        $$
    "#;
    sqlx::query(SQL)
        .execute(&mut *conn)
        .await
        .op("keeping the migrations record read-only for other roles")?;
    Ok(())
}

/// Copies an earlier version's record into the pinned table, once. The old table stays: older
/// replicas still running read it, and an operator drops it after the upgrade.
async fn adopt(conn: &mut PgConnection) -> Result<(), Error> {
    let pinned: bool = sqlx::query_scalar("select to_regclass($1) is not null")
        .bind(TABLE)
        .fetch_one(&mut *conn)
        .await
        .op("looking for the migrations table")?;
    if pinned {
        return Ok(());
    }
    let Some(old) = legacy(conn).await? else {
        return Ok(());
    };
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .op("starting the migrations table's adoption")?;
    for sql in [
        "create schema if not exists rotessa".to_string(),
        format!("create table {TABLE} (like {old} including all)"),
        format!("insert into {TABLE} select * from {old}"),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .op("adopting the earlier migrations table")?;
    }
    tx.commit()
        .await
        .op("committing the migrations table's adoption")?;
    tracing::info!(
        from = %old,
        to = TABLE,
        "adopted the record of applied migrations; drop the old table once no replica of an \
         earlier version runs"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_applied_means_every_migration_pending() {
        let all = MIGRATOR.iter().count();
        assert!(all > 0);
        assert_eq!(count_pending(&MIGRATOR, &[]), all);
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(count_pending(&MIGRATOR, &versions), 0);
    }

    #[test]
    fn the_migrator_uses_the_pinned_table() {
        assert_eq!(MIGRATOR.table_name, TABLE);
        assert!(MIGRATOR.create_schemas.iter().any(|s| s == "rotessa"));
    }
}
