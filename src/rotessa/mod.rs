//! The Rotessa API: HTTP client, wire types, lenient parsing, paging and retries.
//! Knows nothing of the database.

mod client;
mod error;
pub mod lenient;
mod paging;
mod retry;
pub mod wire;

pub use client::{
    Client, ENDPOINTS, KnownPage, KnownPages, ReportKind, ReportRequest, RowConverter,
};
pub use error::{ApiError, Error};
pub use paging::{Page, PageStream};
pub use retry::parse_retry_after;
pub use wire::{
    ParsedRows, PayoutTransaction, RejectedRow, WireClient, WireCustomer, WirePayout, WireSchedule,
    WireSettlement, WireTransaction,
};
