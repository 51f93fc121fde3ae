//! The relay: from the outbox to an event bus (README "The relay"). A registered outbox
//! consumer that publishes each batch to NATS JetStream or RabbitMQ, waits for the broker's
//! acknowledgement, and only then acks the batch in the outbox: nothing is acked before the
//! broker has it, so nothing is lost; a crash in between republishes, which JetStream
//! deduplicates by `Nats-Msg-Id` and RabbitMQ consumers by `message_id`.
//!
//! Order: events reach the broker in outbox order per aggregate. A batch is published in
//! waves that hold at most one event per aggregate; each wave is published at once and fully
//! acknowledged before the next, so two events of one aggregate are never in flight together.
//! Events of different aggregates may be stored in any order within a wave.
//!
//! Faults: a broker that is down, slow or refusing makes the relay wait and retry the batch
//! with backoff (logged and counted in `rotessa_relay_retries_total`), never skip it. Two
//! relays for one consumer take turns through a lease (`relay:<consumer>`).

mod amqp;
mod nats;
mod target;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use crate::config::RelaySettings;
pub use target::{Target, redact};

use crate::config::OutboxSettings;
use crate::outbox::{Consumer, Follower, Source, StartFrom, Waker};
use crate::store::lease::{self, Fence};
use crate::store::outbox::Event;
use crate::store::{self, outbox_consumers};
use amqp::AmqpPublisher;
use nats::NatsPublisher;

/// Why publishing failed; always retried, on a new connection.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(String);

impl PublishError {
    fn new(detail: String) -> Self {
        Self(detail)
    }
}

/// Why the relay stopped (it only stops on these, or when told to).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the relay's outbox consumer: {0}")]
    Store(#[from] store::Error),
}

/// A connected broker.
enum Publisher {
    Nats(NatsPublisher),
    Amqp(AmqpPublisher),
}

impl Publisher {
    async fn connect(target: &Target, settings: &RelaySettings) -> Result<Self, PublishError> {
        match target {
            Target::Nats { url } => {
                let connected =
                    tokio::time::timeout(BROKER_TIMEOUT, NatsPublisher::connect(url, settings))
                        .await
                        .map_err(|_| {
                            PublishError::new("connecting to NATS: no answer in time".into())
                        })?;
                Ok(Self::Nats(connected?))
            }
            Target::Amqp { url } => Ok(Self::Amqp(AmqpPublisher::connect(url, settings).await?)),
        }
    }

    async fn publish_wave(&mut self, wave: &[&Event]) -> Result<(), PublishError> {
        let published = async {
            match self {
                Self::Nats(p) => p.publish_wave(wave).await,
                Self::Amqp(p) => p.publish_wave(wave).await,
            }
        };
        tokio::time::timeout(BROKER_TIMEOUT, published)
            .await
            .map_err(|_| {
                PublishError::new(format!(
                    "the broker did not acknowledge {} events within {} s",
                    wave.len(),
                    BROKER_TIMEOUT.as_secs()
                ))
            })?
    }
}

/// The most events in flight at once: below JetStream's client limit of 5000 unacknowledged
/// publishes, past which a publish waits for acks nobody is awaiting yet.
pub const MAX_WAVE: usize = 4000;

/// How long a broker may take to connect, or to acknowledge a wave, before the batch is
/// published again on a new connection (a blocked or half-dead broker).
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Splits a batch, in order, into waves of at most [`MAX_WAVE`] events with at most one event
/// per aggregate.
pub fn waves(batch: &[Event]) -> Vec<Vec<&Event>> {
    let mut waves: Vec<Vec<&Event>> = Vec::new();
    let mut current: Vec<&Event> = Vec::new();
    let mut in_flight: HashSet<(&str, &str)> = HashSet::new();
    for event in batch {
        let key = (event.aggregatetype.as_str(), event.aggregateid.as_str());
        if current.len() >= MAX_WAVE || !in_flight.insert(key) {
            waves.push(std::mem::take(&mut current));
            in_flight.clear();
            in_flight.insert(key);
        }
        current.push(event);
    }
    if !current.is_empty() {
        waves.push(current);
    }
    waves
}

