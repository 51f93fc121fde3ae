//! `rotessa.page_digests`: the digest of each report page body last applied, so that a re-sync
//! skips a byte-identical page without parsing it or reading a row.
//!
//! A digest alone would trust that nothing else wrote the page's rows since (another stream, a
//! one-shot `sync`, another process, a restore): so each digest also records what the page's
//! application left in the table, as a count and a sum of fingerprints, and [`known`] offers a
//! digest only while the table still holds exactly that. Any write to any of the rows, by
//! anyone, makes the page be compared again: this holds by construction, whatever the writer.
//! Only rows not marked removed count: a page's row marked removed since makes the page be
//! compared again too (and so restored where the report returns it).
//!
//! A dense page (ids close together, the usual case) is checked by one primary-key range scan
//! over `[id_from, id_to]`, which also covers the other rows in between: a change to one of those
//! makes the page be compared again too, which is merely safe. A sparse page is checked by one
//! probe per row of its `ids`. Every digest keeps its page's ids, so that the rows of a page
//! skipped as identical are known without parsing it (to find rows a report stopped returning).

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

use super::transactions::OtherRows;
use super::{Error, ResultExt};

/// Which report window a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowKey<'a> {
    pub stream: &'a str,
    pub client_id: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// What a page's application leaves in the table: its own rows with the fingerprints it left
/// them with (the new row, or what stayed stored where the page's row was not applied), plus,
/// for a dense page, the other rows of its id range as they were read.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    ids: Vec<i64>,
    sum: i128,
    others: Option<OtherRows>,
}

impl Coverage {
    /// A page whose ids were read as one range (`others`), or probed one by one (`None`).
    pub fn new(others: Option<OtherRows>) -> Self {
        Self {
            others,
            ..Self::default()
        }
    }

    /// Row `id` holds `fingerprint` once the page is applied.
    pub fn add(&mut self, id: i64, fingerprint: i64) {
        self.ids.push(id);
        self.sum += i128::from(fingerprint);
    }

    /// How many rows the check covers, and the sum of their fingerprints as PostgreSQL's
    /// `sum(bigint)` computes it (`None` past `Decimal`'s reach: more rows than a page holds).
    fn expected(&self) -> Option<(i64, Decimal)> {
        let (count, sum) = match self.others {
            Some(o) => (
                o.count + self.ids.len() as i64,
                o.fingerprint_sum + self.sum,
            ),
            None => (self.ids.len() as i64, self.sum),
        };
        Some((count, Decimal::try_from_i128_with_scale(sum, 0).ok()?))
    }
}

/// The sum of `ids` as PostgreSQL's `sum(bigint)` computes it (`None` past `Decimal`'s reach).
pub fn sum(ids: &[i64]) -> Option<Decimal> {
    let total: i128 = ids.iter().map(|&id| i128::from(id)).sum();
    Decimal::try_from_i128_with_scale(total, 0).ok()
}

/// The pages of a window applied before whose rows nobody changed since: page number ->
/// (digest, row count).
pub async fn known(pool: &PgPool, w: WindowKey<'_>) -> Result<HashMap<u32, (i64, usize)>, Error> {
    // Dense pages: one range scan each. Sparse pages: one primary-key probe per row (a scalar
    // subquery is never turned into a join, and `offset 0` evaluates each probe once).
    const SQL: &str = r#"
        select d.page, d.digest, d.row_count
        from rotessa.page_digests d
        cross join lateral (
            select count(*) as n, coalesce(sum(t.fingerprint), 0) as s
            from rotessa.transactions t
            where t.id between d.id_from and d.id_to and t.removed_at is null
        ) cur
        where d.stream = $1 and d.client_id = $2 and d.window_from = $3 and d.window_to = $4
          and d.id_from is not null and cur.n = d.covered and cur.s = d.state
        union all
        select d.page, d.digest, d.row_count
        from rotessa.page_digests d
        cross join lateral (
            select count(f) as n, coalesce(sum(f), 0) as s
            from (select (select t.fingerprint from rotessa.transactions t
                          where t.id = u.id and t.removed_at is null) as f
                  from unnest(d.ids) as u(id) offset 0) probes
        ) cur
        where d.stream = $1 and d.client_id = $2 and d.window_from = $3 and d.window_to = $4
          and d.id_from is null and cur.n = d.covered and cur.s = d.state
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

/// Records that a page body was applied, leaving its rows as `coverage` says (inside the page's
/// transaction when it wrote rows).
pub async fn record(
    conn: &mut PgConnection,
    w: WindowKey<'_>,
    page: u32,
    digest: i64,
    rows: usize,
    coverage: &Coverage,
) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.page_digests as d
            (stream, client_id, window_from, window_to, page, digest, row_count,
             id_from, id_to, ids, id_sum, covered, state)
        values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        on conflict (stream, client_id, window_from, window_to, page) do update set
            digest = excluded.digest, row_count = excluded.row_count,
            id_from = excluded.id_from, id_to = excluded.id_to, ids = excluded.ids,
            id_sum = excluded.id_sum, covered = excluded.covered, state = excluded.state,
            applied_at = now()
    "#;
    let (Some((covered, state)), Some(id_sum)) = (coverage.expected(), sum(&coverage.ids)) else {
        return Ok(());
    };
    let range = coverage.others.map(|o| (o.from, o.to));

    sqlx::query(SQL)
        .bind(w.stream)
        .bind(w.client_id)
        .bind(w.from)
        .bind(w.to)
        .bind(i32::try_from(page).unwrap_or(i32::MAX))
        .bind(digest)
        .bind(i32::try_from(rows).unwrap_or(i32::MAX))
        .bind(range.map(|r| r.0))
        .bind(range.map(|r| r.1))
        .bind(&coverage.ids)
        .bind(id_sum)
        .bind(covered)
        .bind(state)
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
