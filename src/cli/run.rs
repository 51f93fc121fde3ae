//! `run`: the daemon (see `daemon`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::Failure;
use crate::config::Settings;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Do not apply pending migrations (wait until someone else has).
    #[arg(long)]
    pub no_migrate: bool,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(settings: Arc<Settings>, args: RunArgs) -> Result<ExitCode, Failure> {
    let key = settings.api_key()?.clone();
    if settings.rotessa.api_version == crate::config::ApiVersion::V1 {
        tracing::info!(
            "v1 (single-merchant) account: only the transactions and customers streams run; clients, declines, settlements and payouts need the v2 platform API"
        );
    }
    // The page's token is read here, not at every command's start: the file may be a
    // credential only the service can read.
    let settings = match settings.http.read_page_token()? {
        Some(token) => {
            let mut with_token = (*settings).clone();
            with_token.http.token = Some(token);
            Arc::new(with_token)
        }
        None => settings,
    };
    crate::daemon::run(settings, &key, !args.no_migrate)
        .await
        .map_err(|e| match e {
            crate::daemon::DaemonError::Rotessa(e) => Failure::Usage(e.to_string()),
            other => Failure::Failed(other.into()),
        })?;
    Ok(ExitCode::SUCCESS)
}
