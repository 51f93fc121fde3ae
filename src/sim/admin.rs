//! The admin routes under `/_sim/` (no auth, never faulted): move the clock, read the state,
//! switch faults, and skew a settlement so tests and demos can produce a reconciliation
//! mismatch. Parameters come from the query string or a JSON body; answers are JSON.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::calendar::{date_of, day_of};
use super::params::{ApiError, Params};
use super::reports::status_counts;
use super::routes::{error_response, json_response};
use super::server::Shared;

/// The admin router, to be nested under `/_sim`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/advance", post(advance))
        .route("/state", get(state))
        .route("/faults", post(faults))
        .route("/settlement_adjust", post(settlement_adjust))
        .fallback(|| async {
            error_response(&ApiError::not_found(
                "Admin routes: POST /_sim/advance, GET /_sim/state, POST /_sim/faults, POST /_sim/settlement_adjust",
            ))
        })
        .with_state(shared)
}

fn ok(value: serde_json::Value) -> Response {
    json_response(StatusCode::OK, value.to_string().into_bytes())
}

fn answer(result: Result<serde_json::Value, ApiError>) -> Response {
    match result {
        Ok(v) => ok(v),
        Err(e) => error_response(&e),
    }
}

fn number<T: std::str::FromStr>(
    p: &Params,
    name: &'static str,
    default: Option<T>,
) -> Result<T, ApiError> {
    match (p.get(name), default) {
        (None, Some(d)) => Ok(d),
        (None, None) => Err(ApiError::bad_request(
            "missing_parameter",
            format!("{name} is required"),
        )),
        (Some(text), _) => text.trim().parse().map_err(|_| {
            ApiError::unprocessable("invalid_parameter", format!("{name} {text:?} is not valid"))
        }),
    }
}

/// `POST /_sim/advance?days=N` (default 1, 0..=3650): moves the clock forward.
async fn advance(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let days: u32 = number(&p, "days", Some(1))?;
        if days > 3650 {
            return Err(ApiError::unprocessable(
                "invalid_parameter",
                "days must be 0..=3650 (the clock only moves forward)",
            ));
        }
        let today = date_of(shared.advance(days));
        tracing::info!(%today, days, "simulated clock advanced");
        Ok(json!({ "today": today.to_string() }))
    }))
}

/// `GET /_sim/state`: today, sizes, statuses today, requests served and faults injected.
async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let today = shared.today_day();
    let data = &shared.data;
    let statuses: serde_json::Map<String, serde_json::Value> = status_counts(data, today)
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    let faults = shared.faults.counts();
    ok(json!({
        "today": date_of(today).to_string(),
        "seed": shared.config.seed,
        "clients": data.client_ids,
        "customers": data.customer_client.len(),
        "transactions": data.txs.len(),
        "statuses": statuses,
        "requests_served": shared.faults.requests(),
        "faults_injected": faults,
        "faults_total": faults.total(),
        "fault_rate": shared.faults.rate(),
        "latency_ms": shared.faults.latency_ms(),
        "data_heap_bytes": data.heap_bytes(),
    }))
}

/// `POST /_sim/faults?rate=0.2&latency_ms=50`: switches faults; omitted values stay.
async fn faults(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let rate: f64 = number(&p, "rate", Some(shared.faults.rate()))?;
        let latency: u64 = number(&p, "latency_ms", Some(shared.faults.latency_ms()))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(ApiError::unprocessable(
                "invalid_parameter",
                "rate must be between 0 and 1",
            ));
        }
        shared.faults.set(rate, latency);
        tracing::info!(rate, latency_ms = latency, "fault injection switched");
        Ok(json!({ "fault_rate": rate, "latency_ms": latency }))
    }))
}

/// `POST /_sim/settlement_adjust?client=ID&date=YYYY-MM-DD&cents=N`: adds N cents to that
/// settlement's `total_approved` (cumulative; negative values subtract).
async fn settlement_adjust(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let client_id: i64 = number(&p, "client", None)?;
        let client = shared.data.client_index(client_id).ok_or_else(|| {
            ApiError::not_found(format!("Client {client_id} could not be found."))
        })?;
        let date = p.date("date", true)?.map_or(shared.today_day(), day_of);
        let cents: i64 = number(&p, "cents", None)?;
        let mut map = shared.adjustments.lock().map_err(|_| ApiError {
            status: 500,
            code: "internal_server_error",
            message: "adjustments lock poisoned".into(),
        })?;
        let total = map.entry((client, date)).or_insert(0);
        *total += cents;
        Ok(json!({
            "client": client_id,
            "date": date_of(date).to_string(),
            "adjust_cents": *total,
        }))
    }))
}
