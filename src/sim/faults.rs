//! Fault injection for API requests (never the admin routes): with probability `fault_rate`, a
//! 500 or 503 with the documented error body, a 429 with `Retry-After`, a 200 whose body is cut
//! off mid-JSON, or a connection reset (a streamed body that fails mid-way, so hyper aborts the
//! connection). `latency_ms` delays every answer. Faults are counted by kind.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Buf;
use tokio::io::{AsyncRead, ReadBuf};

use super::rng::{SplitMix64, hash2};
use super::routes::json_response;

/// The kinds of injected faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 500 with the documented error body.
    InternalError,
    /// HTTP 503 with the documented error body.
    Unavailable,
    /// HTTP 429 with `Retry-After: <retry_after_secs>`.
    TooManyRequests,
    /// HTTP 200 whose body stops halfway through the JSON.
    CutOff,
    /// The connection is aborted while the body is being sent.
    Reset,
}

impl FaultKind {
    const ALL: [FaultKind; 5] = [
        Self::InternalError,
        Self::Unavailable,
        Self::TooManyRequests,
        Self::CutOff,
        Self::Reset,
    ];
}

/// How many faults of each kind were injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    /// 500s.
    pub internal_error: u64,
    /// 503s.
    pub unavailable: u64,
    /// 429s with `Retry-After`.
    pub too_many_requests: u64,
    /// 200s with a body cut off mid-JSON.
    pub cut_off: u64,
    /// Connections aborted mid-body.
    pub reset: u64,
}

impl FaultCounts {
    /// Every injected fault.
    pub fn total(&self) -> u64 {
        self.internal_error + self.unavailable + self.too_many_requests + self.cut_off + self.reset
    }
}

/// The fault settings (switchable at run time) and counters shared by every request.
#[derive(Debug)]
pub struct FaultState {
    seed: u64,
    rate_bits: AtomicU64,
    latency_ms: AtomicU64,
    retry_after_secs: u64,
    sequence: AtomicU64,
    requests: AtomicU64,
    counts: [AtomicU64; 5],
}

impl FaultState {
    /// Faults at `rate` (0..=1, clamped), `latency_ms` before each answer, `retry_after_secs`
    /// on 429s; the choice of faults is a deterministic sequence derived from `seed`.
    pub fn new(seed: u64, rate: f64, latency_ms: u64, retry_after_secs: u64) -> Self {
        Self {
            seed,
            rate_bits: AtomicU64::new(rate.clamp(0.0, 1.0).to_bits()),
            latency_ms: AtomicU64::new(latency_ms),
            retry_after_secs,
            sequence: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            counts: Default::default(),
        }
    }

    /// Switches the rate and latency (`/_sim/faults`).
    pub fn set(&self, rate: f64, latency_ms: u64) {
        self.rate_bits
            .store(rate.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
        self.latency_ms.store(latency_ms, Ordering::Relaxed);
    }

    /// The current fault rate.
    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }

    /// The current latency in milliseconds.
    pub fn latency_ms(&self) -> u64 {
        self.latency_ms.load(Ordering::Relaxed)
    }

    /// API requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Faults injected so far, by kind.
    pub fn counts(&self) -> FaultCounts {
        let c = |k: FaultKind| self.counts[k as usize].load(Ordering::Relaxed);
        FaultCounts {
            internal_error: c(FaultKind::InternalError),
            unavailable: c(FaultKind::Unavailable),
            too_many_requests: c(FaultKind::TooManyRequests),
            cut_off: c(FaultKind::CutOff),
            reset: c(FaultKind::Reset),
        }
    }

    /// Decides the fate of the next request.
    fn roll(&self) -> Option<FaultKind> {
        let rate = self.rate();
        if rate <= 0.0 {
            return None;
        }
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let mut rng = SplitMix64::new(hash2(self.seed ^ super::data::salt::FAULTS, n));
        if !rng.chance(rate) {
            return None;
        }
        let kind = FaultKind::ALL[rng.below(FaultKind::ALL.len() as u64) as usize];
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
        Some(kind)
    }
}

/// The middleware around every API route: latency, then maybe a fault.
pub async fn inject(State(faults): State<Arc<FaultState>>, req: Request, next: Next) -> Response {
    faults.requests.fetch_add(1, Ordering::Relaxed);
    let latency = faults.latency_ms();
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match faults.roll() {
        None => next.run(req).await,
        Some(FaultKind::InternalError) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            super::encode::error(
                "internal_server_error",
                "We had a problem with our server. Try again later.",
            ),
        ),
        Some(FaultKind::Unavailable) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            super::encode::error(
                "service_unavailable",
                "We're temporarily offline for maintenance. Please try again later.",
            ),
        ),
        Some(FaultKind::TooManyRequests) => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                super::encode::error("too_many_requests", "Rate limit exceeded. Slow down."),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(faults.retry_after_secs));
            response
        }
        Some(FaultKind::CutOff) => {
            let (mut parts, body) = next.run(req).await.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)))
        }
        Some(FaultKind::Reset) => {
            let (mut parts, body) = next.run(req).await.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts.headers.remove(CONTENT_LENGTH);
            let half = bytes.slice(..bytes.len() / 2);
            let stream = tokio_util::io::ReaderStream::new(BreaksMidway { rest: half });
            Response::from_parts(parts, Body::from_stream(stream))
        }
    }
}

/// A reader that yields its bytes, then fails: as a response body, hyper sends the first part
/// and then aborts the connection, which the client sees as a reset mid-body.
struct BreaksMidway {
    rest: Bytes,
}

impl AsyncRead for BreaksMidway {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.rest.is_empty() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "simulated connection reset",
            )));
        }
        let n = buf.remaining().min(self.rest.len());
        buf.put_slice(&self.rest[..n]);
        self.rest.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_respected_and_every_kind_occurs() {
        let f = FaultState::new(9, 0.2, 0, 1);
        let faults = (0..10_000).filter(|_| f.roll().is_some()).count();
        assert!((1700..2300).contains(&faults), "{faults}");
        let c = f.counts();
        assert_eq!(c.total() as usize, faults);
        for n in [
            c.internal_error,
            c.unavailable,
            c.too_many_requests,
            c.cut_off,
            c.reset,
        ] {
            assert!(n > 250, "{c:?}");
        }
        let none = FaultState::new(9, 0.0, 0, 1);
        assert!((0..1000).all(|_| none.roll().is_none()));
    }
}
