//! The retry policy (SPEC.md "Retry policy"): exponential backoff with jitter, `Retry-After`
//! honoured, every retry logged with its cause and counted. Built on `backon`. Each attempt runs
//! in a `rotessa.request` span (endpoint, page, attempt; the client records the HTTP status).

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::Error;
use crate::config::RetrySettings;

/// Runs `op` until it succeeds, fails finally, or the retries run out; `page` is the report
/// page asked for, if any (for the span).
pub async fn with_retry<T, F, Fut>(
    settings: &RetrySettings,
    endpoint: &'static str,
    page: Option<u32>,
    mut op: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let max_retry_after = Duration::from_secs(settings.max_retry_after_secs);
    let mut retries = 0usize;
    let mut attempt = 0u32;
    let attempt_in_span = || {
        attempt += 1;
        let span = tracing::info_span!(
            "rotessa.request",
            otel.kind = "client",
            endpoint,
            page = tracing::field::Empty,
            // Integers as i64: OpenTelemetry attributes have no unsigned type.
            attempt = i64::from(attempt),
            status = tracing::field::Empty,
            error = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        if let Some(page) = page {
            span.record("page", i64::from(page));
        }
        let fut = op();
        async move {
            let result = fut.await;
            if let Err(e) = &result {
                let span = tracing::Span::current();
                span.record("error", e.cause());
                span.record("otel.status_code", "ERROR");
            }
            result
        }
        .instrument(span)
    };
    let result = attempt_in_span
        .retry(backoff(settings))
        .when(Error::is_transient)
        .adjust(|err, delay| {
            // `None` means the retries are spent; otherwise the server's wish wins.
            delay.map(|d| err.retry_after().map_or(d, |ra| ra.min(max_retry_after)))
        })
        .notify(|err, delay| {
            retries += 1;
            metrics::counter!(
                "rotessa_api_retries_total",
                "endpoint" => endpoint,
                "cause" => err.cause()
            )
            .increment(1);
            tracing::warn!(
                endpoint,
                cause = err.cause(),
                retry = retries,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying Rotessa request"
            );
        })
        .await;
    result.map_err(|err| {
        if err.is_transient() {
            Error::Exhausted {
                attempts: retries + 1,
                last: Box::new(err),
            }
        } else {
            err
        }
    })
}

fn backoff(settings: &RetrySettings) -> ExponentialBuilder {
    let builder = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(settings.initial_backoff_ms))
        .with_max_delay(Duration::from_millis(
            settings.max_backoff_ms.max(settings.initial_backoff_ms),
        ))
        .with_factor(2.0)
        .with_max_times(settings.max_retries);
    if settings.jitter {
        builder.with_jitter()
    } else {
        builder
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:50Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
