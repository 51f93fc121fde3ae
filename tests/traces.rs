//! Traces and JSON log lines: one sync of the transactions stream, with spans exported to memory
//! (the same layer as OTLP, another exporter), makes one trace of `run`, `window`, `page`,
//! `rotessa.request` and `db.transaction` spans carrying the run's id, and JSON log lines carry
//! the message and fields at the top level, `service`, `version` and the trace's ids.

mod common;

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::{Key, Value as OtelValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use rotessa_recon::config::{LogFormat, LogSettings};
use rotessa_recon::sync::RunOutcome;
use rotessa_recon::telemetry::{self, Telemetry};
use serde_json::Value;
use sqlx::PgPool;
use wiremock::MockServer;

/// The process's subscriber (one per test binary): JSON lines into `logs`, spans into
/// `exporter`.
struct Captured {
    exporter: InMemorySpanExporter,
    telemetry: Telemetry,
    logs: Arc<Mutex<Vec<u8>>>,
}

struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let settings = LogSettings {
            format: LogFormat::Json,
            level: "info".to_owned(),
            ..LogSettings::plain()
        };
        let writer_logs = Arc::clone(&logs);
        let telemetry = telemetry::init_with_exporter(
            &settings,
            move || LogBuffer(Arc::clone(&writer_logs)),
            exporter.clone(),
        );
        assert!(telemetry.traces_enabled(), "the subscriber was already set");
        Captured {
            exporter,
            telemetry,
            logs,
        }
    })
}

/// Every JSON line logged so far.
fn log_lines(c: &Captured) -> Vec<Value> {
    let bytes = c.logs.lock().expect("log buffer").clone();
    String::from_utf8(bytes)
        .expect("UTF-8 logs")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn attr(span: &SpanData, key: &str) -> Option<OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| kv.value.clone())
}

fn int_attr(span: &SpanData, key: &str) -> Option<i64> {
    match attr(span, key)? {
        OtelValue::I64(v) => Some(v),
        other => panic!("{key} of {} is {other:?}, not an integer", span.name),
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[sqlx::test]
async fn one_sync_is_one_trace_of_run_window_page_request_and_transaction_spans(pool: PgPool) {
    let c = captured();
    // A query first, as in the daemon: sqlx asks `enabled!` before logging it, which once made
    // the next span (the run's) vanish (see telemetry.rs).
    sqlx::query("SELECT 1")
        .execute(&pool)
        .await
        .expect("a query");
    let server = MockServer::start().await;
    // Two pages: 1000 rows, then 500.
    serve_report(&server, &rows(1..=1500, "Pending")).await;
    let syncer = syncer(&pool, settings(&server.uri(), &[]));
    let reports = sync_window(&syncer, "2019-02-15", "2019-03-12").await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].outcome, RunOutcome::Succeeded, "{reports:?}");
    let run_id = reports[0].run_id.expect("run id");
    let stored: i64 = sqlx::query_scalar(
        "SELECT id FROM rotessa.sync_runs WHERE stream = 'transactions' AND status = 'succeeded'",
    )
    .fetch_one(&pool)
    .await
    .expect("the run's row");
    assert_eq!(stored, run_id);

    c.telemetry.flush().expect("flush");
    let all = c.exporter.get_finished_spans().expect("finished spans");
    let run = all
        .iter()
        .find(|s| s.name == "run" && int_attr(s, "run_id") == Some(run_id))
        .unwrap_or_else(|| panic!("no run span with run_id {run_id} among {all:#?}"));
    let trace_id = run.span_context.trace_id();
    assert_eq!(
        run.parent_span_id,
        SpanId::INVALID,
        "the run is the trace's root"
    );
    assert_eq!(attr(run, "stream"), Some("transactions".into()));
    let trace: Vec<SpanData> = all
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .cloned()
        .collect();

    let windows = named(&trace, "window");
    assert_eq!(windows.len(), 1, "{trace:#?}");
    let window = windows[0];
    assert_eq!(window.parent_span_id, run.span_context.span_id());
    assert_eq!(attr(window, "from"), Some("2019-02-15".into()));

    let mut pages = named(&trace, "page");
    pages.sort_by_key(|p| int_attr(p, "page"));
    assert_eq!(
        pages
            .iter()
            .map(|p| int_attr(p, "page"))
            .collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    let requests = named(&trace, "rotessa.request");
    let transactions = named(&trace, "db.transaction");
    for page in &pages {
        assert_eq!(page.parent_span_id, window.span_context.span_id());
        let number = int_attr(page, "page");
        let in_page = |s: &&&SpanData| s.parent_span_id == page.span_context.span_id();
        let page_requests: Vec<_> = requests.iter().filter(in_page).collect();
        assert_eq!(page_requests.len(), 1, "page {number:?}: {requests:#?}");
        let request = page_requests[0];
        assert_eq!(int_attr(request, "page"), number);
        assert_eq!(int_attr(request, "attempt"), Some(1));
        assert_eq!(int_attr(request, "status"), Some(200));
        assert_eq!(attr(request, "endpoint"), Some("transaction_report".into()));
        let page_transactions: Vec<_> = transactions.iter().filter(in_page).collect();
        assert_eq!(
            page_transactions.len(),
            1,
            "page {number:?}: {transactions:#?}"
        );
        assert_eq!(int_attr(page_transactions[0], "attempt"), Some(1));
    }
    // The run's outcome is written in a transaction of its own, in the run's span.
    assert!(
        transactions
            .iter()
            .any(|t| t.parent_span_id == run.span_context.span_id()),
        "{transactions:#?}"
    );
    // Nothing secret reached a span.
    let text = format!("{trace:?}");
    assert!(!text.contains(API_KEY), "the API key is in a span");
    assert!(!text.contains("postgres://"), "a database URL is in a span");

    // The run's log lines name its trace and span.
    let started = log_lines(c)
        .into_iter()
        .find(|l| l["message"] == "run started" && l["span"]["run_id"] == run_id)
        .expect("the run's `run started` line");
    assert_eq!(started["trace_id"], trace_id.to_string(), "{started}");
    assert_eq!(
        started["span_id"],
        run.span_context.span_id().to_string(),
        "{started}"
    );
    assert_ne!(trace_id, TraceId::INVALID);
}

#[test]
fn json_lines_have_the_message_and_fields_at_the_top_level_with_service_and_version() {
    let c = captured();
    tracing::info!(answer = 42, "json line check");
    let lines = log_lines(c);
    let line = lines
        .iter()
        .find(|l| l["message"] == "json line check")
        .unwrap_or_else(|| panic!("no such line in {lines:#?}"));
    assert_eq!(line["answer"], 42, "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(line.get("fields").is_none(), "{line}");
    // Outside any traced span there are no trace ids.
    assert!(line.get("trace_id").is_none(), "{line}");
    for l in &lines {
        assert_eq!(l["service"], "rotessa-recon", "{l}");
        assert_eq!(l["version"], env!("CARGO_PKG_VERSION"), "{l}");
    }
}
