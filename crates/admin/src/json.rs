//! `/stats`: the figures of `/metrics` as one JSON document, for scripts.

use middleware::Snapshot;
use proxy::context::Shared;
use serde_json::{json, Map, Value};

/// The document: readiness, clients, and every command's statistics
/// (all clients', then each tenant's when tenants are configured).
pub fn stats(shared: &Shared) -> Value {
    let registry = &shared.stack.stats;
    let tenants: Map<String, Value> = (1..=u16::MAX)
        .map_while(|number| shared.tenants.name(number))
        .filter_map(|name| {
            let stats = registry.named_tenant(name)?;
            Some((name.to_string(), commands(&stats.snapshot())))
        })
        .collect();
    let readiness = shared.readiness();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": readiness.is_ok(),
        "not_ready_because": readiness.err(),
        "uptime_seconds": shared.started.elapsed().as_secs(),
        "process_cpu_seconds": proxy::commands::admin::process_cpu_seconds(),
        "connected_clients": shared.clients.len(),
        "connections_received": shared.clients.received(),
        "commands": commands(&registry.snapshot()),
        "tenants": tenants,
    })
}

fn commands(snapshot: &[(String, Snapshot)]) -> Value {
    snapshot
        .iter()
        .map(|(name, s)| {
            let value = json!({
                "calls": s.calls,
                "errors": s.errors,
                "latency_usec": {
                    "sum": s.latency_sum_us, "min": s.min_us, "max": s.max_us, "avg": s.avg_us,
                    "p50": s.p50_us, "p95": s.p95_us, "p99": s.p99_us, "p999": s.p999_us,
                },
                "cpu_usec": s.cpu_us,
                "work_usec": {
                    "samples": s.work.samples,
                    "min": s.work.min_ns as f64 / 1e3, "max": s.work.max_ns as f64 / 1e3,
                    "avg": s.work.avg_ns / 1e3, "p50": s.work.p50_ns as f64 / 1e3,
                    "p95": s.work.p95_ns as f64 / 1e3, "p99": s.work.p99_ns as f64 / 1e3,
                },
            });
            (name.clone(), value)
        })
        .collect::<Map<String, Value>>()
        .into()
}
