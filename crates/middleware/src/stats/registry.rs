//! Where statistics live and how they are read.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use router::{CommandSpec, CommandTable};

use super::command::{CommandStats, Snapshot};

/// The name unknown commands are counted under, so random names cannot
/// grow the registry.
pub(super) const UNKNOWN: &str = "(unknown)";

/// Statistics of every command. Cheap to clone.
///
/// Commands of the table have their counters in a vector indexed by
/// [`CommandSpec::id`], so recording needs no lookup and no registry-wide lock; other names
/// (unknown commands) go to a small map.
#[derive(Clone, Debug, Default)]
pub struct StatsRegistry {
    inner: Arc<Inner>,
    /// Per tenant number (0: clients without a tenant), by name, when
    /// tenants are configured; their counters record into these too.
    tenants: Arc<[(String, StatsRegistry)]>,
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
        StatsRegistry::with_tenants(table, Vec::new())
    }

    /// As [`StatsRegistry::new`], with counters of their own for the
    /// tenants named (tenant `t` is the `t-1`th), and for clients without
    /// a tenant: each request is recorded once, in its tenant's, and this
    /// registry's snapshots add them up.
    pub fn with_tenants(table: &CommandTable, names: Vec<String>) -> Self {
        let mut all = StatsRegistry::counting(table);
        if !names.is_empty() {
            all.tenants = std::iter::once(String::new())
                .chain(names)
                .map(|name| (name, StatsRegistry::counting(table)))
                .collect();
        }
        all
    }

    fn counting(table: &CommandTable) -> Self {
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
            tenants: Arc::from([]),
        }
    }

    /// The registry of tenant `number` (0: clients without one), when
    /// tenants are configured; else this one.
    pub fn of_tenant(&self, number: u16) -> &StatsRegistry {
        match self.tenants.get(usize::from(number)) {
            Some((_, registry)) => registry,
            None => self,
        }
    }

    /// The registry of the tenant named `name` ("" for clients without a
    /// tenant), if tenants are configured.
    pub fn named_tenant(&self, name: &str) -> Option<&StatsRegistry> {
        self.tenants
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, registry)| registry)
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

    /// Every command seen, sorted by name: this registry's counters and
    /// its tenants' together.
    pub fn snapshot(&self) -> Vec<(String, Snapshot)> {
        let mut by_name: BTreeMap<String, Vec<Arc<CommandStats>>> = BTreeMap::new();
        for registry in std::iter::once(self).chain(self.tenants.iter().map(|(_, tenant)| tenant)) {
            for (name, stats) in registry.each() {
                by_name.entry(name).or_default().push(stats);
            }
        }
        by_name
            .into_iter()
            .map(|(name, all)| {
                let all: Vec<&CommandStats> = all.iter().map(|stats| &**stats).collect();
                (name, CommandStats::merged(&all))
            })
            .filter(|(_, snapshot)| snapshot.calls > 0)
            .collect()
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        for (_, stats) in self.each() {
            stats.reset();
        }
        for (_, tenant) in self.tenants.iter() {
            tenant.reset();
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
            let us = |ns: u64| ns as f64 / 1000.0;
            let work = &s.work;
            let _ = write!(
                out,
                "cmdstat_{name}:calls={},errors={},cpu_usec={},cpu_usec_per_call={cpu_per_call:.2},\
                 min_usec={},max_usec={},avg_usec={:.2},p50_usec={},p95_usec={},p99_usec={},p999_usec={},\
                 work_samples={},work_min_usec={:.2},work_max_usec={:.2},work_avg_usec={:.2},\
                 work_p50_usec={:.2},work_p95_usec={:.2},work_p99_usec={:.2}\r\n",
                s.calls,
                s.errors,
                s.cpu_us,
                s.min_us,
                s.max_us,
                s.avg_us,
                s.p50_us,
                s.p95_us,
                s.p99_us,
                s.p999_us,
                work.samples,
                us(work.min_ns),
                us(work.max_ns),
                work.avg_ns / 1000.0,
                us(work.p50_ns),
                us(work.p95_ns),
                us(work.p99_ns),
            );
        }
        out
    }

    /// Publishes every counter through the `metrics` facade (for whatever
    /// exporter the binary installs). Absolute values, so call it as often
    /// as the exporter scrapes.
    ///
    /// Every series has a `tenant` label, bounded by the configuration:
    /// the tenant's name, or empty for clients without one (and for every
    /// client when no tenant is configured), so that summing over it gives
    /// every client's.
    pub fn publish_metrics(&self) {
        let by_tenant: Vec<(&str, &StatsRegistry)> = if self.tenants.is_empty() {
            vec![("", self)]
        } else {
            self.tenants
                .iter()
                .map(|(name, registry)| (name.as_str(), registry))
                .collect()
        };
        for (tenant, registry) in by_tenant {
            for (name, s) in registry.snapshot() {
                let labels = [("command", name), ("tenant", tenant.to_string())];
                metrics::gauge!("valkey_proxy_command_calls", &labels).set(s.calls as f64);
                metrics::gauge!("valkey_proxy_command_errors", &labels).set(s.errors as f64);
                metrics::gauge!("valkey_proxy_command_cpu_seconds", &labels).set(s.cpu_us as f64 / 1e6);
                metrics::gauge!("valkey_proxy_command_latency_p99_seconds", &labels)
                    .set(s.p99_us as f64 / 1e6);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_tenants_counters_count_in_the_totals_too() {
        let table = CommandTable::builtin();
        let registry = StatsRegistry::with_tenants(&table, vec!["shop".into(), "blog".into()]);
        let get = table.get(b"get").unwrap();
        registry
            .of_tenant(1)
            .for_spec(get)
            .record(Duration::from_micros(5), None, false);
        registry
            .of_tenant(1)
            .command("nosuch")
            .record(Duration::from_micros(5), None, true);
        registry
            .of_tenant(0)
            .for_spec(get)
            .record(Duration::from_micros(7), None, false);
        let calls = |registry: &StatsRegistry| registry.snapshot().iter().map(|(_, s)| s.calls).sum::<u64>();
        assert_eq!(calls(&registry), 3);
        assert_eq!(calls(registry.named_tenant("shop").unwrap()), 2);
        assert_eq!(calls(registry.named_tenant("blog").unwrap()), 0);
        assert_eq!(calls(registry.named_tenant("").unwrap()), 1);
        assert!(registry.named_tenant("nobody").is_none());
        registry.reset();
        assert_eq!(calls(registry.named_tenant("shop").unwrap()), 0);
        // Without tenants there is one set of counters.
        let plain = StatsRegistry::new(&table);
        assert!(std::ptr::eq(plain.of_tenant(3), &plain));
    }

    #[test]
    fn records_and_renders() {
        let registry = StatsRegistry::default();
        let get = registry.command("get");
        for micros in 1..=100 {
            get.record(
                Duration::from_micros(micros),
                // Own work timed for one request in four.
                (micros % 4 == 0).then(|| Duration::from_micros(micros)),
                micros == 100,
            );
            cpu::Account::charge(&*get, 2_000);
        }
        let snapshot = get.snapshot();
        assert_eq!(snapshot.calls, 100);
        assert_eq!(snapshot.errors, 1);
        assert_eq!(snapshot.min_us, 1);
        assert_eq!(snapshot.max_us, 100);
        assert_eq!(snapshot.p95_us, 95);
        assert_eq!(snapshot.cpu_us, 200);
        assert_eq!(snapshot.work.samples, 25);
        assert_eq!((snapshot.work.min_ns, snapshot.work.p50_ns / 1000), (4_000, 52));
        assert_eq!(snapshot.latency_sum_us, 5050);
        assert_eq!(snapshot.latency.count_at_most(10), 10);
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
                        cpu::Account::charge(&*get, 3_000);
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
