//! The command line (clap). Each subcommand lives in its own file; this one parses arguments,
//! loads the configuration and maps failures to exit codes: 0 success, 1 a failed run or an
//! unreachable service, 2 a usage or configuration error.

mod check;
mod demo;
mod grant;
mod migrate;
mod outbox;
mod output;
mod reconcile;
mod run;
mod sim;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, LogSettings, Settings};
use crate::telemetry::{Telemetry, TelemetryError};

/// Keeps PostgreSQL reconciled with Rotessa.
#[derive(Debug, Parser)]
#[command(name = "rotessa-recon", version, about, long_about = None)]
pub struct Cli {
    /// A TOML file layered over the defaults (see config/default.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: migrate, take the lease, schedule the streams, serve /livez, /readyz and
    /// /metrics, until SIGTERM or SIGINT.
    Run(run::RunArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// One pass of the given streams, then exit: 0 when every run succeeded, 1 otherwise.
    Sync(sync::SyncArgs),
    /// Per stream and client: the last run, its outcome, cursor, rows, events and lag; recent
    /// errors; the lease holder (`--output json` for scripts).
    Status(status::StatusArgs),
    /// The settlement reconciliation: Rotessa's totals beside the synced transactions,
    /// mismatches first (`--format csv|json` for scripts, `--html FILE` for the report page).
    Reconcile(reconcile::ReconcileArgs),
    /// Validate the configuration, reach Rotessa and PostgreSQL, print the effective
    /// configuration with secrets redacted.
    Check,
    /// A local stand-in for the Rotessa API: generated data, a movable clock, fault injection.
    Sim(sim::SimArgs),
    /// Start the simulator, sync into a demo database, move the clock, and show what landed.
    Demo,
    /// Read the event outbox (tail, stats), manage its consumers, prune it.
    Outbox(outbox::OutboxArgs),
    /// Grant the rights of the daemon's writer role, reader roles and consumer roles (which
    /// must exist); `--print` shows the SQL instead.
    Grant(grant::GrantArgs),
}

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A usage or configuration problem: exit 2.
    #[error("{0}")]
    Usage(String),
    /// A run failed or a service could not be reached: exit 1.
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::Usage(e.to_string())
    }
}

impl From<TelemetryError> for Failure {
    fn from(e: TelemetryError) -> Self {
        Self::Usage(e.to_string())
    }
}

impl From<crate::store::Error> for Failure {
    fn from(e: crate::store::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Failed(_) => ExitCode::from(1),
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}

/// Runs a parsed command line; at the end, exports the spans still buffered (when traces are
/// on), whatever the outcome.
pub async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    // `sim` and `demo` bring their own configuration: they run without loading the user's.
    let command = match cli.command {
        Command::Sim(args) => {
            let telemetry = crate::telemetry::init(&LogSettings::plain())?;
            return finish(sim::run(args).await, telemetry).await;
        }
        Command::Demo => return demo::run().await,
        other => other,
    };
    let settings = Arc::new(Settings::load(cli.config.as_deref())?);
    let telemetry = crate::telemetry::init(&settings.log)?;
    let result = match command {
        Command::Run(args) => run::run(settings, args).await,
        Command::Migrate => migrate::run(&settings).await,
        Command::Sync(args) => sync::run(settings, args).await,
        Command::Status(args) => status::run(&settings, args).await,
        Command::Reconcile(args) => reconcile::run(&settings, args).await,
        Command::Check => check::run(&settings).await,
        Command::Sim(_) | Command::Demo => Err(Failure::Usage("dispatched above".to_owned())),
        Command::Outbox(args) => outbox::run(&settings, args).await,
        Command::Grant(args) => grant::run(&settings, args).await,
    };
    finish(result, telemetry).await
}

/// Shuts telemetry down (off the async threads: the exporter blocks while it sends the last
/// spans) and passes the command's result on; a failed export is a warning, not a failure.
async fn finish(
    result: Result<ExitCode, Failure>,
    telemetry: Telemetry,
) -> Result<ExitCode, Failure> {
    if telemetry.traces_enabled() {
        match tokio::task::spawn_blocking(move || telemetry.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the last spans may not have been exported"),
            Err(e) => tracing::warn!(error = %e, "the trace exporter's shutdown task failed"),
        }
    }
    result
}
