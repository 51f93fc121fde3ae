//! `outbox tail`: events as JSON lines on stdout, optionally following new ones and acking as
//! a registered consumer.

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use sqlx::PgPool;

use super::{Failure, connect, consumer_failure};
use crate::config::Settings;
use crate::outbox::{Consumer, Event, Follower, Position, Reader, Source, Waker};

/// Arguments of `outbox tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Read as this registered consumer: start at its acked position and ack each batch once
    /// it is written to stdout. Without it, read from the first event and record nothing.
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Keep waiting for new events (LISTEN rotessa_outbox, polling every
    /// outbox.poll_interval_ms as a fallback) until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max: Option<u64>,
}

/// Prints events until caught up (or, with `--follow`, until interrupted or `--max`).
pub async fn run(settings: &Settings, args: TailArgs) -> Result<ExitCode, Failure> {
    let store = connect(settings).await?;
    let pool = store.pool().clone();
    let outcome = match args.consumer.as_deref() {
        Some(name) => {
            let consumer = Consumer::new(pool.clone(), name);
            tail(settings, &pool, consumer, &args).await
        }
        None => {
            let reader = Reader::new(pool.clone(), Position::BEGINNING);
            tail(settings, &pool, reader, &args).await
        }
    };
    outcome.map_err(|e| match e.downcast::<crate::store::Error>() {
        Ok(store_error) => consumer_failure(store_error),
        Err(other) => Failure::Failed(other),
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn tail<S: Source>(
    settings: &Settings,
    pool: &PgPool,
    mut source: S,
    args: &TailArgs,
) -> Result<(), anyhow::Error> {
    let outbox = &settings.outbox;
    let batch = outbox.poll_batch;
    // How many events the next poll may return; None once --max events are printed.
    let want = |printed: u64| -> Option<u32> {
        match args.max {
            Some(max) if printed >= max => None,
            Some(max) => Some(u32::try_from(max - printed).unwrap_or(u32::MAX).min(batch)),
            None => Some(batch),
        }
    };
    let mut printed: u64 = 0;

    if !args.follow {
        while let Some(n) = want(printed) {
            let events = source.poll(n).await?;
            if events.is_empty() || !emit(&mut source, &events).await? {
                break;
            }
            printed += events.len() as u64;
        }
        if want(printed).is_some() && source.behind_fence().await? {
            tracing::info!(
                "more events are committed but not deliverable yet: a transaction that started before them is still open; run again, or use --follow"
            );
        }
        return Ok(());
    }

    let waker = Waker::start(pool, outbox.listen, outbox.poll_interval()).await;
    tracing::info!(
        listen = waker.is_listening(),
        poll_interval_ms = outbox.poll_interval_ms,
        "following rotessa.outbox: {}",
        if waker.is_listening() {
            "LISTEN rotessa_outbox, polling as a fallback"
        } else {
            "polling"
        }
    );
    let mut follower = Follower::new(source, waker, batch);
    let mut shutdown = std::pin::pin!(shutdown_signal());
    while let Some(n) = want(printed) {
        let events = tokio::select! {
            events = follower.next_batch_of(n) => events?,
            () = &mut shutdown => break,
        };
        if !emit(follower.source(), &events).await? {
            break;
        }
        printed += events.len() as u64;
    }
    Ok(())
}

/// Writes `events` as JSON lines and flushes, then acks the last one. Returns false when
/// stdout is closed (`| head`): those events are not acked and will be read again.
async fn emit<S: Source>(source: &mut S, events: &[Event]) -> Result<bool, anyhow::Error> {
    let Some(last) = events.last() else {
        return Ok(true);
    };
    let mut out = std::io::stdout().lock();
    let written = events
        .iter()
        .try_for_each(|event| {
            serde_json::to_writer(&mut out, event).map_err(std::io::Error::from)?;
            out.write_all(b"\n")
        })
        .and_then(|()| out.flush());
    drop(out);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(false),
        Err(e) => return Err(e).context("writing events to stdout"),
    }
    source.ack(last.position()).await?;
    Ok(true)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
