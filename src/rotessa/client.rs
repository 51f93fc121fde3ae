//! The HTTP client for Rotessa: the auth header, v1/v2 paths, parameters as a query string,
//! timeouts, and the retry policy around every request.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::error::ApiError;
use super::retry::{parse_retry_after, with_retry};
use super::wire::{
    ParsedRows, RejectedRow, WireClient, WireCustomer, WirePayout, WireSettlement, WireTransaction,
    digest, parse_private_rows, parse_report_page, parse_rows, snippet,
};
use super::{Error, PageStream};
use crate::config::{ApiVersion, RetrySettings, RotessaSettings, Secret};

/// Which report a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `transaction_report`, filtered by process date, status `All`.
    Transactions,
    /// `transaction_decline_report`, filtered by decline date (v2, per client).
    Declines,
}

/// One paged report query: which report, for which client, over which dates (inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    pub kind: ReportKind,
    /// `None` reads the account-wide report (all clients on v2, the merchant on v1).
    pub client_id: Option<i64>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

/// A page the caller has already applied: the digest of its body and how many rows it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPage {
    pub digest: i64,
    pub rows: usize,
}

/// Known pages of one report request, by page number.
pub type KnownPages = std::collections::HashMap<u32, KnownPage>;

/// The caller's validation of each report row (wire row in, domain row or a reason out).
pub type RowConverter<T> = Arc<dyn Fn(WireTransaction) -> Result<T, String> + Send + Sync>;

/// A Rotessa API client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The key, only to scrub it from error text a misbehaving server might echo back.
    key: Secret,
    /// Request slots shared by every window and client: at most `rotessa.concurrency`
    /// requests are in flight at once.
    slots: tokio::sync::Semaphore,
    base_url: String,
    version: ApiVersion,
    auth: HeaderValue,
    retry: RetrySettings,
    page_size: usize,
    max_pages: u32,
    prefetch_pages: usize,
}

