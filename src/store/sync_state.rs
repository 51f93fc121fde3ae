//! `rotessa.sync_state`: per stream and client, where the next run starts. Advanced only in
//! the transaction that marks a whole window's run succeeded.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

use super::{Error, ResultExt};

/// The cursor of a stream for a client (`0` = account-wide), if it ever succeeded.
pub async fn cursor(
    pool: &PgPool,
    stream: &str,
    client_id: i64,
) -> Result<Option<NaiveDate>, Error> {
    const SQL: &str = r#"
        select cursor_date from rotessa.sync_state where stream = $1 and client_id = $2
    "#;
    let row: Option<Option<NaiveDate>> = sqlx::query_scalar(SQL)
        .bind(stream)
        .bind(client_id)
        .fetch_optional(pool)
        .await
        .op("reading the stream cursor")?;
    Ok(row.flatten())
}

/// Moves the cursor forward to `cursor` (never back: a backfill of an old range leaves it) and
/// records the success of the run that read up to it, started at `started_at`.
pub async fn advance(
    conn: &mut PgConnection,
    stream: &str,
    client_id: i64,
    cursor: NaiveDate,
    run_id: i64,
    started_at: DateTime<Utc>,
) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.sync_state as s
            (stream, client_id, cursor_date, last_success_at, last_run_id, last_success_started_at)
        values ($1, $2, $3, now(), $4, $5)
        on conflict (stream, client_id) do update set
            cursor_date = greatest(s.cursor_date, excluded.cursor_date),
            last_success_at = excluded.last_success_at,
            last_run_id = excluded.last_run_id,
            last_success_started_at = greatest(s.last_success_started_at,
                                               excluded.last_success_started_at)
    "#;
    sqlx::query(SQL)
        .bind(stream)
        .bind(client_id)
        .bind(cursor)
        .bind(run_id)
        .bind(started_at)
        .execute(conn)
        .await
        .op("advancing the stream cursor")?;
    Ok(())
}

/// Every stream's last success, for the daemon's gauges.
pub async fn last_successes(pool: &PgPool) -> Result<Vec<(String, i64, DateTime<Utc>)>, Error> {
    const SQL: &str = r#"
        select stream, client_id, last_success_at from rotessa.sync_state
        where last_success_at is not null
    "#;
    sqlx::query_as(SQL)
        .fetch_all(pool)
        .await
        .op("reading last successes")
}
