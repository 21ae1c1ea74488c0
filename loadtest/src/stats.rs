//! What a load run measured: latency histograms per request kind (HDR, microseconds), bytes,
//! errors by status, the cache-tier mix from `x-cache`, time to first segment; live counters
//! for the progress line; the human table and the JSON report.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hdrhistogram::Histogram;
use serde::Serialize;

/// What a request fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// HLS master playlist.
    Master,
    /// A rendition's media playlist.
    Playlist,
    /// The init segment (`EXT-X-MAP`).
    Init,
    /// A media segment.
    Segment,
    /// A tus request (creator mode).
    Upload,
    /// A playback grant.
    Grant,
}

impl Kind {
    /// Label used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Playlist => "playlist",
            Kind::Init => "init",
            Kind::Segment => "segment",
            Kind::Upload => "upload",
            Kind::Grant => "grant",
        }
    }
}

/// Counters shared by every task, read by the progress line.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests answered (any status).
    pub requests: AtomicU64,
    /// Response (or upload) body bytes.
    pub bytes: AtomicU64,
    /// Failed requests (status ≥ 400 or transport error).
    pub errors: AtomicU64,
    /// Players (or creators) running.
    pub active: AtomicU64,
}

impl Live {
    /// Counts one request.
    pub fn record(&self, bytes: u64, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One task's measurements, merged at the end.
#[derive(Debug, Clone)]
pub struct Stats {
    latency: BTreeMap<Kind, Histogram<u64>>,
    bytes: BTreeMap<Kind, u64>,
    /// Errors by status code (`"io"` for transport errors, `"timeout"`).
    pub errors: BTreeMap<String, u64>,
    /// Responses by `x-cache` value (`"none"` when absent).
    pub tiers: BTreeMap<String, u64>,
    ttfs: Histogram<u64>,
    /// Segments that arrived after their play-out deadline (real-time pace only).
    pub late_segments: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs … 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency: BTreeMap::new(),
            bytes: BTreeMap::new(),
            errors: BTreeMap::new(),
            tiers: BTreeMap::new(),
            ttfs: histogram(),
            late_segments: 0,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Stats {
    /// Records one answered request.
    pub fn request(&mut self, kind: Kind, took: Duration, bytes: u64, tier: Option<&str>) {
        self.latency
            .entry(kind)
            .or_insert_with(histogram)
            .saturating_record(micros(took));
        *self.bytes.entry(kind).or_default() += bytes;
        *self
            .tiers
            .entry(tier.unwrap_or("none").to_owned())
            .or_default() += 1;
    }

    /// Records a failure.
    pub fn error(&mut self, what: &str) {
        *self.errors.entry(what.to_owned()).or_default() += 1;
    }

    /// Records a time to first segment.
    pub fn first_segment(&mut self, took: Duration) {
        self.ttfs.saturating_record(micros(took));
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        for (k, h) in &other.latency {
            // Same bounds everywhere: adding cannot fail.
            let _ = self.latency.entry(*k).or_insert_with(histogram).add(h);
        }
        for (k, b) in &other.bytes {
            *self.bytes.entry(*k).or_default() += b;
        }
        for (k, n) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.tiers {
            *self.tiers.entry(k.clone()).or_default() += n;
        }
        let _ = self.ttfs.add(&other.ttfs);
        self.late_segments += other.late_segments;
    }

    /// The report of a run that lasted `elapsed` with `players` players.
    pub fn report(&self, mode: &str, players: u64, elapsed: Duration) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let kinds: BTreeMap<String, KindReport> = self
            .latency
            .iter()
            .map(|(k, h)| {
                let bytes = self.bytes.get(k).copied().unwrap_or(0);
                (k.as_str().to_owned(), KindReport::new(h, bytes, secs))
            })
            .collect();
        let requests: u64 = self.latency.values().map(Histogram::len).sum();
        let bytes: u64 = self.bytes.values().sum();
        let errors: u64 = self.errors.values().sum();
        Report {
            mode: mode.to_owned(),
            players,
            seconds: secs,
            requests,
            errors,
            requests_per_sec: requests as f64 / secs,
            gbit_per_sec: bytes as f64 * 8.0 / secs / 1e9,
            bytes,
            kinds,
            errors_by_status: self.errors.clone(),
            cache_tiers: self.tiers.clone(),
            time_to_first_segment_ms: (!self.ttfs.is_empty()).then(|| Percentiles::ms(&self.ttfs)),
            late_segments: self.late_segments,
        }
    }
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn ms(h: &Histogram<u64>) -> Self {
        let q = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: h.max() as f64 / 1000.0,
        }
    }
}

/// Figures of one request kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    /// Requests answered.
    pub requests: u64,
    /// Per second over the run.
    pub requests_per_sec: f64,
    /// Body bytes.
    pub bytes: u64,
    /// Latency to the end of the body.
    pub latency_ms: Percentiles,
}

