//! The admin routes under `/_sim/` (no auth, never faulted): move the clock, read the state,
//! switch faults, skew a settlement so tests and demos can produce a reconciliation mismatch,
//! and make the two reports disagree on purpose (lag one report for a row, reverse a chargeback,
//! resubmit a decline, stop reporting a row and report it again; see [`super::scenarios`]), and
//! edit a customer or remove a transaction schedule from its customer's list (see
//! [`super::customers`]).
//! Parameters come from the query string or a JSON body; answers are JSON.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::calendar::{date_of, day_of};
use super::lifecycle::SimStatus;
use super::params::{ApiError, Params};
use super::reports::{ids_with_status, removed_ids, status_counts};
use super::routes::{error_response, json_response};
use super::scenarios::{ScenarioError, SimReport, SimRow};
use super::server::Shared;

/// The admin router, to be nested under `/_sim`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/advance", post(advance))
        .route("/state", get(state))
        .route("/faults", post(faults))
        .route("/settlement_adjust", post(settlement_adjust))
        .route("/lag", post(lag))
        .route("/reverse", post(reverse))
        .route("/resubmit", post(resubmit))
        .route("/remove", post(remove))
        .route("/restore", post(restore))
        .route("/transactions", get(transactions))
        .route("/customer", post(customer))
        .route("/schedule_remove", post(schedule_remove))
        .fallback(|| async {
            error_response(&ApiError::not_found(
                "Admin routes: POST /_sim/advance, GET /_sim/state, POST /_sim/faults, \
                 POST /_sim/settlement_adjust, POST /_sim/lag, POST /_sim/reverse, POST /_sim/resubmit, \
                 POST /_sim/remove, POST /_sim/restore, GET /_sim/transactions, \
                 POST /_sim/customer, POST /_sim/schedule_remove",
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

/// `GET /_sim/state`: today, sizes, statuses today (the true view, removed rows apart),
/// requests served, faults injected, the settlement model, and the lagging rows, removed rows
/// and on-demand changes in force.
async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let today = shared.today_day();
    let data = &shared.data;
    let scen = shared.scenarios();
    let statuses: serde_json::Map<String, serde_json::Value> = status_counts(data, &scen, today)
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    let counts = scen.counts(data, today);
    let lagging: serde_json::Map<String, serde_json::Value> = SimReport::ALL
        .into_iter()
        .zip(counts.lagging_rows)
        .map(|(r, n)| (r.as_str().to_owned(), json!(n)))
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
        "report_lag_rate": scen.lag_rate(),
        "report_lag_days": scen.lag_days_setting(),
        "lagging_rows": lagging,
        "lag_settings": counts.lag_settings,
        "reversed": counts.reversed,
        "resubmitted": counts.resubmitted,
        "removal_rate": scen.removal_rate(),
        "removed": {
            "on_demand": counts.removed_on_demand,
            "by_rate": counts.removed_by_rate,
        },
        "restored": counts.restored,
        "customers_edited": counts.customers_edited,
        "schedules_removed": counts.schedules_removed,
        "chargeback_on": shared.config.chargeback_on.as_str(),
        "scenario_version": scen.version(),
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

fn scenario_error(e: ScenarioError) -> ApiError {
    match e {
        ScenarioError::UnknownTransaction(_)
        | ScenarioError::UnknownCustomer(_)
        | ScenarioError::UnknownSchedule(_) => ApiError::not_found(e.to_string()),
        ScenarioError::Invalid(message) => ApiError::unprocessable("invalid_transition", message),
        ScenarioError::BadValue(message) => ApiError::unprocessable("invalid_parameter", message),
    }
}

fn row_json(row: &SimRow) -> serde_json::Value {
    json!({
        "transaction": row.id,
        "status": row.status,
        "status_reason": row.status_reason,
        "process_date": row.process_date.to_string(),
        "settlement_date": row.settlement_date.to_string(),
        "decline_date": row.decline_date.map(|d| d.to_string()),
        "earliest_approval_date": row.earliest_approval_date.map(|d| d.to_string()),
        "updated_at": row.updated_at,
        "removed_on": row.removed_on.map(|d| d.to_string()),
    })
}

/// `POST /_sim/lag?transaction=ID&report=transaction_report|transaction_decline_report&days=N`
/// (days default: `--report-lag-days`; 0 clears): that report shows that row as it was N days
/// earlier.
async fn lag(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let id: i64 = number(&p, "transaction", None)?;
        let report = match p.get("report") {
            None => Err(ApiError::bad_request(
                "missing_parameter",
                "report is required: transaction_report or transaction_decline_report",
            )),
            Some(text) => SimReport::parse(text).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_parameter",
                    format!(
                        "report {text:?} must be transaction_report or transaction_decline_report"
                    ),
                )
            }),
        }?;
        let days: u32 = number(&p, "days", Some(shared.config.report_lag_days))?;
        shared.lag(id, report, days).map_err(scenario_error)?;
        let shows = date_of(shared.today_day() - days.min(3650) as i32);
        tracing::info!(
            transaction = id,
            report = report.as_str(),
            days,
            "report lag set"
        );
        Ok(json!({
            "transaction": id,
            "report": report.as_str(),
            "days": days,
            "shows_as_of": shows.to_string(),
        }))
    }))
}

