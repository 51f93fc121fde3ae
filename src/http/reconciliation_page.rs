//! `GET /reconciliation`: the reconciliation report page (`crate::report`) on the daemon's
//! listener. An account's finances: routed only when `http.reconciliation_page` is on, and then
//! every request must carry `Authorization: Bearer <token>` (compared in constant time; the
//! token is never logged). It only reads, in a read-only transaction.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::config::{DatabaseSettings, Secret, Settings};
use crate::report;
use crate::store::Store;
use crate::sync::Clock;

/// The longest range one request may ask for: a page is read in one transaction.
pub const MAX_RANGE_DAYS: i64 = 400;

/// What the page needs: a pool of its own, the token, and the default date range.
#[derive(Clone)]
pub struct ReconciliationPage {
    pool: PgPool,
    token: Secret,
    clock: Clock,
    lookback_days: u32,
}

impl ReconciliationPage {
    /// The page as `settings` configure it, or `None` when it is off (or its token was not
    /// read, which `run` does first). It reads through two connections of its own, so that
    /// page requests never hold the sync's connections.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, crate::store::Error> {
        let (true, Some(token)) = (
            settings.http.reconciliation_page,
            settings.http.token.clone(),
        ) else {
            return Ok(None);
        };
        let store = Store::connect_lazy(&DatabaseSettings {
            max_connections: 2,
            acquire_timeout_secs: 5,
            ..settings.database.clone()
        })?;
        Ok(Some(Self {
            pool: store.pool().clone(),
            token,
            clock: Clock::from_settings(&settings.sync),
            lookback_days: settings.sync.settlements.lookback_days,
        }))
    }

    /// The route, to merge into the daemon's router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/reconciliation", get(page))
            .with_state(self)
    }

    /// Whether `headers` carry the token: `Authorization: Bearer <token>`. The SHA-256 digests
    /// of both are compared in constant time, so neither the content nor the length of the
    /// token shows in the time taken.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
        else {
            return false;
        };
        let presented = Sha256::digest(presented.as_bytes());
        let expected = Sha256::digest(self.token.expose().as_bytes());
        presented.ct_eq(&expected).into()
    }
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD&client=ID`, as `reconcile --html` takes them.
#[derive(Debug, Deserialize)]
struct Range {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    client: Option<i64>,
}

async fn page(
    State(page): State<ReconciliationPage>,
    headers: HeaderMap,
    range: Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !page.authorized(&headers) {
        metrics::counter!("rotessa_http_unauthorized_total", "path" => "/reconciliation")
            .increment(1);
        // Debug, not warn: anyone who reaches the port could fill the logs; the counter counts.
        tracing::debug!(
            path = "/reconciliation",
            "request without the page's bearer token refused"
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rotessa-recon\""),
            )],
            "a bearer token is required (Authorization: Bearer <token of http.token_file>)\n",
        )
            .into_response();
    }
    let Ok(Query(range)) = range else {
        return (
            StatusCode::BAD_REQUEST,
            "from and to are dates (YYYY-MM-DD), client a number\n",
        )
            .into_response();
    };
    let today = page.clock.today();
    let to = range.to.unwrap_or(today);
    let Some(from) = range.from.or_else(|| {
        to.min(today)
            .checked_sub_days(Days::new(page.lookback_days.into()))
    }) else {
        return (StatusCode::BAD_REQUEST, "from is out of range\n").into_response();
    };
    if from > to {
        return (
            StatusCode::BAD_REQUEST,
            format!("from {from} is after to {to}\n"),
        )
            .into_response();
    }
    if (to - from).num_days() > MAX_RANGE_DAYS {
        return (
            StatusCode::BAD_REQUEST,
            format!("from {from} to {to} is more than {MAX_RANGE_DAYS} days: ask for less\n"),
        )
            .into_response();
    }
    match report::gather(&page.pool, range.client, from, to).await {
        Ok(report) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    report::html::CONTENT_SECURITY_POLICY,
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            report::html::render(&report),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %crate::error_chain(&e), "reconciliation page failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the reconciliation could not be read from the database; see the daemon's log\n",
            )
                .into_response()
        }
    }
}
