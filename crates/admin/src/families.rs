//! The proxy's own metric families, read from its counters when scraped.
//!
//! Where a metric means what one of oliver006/redis_exporter's means, it
//! has that name and those labels (`redis_commands_total{cmd}`, ...), so
//! dashboards made for Valkey servers work on the proxy; proxy-only
//! metrics are named `valkey_proxy_*`. Labels are bounded: `cmd` comes from
//! the command table (unknown names are all `(unknown)`), `tenant` and
//! `group` from the configuration, `kind` from a fixed list; never a key,
//! a client or an address.
//!
//! Per-command series come from the statistics every request records
//! anyway ([`middleware::StatsRegistry`], sharded per thread), turned into
//! cumulative buckets here: recording each request a second time, into a
//! histogram of the `metrics` facade, would add a shared atomic queue to
//! every request for numbers the proxy already has.

use std::sync::atomic::Ordering;

use middleware::{Snapshot, StatsRegistry};
use pool::PoolStats;
use proxy::context::Shared;

use crate::exposition::{Exposition, Kind};

/// Upper bounds of the latency histogram buckets, in seconds: 100 µs to
/// 10 s, as Prometheus client libraries' defaults stretched down to what a
/// proxy in front of an in-memory store sees.
pub const LATENCY_BOUNDS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Writes every family of the proxy `shared` describes.
pub fn write(out: &mut Exposition, shared: &Shared) {
    process(out, shared);
    clients(out, shared);
    let registry = &shared.stack.stats;
    commands(out, &registry.snapshot());
    tenants(out, shared, registry);
    backends(out, shared);
    audit_sinks(out, shared);
}

/// Per audit sink (labelled as `PROXY AUDIT STATUS` names it), when the
/// audit log is on: its queue, and whether it can be written.
fn audit_sinks(out: &mut Exposition, shared: &Shared) {
    let Some(audit) = &shared.audit else { return };
    let status = audit.status();
    let sinks: Vec<(&str, &audit::LaneStatus)> = audit
        .sinks()
        .iter()
        .map(String::as_str)
        .zip(&status.sinks)
        .collect();
    out.family(
        "valkey_proxy_audit_queue_records",
        Kind::Gauge,
        "Audit records waiting for a sink's writer.",
    );
    for (sink, lane) in &sinks {
        out.sample(
            "valkey_proxy_audit_queue_records",
            &[("sink", sink)],
            lane.queued as f64,
        );
    }
    out.family(
        "valkey_proxy_audit_oldest_unwritten_seconds",
        Kind::Gauge,
        "How long the oldest record waiting for a sink has waited.",
    );
    for (sink, lane) in &sinks {
        out.sample(
            "valkey_proxy_audit_oldest_unwritten_seconds",
            &[("sink", sink)],
            lane.oldest.as_secs_f64(),
        );
    }
    out.family(
        "valkey_proxy_audit_sink_up",
        Kind::Gauge,
        "1 while the sink can be written, 0 while it cannot (a collector away).",
    );
    for (sink, lane) in &sinks {
        out.sample(
            "valkey_proxy_audit_sink_up",
            &[("sink", sink)],
            f64::from(u8::from(lane.up)),
        );
    }
}

fn process(out: &mut Exposition, shared: &Shared) {
    out.family(
        "valkey_proxy_build_info",
        Kind::Gauge,
        "Always 1; the proxy's version is a label.",
    )
    .sample(
        "valkey_proxy_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.family(
        "valkey_proxy_up",
        Kind::Gauge,
        "1 when the proxy can serve (what /readyz says), else 0.",
    )
    .sample(
        "valkey_proxy_up",
        &[],
        f64::from(u8::from(shared.readiness().is_ok())),
    );
    out.family(
        "redis_uptime_in_seconds",
        Kind::Gauge,
        "Seconds since the proxy started.",
    )
    .sample(
        "redis_uptime_in_seconds",
        &[],
        shared.started.elapsed().as_secs() as f64,
    );
    if let Some(cpu) = proxy::commands::admin::process_cpu_seconds() {
        out.family(
            "process_cpu_seconds_total",
            Kind::Counter,
            "User and system CPU time of the proxy process.",
        )
        .sample("process_cpu_seconds_total", &[], cpu);
    }
    if let Some(bytes) = proxy::memory::resident_bytes() {
        out.family(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory of the proxy process.",
        )
        .sample("process_resident_memory_bytes", &[], bytes as f64);
    }
}

