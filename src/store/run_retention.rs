//! Bounded history: the daemon runs for months and `rotessa.sync_runs` gains a row per stream,
//! client and run, so finished runs older than `sync.runs_retention_days` are deleted in small
//! batches, always keeping each stream and client's latest run and latest failure (what
//! `status` shows). Page digests of windows no longer read go with them.

use sqlx::PgPool;

use super::{Error, ResultExt};

/// Runs deleted per statement: each delete is a short transaction of its own.
pub const BATCH: i64 = 1000;

/// Deletes finished runs older than `days` days, batch by batch, keeping each stream and
/// client's latest run and latest failed or abandoned one; returns how many were deleted.
pub async fn prune_runs(pool: &PgPool, days: u32) -> Result<u64, Error> {
    const SQL: &str = r#"
        with doomed as (
            select r.id from rotessa.sync_runs r
            where r.status <> 'running'
              and r.finished_at < now() - make_interval(days => $1)
              and exists (select from rotessa.sync_runs later
                          where later.stream = r.stream and later.client_id = r.client_id
                            and later.id > r.id)
              and (r.status not in ('failed', 'abandoned')
                   or exists (select from rotessa.sync_runs later
                              where later.stream = r.stream and later.client_id = r.client_id
                                and later.id > r.id
                                and later.status in ('failed', 'abandoned')))
            order by r.finished_at
            limit $2
        )
        delete from rotessa.sync_runs r using doomed where r.id = doomed.id
    "#;
    let mut total = 0;
    loop {
        let deleted = sqlx::query(SQL)
            .bind(i32::try_from(days).unwrap_or(i32::MAX))
            .bind(BATCH)
            .execute(pool)
            .await
            .op("pruning old runs")?
            .rows_affected();
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Deletes the digests of pages not applied for `days` days: the windows move every day, so
/// these belong to windows (or clients) no longer read.
pub async fn prune_page_digests(pool: &PgPool, days: u32) -> Result<u64, Error> {
    const SQL: &str = r#"
        delete from rotessa.page_digests where applied_at < now() - make_interval(days => $1)
    "#;
    let done = sqlx::query(SQL)
        .bind(i32::try_from(days).unwrap_or(i32::MAX))
        .execute(pool)
        .await
        .op("pruning old page digests")?;
    Ok(done.rows_affected())
}
