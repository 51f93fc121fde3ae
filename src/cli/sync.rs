//! `sync`: one pass of the chosen streams, then exit.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;

use super::Failure;
use crate::config::{ApiVersion, Settings};
use crate::rotessa::Client;
use crate::store::Store;
use crate::sync::{PassOptions, RunOutcome, RunReport, Stream, Syncer};

/// Arguments of `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Which stream to run, or `all`.
    #[arg(long, default_value = "all", value_parser = parse_streams)]
    pub stream: StreamChoice,
    /// Only this client (v2).
    #[arg(long, value_name = "ID")]
    pub client: Option<i64>,
    /// First date of the window (YYYY-MM-DD), for a backfill.
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last date of the window (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Do not apply pending migrations first.
    #[arg(long)]
    pub no_migrate: bool,
}

/// One stream or all of them.
#[derive(Debug, Clone)]
pub struct StreamChoice(pub Vec<Stream>);

fn parse_streams(s: &str) -> Result<StreamChoice, String> {
    if s == "all" {
        return Ok(StreamChoice(Stream::ALL.to_vec()));
    }
    s.parse::<Stream>()
        .map(|one| StreamChoice(vec![one]))
        .map_err(|e| {
            let names: Vec<&str> = Stream::ALL.iter().map(|s| s.as_str()).collect();
            format!("{e}; expected one of: {}, all", names.join(", "))
        })
}

/// Runs the pass and prints one line per run.
pub async fn run(settings: Arc<Settings>, args: SyncArgs) -> Result<ExitCode, Failure> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        return Err(Failure::Usage(format!("--from {from} is after --to {to}")));
    }
    let mut streams = args.stream.0;
    if settings.rotessa.api_version == ApiVersion::V1 {
        if let [only] = streams[..]
            && !only.works_on_v1()
        {
            return Err(Failure::Usage(format!(
                "the {only} stream needs the v2 platform API (rotessa.api_version = \"v2\")"
            )));
        }
        tracing::info!(
            "v1 (single-merchant) account: only the transactions and customers streams run; clients, declines, settlements and payouts need the v2 platform API"
        );
        streams.retain(|s| s.works_on_v1());
    }
    let client = Client::new(&settings.rotessa, settings.api_key()?)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let store = Store::connect(&settings.database).await?;
    if !args.no_migrate {
        store.migrate().await.context("migrating the database")?;
    }
    let syncer = Syncer::new(store, client, Arc::clone(&settings));
    let opts = PassOptions {
        client: args.client,
        from: args.from,
        to: args.to,
    };
    let mut reports = Vec::new();
    for stream in streams {
        reports.extend(syncer.run(stream, &opts).await);
    }
    for report in &reports {
        println!("{}", summary(report));
    }
    let failed: Vec<&RunReport> = reports
        .iter()
        .filter(|r| r.outcome != RunOutcome::Succeeded)
        .collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        let names: Vec<String> = failed.iter().map(|r| run_name(r)).collect();
        Err(Failure::Failed(anyhow::anyhow!(
            "{} of {} runs did not succeed: {}",
            failed.len(),
            reports.len(),
            names.join(", ")
        )))
    }
}

/// `stream [client]`, as runs are named in output.
fn run_name(r: &RunReport) -> String {
    if r.client_id == 0 {
        format!("{} [all clients]", r.stream)
    } else {
        format!("{} [client {}]", r.stream, r.client_id)
    }
}

/// One line about a run.
pub fn summary(r: &RunReport) -> String {
    let name = run_name(r);
    let run = r.run_id.map_or("-".to_owned(), |id| id.to_string());
    let p = &r.progress;
    let counts = format!(
        "pages {}, rows {} (inserted {}, updated {}, unchanged {}, rejected {}, stale {}), anomalies {}, events {}",
        p.pages,
        p.rows_seen,
        p.inserted,
        p.updated,
        p.unchanged,
        p.rejected,
        p.stale,
        p.anomalies,
        p.events
    );
    match &r.outcome {
        RunOutcome::Succeeded => format!("{name} run {run} succeeded: {counts}"),
        RunOutcome::Cancelled => format!("{name} run {run} cancelled: {counts}"),
        RunOutcome::Failed(e) => format!("{name} run {run} FAILED: {e} ({counts})"),
    }
}