fn clients(out: &mut Exposition, shared: &Shared) {
    let list = shared.clients.list();
    let blocked = list.iter().filter(|client| client.view().blocked).count();
    out.family(
        "redis_connected_clients",
        Kind::Gauge,
        "Clients connected to the proxy.",
    )
    .sample("redis_connected_clients", &[], list.len() as f64);
    out.family(
        "redis_blocked_clients",
        Kind::Gauge,
        "Clients waiting in a blocking command.",
    )
    .sample("redis_blocked_clients", &[], blocked as f64);
    out.family(
        "redis_connections_received_total",
        Kind::Counter,
        "Client connections accepted since start.",
    )
    .sample(
        "redis_connections_received_total",
        &[],
        shared.clients.received() as f64,
    );
}

/// Every command's series, all clients' together.
fn commands(out: &mut Exposition, snapshot: &[(String, Snapshot)]) {
    let processed: u64 = snapshot.iter().map(|(_, s)| s.calls).sum();
    out.family(
        "redis_commands_processed_total",
        Kind::Counter,
        "Commands answered by the proxy.",
    )
    .sample("redis_commands_processed_total", &[], processed as f64);
    let each = |out: &mut Exposition, name: &str, kind: Kind, help: &str, value: fn(&Snapshot) -> f64| {
        out.family(name, kind, help);
        for (cmd, s) in snapshot {
            out.sample(name, &[("cmd", cmd)], value(s));
        }
    };
    each(
        out,
        "redis_commands_total",
        Kind::Counter,
        "Calls per command.",
        |s| s.calls as f64,
    );
    each(
        out,
        "redis_commands_failed_calls_total",
        Kind::Counter,
        "Calls answered with an error, per command.",
        |s| s.errors as f64,
    );
    each(
        out,
        "redis_commands_duration_seconds_total",
        Kind::Counter,
        "Time from reading a request to having its reply, added up per command.",
        |s| s.latency_sum_us as f64 / 1e6,
    );
    each(
        out,
        "valkey_proxy_commands_cpu_seconds_total",
        Kind::Counter,
        "Proxy CPU time per command (thread CPU time of a sample of the requests, times the calls).",
        |s| s.cpu_us as f64 / 1e6,
    );
    out.family(
        "valkey_proxy_commands_duration_seconds",
        Kind::Histogram,
        "Time from reading a request to having its reply.",
    );
    for (cmd, s) in snapshot {
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_SECONDS
            .iter()
            .map(|&bound| (bound, s.latency.count_at_most((bound * 1e6) as u64)))
            .collect();
        out.histogram(
            "valkey_proxy_commands_duration_seconds",
            &[("cmd", cmd)],
            &buckets,
            s.latency_sum_us as f64 / 1e6,
            s.calls,
        );
    }
}

/// Per tenant, when tenants are configured: clients and calls per command.
fn tenants(out: &mut Exposition, shared: &Shared, registry: &StatsRegistry) {
    let names: Vec<(u16, &str)> = (1..=u16::MAX)
        .map_while(|number| shared.tenants.name(number).map(|name| (number, name)))
        .collect();
    if names.is_empty() {
        return;
    }
    let list = shared.clients.list();
    out.family(
        "valkey_proxy_tenant_connected_clients",
        Kind::Gauge,
        "Clients connected, per tenant (\"\" for clients without one).",
    );
    for (number, name) in std::iter::once((0, "")).chain(names.iter().copied()) {
        let count = list.iter().filter(|client| client.tenant() == number).count();
        out.sample(
            "valkey_proxy_tenant_connected_clients",
            &[("tenant", name)],
            count as f64,
        );
    }
    let per_tenant: Vec<(&str, Vec<(String, Snapshot)>)> = std::iter::once("")
        .chain(names.iter().map(|(_, name)| *name))
        .filter_map(|name| registry.named_tenant(name).map(|stats| (name, stats.snapshot())))
        .collect();
    for (family, help, value) in [
        (
            "valkey_proxy_tenant_commands_total",
            "Calls per tenant and command.",
            (|s: &Snapshot| s.calls as f64) as fn(&Snapshot) -> f64,
        ),
        (
            "valkey_proxy_tenant_commands_failed_calls_total",
            "Calls answered with an error, per tenant and command.",
            |s: &Snapshot| s.errors as f64,
        ),
        (
            "valkey_proxy_tenant_commands_cpu_seconds_total",
            "Proxy CPU time per tenant and command.",
            |s: &Snapshot| s.cpu_us as f64 / 1e6,
        ),
    ] {
        out.family(family, Kind::Counter, help);
        for (tenant, snapshot) in &per_tenant {
            for (cmd, s) in snapshot {
                out.sample(family, &[("tenant", tenant), ("cmd", cmd)], value(s));
            }
        }
    }
}

