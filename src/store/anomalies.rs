//! `rotessa.status_anomalies`: observations the status rules refused, with both sides.
//! A disagreement that persists across syncs is one row whose `times_seen` grows.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{Error, ResultExt};

/// A refused observation: what is stored against what the report said.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub transaction_id: i64,
    pub stored_status: &'static str,
    pub stored_status_reason: Option<String>,
    pub stored_status_at: DateTime<Utc>,
    pub observed_status: &'static str,
    pub observed_status_reason: Option<String>,
}

/// Records a page's anomalies (at most one per transaction).
pub async fn record(
    conn: &mut PgConnection,
    anomalies: &[Anomaly],
    source: &str,
    run_id: i64,
) -> Result<(), Error> {
    const SQL: &str = r#"
        insert into rotessa.status_anomalies as a
            (transaction_id, stored_status, stored_status_reason, stored_status_at,
             observed_status, observed_status_reason, source, sync_run_id)
        select n.*, $7, $8
        from unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                    $6::text[]) as n
        on conflict (transaction_id, stored_status, observed_status, source) do update set
            stored_status_reason = excluded.stored_status_reason,
            observed_status_reason = excluded.observed_status_reason,
            sync_run_id = excluded.sync_run_id,
            last_seen_at = now(),
            times_seen = a.times_seen + 1
    "#;
    if anomalies.is_empty() {
        return Ok(());
    }
    let a = anomalies;
    sqlx::query(SQL)
        .bind(a.iter().map(|x| x.transaction_id).collect::<Vec<_>>())
        .bind(a.iter().map(|x| x.stored_status).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|x| x.stored_status_reason.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(a.iter().map(|x| x.stored_status_at).collect::<Vec<_>>())
        .bind(a.iter().map(|x| x.observed_status).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|x| x.observed_status_reason.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(source)
        .bind(run_id)
        .execute(conn)
        .await
        .op("recording status anomalies")?;
    Ok(())
}
