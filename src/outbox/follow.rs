//! Following the outbox: poll, and when caught up, wait for a wake-up instead of polling in a
//! tight loop.

use std::time::Duration;

use crate::store::Error;
use crate::store::outbox::Event;

use super::{Source, Wake, Waker};

/// The first re-poll after a notification whose events are still behind the visibility fence;
/// the delay doubles up to [`FENCE_RETRY_MAX`] (or the polling interval, if shorter).
const FENCE_RETRY: Duration = Duration::from_millis(5);

/// The longest re-poll delay while events wait behind the fence: two small indexed queries
/// per consumer four times a second, for as long as some write transaction holds the fence.
const FENCE_RETRY_MAX: Duration = Duration::from_millis(250);

/// Drives a [`Source`] with a [`Waker`]: [`Follower::next_batch`] returns as soon as there
/// are events, and otherwise sleeps until a notification or the polling interval.
///
/// A notification can arrive while its events are not deliverable yet, because a transaction
/// that started earlier (anywhere on the server) is still open and holds the visibility fence.
/// The follower then re-polls after 5 ms, 10 ms, 20 ms, ... (at most 250 ms, or the polling
/// interval if shorter) while events wait behind the fence, so that they are delivered soon
/// after it lifts.
///
/// Transient database errors (a restart, a lost connection) are logged and retried at the
/// polling interval; other errors are returned.
#[derive(Debug)]
pub struct Follower<S> {
    source: S,
    waker: Waker,
    batch: u32,
}

impl<S: Source> Follower<S> {
    /// Follows `source`, fetching up to `batch` events per poll.
    pub fn new(source: S, waker: Waker, batch: u32) -> Self {
        Self {
            source,
            waker,
            batch: batch.max(1),
        }
    }

    /// The source, e.g. to ack a [`super::Consumer`]'s events.
    pub fn source(&mut self) -> &mut S {
        &mut self.source
    }

    /// The waker (whether LISTEN is in use, the polling interval).
    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    /// The next non-empty batch of at most `max` events (the configured batch if larger),
    /// waiting as long as it takes.
    pub async fn next_batch_of(&mut self, max: u32) -> Result<Vec<Event>, Error> {
        let max = max.clamp(1, self.batch);
        let longest = self.waker.interval().min(FENCE_RETRY_MAX);
        // Set while notified events wait behind the fence: the next re-poll delay.
        let mut fence_retry: Option<Duration> = None;
        // Events may already wait behind the fence, their notifications consumed earlier.
        let mut notified = true;
        loop {
            // Look behind the fence before polling, not after: an event that is not in the
            // poll's result and was not behind the fence before it committed after the check,
            // and its commit notifies. (Checking after the poll would miss a fence that lifted
            // in between, and leave its events waiting for the polling interval.)
            let waiting = if notified || fence_retry.is_some() {
                self.source.behind_fence().await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "checking the outbox visibility fence failed");
                    false
                })
            } else {
                false
            };
            match self.source.poll(max).await {
                Ok(events) if !events.is_empty() => return Ok(events),
                Ok(_) => {
                    fence_retry = waiting.then(|| {
                        fence_retry.map_or(FENCE_RETRY.min(longest), |d| (d * 2).min(longest))
                    });
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "polling the outbox failed; retrying");
                    fence_retry = None;
                }
                Err(e) => return Err(e),
            }
            notified = match fence_retry {
                Some(delay) => {
                    tracing::trace!(?delay, "events wait behind the visibility fence");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => false,
                        wake = self.waker.wait() => wake == Wake::Notified,
                    }
                }
                None => self.waker.wait().await == Wake::Notified,
            };
        }
    }

    /// The next non-empty batch, waiting as long as it takes.
    pub async fn next_batch(&mut self) -> Result<Vec<Event>, Error> {
        self.next_batch_of(self.batch).await
    }
}
