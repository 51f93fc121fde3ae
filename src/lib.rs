//! rotessa-recon: keeps a PostgreSQL database reconciled with Rotessa.
//!
//! Data flows one way: [`rotessa`] (HTTP, paging, retries, lenient parsing) -> [`sync`]
//! (streams, windows, status rules) -> [`store`] (one transaction per page) -> PostgreSQL.
//! [`cli`] drives it; [`config`] and [`telemetry`] set it up. [`outbox`] is for the other side:
//! systems that consume the events. [`sim`] is a local stand-in for the Rotessa API, used only
//! by `sim`, `demo`, tests and benchmarks. [`daemon`] runs it as a service, with [`scheduler`]
//! and [`http`]; [`domain`] holds the types every layer shares, and [`cron`] what a valid
//! schedule is.

pub mod cli;
pub mod config;
pub mod cron;
pub mod daemon;
pub mod domain;
mod error_chain;
pub mod http;
pub mod outbox;
pub mod relay;
pub mod report;
pub mod rotessa;
pub mod scheduler;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;

pub use error_chain::error_chain;
