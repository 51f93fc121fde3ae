//! Readers of the outbox: a registered [`Consumer`] (position in the database, acked) and an
//! unregistered [`Reader`] (position in memory), behind one [`Source`] trait so that
//! [`super::Follower`] can drive either.

use std::future::Future;

use sqlx::PgPool;

use crate::store::Error;
use crate::store::outbox::{self, Event, Position};
use crate::store::outbox_consumers::{self, StartFrom};

/// Something that hands out the next events in delivery order. Polling does not move the
/// position; acking does, so events polled but never acked come back (at-least-once).
pub trait Source {
    /// Up to `max` events after this source's position, behind the visibility fence; empty
    /// when there is nothing new yet.
    fn poll(&mut self, max: u32) -> impl Future<Output = Result<Vec<Event>, Error>> + Send;

    /// Moves the position forward to `to`, an event that is processed; false when `to` is
    /// not ahead of the position.
    fn ack(&mut self, to: Position) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Whether committed events wait behind the visibility fence (an older transaction is still
    /// open), so that polling again soon will return them.
    fn behind_fence(&mut self) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// A registered consumer: its position is the last event it acked, kept in
/// `rotessa.outbox_consumers`, so it survives restarts and holds events back from retention.
/// Delivery is at-least-once: events polled but not acked (a crash in between) come back on
/// the next poll, so process them idempotently, keyed by [`Event::id`].
#[derive(Debug, Clone)]
pub struct Consumer {
    pool: PgPool,
    name: String,
}

impl Consumer {
    /// Registers `name` if it is not yet (returns whether it was new). Registration is
    /// explicit so that retention only ever waits for consumers someone meant to create.
    pub async fn register(pool: &PgPool, name: &str, start: StartFrom) -> Result<bool, Error> {
        outbox_consumers::register(pool, name, start).await
    }

    /// A handle on the registered consumer `name` (no query; an unregistered name fails on
    /// the first poll with [`Error::UnknownConsumer`]).
    pub fn new(pool: PgPool, name: impl Into<String>) -> Self {
        Self {
            pool,
            name: name.into(),
        }
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `max` events after the acked position. Does not move the position.
    pub async fn poll(&self, max: u32) -> Result<Vec<Event>, Error> {
        outbox_consumers::poll(&self.pool, &self.name, max).await
    }

    /// Records that every event up to `to` is processed. Forward only: returns false when `to`
    /// is not ahead of the stored position.
    pub async fn ack(&self, to: Position) -> Result<bool, Error> {
        outbox_consumers::ack(&self.pool, &self.name, to).await
    }
}

impl Source for Consumer {
    fn poll(&mut self, max: u32) -> impl Future<Output = Result<Vec<Event>, Error>> + Send {
        Consumer::poll(self, max)
    }

    fn ack(&mut self, to: Position) -> impl Future<Output = Result<bool, Error>> + Send {
        Consumer::ack(self, to)
    }

    fn behind_fence(&mut self) -> impl Future<Output = Result<bool, Error>> + Send {
        outbox::behind_fence(&self.pool)
    }
}

/// An unregistered reader: it keeps its position in memory. Nothing is recorded in the
/// database and retention does not wait for it (`outbox tail` without `--consumer`, or a
/// consumer that stores its position with its own data and restarts from there).
#[derive(Debug, Clone)]
pub struct Reader {
    pool: PgPool,
    after: Position,
}

impl Reader {
    /// A reader that returns the events after `after` ([`Position::BEGINNING`] for all).
    pub fn new(pool: PgPool, after: Position) -> Self {
        Self { pool, after }
    }

    /// The last event acked (or the starting position).
    pub fn position(&self) -> Position {
        self.after
    }

    /// Up to `max` events after the position. Does not move it.
    pub async fn poll(&self, max: u32) -> Result<Vec<Event>, Error> {
        outbox::read_after(&self.pool, self.after, max).await
    }

    /// Moves the position forward to `to`; false when `to` is not ahead of it.
    pub fn ack(&mut self, to: Position) -> bool {
        let moved = to > self.after;
        if moved {
            self.after = to;
        }
        moved
    }
}

impl Source for Reader {
    fn poll(&mut self, max: u32) -> impl Future<Output = Result<Vec<Event>, Error>> + Send {
        Reader::poll(self, max)
    }

    fn ack(&mut self, to: Position) -> impl Future<Output = Result<bool, Error>> + Send {
        std::future::ready(Ok(Reader::ack(self, to)))
    }

    fn behind_fence(&mut self) -> impl Future<Output = Result<bool, Error>> + Send {
        outbox::behind_fence(&self.pool)
    }
}
