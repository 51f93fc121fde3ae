//! Wire types: what Rotessa sends, parsed leniently one row at a time.
//!
//! A body is split into raw rows first, so one bad row never costs the others: it comes back as a
//! [`RejectedRow`] with its raw JSON and the reason. Only a body that is not a JSON array at all
//! fails as a whole (the transient case: cut off, an HTML error page).

mod client;
mod customer;
mod fields;
mod payout;
mod settlement;
mod transaction;

pub use client::WireClient;
pub use customer::{WireCustomer, WireSchedule};
pub use payout::{PayoutTransaction, WirePayout};
pub use settlement::WireSettlement;
pub use transaction::{ParsedRows, WireTransaction, digest, parse_report_page};

use serde_json::value::RawValue;

/// A row that could not be parsed: what was sent, and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub raw: String,
    pub error: String,
}

/// Splits a body that must be a JSON array into its raw rows.
fn split_array(body: &[u8]) -> Result<Vec<&RawValue>, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "expected a JSON array of rows ({e}); body starts with {:?}",
            snippet(body)
        )
    })
}

/// Parses every row of an array body with `parse`; rows that fail are rejected one by one.
pub fn parse_rows<T>(
    body: &[u8],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(Vec<T>, Vec<RejectedRow>), String> {
    collect_rows(split_array(body)?, parse)
}

/// [`parse_rows`] for bodies that carry personal data (customer lists, payouts with their
/// customers): an error never quotes the body.
pub fn parse_private_rows<T>(
    body: &[u8],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(Vec<T>, Vec<RejectedRow>), String> {
    let raws: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        format!(
            "expected a JSON array of rows ({e}); {} bytes, not quoted: they hold personal data",
            body.len()
        )
    })?;
    collect_rows(raws, parse)
}

fn collect_rows<T>(
    raws: Vec<&RawValue>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(Vec<T>, Vec<RejectedRow>), String> {
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    for raw in raws {
        match parse(raw.get()) {
            Ok(row) => rows.push(row),
            Err(error) => rejected.push(RejectedRow {
                raw: raw.get().to_owned(),
                error,
            }),
        }
    }
    Ok((rows, rejected))
}

/// The first bytes of a body on one line, for error messages and logs.
pub fn snippet(body: &[u8]) -> String {
    let head = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let text = head.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > 120 {
        format!("{text}…")
    } else {
        text
    }
}
