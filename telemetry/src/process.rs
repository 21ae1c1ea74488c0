//! `process_*` metrics of the serving process, read from `/proc/self` at every scrape, with the
//! names the Prometheus client libraries use (so stock dashboards and alerts apply): CPU
//! seconds, resident and virtual memory, open and maximum file descriptors, threads, start
//! time. Off Linux the families are absent.

use std::fs;

use prometheus::{
    Counter, Gauge, IntGauge,
    core::{Collector, Desc},
    proto::MetricFamily,
};

/// The collector (registered by [`crate::Registry::new`]).
#[derive(Clone)]
pub(crate) struct ProcessMetrics {
    /// One refresh at a time (the CPU counter advances by a difference).
    refreshing: std::sync::Arc<std::sync::Mutex<()>>,
    cpu: Counter,
    rss: IntGauge,
    vsize: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    threads: IntGauge,
    start: Gauge,
}

impl ProcessMetrics {
    pub(crate) fn new() -> prometheus::Result<Self> {
        Ok(Self {
            refreshing: std::sync::Arc::default(),
            // Advanced to the kernel's total on each scrape.
            cpu: Counter::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            )?,
            rss: IntGauge::new(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            )?,
            vsize: IntGauge::new(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            )?,
            open_fds: IntGauge::new("process_open_fds", "Number of open file descriptors.")?,
            max_fds: IntGauge::new(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            )?,
            threads: IntGauge::new("process_threads", "Number of OS threads in the process.")?,
            start: Gauge::new(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            )?,
        })
    }

    fn all(&self) -> [&dyn Collector; 7] {
        [
            &self.cpu,
            &self.rss,
            &self.vsize,
            &self.open_fds,
            &self.max_fds,
            &self.threads,
            &self.start,
        ]
    }

    /// Reads `/proc/self`; false when it cannot (not Linux).
    fn refresh(&self) -> bool {
        let _one = self
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(stat) = read_stat() else {
            return false;
        };
        let ahead = (stat.utime + stat.stime) as f64 / USER_HZ - self.cpu.get();
        if ahead > 0.0 {
            self.cpu.inc_by(ahead);
        }
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_ascii_whitespace().next()?.parse::<i64>().ok())
        };
        if let Some(v) = kib("VmRSS:") {
            self.rss.set(v.saturating_mul(1024));
        }
        if let Some(v) = kib("VmSize:") {
            self.vsize.set(v.saturating_mul(1024));
        }
        if let Some(v) = kib("Threads:") {
            self.threads.set(v);
        }
        if let Some(boot) = boot_time() {
            self.start
                .set(boot as f64 + stat.start_ticks as f64 / USER_HZ);
        }
        if let Ok(dir) = fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(dir.count()).unwrap_or(i64::MAX));
        }
        if let Some(max) = max_open_files() {
            self.max_fds.set(max);
        }
        true
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.all().into_iter().flat_map(Collector::desc).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if !self.refresh() {
            return Vec::new();
        }
        self.all()
            .into_iter()
            .flat_map(Collector::collect)
            .collect()
    }
}

/// Clock ticks per second of `/proc` times: Linux reports them in `USER_HZ`, which is 100 on
/// every architecture it exports to user space (`sysconf(_SC_CLK_TCK)` answers the same).
const USER_HZ: f64 = 100.0;

/// The fields of `/proc/self/stat` used here.
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
}

fn read_stat() -> Option<Stat> {
    let text = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `rest` starts at field 3 (state): field n is f[n - 3].
    let n = |i: usize| f.get(i - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: n(14)?,
        stime: n(15)?,
        start_ticks: n(22)?,
    })
}

fn boot_time() -> Option<u64> {
    fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

fn max_open_files() -> Option<i64> {
    fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_ascii_whitespace()
        .nth(3)?
        .parse()
        .ok()
}
