//! Where statistics live and how they are read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use router::{CommandSpec, CommandTable};

use super::buckets::{Buckets, MAX_LATENCY_US};

/// How many copies of each command's counters there are. Each thread
/// records into one copy (threads take copies in turn), so worker threads
/// do not contend for one lock and one cache line per request; reading
/// merges them.
const SHARDS: usize = 8;

/// The shard the current thread records into.
fn shard_index() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// The counters of one command.
#[derive(Debug)]
pub struct CommandStats {
    shards: [Shard; SHARDS],
}

/// One thread's share of a command's counters, on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    errors: AtomicU64,
    /// CPU time of the requests whose CPU time was measured (a sample of
    /// them, see [`super::Stats`]), and how many those were.
    cpu_ns: AtomicU64,
    cpu_samples: AtomicU64,
    /// Every call's latency (so also the number of calls). Created on the
    /// first call: the counts take about 190 KB, and most of the few
    /// hundred commands are never used.
    latency_us: OnceLock<Buckets>,
}

impl Shard {
    fn new() -> Self {
        Shard {
            errors: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            cpu_samples: AtomicU64::new(0),
            latency_us: OnceLock::new(),
        }
    }
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats::new()
    }
}

impl CommandStats {
    fn new() -> Self {
        CommandStats {
            shards: std::array::from_fn(|_| Shard::new()),
        }
    }

    /// Records one finished request, with the proxy's CPU time for it when
    /// that was measured.
    pub fn record(&self, latency: Duration, cpu: Option<Duration>, error: bool) {
        let shard = &self.shards[shard_index()];
        if error {
            shard.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(cpu) = cpu {
            shard.cpu_ns.fetch_add(cpu.as_nanos() as u64, Ordering::Relaxed);
            shard.cpu_samples.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
        shard.latency_us.get_or_init(Buckets::new).record(micros);
    }

    /// A consistent-enough copy of the counters, every thread's merged.
    pub fn snapshot(&self) -> Snapshot {
        let sum = |field: fn(&Shard) -> &AtomicU64| -> u64 {
            self.shards.iter().map(|s| field(s).load(Ordering::Relaxed)).sum()
        };
        let mut histogram: Option<Histogram<u64>> = None;
        for buckets in self.shards.iter().filter_map(|shard| shard.latency_us.get()) {
            buckets.add_to(histogram.get_or_insert_with(Buckets::histogram));
        }
        let Some(histogram) = histogram.filter(|histogram| !histogram.is_empty()) else {
            return Snapshot::default();
        };
        let calls = histogram.len();
        let at = |q: f64| histogram.value_at_quantile(q);
        let samples = sum(|s| &s.cpu_samples);
        Snapshot {
            calls,
            errors: sum(|s| &s.errors),
            cpu_us: cpu_estimate_us(sum(|s| &s.cpu_ns), samples, calls),
            min_us: if histogram.is_empty() { 0 } else { histogram.min() },
            max_us: histogram.max(),
            avg_us: histogram.mean(),
            p50_us: at(0.50),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
        }
    }

    fn reset(&self) {
        for shard in &self.shards {
            shard.errors.store(0, Ordering::Relaxed);
            shard.cpu_ns.store(0, Ordering::Relaxed);
            shard.cpu_samples.store(0, Ordering::Relaxed);
            if let Some(buckets) = shard.latency_us.get() {
                buckets.reset();
            }
        }
    }
}

/// The CPU time of all `calls`, in microseconds: the mean of the `samples`
/// measured (`cpu_ns` in all) times the calls.
fn cpu_estimate_us(cpu_ns: u64, samples: u64, calls: u64) -> u64 {
    if samples == 0 {
        return 0;
    }
    let mean_ns = cpu_ns as f64 / samples as f64;
    (mean_ns * calls as f64 / 1000.0) as u64
}

/// A copy of one command's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Requests answered.
    pub calls: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Proxy CPU time, in microseconds (estimated from a sample of the
    /// requests, see [`super::Stats`]).
    pub cpu_us: u64,
    /// Fastest request, in microseconds.
    pub min_us: u64,
    /// Slowest request, in microseconds.
    pub max_us: u64,
    /// Mean latency, in microseconds.
    pub avg_us: f64,
    /// Median latency.
    pub p50_us: u64,
    /// 95th percentile latency.
    pub p95_us: u64,
    /// 99th percentile latency.
    pub p99_us: u64,
    /// 99.9th percentile latency.
    pub p999_us: u64,
}

/// Statistics of every command. Cheap to clone.
///
/// Commands of the table have their counters in a vector indexed by
/// [`CommandSpec::id`], so recording needs no lookup and no registry-wide lock; other names
/// (unknown commands) go to a small map.
#[derive(Clone, Debug, Default)]
pub struct StatsRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per spec id: the spec it was made for, and its counters.
    by_id: Vec<(Arc<CommandSpec>, Arc<CommandStats>)>,
    by_name: RwLock<HashMap<String, Arc<CommandStats>>>,
    /// Counters no snapshot reads ([`StatsRegistry::discarded`]).
    discarded: Arc<CommandStats>,
}

impl StatsRegistry {
    /// A registry with counters for every command of `table`.
    pub fn new(table: &CommandTable) -> Self {
        let by_id = table
            .all()
            .iter()
            .map(|spec| (spec.clone(), Arc::new(CommandStats::new())))
            .collect();
        StatsRegistry {
            inner: Arc::new(Inner {
                by_id,
                by_name: RwLock::default(),
                discarded: Arc::new(CommandStats::new()),
            }),
        }
    }

