//! Consuming `rotessa.outbox` from Rust: the same SQL contract other languages use
//! (docs/outbox-consumers.md), with a wake-up on `LISTEN rotessa_outbox` and a polling
//! fallback.
//!
//! - [`Consumer`]: a registered consumer whose position lives in `rotessa.outbox_consumers`;
//!   poll, process, ack (at-least-once; deduplicate on [`Event::id`]).
//! - [`Reader`]: an unregistered reader that keeps its position in memory (`outbox tail`
//!   without `--consumer`).
//! - [`Source`]: what both have in common: poll (does not move the position), ack (does).
//! - [`Waker`] and [`Follower`]: wait for new events without busy polling.
//! - [`prune`]: retention, which the daemon runs periodically.
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool, settings: rotessa_recon::config::OutboxSettings)
//! # -> Result<(), rotessa_recon::store::Error> {
//! use rotessa_recon::outbox::{Consumer, Follower, Source, StartFrom, Waker};
//!
//! Consumer::register(&pool, "billing", StartFrom::Beginning).await?;
//! let consumer = Consumer::new(pool.clone(), "billing");
//! let waker = Waker::start(&pool, settings.listen, settings.poll_interval()).await;
//! let mut follower = Follower::new(consumer, waker, settings.poll_batch);
//! loop {
//!     let batch = follower.next_batch().await?;
//!     for event in &batch {
//!         // process `event`, idempotently by `event.id`
//!     }
//!     if let Some(last) = batch.last() {
//!         follower.source().ack(last.position()).await?;
//!     }
//! }
//! # }
//! ```

mod consumer;
mod follow;
mod wake;

pub use consumer::{Consumer, Reader, Source};
pub use follow::Follower;
pub use wake::{Wake, Waker};

pub use crate::store::outbox::{Event, Position};
pub use crate::store::outbox_consumers::{Lag, StartFrom};
pub use crate::store::outbox_retention::{Retention, prune, prune_batch};
