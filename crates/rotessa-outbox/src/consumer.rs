//! The polling consumer: poll a batch, hand each event to a [`Handler`] (retrying with
//! exponential backoff), ack, park what keeps failing, replay what an operator unparked, and
//! sleep until `NOTIFY rotessa_outbox` or the polling interval.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::error::Error;
use crate::event::{Event, Position, RawEvent};
use crate::sql::{self, StartFrom};
use crate::wake::Listener;

/// Processes one event. Called once per delivery, and again (after a backoff) when it fails, up
/// to [`RetryPolicy::max_attempts`] times; then the event is parked and the consumer moves on.
///
/// Delivery is at least once (a crash between handling and the ack delivers the batch again):
/// make `handle` idempotent, keyed by [`Event::id`]. A replayed event (parked, then unparked) comes
/// after events that are newer than it: compare `observed_at` (or the payload's own clock) before
/// letting it overwrite a newer state.
///
/// Parking is for an event that cannot be processed (a poison event), not for a dependency that
/// is down: the default [`RetryPolicy`] keeps trying for about 6 minutes before it parks, so a
/// short outage of what the handler calls holds the consumer back instead of parking its whole
/// backlog. Set a longer policy if your dependencies may be down for longer.
///
/// ```
/// use rotessa_outbox::{Event, Handler, Payload};
///
/// struct Print;
///
/// impl Handler for Print {
///     type Error = std::convert::Infallible;
///
///     async fn handle(&self, event: &Event) -> Result<(), Self::Error> {
///         if let Payload::TransactionStatusChanged(t) = &event.payload {
///             println!("{} {} -> {}", t.transaction_id, t.from_status.as_ref().map_or("new", |s| s.as_str()), t.to_status);
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Handler: Sync {
    /// Why handling failed; its `Display` text is stored with a parked event.
    type Error: std::fmt::Display + Send;

    /// Handles `event`; an error means "try again later".
    fn handle(&self, event: &Event) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How often a failing event is tried before it is parked, and how long to wait in between:
/// `initial_delay`, doubling each time, at most `max_delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1; 1 parks at the first failure).
    pub max_attempts: u32,
    /// The wait before the second attempt.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 10 attempts, waiting 1 s, 2 s, 4 s ... 64 s, then 2 min twice in between (about 6 minutes
    /// in all before the event is parked): long enough to ride out a short outage of a
    /// dependency.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `initial_delay * 2^(attempt - 1)`, at
    /// most `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }
}

/// How a [`Consumer`] polls and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Events per poll (and per ack).
    pub batch_size: u32,
    /// The longest sleep between polls when caught up (a notification ends it sooner).
    pub poll_interval: Duration,
    /// `LISTEN rotessa_outbox` to wake as soon as events commit. Turn it off behind PgBouncer in
    /// transaction pooling mode (LISTEN does not work there): the consumer then polls every
    /// `poll_interval`.
    pub listen: bool,
    /// Retries of a failing event before it is parked.
    pub retry: RetryPolicy,
    /// Also hand over parked events an operator marked for replay (`rotessa.outbox_unpark`). On a
    /// database without the parking functions this turns itself off with a warning.
    pub replay: bool,
}

impl Default for Options {
    /// Batches of 100, a poll at least every second, LISTEN on, [`RetryPolicy::default`], replay
    /// on.
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            listen: true,
            retry: RetryPolicy::default(),
            replay: true,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handled successfully on delivery.
    pub handled: u64,
    /// Events parked after their last attempt failed (replays that failed again included).
    pub parked: u64,
    /// Parked events handled successfully on replay.
    pub replayed: u64,
}

