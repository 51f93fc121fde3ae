//! `check`: validate the configuration, reach PostgreSQL and Rotessa, and print the effective
//! configuration with secrets redacted.

use std::process::ExitCode;

use anyhow::anyhow;

use super::Failure;
use crate::config::Settings;
use crate::rotessa::{Client, ReportKind, ReportRequest};
use crate::store::Store;
use crate::sync::{Clock, convert::transaction_converter};

/// Prints the configuration and one line per dependency.
pub async fn run(settings: &Settings) -> Result<ExitCode, Failure> {
    println!("# effective configuration (secrets redacted)");
    let toml = settings
        .to_redacted_toml()
        .map_err(|e| Failure::Failed(e.into()))?;
    println!("{toml}");

    let mut problems = Vec::new();
    match check_database(settings).await {
        Ok(line) => println!("postgres: ok, {line}"),
        Err(e) => {
            println!("postgres: FAILED: {e}");
            problems.push("postgres");
        }
    }
    let key = match settings.api_key() {
        Ok(key) => key,
        Err(e) => {
            println!("rotessa: not checked: {e}");
            return Err(Failure::Usage(e.to_string()));
        }
    };
    match check_rotessa(settings, key).await {
        Ok(()) => println!("rotessa: ok, {} answered", settings.rotessa.base_url),
        Err(e) => {
            println!("rotessa: FAILED: {e}");
            problems.push("rotessa");
        }
    }
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::Failed(anyhow!(
            "check failed: {}",
            problems.join(", ")
        )))
    }
}

async fn check_database(settings: &Settings) -> Result<String, anyhow::Error> {
    let store = Store::connect(&settings.database).await?;
    let version: String = sqlx::query_scalar("select current_setting('server_version')")
        .fetch_one(store.pool())
        .await?;
    let pending = store.pending_migrations().await?;
    Ok(format!(
        "PostgreSQL {version} at {}, {pending} migrations pending",
        settings.database.url
    ))
}

/// One request for today's transactions, without retries, so a dead server answers quickly.
async fn check_rotessa(
    settings: &Settings,
    key: &crate::config::Secret,
) -> Result<(), anyhow::Error> {
    let mut rotessa = settings.rotessa.clone();
    rotessa.retry.max_retries = 0;
    let client = Client::new(&rotessa, key)?;
    let today = Clock::from_settings(&settings.sync).today();
    let request = ReportRequest {
        kind: ReportKind::Transactions,
        client_id: None,
        start_date: today,
        end_date: today,
    };
    client
        .report_page(&request, 1, &transaction_converter(None), None)
        .await?;
    Ok(())
}
