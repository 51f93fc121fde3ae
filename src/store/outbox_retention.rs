//! Outbox retention: deleting, in small batches, old events that every registered consumer
//! has acked (`rotessa.outbox_prune`). The daemon calls [`prune`] periodically; `outbox prune`
//! runs it once.

use sqlx::PgPool;

use super::{Error, ResultExt};
use crate::config::OutboxSettings;

/// What retention keeps: events younger than `days`, and every event some registered
/// consumer has not acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events are kept at least this many days (0: only until every consumer acked them).
    pub days: u32,
    /// Events deleted per statement, so that each delete is a short transaction.
    pub batch_size: u32,
    /// With no registered consumer, delete old events anyway (CDC-only deployments). When
    /// false, having no registered consumer keeps everything.
    pub without_consumers: bool,
}

impl From<&OutboxSettings> for Retention {
    fn from(s: &OutboxSettings) -> Self {
        Self {
            days: s.retention_days,
            batch_size: s.prune_batch,
            without_consumers: s.prune_without_consumers,
        }
    }
}

/// Deletes one batch: up to `batch_size` of the oldest events in delivery order, stopping at
/// the first one that is too young or not acked by every registered consumer. Returns how
/// many were deleted.
pub async fn prune_batch(pool: &PgPool, retention: &Retention) -> Result<u64, Error> {
    const SQL: &str = r#"
        select rotessa.outbox_prune(make_interval(days => $1), $2, $3)
    "#;
    let deleted: i64 = sqlx::query_scalar(SQL)
        .bind(i32::try_from(retention.days).unwrap_or(i32::MAX))
        .bind(i32::try_from(retention.batch_size.max(1)).unwrap_or(i32::MAX))
        .bind(retention.without_consumers)
        .fetch_one(pool)
        .await
        .op("pruning the outbox")?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// Deletes batches until there is nothing left to delete; returns the total. Each batch is
/// its own short transaction, so writers and consumers are never held up for long.
pub async fn prune(pool: &PgPool, retention: &Retention) -> Result<u64, Error> {
    let full = u64::from(retention.batch_size.max(1));
    let mut total = 0;
    loop {
        let deleted = prune_batch(pool, retention).await?;
        total += deleted;
        tracing::debug!(deleted, total, "outbox prune batch");
        if deleted < full {
            break;
        }
    }
    if total > 0 {
        tracing::info!(
            deleted = total,
            retention_days = retention.days,
            "pruned acked outbox events"
        );
    }
    Ok(total)
}