/// A registered polling consumer of `rotessa.outbox`, driving a [`Handler`].
///
/// Each round polls up to [`Options::batch_size`] events after the consumer's acked position
/// (`rotessa.outbox_poll`), hands them to the handler in delivery order, and acks the last one
/// (`rotessa.outbox_ack`). An event whose handler still fails after [`Options::retry`] is parked
/// (`rotessa.outbox_park`, with the error text) and acked in the same transaction, so the rest
/// flow. Then it hands over parked events marked for replay (`rotessa.outbox_replay_poll`;
/// handled: `rotessa.outbox_replay_done`; failing again: parked again). When caught up it sleeps
/// until `NOTIFY rotessa_outbox` or [`Options::poll_interval`].
///
/// An event whose payload does not decode (a known type and version of the wrong shape: a bug
/// somewhere, which no retry fixes) is parked at once, with the decoding error.
///
/// Transient database errors (a lost connection, a restart) are retried every polling interval;
/// other errors end the run. A stop request is honoured between events and during waits, never
/// in the middle of a handler call; what was handled is acked first.
#[derive(Debug, Clone)]
pub struct Consumer {
    pool: PgPool,
    name: String,
    options: Options,
}

/// The first quick re-poll after a notification that found nothing (its events may still be
/// behind the visibility fence: an older transaction on the server is open); it doubles up to
/// [`FENCE_RETRY_MAX`], then the consumer waits as usual.
const FENCE_RETRY: Duration = Duration::from_millis(5);
const FENCE_RETRY_MAX: Duration = Duration::from_millis(250);

