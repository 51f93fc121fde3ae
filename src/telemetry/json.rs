//! The JSON log line: tracing-subscriber's JSON format with the event's message and fields at the
//! top level (`flatten_event`), the current span and the span list, and in front of them
//! `service` (`log.service_name`), `version` (the crate's) and, inside a traced span,
//! `trace_id` and `span_id`, so a collector can join log lines to traces.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, FormatEvent, FormatFields, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, time::SystemTime};
use tracing_subscriber::registry::LookupSpan;

/// Formats one event as a JSON line with `service`, `version` and the trace ids first.
pub struct JsonLines {
    inner: Format<Json, SystemTime>,
    /// `"service":"...","version":"..."`, escaped once.
    prefix: String,
}

impl JsonLines {
    /// The format for `service` (the service name in logs and traces).
    pub fn new(service: &str) -> Self {
        let inner = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true);
        let prefix = format!(
            "\"service\":{},\"version\":{}",
            json_string(service),
            json_string(env!("CARGO_PKG_VERSION"))
        );
        Self { inner, prefix }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The inner format always writes one object: splice our keys in after its brace.
        let Some(rest) = line.strip_prefix('{') else {
            return writer.write_str(&line);
        };
        writer.write_char('{')?;
        writer.write_str(&self.prefix)?;
        // The OpenTelemetry layer makes a traced span's context current while it is entered;
        // without that layer (traces off) there is none and the ids are left out.
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if ids.is_valid() {
            write!(
                writer,
                ",\"trace_id\":\"{}\",\"span_id\":\"{}\"",
                ids.trace_id(),
                ids.span_id()
            )?;
        }
        if !rest.starts_with('}') {
            writer.write_char(',')?;
        }
        writer.write_str(rest)
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
