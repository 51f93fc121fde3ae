//! `rotessa.status_anomalies`: observations the status rules did not simply apply, with both
//! sides and a kind (`stale`, `backward`, `reversal`). A disagreement that persists across syncs
//! is one row whose `times_seen` grows.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{Error, ResultExt};
use crate::domain::AnomalyKind;

/// An observation and what was stored when it was seen.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub transaction_id: i64,
    pub stored_status: &'static str,
    pub stored_status_reason: Option<String>,
    pub stored_status_at: DateTime<Utc>,
    pub stored_updated_at: Option<DateTime<Utc>>,
    pub observed_status: &'static str,
    pub observed_status_reason: Option<String>,
    pub observed_updated_at: Option<DateTime<Utc>>,
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
            (kind, transaction_id, stored_status, stored_status_reason, stored_status_at,
             stored_updated_at, observed_status, observed_status_reason, observed_updated_at,
             source, sync_run_id)
        select n.*, $10, $11
        from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[],
                    $6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[]) as n
        on conflict (transaction_id, kind, stored_status, observed_status, source) do update set
            stored_status_reason = excluded.stored_status_reason,
            stored_status_at = excluded.stored_status_at,
            stored_updated_at = excluded.stored_updated_at,
            observed_status_reason = excluded.observed_status_reason,
            observed_updated_at = excluded.observed_updated_at,
            sync_run_id = excluded.sync_run_id,
            last_seen_at = now(),
            times_seen = a.times_seen + 1
    "#;
    if anomalies.is_empty() {
        return Ok(());
    }
    let a = anomalies;
    sqlx::query(SQL)
        .bind(a.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|x| x.transaction_id).collect::<Vec<_>>())
        .bind(a.iter().map(|x| x.stored_status).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|x| x.stored_status_reason.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(a.iter().map(|x| x.stored_status_at).collect::<Vec<_>>())
        .bind(a.iter().map(|x| x.stored_updated_at).collect::<Vec<_>>())
        .bind(a.iter().map(|x| x.observed_status).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|x| x.observed_status_reason.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(a.iter().map(|x| x.observed_updated_at).collect::<Vec<_>>())
        .bind(source)
        .bind(run_id)
        .execute(conn)
        .await
        .op("recording status anomalies")?;
    Ok(())
}