/// Per backend group ("default" for the default backend): connections,
/// requests, topology.
fn backends(out: &mut Exposition, shared: &Shared) {
    let config = shared.config();
    let names =
        std::iter::once("default").chain(config.backend_groups.iter().map(|group| group.name.as_str()));
    let groups: Vec<(&str, &proxy::stack::Stack)> = names
        .zip(std::iter::once(&shared.stack).chain(&shared.groups))
        .collect();
    let get = PoolStats::get;
    out.family(
        "valkey_proxy_backend_connections",
        Kind::Gauge,
        "Open backend connections: shared (multiplexed), dedicated (to one client), idle dedicated ones.",
    );
    for (group, stack) in &groups {
        let stats = stack.router.pool().stats();
        let (open, dedicated, idle) = (
            get(&stats.open),
            get(&stats.dedicated),
            get(&stats.dedicated_idle),
        );
        for (kind, value) in [
            ("shared", open.saturating_sub(dedicated + idle)),
            ("dedicated", dedicated),
            ("dedicated_idle", idle),
        ] {
            out.sample(
                "valkey_proxy_backend_connections",
                &[("group", group), ("kind", kind)],
                value as f64,
            );
        }
    }
    /// A counter family: its name, its help, and how it is read.
    type PoolCounter = (&'static str, &'static str, fn(&PoolStats) -> u64);
    let counters: [PoolCounter; 3] = [
        (
            "valkey_proxy_backend_connections_opened_total",
            "Backend connections opened since start.",
            |s| PoolStats::get(&s.opened_total),
        ),
        (
            "valkey_proxy_backend_connect_failures_total",
            "Backend connection attempts that failed.",
            |s| PoolStats::get(&s.connect_failures),
        ),
        (
            "valkey_proxy_backend_requests_total",
            "Requests written to backends (fanned-out parts each count).",
            |s| s.requests.load(Ordering::Relaxed),
        ),
    ];
    for (family, help, value) in counters {
        out.family(family, Kind::Counter, help);
        for (group, stack) in &groups {
            out.sample(
                family,
                &[("group", group)],
                value(stack.router.pool().stats()) as f64,
            );
        }
    }
    out.family(
        "valkey_proxy_topology_refreshes_total",
        Kind::Counter,
        "Topology fetches since start.",
    );
    for (group, stack) in &groups {
        let fetches = stack.router.topology().fetches();
        out.sample(
            "valkey_proxy_topology_refreshes_total",
            &[("group", group)],
            fetches as f64,
        );
    }
    out.family(
        "valkey_proxy_topology_up",
        Kind::Gauge,
        "1 when the last topology refresh worked and found nodes, else 0.",
    );
    for (group, stack) in &groups {
        let topology = stack.router.topology();
        let up = topology.last_error().is_none() && !topology.current().is_empty();
        out.sample(
            "valkey_proxy_topology_up",
            &[("group", group)],
            f64::from(u8::from(up)),
        );
    }
    out.family(
        "valkey_proxy_topology_shards",
        Kind::Gauge,
        "Shards (primaries) in the current topology.",
    );
    for (group, stack) in &groups {
        let shards = stack.router.topology().current().shards().len();
        out.sample("valkey_proxy_topology_shards", &[("group", group)], shards as f64);
    }
}
