//! `outbox prune`: retention, once (the daemon runs the same function on
//! `outbox.prune_schedule`).

use std::process::ExitCode;

use clap::Args;

use super::{Failure, connect};
use crate::config::Settings;
use crate::store::outbox_retention::{self, Retention};

/// Arguments of `outbox prune`; each defaults to its `outbox.*` setting.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep events at least this many days (default: outbox.retention_days).
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Events deleted per statement (default: outbox.prune_batch).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pub batch: Option<u32>,
}

/// Deletes what retention allows and says how many events went.
pub async fn run(settings: &Settings, args: PruneArgs) -> Result<ExitCode, Failure> {
    let mut retention = Retention::from(&settings.outbox);
    if let Some(days) = args.retention_days {
        retention.days = days;
    }
    if let Some(batch) = args.batch {
        retention.batch_size = batch;
    }
    let store = connect(settings).await?;
    let deleted = outbox_retention::prune(store.pool(), &retention).await?;
    println!(
        "outbox prune: deleted {deleted} events older than {} days acked by every registered consumer",
        retention.days
    );
    Ok(ExitCode::SUCCESS)
}
