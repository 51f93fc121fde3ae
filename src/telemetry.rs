//! Logging: tracing with an EnvFilter, as pretty text or JSON lines on stderr.
//!
//! Spans carry the context of every line: `run` (run_id, stream, client), `window` (from, to) and
//! `page` (page), so a retry or a rejected row can be traced to where it happened.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber writing to stderr. `RUST_LOG` wins over `log.level`.
pub fn init(settings: &LogSettings) {
    init_with_writer(settings, std::io::stderr);
}

/// Installs the global subscriber writing to `writer` (tests capture logs this way).
pub fn init_with_writer<W>(settings: &LogSettings, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // sqlx reports server notices ("relation already exists, skipping") at INFO: keep them out
    // unless asked for explicitly.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| {
            // The broker clients log their connection URL, password included, at debug and
            // trace: warnings only, whatever log.level says (the relay logs its own, redacted).
            EnvFilter::try_new(format!(
                "{},sqlx::postgres::notice=warn,async_nats=warn,lapin=warn,amq_protocol_tcp=warn,amq_protocol=warn",
                settings.level
            ))
            .ok()
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Colour only for a person at a terminal, never into journald or files, and never with
    // NO_COLOR set.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    // A second init (tests, the demo) keeps the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Pretty => builder.with_target(false).compact().try_init(),
    };
}

pub mod catalog;

/// Installs the Prometheus recorder the daemon's `/metrics` renders, with every family's HELP
/// text ([`catalog`]), `rotessa_build_info` and the process metrics ([`collect_process_metrics`]).
/// Counters and gauges written before (or without) it are no-ops, so one-shot commands pay
/// nothing.
pub fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("rotessa_sync_run_duration_seconds".into()),
            &[
                0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
            ],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("rotessa_api_request_duration_seconds".into()),
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            )
        })
        .and_then(|b| b.install_recorder())
        .inspect(|_| {
            catalog::describe_all();
            process_collector().describe();
            metrics::gauge!("rotessa_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        })
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))
}

/// Refreshes the standard `process_*` metrics (CPU seconds, resident memory, open file
/// descriptors, threads, start time) just before `/metrics` renders them.
pub fn collect_process_metrics() {
    process_collector().collect();
}

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: std::sync::OnceLock<metrics_process::Collector> = std::sync::OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}
