//! `grant`: applies (or with `--print` shows) the rights of the writer, reader and consumer
//! roles an operator created (`crate::store::grants`). Roles are cluster-wide and usually managed
//! outside the application, so this grants; it never creates a role.

use std::process::ExitCode;

use clap::Args;

use super::Failure;
use crate::config::Settings;
use crate::store::Store;
use crate::store::grants::{self, Plan};

/// Arguments of `grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The daemon's role: DML on the tables it writes, no DDL.
    #[arg(long, value_name = "ROLE")]
    pub writer: Option<String>,
    /// A role for accountants and BI tools: SELECT on the accounting tables and views.
    #[arg(long, value_name = "ROLE")]
    pub reader: Vec<String>,
    /// A role for an outbox consumer: the outbox, and its own consumers only.
    #[arg(long, value_name = "ROLE")]
    pub consumer: Vec<String>,
    /// Print the SQL instead of running it.
    #[arg(long)]
    pub print: bool,
}

/// Applies or prints the grants.
pub async fn run(settings: &Settings, args: GrantArgs) -> Result<ExitCode, Failure> {
    let plan = Plan {
        writer: args.writer,
        readers: args.reader,
        consumers: args.consumer,
    };
    if plan.writer.is_none() && plan.readers.is_empty() && plan.consumers.is_empty() {
        return Err(Failure::Usage(
            "name at least one role: --writer ROLE, --reader ROLE or --consumer ROLE".into(),
        ));
    }
    let store = Store::connect(&settings.database).await?;
    let catalog = grants::catalog(store.pool(), &plan).await?;
    let statements = grants::statements(&plan, &catalog);
    if args.print {
        for statement in &statements {
            println!("{statement};");
        }
        return Ok(ExitCode::SUCCESS);
    }
    grants::apply(store.pool(), &statements).await?;
    println!(
        "granted: {} statements applied (writer {}, readers {}, consumers {})",
        statements.len(),
        plan.writer.as_deref().unwrap_or("-"),
        if plan.readers.is_empty() {
            "-".to_owned()
        } else {
            plan.readers.join(", ")
        },
        if plan.consumers.is_empty() {
            "-".to_owned()
        } else {
            plan.consumers.join(", ")
        },
    );
    Ok(ExitCode::SUCCESS)
}
