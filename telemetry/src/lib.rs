//! One way every StreamGate service builds its Prometheus metrics: a [`Registry`] of its own
//! (never the process-global one, so tests can run several servers in one process), metric
//! families created and registered in one call, label values pre-registered so a page shows
//! every series from the start, and the text exposition served the same way everywhere.
//!
//! ```
//! let reg = streamgate_telemetry::Registry::new();
//! let served = reg
//!     .counter_vec("example_requests_total", "Requests by status.", &["status"], &[&["200"]])
//!     .unwrap();
//! served.with_label_values(&["200"]).inc();
//! assert!(String::from_utf8(reg.render()).unwrap().contains("example_requests_total{status=\"200\"} 1"));
//! ```

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    TextEncoder, core::Collector,
};

/// The `Content-Type` of [`Registry::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

mod logs;
mod process;

pub use logs::{RemoteParent, Tracing, continue_trace, init_tracing, parse_traceparent, span_ids};

/// A service's metric families (with the `process_*` families of the serving process).
#[derive(Clone)]
pub struct Registry(prometheus::Registry);

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Registry {
    /// A registry holding the `process_*` families (CPU, memory, file descriptors, threads,
    /// start time) and nothing else yet.
    pub fn new() -> Self {
        let r = prometheus::Registry::new();
        match process::ProcessMetrics::new() {
            Ok(p) => {
                if let Err(e) = r.register(Box::new(p)) {
                    tracing::warn!(cause = %e, "process metrics not registered");
                }
            }
            Err(e) => tracing::warn!(cause = %e, "process metrics not created"),
        }
        Self(r)
    }

    fn add<C: Collector + Clone + 'static>(&self, c: C) -> prometheus::Result<C> {
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    /// A counter.
    ///
    /// # Errors
    /// An invalid or duplicate name (a programming error).
    pub fn counter(&self, name: &str, help: &str) -> prometheus::Result<IntCounter> {
        self.add(IntCounter::new(name, help)?)
    }

    /// A counter family over `labels`, with the series of `preset` label values created (at 0).
    ///
    /// # Errors
    /// An invalid or duplicate name, or a preset of the wrong arity.
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        preset: &[&[&str]],
    ) -> prometheus::Result<IntCounterVec> {
        let v = self.add(IntCounterVec::new(Opts::new(name, help), labels)?)?;
        for values in preset {
            v.get_metric_with_label_values(values)?;
        }
        Ok(v)
    }

    /// A gauge.
    ///
    /// # Errors
    /// An invalid or duplicate name.
    pub fn gauge(&self, name: &str, help: &str) -> prometheus::Result<IntGauge> {
        self.add(IntGauge::new(name, help)?)
    }

    /// A histogram with `buckets` (upper bounds, seconds or whatever it measures).
    ///
    /// # Errors
    /// An invalid or duplicate name, or unordered buckets.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> prometheus::Result<Histogram> {
        self.add(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        )?)
    }

    /// A histogram family over `labels`.
    ///
    /// # Errors
    /// An invalid or duplicate name, or unordered buckets.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> prometheus::Result<HistogramVec> {
        self.add(HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            labels,
        )?)
    }

    /// The text exposition of every family ([`CONTENT_TYPE`]).
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format; an error leaves it partial.
        if let Err(e) = TextEncoder::new().encode(&self.0.gather(), &mut buf) {
            tracing::warn!(cause = %e, "encoding metrics");
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_register_once_and_render() {
        let r = Registry::new();
        let c = r.counter("t_total", "t").unwrap();
        c.inc();
        assert!(
            r.counter("t_total", "again").is_err(),
            "duplicate names are refused"
        );
        let v = r
            .counter_vec("t_by_kind_total", "t", &["kind"], &[&["a"], &["b"]])
            .unwrap();
        v.with_label_values(&["a"]).inc_by(2);
        let h = r.histogram("t_seconds", "t", &[0.1, 1.0]).unwrap();
        h.observe(0.5);
        let page = String::from_utf8(r.render()).unwrap();
        assert!(page.contains("t_total 1"), "{page}");
        assert!(page.contains("t_by_kind_total{kind=\"a\"} 2"), "{page}");
        assert!(
            page.contains("t_by_kind_total{kind=\"b\"} 0"),
            "preset at 0: {page}"
        );
        assert!(page.contains("t_seconds_bucket{le=\"1\"} 1"), "{page}");
        assert!(
            r.counter_vec("x_total", "x", &["a"], &[&["1", "2"]])
                .is_err()
        );
    }

    #[test]
    fn process_families_come_with_every_registry() {
        let page = String::from_utf8(Registry::new().render()).unwrap();
        let value = |name: &str| {
            page.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} missing: {page}"))
        };
        assert!(
            page.contains("# TYPE process_cpu_seconds_total counter"),
            "{page}"
        );
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_threads") >= 1.0);
        let started = value("process_start_time_seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started > now - 86_400.0 && started <= now + 1.0,
            "{started} vs {now}"
        );
    }
}
