//! `rotessa.page_digests`: the digest of each report page body last applied, so that a re-sync
//! skips a byte-identical page without parsing it or reading a row.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

use super::{Error, ResultExt};

/// Which report window a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowKey<'a> {
    pub stream: &'a str,
    pub client_id: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The pages of a window applied before: page number -> (digest, row count).
pub async fn known(pool: &PgPool, w: WindowKey<'_>) -> Result<HashMap<u32, (i64, usize)>, Error> {
    const SQL: &str = r#"
        select page, digest, row_count from rotessa.page_digests
        where stream = $1 and client_id = $2 and window_from = $3 and window_to = $4
    "#;
    let rows: Vec<(i32, i64, i32)> = sqlx::query_as(SQL)
        .bind(w.stream)
        .bind(w.client_id)
        .bind(w.from)
        .bind(w.to)
        .fetch_all(pool)
        .await
        .op("reading page digests")?;
    Ok(rows
        .into_iter()
        .map(|(page, digest, rows)| {
            let count = usize::try_from(rows).unwrap_or(0);
            (u32::try_from(page).unwrap_or(0), (digest, count))
        })
        .collect())
}

/// Records that a page body was applied (inside the page's transaction when it wrote rows).
pub async fn record(
    conn: &mut PgConnection,
    w: WindowKey<'_>,
    page: u32,
    digest: i64,
    rows: usize,
) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.page_digests as d
            (stream, client_id, window_from, window_to, page, digest, row_count)
        values ($1, $2, $3, $4, $5, $6, $7)
        on conflict (stream, client_id, window_from, window_to, page) do update set
            digest = excluded.digest, row_count = excluded.row_count, applied_at = now()
    "#;
    sqlx::query(SQL)
        .bind(w.stream)
        .bind(w.client_id)
        .bind(w.from)
        .bind(w.to)
        .bind(i32::try_from(page).unwrap_or(i32::MAX))
        .bind(digest)
        .bind(i32::try_from(rows).unwrap_or(i32::MAX))
        .execute(conn)
        .await
        .op("recording a page digest")?;
    Ok(())
}

/// Forgets the digests of a stream's windows not in `current` (windows move with "today").
pub async fn forget_other_windows(
    pool: &PgPool,
    stream: &str,
    client_id: i64,
    current: &[(NaiveDate, NaiveDate)],
) -> Result<u64, Error> {
    const SQL: &str = r#"
        delete from rotessa.page_digests d
        where stream = $1 and client_id = $2
          and not exists (select 1 from unnest($3::date[], $4::date[]) as w(f, t)
                          where w.f = d.window_from and w.t = d.window_to)
    "#;
    let done = sqlx::query(SQL)
        .bind(stream)
        .bind(client_id)
        .bind(current.iter().map(|w| w.0).collect::<Vec<_>>())
        .bind(current.iter().map(|w| w.1).collect::<Vec<_>>())
        .execute(pool)
        .await
        .op("forgetting old page digests")?;
    Ok(done.rows_affected())
}
