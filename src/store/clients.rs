//! `rotessa.clients`: the platform's clients, which the per-client streams enumerate.

use sqlx::{PgConnection, PgPool};

use super::{Error, ResultExt};
use crate::domain::PlatformClient;

/// What an upsert of the client list did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: i64,
    pub updated: i64,
}

/// Inserts new clients and rewrites only those whose payload changed.
pub async fn upsert(
    conn: &mut PgConnection,
    clients: &[PlatformClient],
) -> Result<Upserted, Error> {
    const SQL: &str = r#"
        insert into rotessa.clients as c (id, business_name, operating_as, status, raw)
        select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
        on conflict (id) do update set
            business_name = excluded.business_name,
            operating_as = excluded.operating_as,
            status = excluded.status,
            raw = excluded.raw,
            seen_at = now()
        where (c.business_name, c.operating_as, c.status, c.raw)
              is distinct from (excluded.business_name, excluded.operating_as, excluded.status, excluded.raw)
        returning (xmax = 0) as inserted
    "#;
    if clients.is_empty() {
        return Ok(Upserted::default());
    }
    let c = clients;
    let inserted: Vec<bool> = sqlx::query_scalar(SQL)
        .bind(c.iter().map(|x| x.id).collect::<Vec<_>>())
        .bind(
            c.iter()
                .map(|x| x.business_name.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            c.iter()
                .map(|x| x.operating_as.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(c.iter().map(|x| x.status.as_deref()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| &x.raw).collect::<Vec<_>>())
        .fetch_all(conn)
        .await
        .op("upserting clients")?;
    let new = inserted.iter().filter(|i| **i).count() as i64;
    Ok(Upserted {
        inserted: new,
        updated: inserted.len() as i64 - new,
    })
}

/// The ids of every known client, in order.
pub async fn ids(pool: &PgPool) -> Result<Vec<i64>, Error> {
    const SQL: &str = r#"select id from rotessa.clients order by id"#;
    sqlx::query_scalar(SQL)
        .fetch_all(pool)
        .await
        .op("listing clients")
}