impl Consumer {
    /// The consumer `name` on `pool`, with [`Options::default`]. No query: an unregistered name
    /// fails the first poll with [`Error::UnknownConsumer`] (see [`Consumer::register`]). With
    /// `listen` on, the LISTEN connection holds one connection of `pool` for as long as the
    /// consumer runs: give the pool at least 2.
    pub fn new(pool: PgPool, name: impl Into<String>) -> Self {
        Self {
            pool,
            name: name.into(),
            options: Options::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options in use.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The pool it polls through.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Registers the consumer if it is not yet (`rotessa.outbox_register`); returns whether it
    /// was new. Safe at every start: an existing consumer keeps its position. Remember to
    /// unregister a consumer you retire ([`sql::unregister`]): retention keeps every event a
    /// registered consumer has not acked.
    pub async fn register(&self, start: StartFrom) -> Result<bool, Error> {
        sql::register(&self.pool, &self.name, start).await
    }

    /// Runs until `stop` completes (e.g. `token.cancelled()` of a
    /// `tokio_util::sync::CancellationToken`, or `tokio::signal::ctrl_c()` mapped to `()`), or
    /// a non-transient error.
    pub async fn run<H: Handler>(
        &self,
        handler: &H,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<Stats, Error> {
        self.run_inner(handler, stop, false).await
    }

    /// Handles everything deliverable now (and every parked event marked for replay), then
    /// returns; or earlier, when `stop` completes (`std::future::pending()` never does).
    ///
    /// "Now" is behind the visibility fence: events committed after a transaction that is still
    /// open somewhere on the server are not deliverable yet, and wait for the next call.
    pub async fn run_until_caught_up<H: Handler>(
        &self,
        handler: &H,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<Stats, Error> {
        self.run_inner(handler, stop, true).await
    }

    async fn run_inner<H: Handler>(
        &self,
        handler: &H,
        stop: impl Future<Output = ()> + Send,
        until_caught_up: bool,
    ) -> Result<Stats, Error> {
        let mut stop = Stop::new(stop);
        let listener = if self.options.listen && !until_caught_up {
            Listener::start(&self.pool).await
        } else {
            Listener::disabled()
        };
        let interval = self.options.poll_interval;
        let mut stats = Stats::default();
        let mut replay = self.options.replay;
        let mut woke_by_notify = false;
        let mut quick: Option<Duration> = None;
        loop {
            if stop.fired().await {
                return Ok(stats);
            }
            let round = match self
                .round(handler, &mut stop, &mut stats, &mut replay)
                .await
            {
                Ok(round) => round,
                Err(e) if e.is_transient() => {
                    crate::log_warn!(consumer = %self.name, error = %e, "outbox consumer: retrying after a transient error");
                    if stop.sleep(interval).await {
                        return Ok(stats);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let empty = match round {
                Round::Stopped => return Ok(stats),
                Round::More => continue,
                Round::CaughtUp { empty } => empty,
            };
            if until_caught_up {
                if empty {
                    return Ok(stats);
                }
                continue;
            }
            quick = match (empty, woke_by_notify, quick) {
                (false, _, _) => None,
                (true, true, _) => Some(FENCE_RETRY),
                (true, false, Some(d)) => Some(d * 2).filter(|d| *d <= FENCE_RETRY_MAX),
                (true, false, None) => None,
            };
            let wait = quick.map_or(interval, |d| d.min(interval));
            match stop.wait(&listener.notify, wait).await {
                Wake::Stopped => return Ok(stats),
                Wake::Notified => woke_by_notify = true,
                Wake::Timer => woke_by_notify = false,
            }
        }
    }

    /// One poll and its events, then one replay poll and its events.
    async fn round<H: Handler, F: Future<Output = ()>>(
        &self,
        handler: &H,
        stop: &mut Stop<F>,
        stats: &mut Stats,
        replay: &mut bool,
    ) -> Result<Round, Error> {
        let batch_size = self.options.batch_size.max(1);
        let batch = sql::poll(&self.pool, &self.name, batch_size).await?;
        let full = batch.len() >= batch_size as usize;
        let mut any = !batch.is_empty();
        let mut unacked: Option<Position> = None;
        for raw in batch {
            // A stop is honoured between events: what was handled is acked, the rest comes back.
            if stop.fired().await {
                if let Some(to) = unacked {
                    sql::ack(&self.pool, &self.name, to).await?;
                }
                return Ok(Round::Stopped);
            }
            let position = raw.position;
            let id = raw.id;
            match self.process(handler, raw, stop).await {
                Outcome::Handled => {
                    stats.handled += 1;
                    unacked = Some(position);
                }
                Outcome::Failed(error) => {
                    self.park_and_ack(id, &error, position).await?;
                    stats.parked += 1;
                    unacked = None;
                }
                Outcome::Stopped => {
                    if let Some(to) = unacked {
                        sql::ack(&self.pool, &self.name, to).await?;
                    }
                    return Ok(Round::Stopped);
                }
            }
        }
        if let Some(to) = unacked {
            sql::ack(&self.pool, &self.name, to).await?;
        }

        let mut replay_full = false;
        if *replay {
            match sql::replay_poll(&self.pool, &self.name, batch_size).await {
                Ok(events) => {
                    replay_full = events.len() >= batch_size as usize;
                    any |= !events.is_empty();
                    for raw in events {
                        let id = raw.id;
                        match self.process(handler, raw, stop).await {
                            Outcome::Handled => {
                                sql::replay_done(&self.pool, &self.name, id).await?;
                                stats.replayed += 1;
                            }
                            Outcome::Failed(error) => {
                                sql::park(&self.pool, &self.name, id, &error).await?;
                                stats.parked += 1;
                            }
                            Outcome::Stopped => return Ok(Round::Stopped),
                        }
                    }
                }
                Err(Error::MissingFunction { .. }) => {
                    crate::log_warn!(consumer = %self.name, "outbox consumer: the database has no rotessa.outbox_replay_poll (apply rotessa-recon's migrations); not replaying parked events");
                    *replay = false;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(if full || replay_full {
            Round::More
        } else {
            Round::CaughtUp { empty: !any }
        })
    }

    /// Hands one event to the handler, retrying with backoff.
    async fn process<H: Handler, F: Future<Output = ()>>(
        &self,
        handler: &H,
        raw: RawEvent,
        stop: &mut Stop<F>,
    ) -> Outcome {
        let event = match raw.decode() {
            Ok(event) => event,
            Err(e) => {
                crate::log_warn!(consumer = %self.name, error = %e, "outbox consumer: parking an event whose payload does not decode");
                return Outcome::Failed(e.to_string());
            }
        };
        let policy = &self.options.retry;
        let mut attempt = 1;
        loop {
            match handler.handle(&event).await {
                Ok(()) => return Outcome::Handled,
                Err(e) => {
                    let error = e.to_string();
                    if attempt >= policy.max_attempts.max(1) {
                        crate::log_warn!(consumer = %self.name, event = %event.id, r#type = event.event_type(), attempts = attempt, %error, "outbox consumer: parking an event whose handler keeps failing");
                        return Outcome::Failed(error);
                    }
                    let delay = policy.delay(attempt);
                    crate::log_debug!(consumer = %self.name, event = %event.id, attempt, ?delay, %error, "outbox consumer: handler failed; retrying");
                    if stop.sleep(delay).await {
                        return Outcome::Stopped;
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// Parks an event and acks up to it, in one transaction: a crash in between neither loses
    /// the event nor parks it twice.
    async fn park_and_ack(&self, id: uuid::Uuid, error: &str, to: Position) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|source| Error::Query {
            op: "beginning a transaction to park an event",
            source,
        })?;
        sql::park(&mut *tx, &self.name, id, error).await?;
        sql::ack(&mut *tx, &self.name, to).await?;
        tx.commit().await.map_err(|source| Error::Query {
            op: "committing a parked event",
            source,
        })
    }
}

enum Round {
    /// A batch was full: poll again at once.
    More,
    /// Less than a batch; `empty` when nothing at all came back.
    CaughtUp { empty: bool },
    /// The stop future completed.
    Stopped,
}

enum Outcome {
    Handled,
    /// The last attempt's error.
    Failed(String),
    Stopped,
}

enum Wake {
    Notified,
    Timer,
    Stopped,
}

/// The caller's stop future, polled without ever being polled again once complete.
struct Stop<F> {
    future: Pin<Box<F>>,
    fired: bool,
}

impl<F: Future<Output = ()>> Stop<F> {
    fn new(future: F) -> Self {
        Self {
            future: Box::pin(future),
            fired: false,
        }
    }

    /// Whether it has completed (polls it once).
    async fn fired(&mut self) -> bool {
        if !self.fired {
            let future = &mut self.future;
            self.fired =
                std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_ready())).await;
        }
        self.fired
    }

    /// Sleeps `delay`; true if stopped meanwhile.
    async fn sleep(&mut self, delay: Duration) -> bool {
        if self.fired {
            return true;
        }
        tokio::select! {
            () = self.future.as_mut() => {
                self.fired = true;
                true
            }
            () = tokio::time::sleep(delay) => false,
        }
    }

    /// Waits for a notification, `delay`, or the stop.
    async fn wait(&mut self, notify: &Notify, delay: Duration) -> Wake {
        if self.fired {
            return Wake::Stopped;
        }
        tokio::select! {
            () = self.future.as_mut() => {
                self.fired = true;
                Wake::Stopped
            }
            () = notify.notified() => Wake::Notified,
            () = tokio::time::sleep(delay) => Wake::Timer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_delay_up_to_the_maximum() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        let delays: Vec<u128> = (1..=6).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(200), Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn a_stop_future_is_seen_once_complete_and_never_polled_again() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut stop = Stop::new(async move {
            let _ = rx.await;
        });
        assert!(!stop.fired().await);
        assert!(!stop.sleep(Duration::from_millis(1)).await);
        tx.send(()).unwrap();
        assert!(stop.sleep(Duration::from_secs(60)).await);
        assert!(stop.fired().await);
        assert!(matches!(
            stop.wait(&Notify::new(), Duration::from_secs(60)).await,
            Wake::Stopped
        ));
    }
}