/// `POST /_sim/reverse?transaction=ID`: reverses a chargeback as of today.
async fn reverse(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let id: i64 = number(&p, "transaction", None)?;
        let row = shared.reverse(id).map_err(scenario_error)?;
        tracing::info!(transaction = id, "chargeback reversed");
        Ok(row_json(&row))
    }))
}

/// `POST /_sim/resubmit?transaction=ID[&process_date=YYYY-MM-DD]`: resubmits a decline as of
/// today (default process date: 5 business days after today).
async fn resubmit(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let id: i64 = number(&p, "transaction", None)?;
        let process_date = p.date("process_date", false)?;
        let row = shared.resubmit(id, process_date).map_err(scenario_error)?;
        tracing::info!(transaction = id, process_date = %row.process_date, "decline resubmitted");
        Ok(row_json(&row))
    }))
}

/// `POST /_sim/remove?transaction=ID`: Rotessa stops reporting the row as of today.
async fn remove(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let id: i64 = number(&p, "transaction", None)?;
        let row = shared.remove(id).map_err(scenario_error)?;
        tracing::info!(transaction = id, status = row.status, "transaction removed");
        Ok(row_json(&row))
    }))
}

/// `POST /_sim/restore?transaction=ID`: a removed row is reported again as of today.
async fn restore(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let id: i64 = number(&p, "transaction", None)?;
        let row = shared.restore(id).map_err(scenario_error)?;
        tracing::info!(
            transaction = id,
            status = row.status,
            "transaction restored"
        );
        Ok(row_json(&row))
    }))
}

/// `GET /_sim/transactions?status=Chargeback[&limit=N]` (limit default 100): the ids of the
/// transactions with that status today in the true view (`Removed`: the rows no report shows
/// today), so that curl users can pick rows to lag, reverse, resubmit, remove or restore.
async fn transactions(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let text = p.get("status").ok_or_else(|| {
            ApiError::bad_request(
                "missing_parameter",
                "status is required: Future, Pending, Approved, Declined, Chargeback or Removed",
            )
        })?;
        let limit: usize = number(&p, "limit", Some(100))?;
        let (data, scen, today) = (&shared.data, shared.scenarios(), shared.today_day());
        let (name, ids) = if text.trim().eq_ignore_ascii_case("removed") {
            ("Removed", removed_ids(data, &scen, today))
        } else {
            let status = SimStatus::ALL
                .into_iter()
                .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_status",
                        format!(
                            "status {text:?} must be one of Future, Pending, Approved, Declined, \
                             Chargeback, Removed"
                        ),
                    )
                })?;
            (status.as_str(), ids_with_status(data, &scen, status, today))
        };
        Ok(json!({
            "status": name,
            "count": ids.len(),
            "ids": &ids[..ids.len().min(limit)],
        }))
    }))
}

/// `POST /_sim/customer` with `{"id": <customer id>, "name"?: "...", "email"?: "..."}` (or the
/// same as a query string): edits that customer as of today; its `updated_at` becomes today.
/// Answers `{"id", "name", "email", "updated_at"}`, the customer as the lists now show it.
async fn customer(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let id: i64 = number(&p, "id", None)?;
        let name = p.get("name").map(str::to_owned);
        let email = p.get("email").map(str::to_owned);
        let edited = shared
            .edit_customer(id, name, email)
            .map_err(scenario_error)?;
        tracing::info!(customer = id, "customer edited");
        Ok(json!({
            "id": edited.id,
            "name": edited.name,
            "email": edited.email,
            "updated_at": edited.updated_at,
        }))
    }))
}

/// `POST /_sim/schedule_remove` with `{"id": <schedule id>}` (or `?id=`): from now on the
/// schedule is no longer in its customer's `transaction_schedules` (its transactions stay).
/// Answers `{"id", "customer_id", "removed_on"}`.
async fn schedule_remove(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(Params::parse(query.as_deref(), &body).and_then(|p| {
        let id: i64 = number(&p, "id", None)?;
        let customer = shared.remove_schedule(id).map_err(scenario_error)?;
        tracing::info!(schedule = id, customer, "transaction schedule removed");
        Ok(json!({
            "id": id,
            "customer_id": customer,
            "removed_on": date_of(shared.today_day()).to_string(),
        }))
    }))
}