/// Relays the outbox to `target` as the registered consumer `relay.consumer` (registered from
/// the beginning if new) until `stop` fires. Waits for the relay lease first; gives it up if
/// it is lost and waits again.
pub async fn run(
    pool: PgPool,
    outbox: &OutboxSettings,
    settings: &RelaySettings,
    target: Target,
    lease_ttl: Duration,
    stop: CancellationToken,
) -> Result<(), RelayError> {
    let consumer_name = settings.consumer.clone();
    if Consumer::register(&pool, &consumer_name, StartFrom::Beginning).await? {
        tracing::info!(consumer = %consumer_name, "registered the relay's outbox consumer");
    }
    // One lease per consumer, named for the life of the process.
    let lease_name: &'static str = Box::leak(format!("relay:{consumer_name}").into_boxed_str());
    let holder = format!(
        "{}:{}",
        std::process::id(),
        &uuid::Uuid::now_v7().simple().to_string()[24..]
    );
    let poll = (lease_ttl / 10).clamp(Duration::from_millis(200), Duration::from_secs(5));
    tracing::info!(%target, consumer = %consumer_name, "relay waiting for its lease");
    while !stop.is_cancelled() {
        match lease::try_acquire(&pool, lease_name, &holder, lease_ttl).await {
            Ok(Some(fence)) => {
                tracing::info!(%target, token = fence.token, "relay started");
                let term = stop.child_token();
                let renewal = tokio::spawn(keep_lease(pool.clone(), fence.clone(), term.clone()));
                let relayed = relay(&pool, outbox, settings, &target, &term).await;
                term.cancel();
                let _ = renewal.await;
                if let Err(e) = relayed {
                    // A database error the consumer could not ride out: start over, never stop.
                    tracing::warn!(error = %e, "the relay stopped on a database error; starting again");
                    let _ = lease::release(&pool, &fence).await;
                } else if !stop.is_cancelled() {
                    tracing::warn!("the relay lease was lost; waiting to take it again");
                } else {
                    let _ = lease::release(&pool, &fence).await;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the relay lease"),
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
    Ok(())
}

/// Renews the lease until `term` fires; cancels `term` when the lease is lost, or when it has
/// not been renewed for a whole time to live (it may have expired and been taken over).
async fn keep_lease(pool: PgPool, fence: Fence, term: CancellationToken) {
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = term.cancelled() => return,
            _ = tokio::time::sleep(fence.ttl / 3) => {}
        }
        match lease::renew(&pool, &fence).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                term.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the relay lease; retrying"),
        }
        if renewed.elapsed() >= fence.ttl {
            tracing::warn!("the relay lease was not renewed for its whole time to live");
            term.cancel();
            return;
        }
    }
}

/// Sets the lag gauges every 5 s until `term` fires, whatever the relay is doing (a broker
/// outage keeps it retrying one batch while the backlog grows).
async fn watch_lag(pool: PgPool, consumer: String, term: CancellationToken) {
    loop {
        publish_lag(&pool, &consumer).await;
        tokio::select! {
            _ = term.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// The relay's loop while it holds the lease.
async fn relay(
    pool: &PgPool,
    outbox: &OutboxSettings,
    settings: &RelaySettings,
    target: &Target,
    term: &CancellationToken,
) -> Result<(), RelayError> {
    let consumer = Consumer::new(pool.clone(), settings.consumer.clone());
    let waker = Waker::start(pool, outbox.listen, outbox.poll_interval()).await;
    let mut follower = Follower::new(consumer, waker, settings.batch);
    let mut publisher: Option<Publisher> = None;
    let lag = tokio::spawn(watch_lag(
        pool.clone(),
        settings.consumer.clone(),
        term.clone(),
    ));
    let relayed = relay_batches(&mut follower, &mut publisher, settings, target, term).await;
    term.cancel();
    let _ = lag.await;
    relayed
}

/// Publishes batch after batch, each acked in the outbox once the broker has all of it.
async fn relay_batches(
    follower: &mut Follower<Consumer>,
    publisher: &mut Option<Publisher>,
    settings: &RelaySettings,
    target: &Target,
    term: &CancellationToken,
) -> Result<(), RelayError> {
    let broker = target.broker();
    // Both series exist from the start, at 0, so that rate() and alerts see their first events.
    metrics::counter!("rotessa_relay_retries_total", "broker" => broker).increment(0);
    metrics::counter!("rotessa_relay_events_total", "broker" => broker).increment(0);
    loop {
        let batch = tokio::select! {
            _ = term.cancelled() => return Ok(()),
            batch = follower.next_batch() => batch?,
        };
        // The whole batch is published (again, after a failure) until the broker has all of it.
        let mut delay = Duration::from_millis(settings.initial_backoff_ms);
        let max_delay = Duration::from_millis(settings.max_backoff_ms);
        loop {
            if term.is_cancelled() {
                return Ok(());
            }
            let attempt = async {
                if publisher.is_none() {
                    *publisher = Some(Publisher::connect(target, settings).await?);
                    tracing::info!(%target, "connected to the broker");
                }
                match publisher.as_mut() {
                    Some(p) => publish(p, &batch, term).await,
                    None => Ok(()),
                }
            };
            let outcome = tokio::select! {
                _ = term.cancelled() => return Ok(()),
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(()) => break,
                Err(e) => {
                    metrics::counter!("rotessa_relay_retries_total", "broker" => broker)
                        .increment(1);
                    tracing::warn!(
                        %target,
                        error = %e,
                        events = batch.len(),
                        retry_in_ms = delay.as_millis() as u64,
                        "relaying failed; the batch is published again"
                    );
                    *publisher = None;
                    tokio::select! {
                        _ = term.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(max_delay);
                }
            }
        }
        if term.is_cancelled() {
            return Ok(());
        }
        if let Some(last) = batch.last() {
            ack(follower, last.position(), settings, term).await?;
        }
        metrics::counter!("rotessa_relay_events_total", "broker" => broker)
            .increment(batch.len() as u64);
        tracing::debug!(events = batch.len(), "relayed and acked");
    }
}

/// Publishes a batch wave by wave; stops between waves once `term` fired (the lease lost).
async fn publish(
    publisher: &mut Publisher,
    batch: &[Event],
    term: &CancellationToken,
) -> Result<(), PublishError> {
    for wave in waves(batch) {
        if term.is_cancelled() {
            return Ok(());
        }
        publisher.publish_wave(&wave).await?;
    }
    Ok(())
}

/// Acks the outbox up to `to`, riding out transient database errors with backoff.
async fn ack(
    follower: &mut Follower<Consumer>,
    to: crate::store::outbox::Position,
    settings: &RelaySettings,
    term: &CancellationToken,
) -> Result<(), RelayError> {
    let mut delay = Duration::from_millis(settings.initial_backoff_ms);
    loop {
        match follower.source().ack(to).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "acking the relayed batch failed; retrying");
                tokio::select! {
                    _ = term.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_millis(settings.max_backoff_ms));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets the relay's lag gauges: events not yet relayed, and the age of the oldest.
async fn publish_lag(pool: &PgPool, consumer: &str) {
    match outbox_consumers::lag(pool).await {
        Ok(all) => {
            if let Some(me) = all.iter().find(|c| c.name == consumer) {
                metrics::gauge!("rotessa_relay_lag_events").set(me.backlog as f64);
                metrics::gauge!("rotessa_relay_oldest_unrelayed_age_seconds")
                    .set(me.oldest_unacked_age_secs.unwrap_or(0.0));
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot read the relay's lag"),
    }
}
