//! `rotessa.leases`: the daemon's single-writer lease. A row per lease name with a holder, a
//! fencing token that grows at every takeover, and an expiry renewed by the holder's heartbeat.
//! Works behind PgBouncer (unlike session advisory locks).

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use super::{Error, ResultExt};

/// The lease the scheduling daemon holds.
pub const SCHEDULER: &str = "scheduler";

/// Proof of holding a lease, checked inside every page transaction (fencing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub name: &'static str,
    pub holder: String,
    pub token: i64,
    /// The lease's time to live; also how long a page may sit idle holding the check's lock.
    pub ttl: Duration,
}

/// Takes the lease if it is free, expired, or already ours; returns the fencing token.
/// Gives up quickly (`lock_timeout`) if the current holder is committing a page.
pub async fn try_acquire(
    pool: &PgPool,
    name: &'static str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Fence>, Error> {
    const SQL: &str = r#"
        insert into rotessa.leases as l (name, holder, token, expires_at)
        values ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))
        on conflict (name) do update set
            holder = excluded.holder,
            token = l.token + 1,
            acquired_at = now(),
            renewed_at = now(),
            expires_at = excluded.expires_at
        where l.expires_at < clock_timestamp() or l.holder = excluded.holder
        returning token
    "#;
    let mut tx = pool.begin().await.op("starting a lease transaction")?;
    sqlx::query("set local lock_timeout = '2s'")
        .execute(&mut *tx)
        .await
        .op("setting the lease lock timeout")?;
    let token: Option<i64> = match sqlx::query_scalar(SQL)
        .bind(name)
        .bind(holder)
        .bind(ttl.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await
    {
        Ok(token) => token,
        // 55P03 lock_not_available: the holder is inside a page; try again later.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => return Ok(None),
        Err(source) => {
            return Err(Error::Query {
                op: "taking the lease",
                source,
            });
        }
    };
    tx.commit().await.op("committing the lease")?;
    Ok(token.map(|token| Fence {
        name,
        holder: holder.to_owned(),
        token,
        ttl,
    }))
}

/// Extends the lease; `false` when it is no longer ours (someone took it over).
pub async fn renew(pool: &PgPool, fence: &Fence) -> Result<bool, Error> {
    const SQL: &str = r#"
        update rotessa.leases
        set renewed_at = now(), expires_at = clock_timestamp() + make_interval(secs => $4)
        where name = $1 and holder = $2 and token = $3
    "#;
    let done = sqlx::query(SQL)
        .bind(fence.name)
        .bind(&fence.holder)
        .bind(fence.token)
        .bind(fence.ttl.as_secs_f64())
        .execute(pool)
        .await
        .op("renewing the lease")?;
    Ok(done.rows_affected() == 1)
}

/// Gives the lease up, so a standby takes over at once instead of after the TTL.
pub async fn release(pool: &PgPool, fence: &Fence) -> Result<(), Error> {
    const SQL: &str = r#"
        update rotessa.leases set expires_at = clock_timestamp() - interval '1 second'
        where name = $1 and holder = $2 and token = $3
    "#;
    sqlx::query(SQL)
        .bind(fence.name)
        .bind(&fence.holder)
        .bind(fence.token)
        .execute(pool)
        .await
        .op("releasing the lease")?;
    Ok(())
}

/// Inside a page transaction, just before commit: the lease must still be ours and unexpired.
/// `FOR SHARE` keeps a takeover waiting until this transaction ends, so a leader paused between
/// this check and its commit cannot overlap a new leader. So that a paused leader cannot hold a
/// standby off for ever, the same statement sets this transaction's
/// `idle_in_transaction_session_timeout` to the lease TTL: the server then ends the paused
/// session, the page rolls back, and the takeover proceeds.
pub async fn check(conn: &mut PgConnection, fence: &Fence) -> Result<(), Error> {
    const SQL: &str = r#"
        select set_config('idle_in_transaction_session_timeout', $4, true)
        from rotessa.leases
        where name = $1 and holder = $2 and token = $3 and expires_at > clock_timestamp()
        for share
    "#;
    let held: Option<String> = sqlx::query_scalar(SQL)
        .bind(fence.name)
        .bind(&fence.holder)
        .bind(fence.token)
        .bind(fence.ttl.as_millis().to_string())
        .fetch_optional(conn)
        .await
        .op("checking the lease")?;
    held.map(|_| ()).ok_or(Error::LeaseLost)
}

/// Who holds the lease now, if anyone unexpired (`status`, `/readyz`).
pub async fn holder(pool: &PgPool, name: &str) -> Result<Option<(String, i64)>, Error> {
    const SQL: &str = r#"
        select holder, token from rotessa.leases
        where name = $1 and expires_at > clock_timestamp()
    "#;
    sqlx::query_as(SQL)
        .bind(name)
        .fetch_optional(pool)
        .await
        .op("reading the lease")
}
