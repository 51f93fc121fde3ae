//! `outbox register` / `outbox unregister`: the consumers retention waits for.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{Failure, connect};
use crate::config::Settings;
use crate::store::outbox_consumers::{self, StartFrom};

/// Arguments of `outbox register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The consumer's name (what it passes to rotessa.outbox_poll / --consumer).
    pub name: String,
    /// Where it starts: every retained event, or only events committed from now on.
    #[arg(long, value_enum, default_value = "beginning")]
    pub start_from: Start,
}

/// `--start-from` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Start {
    Beginning,
    Now,
}

/// Arguments of `outbox unregister`.
#[derive(Debug, Args)]
pub struct UnregisterArgs {
    /// The consumer to remove.
    pub name: String,
}

/// Registers a consumer (idempotent: an existing one keeps its position).
pub async fn register(settings: &Settings, args: RegisterArgs) -> Result<ExitCode, Failure> {
    if args.name.is_empty() {
        return Err(Failure::Usage("the consumer name is empty".into()));
    }
    let start = match args.start_from {
        Start::Beginning => StartFrom::Beginning,
        Start::Now => StartFrom::Now,
    };
    let store = connect(settings).await?;
    if outbox_consumers::register(store.pool(), &args.name, start).await? {
        println!(
            "registered outbox consumer {:?} from {}",
            args.name,
            start.as_str()
        );
    } else {
        println!(
            "outbox consumer {:?} was already registered; its position is unchanged",
            args.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes a consumer; an unknown name is a usage error.
pub async fn unregister(settings: &Settings, args: UnregisterArgs) -> Result<ExitCode, Failure> {
    let store = connect(settings).await?;
    if outbox_consumers::unregister(store.pool(), &args.name).await? {
        println!(
            "unregistered outbox consumer {:?}: retention no longer waits for it",
            args.name
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::Usage(format!(
            "outbox consumer {:?} is not registered",
            args.name
        )))
    }
}
