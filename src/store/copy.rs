//! PostgreSQL binary `COPY` data: the fastest way to append a page's rows (new transactions,
//! history, outbox events) inside its transaction. Values are written in each column type's
//! binary wire format ([`CopyValue`]).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::Encode;
use sqlx::PgConnection;
use sqlx::encode::IsNull;
use sqlx::postgres::PgArgumentBuffer;
use uuid::Uuid;

use super::{Error, ResultExt};

const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A value in a column type's binary format, with its length prefix (-1 for NULL).
pub trait CopyValue {
    /// Appends the length-prefixed value to `out`.
    fn write(&self, out: &mut Vec<u8>);
}

fn prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl CopyValue for i64 {
    fn write(&self, out: &mut Vec<u8>) {
        prefixed(out, &self.to_be_bytes());
    }
}

impl CopyValue for &str {
    fn write(&self, out: &mut Vec<u8>) {
        prefixed(out, self.as_bytes());
    }
}

impl CopyValue for NaiveDate {
    /// `date`: days since 2000-01-01.
    fn write(&self, out: &mut Vec<u8>) {
        let days = self.signed_duration_since(PG_EPOCH.date_naive()).num_days();
        prefixed(out, &(days as i32).to_be_bytes());
    }
}

impl CopyValue for DateTime<Utc> {
    /// `timestamptz`: microseconds since 2000-01-01 00:00 UTC.
    fn write(&self, out: &mut Vec<u8>) {
        let micros = (*self - PG_EPOCH).num_microseconds().unwrap_or(i64::MAX);
        prefixed(out, &micros.to_be_bytes());
    }
}

impl CopyValue for Uuid {
    fn write(&self, out: &mut Vec<u8>) {
        prefixed(out, self.as_bytes());
    }
}

impl CopyValue for Decimal {
    /// `numeric`: its base-10000 format is sqlx's to write.
    fn write(&self, out: &mut Vec<u8>) {
        let mut buf = PgArgumentBuffer::default();
        match self.encode_by_ref(&mut buf) {
            Ok(IsNull::No) => prefixed(out, &buf),
            // Encoding a Decimal does not fail; NULL would be the only alternative.
            Ok(IsNull::Yes) | Err(_) => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

impl<T: CopyValue> CopyValue for Option<T> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write(out),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

/// PostgreSQL's epoch for dates and timestamps.
const PG_EPOCH: DateTime<Utc> = DateTime::from_timestamp_nanos(946_684_800_000_000_000);

/// Rows in binary COPY format.
pub struct CopyRows {
    data: Vec<u8>,
    rows: usize,
}

impl CopyRows {
    /// An empty set of rows.
    pub fn new() -> Self {
        Self {
            data: HEADER.to_vec(),
            rows: 0,
        }
    }

    /// Starts a row of `fields` values.
    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.data.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
        self
    }

    /// Appends one value (NULL for `None`), binary-encoded as its column expects.
    pub fn value<T: CopyValue>(&mut self, value: &T) -> &mut Self {
        value.write(&mut self.data);
        self
    }

    /// Appends a NULL.
    pub fn null(&mut self) -> &mut Self {
        self.data.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    /// Appends a `jsonb` value from its JSON text.
    pub fn jsonb(&mut self, json: &[u8]) -> &mut Self {
        let len = json.len() as i32 + 1;
        self.data.extend_from_slice(&len.to_be_bytes());
        self.data.push(1);
        self.data.extend_from_slice(json);
        self
    }

    /// How many rows were added.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Runs `copy_statement` (`COPY t (...) FROM STDIN (FORMAT binary)`) with these rows.
    pub async fn send(
        mut self,
        conn: &mut PgConnection,
        copy_statement: &'static str,
        op: &'static str,
    ) -> Result<u64, Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        self.data.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn.copy_in_raw(copy_statement).await.op(op)?;
        if let Err(source) = copy.send(self.data).await {
            let _ = copy.abort("sending the rows failed").await;
            return Err(Error::Query { op, source });
        }
        copy.finish().await.op(op)
    }
}

impl Default for CopyRows {
    fn default() -> Self {
        Self::new()
    }
}