impl Client {
    /// Builds a client from the settings and the API key.
    pub fn new(settings: &RotessaSettings, api_key: &Secret) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout())
            .connect_timeout(settings.connect_timeout())
            // The key must only ever reach the configured host: never follow a redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rotessa-recon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Setup(format!("cannot build the HTTP client: {e}")))?;
        let mut auth = HeaderValue::from_str(&format!("Token token=\"{}\"", api_key.expose()))
            .map_err(|_| {
                Error::Setup("the API key contains characters not allowed in a header".into())
            })?;
        auth.set_sensitive(true);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                key: api_key.clone(),
                slots: tokio::sync::Semaphore::new(settings.concurrency.max(1)),
                base_url: settings.base_url.trim_end_matches('/').to_owned(),
                version: settings.api_version,
                auth,
                retry: settings.retry.clone(),
                page_size: settings.page_size,
                max_pages: settings.max_pages,
                prefetch_pages: settings.prefetch_pages,
            }),
        })
    }

    /// The API version this client speaks.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.version
    }

    /// Rows per full page: a shorter page is the last.
    pub fn page_size(&self) -> usize {
        self.inner.page_size
    }

    /// The most pages one report window may have.
    pub fn max_pages(&self) -> u32 {
        self.inner.max_pages
    }

    /// Pages fetched ahead of the consumer.
    pub fn prefetch_pages(&self) -> usize {
        self.inner.prefetch_pages
    }

    /// Pages through a report, fetching ahead of the consumer (see [`PageStream`]). Each row
    /// goes through `convert` in the fetching task, off the consumer's path. A page whose body
    /// is byte-identical to its entry in `known` is not parsed.
    pub fn report_pages<T: Send + 'static>(
        &self,
        request: ReportRequest,
        convert: RowConverter<T>,
        known: KnownPages,
    ) -> PageStream<T> {
        PageStream::spawn(self.clone(), request, convert, known)
    }

    /// Fetches and parses one page of a report, with retries; when the body is byte-identical
    /// to `known`, returns it unparsed ([`ParsedRows::identical`]).
    pub async fn report_page<T>(
        &self,
        request: &ReportRequest,
        page: u32,
        convert: &RowConverter<T>,
        known: Option<KnownPage>,
    ) -> Result<ParsedRows<T>, Error> {
        let (endpoint, path) = self.report_path(request)?;
        let mut query = vec![
            ("start_date", request.start_date.to_string()),
            ("end_date", request.end_date.to_string()),
            ("page", page.to_string()),
        ];
        if request.kind == ReportKind::Transactions {
            query.push(("status", "All".to_owned()));
            if self.inner.version == ApiVersion::V1 {
                // v1's curl example calls the filter `filter`; its table calls it `status`.
                query.push(("filter", "All".to_owned()));
            }
        }
        with_retry(&self.inner.retry, endpoint, Some(page), || async {
            let body = self
                .send(endpoint, Method::GET, &path, &query, None)
                .await?;
            if let Some(known) = known.filter(|k| k.digest == digest(&body)) {
                return Ok(ParsedRows::identical(known.digest, known.rows));
            }
            parse_report_page(&body, |row| convert(row))
                .map_err(|detail| Error::Body { endpoint, detail })
        })
        .await
    }

    /// The platform's clients (`GET /v2/clients`), each row parsed on its own.
    pub async fn clients(&self) -> Result<(Vec<WireClient>, Vec<RejectedRow>), Error> {
        const ENDPOINT: &str = "clients";
        self.require_v2(ENDPOINT)?;
        with_retry(&self.inner.retry, ENDPOINT, None, || async {
            let body = self
                .send(ENDPOINT, Method::GET, "/v2/clients", &[], None)
                .await?;
            parse_rows(&body, WireClient::parse).map_err(|detail| Error::Body {
                endpoint: ENDPOINT,
                detail,
            })
        })
        .await
    }

    /// One client's settlement totals by settlement date, `from..=to`.
    pub async fn settlements(
        &self,
        client_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Vec<WireSettlement>, Vec<RejectedRow>), Error> {
        const ENDPOINT: &str = "settlements";
        self.require_v2(ENDPOINT)?;
        let path = format!("/v2/clients/{client_id}/settlements/show_by_settlement_date");
        let body = serde_json::json!({
            "start_date": from.to_string(),
            "end_date": to.to_string(),
        });
        with_retry(&self.inner.retry, ENDPOINT, None, || async {
            let bytes = self
                .send(ENDPOINT, Method::POST, &path, &[], Some(&body))
                .await?;
            parse_rows(&bytes, WireSettlement::parse).map_err(|detail| Error::Body {
                endpoint: ENDPOINT,
                detail,
            })
        })
        .await
    }

    /// A client's customers with their nested schedules (`GET /v2/clients/{id}/customers`), or
    /// on a v1 account the merchant's (`GET /v1/customers`, `client_id` ignored): one request,
    /// never one per customer. Each row is parsed on its own.
    pub async fn customers(
        &self,
        client_id: Option<i64>,
    ) -> Result<(Vec<WireCustomer>, Vec<RejectedRow>), Error> {
        let (endpoint, path) = match (self.inner.version, client_id) {
            (ApiVersion::V1, _) => ("v1_customers", "/v1/customers".to_owned()),
            (ApiVersion::V2, Some(id)) => ("customers", format!("/v2/clients/{id}/customers")),
            (ApiVersion::V2, None) => {
                return Err(Error::Setup(
                    "the v2 customer list is per client: a client id is needed".into(),
                ));
            }
        };
        with_retry(&self.inner.retry, endpoint, None, || async {
            let body = self.send(endpoint, Method::GET, &path, &[], None).await?;
            parse_private_rows(&body, WireCustomer::parse)
                .map_err(|detail| Error::Body { endpoint, detail })
        })
        .await
    }

    /// The platform's payouts between two dates (`GET /v2/payout_report`), parameters as a
    /// query string like the reports'.
    pub async fn payout_report(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Vec<WirePayout>, Vec<RejectedRow>), Error> {
        const ENDPOINT: &str = "payout_report";
        self.require_v2(ENDPOINT)?;
        let query = [
            ("start_date", from.to_string()),
            ("end_date", to.to_string()),
        ];
        with_retry(&self.inner.retry, ENDPOINT, None, || async {
            let body = self
                .send(ENDPOINT, Method::GET, "/v2/payout_report", &query, None)
                .await?;
            parse_private_rows(&body, WirePayout::parse).map_err(|detail| Error::Body {
                endpoint: ENDPOINT,
                detail,
            })
        })
        .await
    }

    fn require_v2(&self, endpoint: &'static str) -> Result<(), Error> {
        match self.inner.version {
            ApiVersion::V2 => Ok(()),
            ApiVersion::V1 => Err(Error::Setup(format!(
                "{endpoint} needs the v2 platform API (rotessa.api_version = \"v2\")"
            ))),
        }
    }

    fn report_path(&self, request: &ReportRequest) -> Result<(&'static str, String), Error> {
        match (request.kind, self.inner.version, request.client_id) {
            (ReportKind::Transactions, ApiVersion::V1, _) => {
                Ok(("v1_transaction_report", "/v1/transaction_report".into()))
            }
            (ReportKind::Transactions, ApiVersion::V2, None) => {
                Ok(("transaction_report", "/v2/transaction_report".into()))
            }
            (ReportKind::Transactions, ApiVersion::V2, Some(id)) => Ok((
                "client_transaction_report",
                format!("/v2/clients/{id}/transaction_report"),
            )),
            (ReportKind::Declines, ApiVersion::V2, Some(id)) => Ok((
                "transaction_decline_report",
                format!("/v2/clients/{id}/transaction_decline_report"),
            )),
            (ReportKind::Declines, _, _) => Err(Error::Setup(
                "the decline report needs the v2 API and a client id".into(),
            )),
        }
    }

    /// One attempt: send, check the status, read the whole body.
    async fn send(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        json: Option<&serde_json::Value>,
    ) -> Result<Bytes, Error> {
        // A slot for this attempt only: a retry's backoff does not hold one.
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| Error::Setup("the request slots were closed".into()))?;
        let url = format!("{}{}", self.inner.base_url, path);
        let mut request = self
            .inner
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.inner.auth.clone())
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(json) = json {
            request = request.json(json);
        }
        let transport = |source| Error::Transport { endpoint, source };
        let started = std::time::Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                count_request(endpoint, "error", started);
                return Err(transport(e));
            }
        };
        let status = response.status();
        // The `rotessa.request` span of this attempt (see `retry`).
        tracing::Span::current().record("status", i64::from(status.as_u16()));
        if status.is_success() {
            let body = response.bytes().await;
            count_request(endpoint, status.as_str(), started);
            return body.map_err(transport);
        }
        count_request(endpoint, status.as_str(), started);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let body = response.bytes().await.unwrap_or_default();
        let key = self.inner.key.expose();
        let mut errors = api_errors(status, &body);
        for e in &mut errors {
            if !key.is_empty() {
                e.error_code = e.error_code.replace(key, "[redacted]");
                e.error_message = e.error_message.replace(key, "[redacted]");
            }
        }
        Err(Error::Status {
            endpoint,
            status: status.as_u16(),
            errors,
            retry_after,
        })
    }
}

/// Counts a finished request and records how long it took (the whole body, for a success).
fn count_request(endpoint: &'static str, status: &str, started: std::time::Instant) {
    metrics::counter!(
        "rotessa_api_requests_total",
        "endpoint" => endpoint,
        "status" => status.to_owned()
    )
    .increment(1);
    metrics::histogram!("rotessa_api_request_duration_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
}

/// Every `endpoint` label requests carry, so that the daemon can create the series alerts
/// depend on (`status` 401 and 403) at 0 before the first request.
pub const ENDPOINTS: &[&str] = &[
    "clients",
    "settlements",
    "transaction_report",
    "v1_transaction_report",
    "client_transaction_report",
    "transaction_decline_report",
    "customers",
    "v1_customers",
    "payout_report",
];

/// The documented `{"errors":[...]}` body, or the start of whatever came instead.
fn api_errors(status: StatusCode, body: &[u8]) -> Vec<ApiError> {
    #[derive(Deserialize)]
    struct Body {
        errors: Vec<ApiError>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => b.errors,
        Err(_) if body.is_empty() => Vec::new(),
        Err(_) => vec![ApiError {
            error_code: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase(),
            error_message: snippet(body),
        }],
    }
}