impl KindReport {
    fn new(h: &Histogram<u64>, bytes: u64, secs: f64) -> Self {
        Self {
            requests: h.len(),
            requests_per_sec: h.len() as f64 / secs,
            bytes,
            latency_ms: Percentiles::ms(h),
        }
    }
}

/// The JSON report (and the source of the human table).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `players` or `creators`.
    pub mode: String,
    /// Simulated players (or creators).
    pub players: u64,
    /// Measured wall time.
    pub seconds: f64,
    /// Requests answered.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Throughput.
    pub requests_per_sec: f64,
    /// Throughput of bodies.
    pub gbit_per_sec: f64,
    /// Body bytes.
    pub bytes: u64,
    /// By request kind.
    pub kinds: BTreeMap<String, KindReport>,
    /// Failures by status (`io`, `timeout` for transport failures).
    pub errors_by_status: BTreeMap<String, u64>,
    /// Responses by `x-cache`.
    pub cache_tiers: BTreeMap<String, u64>,
    /// From a player's start to its first segment's last byte.
    pub time_to_first_segment_ms: Option<Percentiles>,
    /// Segments that finished after their play-out deadline.
    pub late_segments: u64,
}

impl Report {
    /// The human table.
    pub fn table(&self) -> String {
        let mut t = format!(
            "{} {}: {:.1} s, {} requests ({:.0}/s), {:.3} Gbit/s, {} errors, {} late segments\n",
            self.players,
            self.mode,
            self.seconds,
            self.requests,
            self.requests_per_sec,
            self.gbit_per_sec,
            self.errors,
            self.late_segments,
        );
        t.push_str(&format!(
            "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "kind", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        ));
        for (k, r) in &self.kinds {
            let l = &r.latency_ms;
            t.push_str(&format!(
                "{:<10} {:>9} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                k, r.requests, r.requests_per_sec, l.p50, l.p90, l.p99, l.p999, l.max
            ));
        }
        if let Some(l) = &self.time_to_first_segment_ms {
            t.push_str(&format!(
                "time to first segment: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
                l.p50, l.p99, l.max
            ));
        }
        t.push_str(&format!("cache tiers: {:?}\n", self.cache_tiers));
        if !self.errors_by_status.is_empty() {
            t.push_str(&format!("errors: {:?}\n", self.errors_by_status));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_stats_report_percentiles_and_mixes() {
        let mut a = Stats::default();
        for ms in 1..=100 {
            a.request(
                Kind::Segment,
                Duration::from_millis(ms),
                1000,
                Some("HIT-L1"),
            );
        }
        let mut b = Stats::default();
        b.request(Kind::Master, Duration::from_millis(2), 500, Some("MISS"));
        b.error("403");
        b.first_segment(Duration::from_millis(40));
        a.merge(&b);
        let r = a.report("players", 2, Duration::from_secs(10));
        assert_eq!(r.requests, 101);
        assert_eq!(r.errors, 1);
        assert_eq!(r.bytes, 100_500);
        let seg = &r.kinds["segment"];
        assert!(
            (seg.latency_ms.p50 - 50.0).abs() < 0.5,
            "{:?}",
            seg.latency_ms
        );
        assert!((seg.latency_ms.p99 - 99.0).abs() < 0.5);
        assert!((seg.latency_ms.max - 100.0).abs() < 0.5);
        assert_eq!(r.cache_tiers["HIT-L1"], 100);
        assert_eq!(r.cache_tiers["MISS"], 1);
        assert!((r.requests_per_sec - 10.1).abs() < 1e-9);
        assert!(r.time_to_first_segment_ms.is_some());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["errors_by_status"]["403"], 1);
        assert!(r.table().contains("segment"));
    }
}
