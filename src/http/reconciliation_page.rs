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
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::config::{Secret, Settings};
use crate::report;
use crate::sync::Clock;

/// What the page needs: the database, the token, and the default date range.
#[derive(Clone)]
pub struct ReconciliationPage {
    pool: PgPool,
    token: Secret,
    clock: Clock,
    lookback_days: u32,
}

impl ReconciliationPage {
    /// The page as `settings` configure it, or `None` when it is off (or has no token, which
    /// configuration validation already refuses).
    pub fn from_settings(settings: &Settings, pool: PgPool) -> Option<Self> {
        if !settings.http.reconciliation_page {
            return None;
        }
        Some(Self {
            pool,
            token: settings.http.token.clone()?,
            clock: Clock::from_settings(&settings.sync),
            lookback_days: settings.sync.settlements.lookback_days,
        })
    }

    /// The route, to merge into the daemon's router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/reconciliation", get(page))
            .with_state(self)
    }

    /// Whether `headers` carry the token: `Authorization: Bearer <token>`, compared in constant
    /// time.
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
        presented
            .as_bytes()
            .ct_eq(self.token.expose().as_bytes())
            .into()
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
        tracing::warn!(
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
    let from = range
        .from
        .unwrap_or(today - Days::new(page.lookback_days.into()));
    if from > to {
        return (
            StatusCode::BAD_REQUEST,
            format!("from {from} is after to {to}\n"),
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
