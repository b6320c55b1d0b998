//! [`CommandStats`]: one command's counters, kept per thread and merged
//! when read, and the [`Snapshot`] a read gives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;

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
    /// The proxy's own work for each request in the sample, in
    /// nanoseconds ([`super::Stats`]): one set of counts for every thread
    /// (only a sample of the requests records here), created on the first.
    work_ns: OnceLock<Buckets>,
}

/// One thread's share of a command's counters, on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    errors: AtomicU64,
    /// Every call's latency added up, in microseconds.
    latency_sum_us: AtomicU64,
    /// The CPU time charged to the command ([`cpu`]): its share of the
    /// timed polls of the sessions and connections that worked for it.
    cpu_ns: AtomicU64,
    /// Every call's latency (so also the number of calls). Created on the
    /// first call: the counts take about 190 KB, and most of the few
    /// hundred commands are never used.
    latency_us: OnceLock<Buckets>,
}

impl Shard {
    fn new() -> Self {
        Shard {
            errors: AtomicU64::new(0),
            latency_sum_us: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
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
    pub(super) fn new() -> Self {
        CommandStats {
            shards: std::array::from_fn(|_| Shard::new()),
            work_ns: OnceLock::new(),
        }
    }

    /// Records one finished request, with the proxy's own work for it
    /// when that was timed (for a sample of the requests).
    pub fn record(&self, latency: Duration, work: Option<Duration>, error: bool) {
        let shard = &self.shards[shard_index()];
        if error {
            shard.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(work) = work {
            let nanos = u64::try_from(work.as_nanos()).unwrap_or(u64::MAX);
            self.work_ns.get_or_init(Buckets::new).record(nanos);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
        shard.latency_sum_us.fetch_add(micros, Ordering::Relaxed);
        shard.latency_us.get_or_init(Buckets::new).record(micros);
    }

    /// A consistent-enough copy of the counters, every thread's merged.
    pub fn snapshot(&self) -> Snapshot {
        CommandStats::merged(&[self])
    }

    /// One snapshot of several sets of counters together (a command's,
    /// each tenant's).
    pub fn merged(all: &[&CommandStats]) -> Snapshot {
        let shards = || all.iter().flat_map(|stats| stats.shards.iter());
        let sum = |field: fn(&Shard) -> &AtomicU64| -> u64 {
            shards().map(|s| field(s).load(Ordering::Relaxed)).sum()
        };
        let mut histogram: Option<Histogram<u64>> = None;
        for buckets in shards().filter_map(|shard| shard.latency_us.get()) {
            buckets.add_to(histogram.get_or_insert_with(Buckets::histogram));
        }
        let Some(histogram) = histogram.filter(|histogram| !histogram.is_empty()) else {
            return Snapshot::default();
        };
        let calls = histogram.len();
        let at = |q: f64| histogram.value_at_quantile(q);
        let mut work = Buckets::histogram();
        for buckets in all.iter().filter_map(|stats| stats.work_ns.get()) {
            buckets.add_to(&mut work);
        }
        let work_at = |q: f64| work.value_at_quantile(q);
        Snapshot {
            calls,
            errors: sum(|s| &s.errors),
            cpu_us: sum(|s| &s.cpu_ns) / 1000,
            work: WorkSnapshot {
                samples: work.len(),
                min_ns: if work.is_empty() { 0 } else { work.min() },
                max_ns: work.max(),
                avg_ns: if work.is_empty() { 0.0 } else { work.mean() },
                p50_ns: work_at(0.50),
                p95_ns: work_at(0.95),
                p99_ns: work_at(0.99),
            },
            latency_sum_us: sum(|s| &s.latency_sum_us),
            min_us: histogram.min(),
            max_us: histogram.max(),
            avg_us: histogram.mean(),
            p50_us: at(0.50),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
            latency: Distribution(Some(Arc::new(histogram))),
        }
    }

    pub(super) fn reset(&self) {
        for shard in &self.shards {
            shard.errors.store(0, Ordering::Relaxed);
            shard.latency_sum_us.store(0, Ordering::Relaxed);
            shard.cpu_ns.store(0, Ordering::Relaxed);
            if let Some(buckets) = shard.latency_us.get() {
                buckets.reset();
            }
        }
        if let Some(buckets) = self.work_ns.get() {
            buckets.reset();
        }
    }
}

impl cpu::Account for CommandStats {
    fn charge(&self, ns: u64) {
        self.shards[shard_index()].cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// A copy of one command's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Requests answered.
    pub calls: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Proxy CPU time charged to the command, in microseconds: thread CPU
    /// time of the sessions' and backend connections' polls, shared among
    /// the requests they worked for ([`cpu`]).
    pub cpu_us: u64,
    /// The proxy's own work per request, for a sample of the requests.
    pub work: WorkSnapshot,
    /// Every request's latency added up, in microseconds.
    pub latency_sum_us: u64,
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
    /// Every latency, for counts below given bounds.
    pub latency: Distribution,
}

/// The proxy's own work per request, timed for a sample of the requests
/// ([`super::Stats`]), in nanoseconds: from taking it up to passing it to a
/// backend connection, and each time its reply was worked on (merging,
/// rewriting keys). The thread never waits inside these pieces, so their
/// time is its CPU time; socket I/O, shared by the requests of a batch, is
/// in [`Snapshot::cpu_us`] only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkSnapshot {
    /// Requests measured.
    pub samples: u64,
    /// Cheapest.
    pub min_ns: u64,
    /// Dearest.
    pub max_ns: u64,
    /// Mean.
    pub avg_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
}

/// The latencies of a [`Snapshot`], in microseconds (3 significant digits).
#[derive(Clone, Debug, Default)]
pub struct Distribution(Option<Arc<Histogram<u64>>>);

impl Distribution {
    /// The latency at `quantile` (0 when nothing was recorded).
    pub fn value_at_quantile(&self, quantile: f64) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |histogram| histogram.value_at_quantile(quantile))
    }

    /// How many latencies were at most `micros` (within the histogram's
    /// precision: values in the bucket holding `micros` count).
    pub fn count_at_most(&self, micros: u64) -> u64 {
        match &self.0 {
            Some(histogram) if micros >= histogram.min() => {
                histogram.count_between(histogram.min(), micros.min(histogram.max()))
            }
            _ => 0,
        }
    }
}

impl PartialEq for Distribution {
    /// Two distributions are equal when they hold the same counts.
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => a == b,
            (a, b) => a.as_ref().map_or(0, |h| h.len()) == b.as_ref().map_or(0, |h| h.len()),
        }
    }
}
