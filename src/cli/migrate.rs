//! `migrate`: apply the schema migrations and exit.

use std::process::ExitCode;

use anyhow::Context;

use super::Failure;
use crate::config::Settings;
use crate::store::Store;

/// Applies pending migrations.
pub async fn run(settings: &Settings) -> Result<ExitCode, Failure> {
    let store = Store::connect(&settings.database).await?;
    let pending = store.pending_migrations().await?;
    store.migrate().await.context("migrating the database")?;
    println!("migrations: {pending} applied, schema rotessa is up to date");
    Ok(ExitCode::SUCCESS)
}
