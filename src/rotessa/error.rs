//! Errors from talking to Rotessa, classified into transient (retried) and final.

use std::time::Duration;

use serde::Deserialize;

use crate::error_chain;

/// One entry of Rotessa's documented error body `{"errors":[{"error_code","error_message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_message: String,
}

/// A failed request or paging sequence. The message names the endpoint and says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with a non-success status.
    #[error("{endpoint}: HTTP {status}{}{}", api_errors_text(.errors), status_hint(*.status))]
    Status {
        endpoint: &'static str,
        status: u16,
        errors: Vec<ApiError>,
        retry_after: Option<Duration>,
    },
    /// The request did not complete: connect failure, timeout, reset, cut-off body.
    #[error("{endpoint}: {}", error_chain(.source))]
    Transport {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The body arrived but is not the JSON shape the endpoint documents.
    #[error("{endpoint}: unexpected response body: {detail}")]
    Body {
        endpoint: &'static str,
        detail: String,
    },
    /// A transient failure that persisted through every retry.
    #[error("{last} (gave up after {attempts} attempts)")]
    Exhausted { attempts: usize, last: Box<Error> },
    /// Page `page` carried exactly the rows of the page before: the server ignores `page`.
    #[error(
        "{endpoint}: page {page} repeats the rows of page {}: the API is not advancing, stopping instead of looping",
        .page - 1
    )]
    PageRepeated { endpoint: &'static str, page: u32 },
    /// More pages than `rotessa.max_pages` in one window.
    #[error(
        "{endpoint}: more than rotessa.max_pages ({max}) pages in one window; raise it or narrow sync.<stream>.window_days"
    )]
    TooManyPages { endpoint: &'static str, max: u32 },
    /// The client cannot be built or the request cannot be made as configured.
    #[error("Rotessa client: {0}")]
    Setup(String),
}

impl Error {
    /// Whether a retry may succeed (SPEC.md "Rotessa API facts"): 5xx, 429 and 408, transport
    /// failures, and bodies that are cut off or of the wrong shape. 4xx and paging guards are final.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Self::Transport { source, .. } => !source.is_builder() && !source.is_redirect(),
            Self::Body { .. } => true,
            Self::Exhausted { .. }
            | Self::PageRepeated { .. }
            | Self::TooManyPages { .. }
            | Self::Setup(_) => false,
        }
    }

    /// The delay the server asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short label of the cause, for retry metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Status { status: 429, .. } => "429",
            Self::Status { status, .. } if *status >= 500 => "5xx",
            Self::Status { .. } => "4xx",
            Self::Transport { source, .. } if source.is_timeout() => "timeout",
            Self::Transport { source, .. } if source.is_connect() => "connect",
            Self::Transport { .. } => "transport",
            Self::Body { .. } => "body",
            Self::Exhausted { .. } => "exhausted",
            Self::PageRepeated { .. } | Self::TooManyPages { .. } => "paging",
            Self::Setup(_) => "setup",
        }
    }

    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }
}

fn api_errors_text(errors: &[ApiError]) -> String {
    errors
        .iter()
        .map(
            |e| match (e.error_code.is_empty(), e.error_message.is_empty()) {
                (false, false) => format!(": {}: {}", e.error_code, e.error_message),
                (true, false) => format!(": {}", e.error_message),
                (false, true) => format!(": {}", e.error_code),
                (true, true) => String::new(),
            },
        )
        .collect()
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 => " (the API key was refused: check ROTESSA_API_KEY / rotessa.api_key)",
        403 => " (the API key may not use this endpoint: check rotessa.api_version)",
        404 => " (check rotessa.base_url, rotessa.api_version and the client id)",
        406 => " (the server would not answer with JSON)",
        400 | 422 => " (the request was refused: check the dates and parameters)",
        300..=399 => " (a redirect, not followed: check rotessa.base_url)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_carry_the_api_message_and_a_hint() {
        let e = Error::Status {
            endpoint: "transaction_report",
            status: 401,
            errors: vec![ApiError {
                error_code: "unauthorized".into(),
                error_message: "Invalid API key".into(),
            }],
            retry_after: None,
        };
        let text = e.to_string();
        assert!(
            text.contains("HTTP 401: unauthorized: Invalid API key"),
            "{text}"
        );
        assert!(text.contains("ROTESSA_API_KEY"), "{text}");
        assert!(!e.is_transient());
    }

    #[test]
    fn transient_classification_follows_the_spec() {
        let status = |s| Error::Status {
            endpoint: "x",
            status: s,
            errors: vec![],
            retry_after: None,
        };
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 404, 406, 422] {
            assert!(!status(s).is_transient(), "{s}");
        }
        assert!(
            Error::Body {
                endpoint: "x",
                detail: "cut".into()
            }
            .is_transient()
        );
        assert!(
            !Error::PageRepeated {
                endpoint: "x",
                page: 2
            }
            .is_transient()
        );
    }
}
