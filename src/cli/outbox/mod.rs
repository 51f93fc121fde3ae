//! `outbox`: read and look after the event outbox from the command line (the SQL contract
//! itself is in docs/outbox-consumers.md).

mod parked;
mod prune;
mod register;
mod relay;
mod stats;
mod tail;

use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, Subcommand};

use super::Failure;
use crate::config::Settings;
use crate::store::{self, Store};

/// Arguments of `outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    pub command: OutboxCommand,
}

/// The `outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Print events as JSON lines on stdout, in delivery order. Without --consumer, from the
    /// first event, recording nothing; with --consumer, from that consumer's position, acking
    /// each batch once it is printed.
    Tail(tail::TailArgs),
    /// Backlog per registered consumer and the age of its oldest un-acked event.
    Stats(stats::StatsArgs),
    /// Retention, once: delete events older than outbox.retention_days that every registered
    /// consumer has acked (nothing when no consumer is registered, unless
    /// outbox.prune_without_consumers).
    Prune(prune::PruneArgs),
    /// Register a polling consumer. Retention keeps every event it has not acked.
    Register(register::RegisterArgs),
    /// Remove a consumer, releasing the events it held back from retention (and deleting the
    /// events it parked).
    Unregister(register::UnregisterArgs),
    /// The events a consumer parked (gave up on) or that await replay, with their errors.
    Parked(parked::ParkedArgs),
    /// Mark a consumer's parked event (EVENT_ID), or all of them (--all), for replay: the
    /// consumer reads them again with rotessa.outbox_replay_poll.
    Unpark(parked::UnparkArgs),
    /// Relay events to NATS JetStream or RabbitMQ as a registered consumer: each batch is acked
    /// in the outbox only once the broker has it (README "The relay").
    Relay(relay::RelayArgs),
}

/// Runs an `outbox` subcommand.
pub async fn run(settings: &Settings, args: OutboxArgs) -> Result<ExitCode, Failure> {
    match args.command {
        OutboxCommand::Tail(a) => tail::run(settings, a).await,
        OutboxCommand::Stats(a) => stats::run(settings, a).await,
        OutboxCommand::Prune(a) => prune::run(settings, a).await,
        OutboxCommand::Register(a) => register::register(settings, a).await,
        OutboxCommand::Unregister(a) => register::unregister(settings, a).await,
        OutboxCommand::Parked(a) => parked::list(settings, a).await,
        OutboxCommand::Unpark(a) => parked::unpark(settings, a).await,
        OutboxCommand::Relay(a) => relay::run(settings, a).await,
    }
}

/// Connects and checks that the consumer contract is installed. These commands do not
/// migrate: a consumer's database role usually may not change the schema.
async fn connect(settings: &Settings) -> Result<Store, Failure> {
    let store = Store::connect(&settings.database).await?;
    if !store::outbox_consumers::contract_installed(store.pool()).await? {
        return Err(Failure::Failed(anyhow!(
            "the outbox consumer functions are missing from this database: run `rotessa-recon migrate` (or any `sync`) first"
        )));
    }
    Ok(store)
}

/// An unregistered consumer is a usage error (exit 2) whose message says how to register it.
fn consumer_failure(e: store::Error) -> Failure {
    match e {
        store::Error::UnknownConsumer(_) => Failure::Usage(e.to_string()),
        other => other.into(),
    }
}
