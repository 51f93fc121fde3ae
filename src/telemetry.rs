//! Logging and traces: tracing with an EnvFilter, as pretty text or JSON lines on stderr, and,
//! when `log.otlp_endpoint` is set, the spans exported to an OpenTelemetry collector over
//! OTLP/HTTP (protobuf).
//!
//! Spans carry the context of every line and make up a run's trace: `run` (run_id, stream,
//! client), `window` (from, to), `page` (page), `rotessa.request` (endpoint, page, attempt,
//! status) and `db.transaction` (stream, attempt), so a retry or a rejected row can be traced to
//! where it happened (docs/deployment.md "Traces"). No span records the API key, the
//! Authorization header or the database URL.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, LogSettings};

pub mod catalog;
mod json;

pub use json::JsonLines;

/// Why logging or tracing could not be set up or wound down.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from `log.otlp_endpoint` (or the OTEL_* variables).
    #[error("cannot set up the OTLP trace exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// Spans could not be handed to the exporter.
    #[error("cannot flush traces: {0}")]
    Flush(#[source] OTelSdkError),
    /// The exporter did not shut down cleanly (spans may be lost).
    #[error("cannot shut down the trace exporter: {0}")]
    Shutdown(#[source] OTelSdkError),
}

/// What [`init`] set up; keep it until the process ends, then call [`Telemetry::shutdown`] so
/// the last spans are exported (dropping it also shuts the exporter down).
#[derive(Debug, Default)]
#[must_use = "traces are only exported while this lives; shut it down at exit"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn traces_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every span that has ended; returns when the exporter has them.
    pub fn flush(&self) -> Result<(), TelemetryError> {
        match &self.provider {
            Some(provider) => provider.force_flush().map_err(TelemetryError::Flush),
            None => Ok(()),
        }
    }

    /// Exports the spans still buffered and stops the exporter. Blocks up to the exporter's
    /// timeout: from async code, call it through `spawn_blocking`.
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        match self.provider.take() {
            Some(provider) => provider.shutdown().map_err(TelemetryError::Shutdown),
            None => Ok(()),
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber writing to stderr, with traces when `log.otlp_endpoint` is
/// set. `RUST_LOG` wins over `log.level`.
pub fn init(settings: &LogSettings) -> Result<Telemetry, TelemetryError> {
    init_with_writer(settings, std::io::stderr)
}

/// Installs the global subscriber writing to `writer` (tests capture logs this way), with
/// traces when `log.otlp_endpoint` is set.
pub fn init_with_writer<W>(settings: &LogSettings, writer: W) -> Result<Telemetry, TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let provider = match settings.otlp_traces_url() {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|source| TelemetryError::Exporter { endpoint, source })?;
            Some(provider(settings, exporter))
        }
        None => None,
    };
    Ok(install(settings, writer, provider))
}

/// Like [`init_with_writer`], with spans exported to `exporter` whatever `log.otlp_endpoint`
/// says (tests export to memory this way).
pub fn init_with_exporter<W, E>(settings: &LogSettings, writer: W, exporter: E) -> Telemetry
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    E: SpanExporter + 'static,
{
    install(settings, writer, Some(provider(settings, exporter)))
}

/// A tracer provider batching spans to `exporter`, on a thread of its own. Sampling follows
/// OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on).
fn provider<E: SpanExporter + 'static>(settings: &LogSettings, exporter: E) -> SdkTracerProvider {
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build()
}

fn install<W>(settings: &LogSettings, writer: W, provider: Option<SdkTracerProvider>) -> Telemetry
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // Colour only for a person at a terminal, never into journald or files, and never with
    // NO_COLOR set.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    let lines = match settings.format {
        LogFormat::Json => lines
            .json()
            .event_format(JsonLines::new(&settings.service_name))
            .boxed(),
        LogFormat::Pretty => lines.with_target(false).compact().boxed(),
    };
    let traces = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("rotessa-recon")));
    // One filter for both layers: per-layer filters (`with_filter`) lose spans here. sqlx asks
    // `enabled!` before logging a statement; when every per-layer filter says no, the answer
    // stays behind on the thread and the next span whose callsite is always enabled (a run's,
    // right after its first query) is dropped for every layer. So traces carry the spans
    // log.level lets through: all of the daemon's at `info` (the default) or finer.
    let installed = tracing_subscriber::registry()
        .with(log_filter(settings))
        .with(lines)
        .with(traces)
        .try_init();
    match installed {
        Ok(()) => Telemetry { provider },
        // A second init (tests, the demo) keeps the first subscriber, and its exporter.
        Err(_) => {
            if let Some(p) = provider {
                let _ = p.shutdown();
            }
            Telemetry::default()
        }
    }
}

/// The filter of log lines and spans: `RUST_LOG` when set and valid, else `log.level`.
fn log_filter(settings: &LogSettings) -> EnvFilter {
    // sqlx reports server notices ("relation already exists, skipping") at INFO: keep them out
    // unless asked for explicitly.
    std::env::var("RUST_LOG")
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
        .unwrap_or_else(|| EnvFilter::new("info"))
}

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
