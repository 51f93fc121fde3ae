//! `rotessa.rejected_records`: rows that could not be parsed, with their raw JSON and the
//! reason. The same raw row seen again only bumps `times_seen`.

use std::collections::HashSet;

use sqlx::PgConnection;

use super::{Error, ResultExt};

/// A refused row as received.
#[derive(Debug, Clone, Copy)]
pub struct Rejected<'a> {
    pub raw: &'a str,
    pub error: &'a str,
}

/// Where a page's rejected rows came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub stream: &'a str,
    pub client_id: i64,
    pub run_id: i64,
    pub page: i32,
}

/// Records a page's rejected rows.
pub async fn record(
    conn: &mut PgConnection,
    rows: &[Rejected<'_>],
    origin: Origin<'_>,
) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.rejected_records as r
            (stream, client_id, sync_run_id, page, raw, raw_hash, error)
        select $1, $2, $3, $4, n.raw, n.raw_hash, n.error
        from unnest($5::text[], $6::bigint[], $7::text[]) as n(raw, raw_hash, error)
        on conflict (stream, client_id, raw_hash) do update set
            sync_run_id = excluded.sync_run_id,
            page = excluded.page,
            error = excluded.error,
            last_seen_at = now(),
            times_seen = r.times_seen + 1
    "#;
    // One statement may not touch a row twice: identical raw rows in a page count once.
    let mut seen = HashSet::new();
    let unique: Vec<(&Rejected<'_>, i64)> = rows
        .iter()
        .map(|r| (r, xxhash_rust::xxh3::xxh3_64(r.raw.as_bytes()) as i64))
        .filter(|(_, h)| seen.insert(*h))
        .collect();
    if unique.is_empty() {
        return Ok(());
    }
    sqlx::query(SQL)
        .bind(origin.stream)
        .bind(origin.client_id)
        .bind(origin.run_id)
        .bind(origin.page)
        .bind(unique.iter().map(|(r, _)| r.raw).collect::<Vec<_>>())
        .bind(unique.iter().map(|(_, h)| *h).collect::<Vec<_>>())
        .bind(unique.iter().map(|(r, _)| r.error).collect::<Vec<_>>())
        .execute(conn)
        .await
        .op("recording rejected rows")?;
    Ok(())
}
