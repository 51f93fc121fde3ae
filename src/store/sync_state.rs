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

/// A successful run, as the stream's state records it.
#[derive(Debug, Clone, Copy)]
pub struct Success {
    pub run_id: i64,
    pub started_at: DateTime<Utc>,
    /// It read the stream's whole default window: it becomes the stream's last success. A
    /// narrower backfill moves the cursor only.
    pub whole_window: bool,
}

/// Moves the cursor forward to `cursor` (never back: a backfill of an old range leaves it) and,
/// for a run of the whole window, records its success.
pub async fn advance(
    conn: &mut PgConnection,
    stream: &str,
    client_id: i64,
    cursor: NaiveDate,
    run: Success,
) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.sync_state as s
            (stream, client_id, cursor_date, last_success_at, last_run_id, last_success_started_at)
        values ($1, $2, $3, case when $6 then now() end, case when $6 then $4 end,
                case when $6 then $5::timestamptz end)
        on conflict (stream, client_id) do update set
            cursor_date = greatest(s.cursor_date, excluded.cursor_date),
            last_success_at = coalesce(excluded.last_success_at, s.last_success_at),
            last_run_id = coalesce(excluded.last_run_id, s.last_run_id),
            last_success_started_at = greatest(s.last_success_started_at,
                                               excluded.last_success_started_at)
    "#;
    sqlx::query(SQL)
        .bind(stream)
        .bind(client_id)
        .bind(cursor)
        .bind(run.run_id)
        .bind(run.started_at)
        .bind(run.whole_window)
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
