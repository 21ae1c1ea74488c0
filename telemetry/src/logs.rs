//! Logging and tracing set-up shared by every binary: `tracing` with the `[log]` section's format
//! and filter (`RUST_LOG` wins when set and not blank), `log` records (Pingora's) bridged in,
//! and, with `log.otlp-endpoint`, spans exported to an OpenTelemetry collector over OTLP/HTTP.
//!
//! ```text
//!  tracing spans/events ─► EnvFilter ─┬─► fmt (stderr: text or JSON)
//!                                     └─► OpenTelemetry layer ─► batch (500 ms) ─► OTLP/HTTP
//!                                              (only with log.otlp-endpoint)   {endpoint}/v1/traces
//! ```
//!
//! Spans carry W3C trace context: a service that received a `traceparent`
//! ([`parse_traceparent`]) makes its request span a child of it ([`continue_trace`]), and the
//! edge sends its own exported span's ids upstream ([`span_ids`]), so edge and origin spans
//! form one trace in the collector.

use std::{io::IsTerminal, time::Duration};

use opentelemetry::{
    KeyValue,
    trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
    },
};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider},
};
use streamgate_config::{Env, LogConfig, LogFormat};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Keeps the exporter alive; flushes what is buffered when dropped (or on [`Tracing::flush`]).
#[must_use = "dropping it stops the trace export"]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered now (before a process exits without unwinding).
    pub fn flush(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.force_flush()
        {
            tracing::warn!(cause = %e, "flushing traces");
        }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber for `service` (the `service.name` of exported spans),
/// writing to stderr. Call once, from `main`.
///
/// # Errors
/// The filter does not parse (the message names it), the exporter cannot be built, or a
/// subscriber is already installed.
pub fn init_tracing(log: &LogConfig, env: &dyn Env, service: &str) -> Result<Tracing, String> {
    let directive = log.effective_filter(env);
    let filter = EnvFilter::try_new(&directive)
        .map_err(|e| format!("log filter (RUST_LOG or log.filter) = {directive:?}: {e}"))?;
    let ansi = std::io::stderr().is_terminal();
    let fmt = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
    };
    let (provider, otel) = match &log.otlp_endpoint {
        Some(endpoint) => {
            let provider = provider(endpoint, log.otlp_sample, service)?;
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("streamgate"))
                .boxed();
            (Some(provider), Some(layer))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| format!("cannot install the tracing subscriber: {e}"))?;
    Ok(Tracing { provider })
}

fn provider(endpoint: &str, sample: f64, service: &str) -> Result<SdkTracerProvider, String> {
    let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(5))
        .with_headers(Default::default())
        .build()
        .map_err(|e| format!("log.otlp-endpoint = {endpoint:?}: {e}"))?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(500))
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            sample,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        )
        .build())
}

/// A span in another process, as a W3C `traceparent` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteParent {
    /// The trace.
    pub trace_id: u128,
    /// The parent span.
    pub span_id: u64,
    /// The sampled flag.
    pub sampled: bool,
}

/// Parses `00-{32 hex}-{16 hex}-{2 hex}` (lower-case, ids not all zero; a later version's
/// extra fields are tolerated, version `ff` is not).
pub fn parse_traceparent(v: &str) -> Option<RemoteParent> {
    let mut parts = v.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2)
        || version == "ff"
        || !lower_hex(trace, 32)
        || !lower_hex(parent, 16)
        || !lower_hex(flags, 2)
        || (version == "00" && parts.next().is_some())
    {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let span_id = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && span_id != 0).then_some(RemoteParent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

/// Makes `span` a child of `parent` in the exported trace (no effect when not exporting).
pub fn continue_trace(span: &tracing::Span, parent: RemoteParent) {
    let parent = SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.span_id.to_be_bytes()),
        if parent.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        true,
        TraceState::default(),
    );
    if parent.is_valid() {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

/// The exported span behind `span`: `(trace id, span id, sampled)`, when spans are exported
/// (otherwise the ids are invalid and `None` is returned).
pub fn span_ids(span: &tracing::Span) -> Option<(u128, u64, bool)> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        (
            u128::from_be_bytes(sc.trace_id().to_bytes()),
            u64::from_be_bytes(sc.span_id().to_bytes()),
            sc.is_sampled(),
        )
    })
}