    /// The counters of a command of the table this registry was made for.
    pub fn for_spec(&self, spec: &CommandSpec) -> Arc<CommandStats> {
        match self.inner.by_id.get(spec.id) {
            // The same spec (the usual case), or one with the same name
            // from another table.
            Some((known, stats)) if std::ptr::eq(&**known, spec) || known.name == spec.name => stats.clone(),
            _ => self.command(&spec.name),
        }
    }

    /// Counters that count for nothing: for a command the statistics
    /// layer only admits, which whoever carries it out records once it
    /// has answered.
    pub fn discarded(&self) -> Arc<CommandStats> {
        self.inner.discarded.clone()
    }

    /// The counters for `name`, created on first use. Callers pass names
    /// from the command table (or one fixed name for unknown commands), so
    /// the map cannot grow without bound.
    pub fn command(&self, name: &str) -> Arc<CommandStats> {
        if let Some(stats) = self
            .inner
            .by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return stats.clone();
        }
        let mut by_name = self.inner.by_name.write().unwrap_or_else(|e| e.into_inner());
        by_name
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(CommandStats::new()))
            .clone()
    }

    fn each(&self) -> Vec<(String, Arc<CommandStats>)> {
        let by_name = self.inner.by_name.read().unwrap_or_else(|e| e.into_inner());
        self.inner
            .by_id
            .iter()
            .map(|(spec, stats)| (spec.name.clone(), stats.clone()))
            .chain(by_name.iter().map(|(name, stats)| (name.clone(), stats.clone())))
            .collect()
    }

    /// Every command seen, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, Snapshot)> {
        let mut all: Vec<(String, Snapshot)> = self
            .each()
            .into_iter()
            .map(|(name, stats)| (name, stats.snapshot()))
            .filter(|(_, snapshot)| snapshot.calls > 0)
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        for (_, stats) in self.each() {
            stats.reset();
        }
    }

    /// `PROXY STATS` text, in the style of `INFO commandstats`: one
    /// `cmdstat_<name>:calls=...` line per command.
    pub fn render(&self, only: Option<&str>) -> String {
        let mut out = String::from("# Commandstats\r\n");
        for (name, s) in self.snapshot() {
            if only.is_some_and(|o| !o.eq_ignore_ascii_case(&name)) {
                continue;
            }
            let cpu_per_call = if s.calls == 0 {
                0.0
            } else {
                s.cpu_us as f64 / s.calls as f64
            };
            let _ = write!(
                out,
                "cmdstat_{name}:calls={},errors={},cpu_usec={},cpu_usec_per_call={cpu_per_call:.2},\
                 min_usec={},max_usec={},avg_usec={:.2},p50_usec={},p95_usec={},p99_usec={},p999_usec={}\r\n",
                s.calls,
                s.errors,
                s.cpu_us,
                s.min_us,
                s.max_us,
                s.avg_us,
                s.p50_us,
                s.p95_us,
                s.p99_us,
                s.p999_us
            );
        }
        out
    }

    /// Publishes every counter through the `metrics` facade (for whatever
    /// exporter the binary installs). Absolute values, so call it as often
    /// as the exporter scrapes.
    pub fn publish_metrics(&self) {
        for (name, s) in self.snapshot() {
            let labels = [("command", name)];
            metrics::gauge!("valkey_proxy_command_calls", &labels).set(s.calls as f64);
            metrics::gauge!("valkey_proxy_command_errors", &labels).set(s.errors as f64);
            metrics::gauge!("valkey_proxy_command_cpu_seconds", &labels).set(s.cpu_us as f64 / 1e6);
            metrics::gauge!("valkey_proxy_command_latency_p99_seconds", &labels).set(s.p99_us as f64 / 1e6);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_renders() {
        let registry = StatsRegistry::default();
        let get = registry.command("get");
        for micros in 1..=100 {
            get.record(
                Duration::from_micros(micros),
                // CPU time measured for one request in four: the total is
                // estimated from their mean.
                (micros % 4 == 0).then(|| Duration::from_micros(2)),
                micros == 100,
            );
        }
        let snapshot = get.snapshot();
        assert_eq!(snapshot.calls, 100);
        assert_eq!(snapshot.errors, 1);
        assert_eq!(snapshot.min_us, 1);
        assert_eq!(snapshot.max_us, 100);
        assert_eq!(snapshot.p95_us, 95);
        assert_eq!(snapshot.cpu_us, 200);
        let text = registry.render(None);
        assert!(text.contains("cmdstat_get:calls=100,errors=1,"), "{text}");
        assert!(text.contains("p99_usec=99,"), "{text}");
        registry.reset();
        assert!(registry.snapshot().is_empty());
    }

    #[test]
    fn threads_record_apart_and_read_together() {
        let registry = StatsRegistry::default();
        let get = registry.command("get");
        // Four threads, each on a shard of its own: 1..=25, 26..=50, ...
        std::thread::scope(|scope| {
            for part in 0..4u64 {
                let get = get.clone();
                scope.spawn(move || {
                    for micros in part * 25 + 1..=part * 25 + 25 {
                        get.record(
                            Duration::from_micros(micros),
                            Some(Duration::from_micros(3)),
                            part == 3,
                        );
                    }
                });
            }
        });
        let snapshot = get.snapshot();
        assert_eq!(snapshot.calls, 100);
        assert_eq!(snapshot.errors, 25);
        assert_eq!((snapshot.min_us, snapshot.max_us), (1, 100));
        assert_eq!(snapshot.p50_us, 50);
        assert_eq!(snapshot.cpu_us, 300);
        registry.reset();
        assert_eq!(get.snapshot().calls, 0);
    }
}
