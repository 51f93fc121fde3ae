//! `rotessa.transaction_status_history`: every applied transition, appended per page.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::Error;
use super::copy::CopyRows;

/// One observed transition (`from_status` is `None` on first sight).
#[derive(Debug, Clone)]
pub struct Entry {
    pub transaction_id: i64,
    pub from_status: Option<&'static str>,
    pub to_status: &'static str,
    pub status_reason: Option<String>,
    pub decline_date: Option<NaiveDate>,
    /// `status` (a status change or first sight), `removed` or `restored`.
    pub change: &'static str,
}

/// Appends a page's transitions with `COPY`, all observed at `observed_at` from `source` in run
/// `run_id`.
pub async fn append(
    conn: &mut PgConnection,
    entries: &[Entry],
    observed_at: DateTime<Utc>,
    source: &str,
    run_id: i64,
) -> Result<(), Error> {
    const COPY: &str = r#"
        copy rotessa.transaction_status_history
            (transaction_id, from_status, to_status, status_reason, decline_date, observed_at,
             source, sync_run_id, change)
        from stdin (format binary)
    "#;
    let mut rows = CopyRows::new();
    for e in entries {
        rows.row(9)
            .value(&e.transaction_id)
            .value(&e.from_status)
            .value(&e.to_status)
            .value(&e.status_reason.as_deref())
            .value(&e.decline_date)
            .value(&observed_at)
            .value(&source)
            .value(&run_id)
            .value(&e.change);
    }
    rows.send(conn, COPY, "appending status history").await?;
    Ok(())
}
