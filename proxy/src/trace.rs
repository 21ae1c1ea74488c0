//! W3C Trace Context (`traceparent`) through the edge: every request gets a trace id and a
//! span id of its own; requests to origin and to parent edges carry `traceparent` naming this
//! edge's span as their parent, so origin's log lines (and, with an OTLP collector, its spans)
//! join the edge's trace.
//!
//! ```text
//!  viewer ──(traceparent from a trusted proxy, else ignored)──► edge: trace id kept or new,
//!                                                                   span id new
//!  edge ──traceparent: 00-{trace id}-{edge span id}-{flags}──► parent edge / origin
//! ```
//!
//! A viewer's own `traceparent` is ignored unless the peer is in `server.trusted-proxies`
//! (a load balancer that started the trace): otherwise anyone could splice requests into
//! another trace.

use std::sync::atomic::{AtomicU64, Ordering};

/// The header.
pub(crate) const TRACEPARENT: &str = "traceparent";

/// This request's trace position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    trace_id: u128,
    span_id: u64,
    sampled: bool,
}

impl TraceContext {
    /// Continues `incoming` (a valid `traceparent` value) with a new span, or starts a trace.
    /// With OTLP export on, the request `span` joins the same trace and its exported ids are
    /// the ones sent upstream.
    pub(crate) fn continue_or_start(incoming: Option<&str>, span: &tracing::Span) -> Self {
        let parent = incoming.and_then(streamgate_telemetry::parse_traceparent);
        if let Some(p) = parent {
            streamgate_telemetry::continue_trace(span, p);
        }
        if let Some((trace_id, span_id, sampled)) = streamgate_telemetry::span_ids(span) {
            return Self {
                trace_id,
                span_id,
                sampled,
            };
        }
        match parent {
            Some(p) => Self {
                trace_id: p.trace_id,
                span_id: new_span_id(),
                sampled: p.sampled,
            },
            None => Self {
                trace_id: new_trace_id(),
                span_id: new_span_id(),
                sampled: true,
            },
        }
    }

    /// The `traceparent` value naming this span as the parent.
    pub(crate) fn header(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The trace id (as logs print it) as a value a span records without building a `String` first.
    pub(crate) fn trace_id_hex(&self) -> TraceIdHex {
        TraceIdHex(self.trace_id)
    }
}

/// A trace id printed as 32 lower-case hex digits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceIdHex(u128);

impl std::fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

fn new_trace_id() -> u128 {
    loop {
        let id: u128 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

/// Span ids: unique within the process and unpredictable across processes (a random start,
/// then a counter mixed by an odd multiplier, a bijection on `u64`).
fn new_span_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(rand::random);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let id = (start ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    if id == 0 { 1 } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_valid_parents_and_starts_otherwise() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let none = tracing::Span::none();
        let t = TraceContext::continue_or_start(Some(parent), &none);
        assert_eq!(
            t.trace_id_hex().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let h = t.header();
        assert!(h.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{h}");
        assert!(h.ends_with("-01"));
        assert_ne!(&h[36..52], "00f067aa0ba902b7", "a span of its own");
        assert_eq!(
            streamgate_telemetry::parse_traceparent(&h).map(|p| p.trace_id),
            Some(t.trace_id),
            "round trip"
        );

        let unsampled = TraceContext::continue_or_start(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            &none,
        );
        assert!(unsampled.header().ends_with("-00"));

        for bad in [
            "",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // invalid version
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", // short
        ] {
            let t = TraceContext::continue_or_start(Some(bad), &none);
            assert_ne!(
                t.trace_id_hex().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
            assert_eq!(
                streamgate_telemetry::parse_traceparent(&t.header()).map(|p| p.trace_id),
                Some(t.trace_id),
                "{bad:?}"
            );
        }
        // A later version's extra fields are tolerated.
        assert!(
            streamgate_telemetry::parse_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what"
            )
            .is_some()
        );
        let (a, b) = (new_span_id(), new_span_id());
        assert_ne!(a, b);
    }
}
