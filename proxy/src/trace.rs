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
    pub(crate) fn continue_or_start(incoming: Option<&str>) -> Self {
        match incoming.and_then(parse) {
            Some((trace_id, sampled)) => Self {
                trace_id,
                span_id: new_span_id(),
                sampled,
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

    /// The trace id, as logs print it.
    pub(crate) fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

/// Parses `00-{32 hex}-{16 hex}-{2 hex}` (lower-case, ids not all zero; later versions: the
/// same first four fields). Returns the trace id and the sampled flag.
fn parse(v: &str) -> Option<(u128, bool)> {
    let v = v.trim();
    let mut parts = v.split('-');
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
    {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let parent_id = u64::from_str_radix(parent, 16).ok()?;
    if trace_id == 0 || parent_id == 0 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, flags & 1 == 1))
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
        let t = TraceContext::continue_or_start(Some(parent));
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let h = t.header();
        assert!(h.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{h}");
        assert!(h.ends_with("-01"));
        assert_ne!(&h[36..52], "00f067aa0ba902b7", "a span of its own");
        assert_eq!(parse(&h).map(|p| p.0), Some(t.trace_id), "round trip");

        let unsampled = TraceContext::continue_or_start(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ));
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
            let t = TraceContext::continue_or_start(Some(bad));
            assert_ne!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736", "{bad:?}");
            assert_eq!(parse(&t.header()).map(|p| p.0), Some(t.trace_id), "{bad:?}");
        }
        // A later version's extra fields are tolerated.
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what").is_some());
        let (a, b) = (new_span_id(), new_span_id());
        assert_ne!(a, b);
    }
}
