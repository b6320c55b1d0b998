//! PROXY: the proxy's own statistics and state.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use pool::PoolStats;
use resp::{Frame, Request};

use super::text::{arg, help, verbatim};
use crate::context::Shared;
use crate::edge::{unknown_subcommand, wrong_arity};

/// `PROXY STATS [RESET] | PROXY LATENCY [command] | PROXY INFO | PROXY HELP`
pub fn proxy(request: &Request, shared: &Shared) -> Frame {
    let Some(sub) = request.arg(1) else {
        return wrong_arity("proxy");
    };
    match (sub.to_ascii_lowercase().as_slice(), request.len()) {
        (b"stats", 2) => verbatim(shared.stack.stats.render(None)),
        (b"stats", 3) if request.args()[2].eq_ignore_ascii_case(b"reset") => {
            shared.stack.stats.reset();
            Frame::simple("OK")
        }
        (b"latency", 2) => verbatim(shared.stack.stats.render(None)),
        (b"latency", 3) => verbatim(shared.stack.stats.render(Some(&arg(request, 2)))),
        (b"info", 2) => verbatim(info(shared)),
        (b"help", _) => help(&[
            "PROXY <subcommand>. Subcommands are:",
            "STATS [RESET]: per-command calls, errors, CPU and latency (min/max/avg/p50/p95/p99/p99.9).",
            "LATENCY [<command>]: the same, for one command.",
            "INFO: the proxy's clients, backend topology and connections.",
        ]),
        (b"stats" | b"latency" | b"info", _) => {
            wrong_arity(&format!("proxy|{}", arg(request, 1).to_ascii_lowercase()))
        }
        _ => unknown_subcommand("proxy", sub),
    }
}

fn info(shared: &Shared) -> String {
    let router = &shared.stack.router;
    let topology = router.topology().current();
    let pool = router.pool().stats();
    let get = |c: &std::sync::atomic::AtomicU64| PoolStats::get(c);
    let mut out = String::new();
    let _ = write!(
        out,
        "# Proxy\r\nproxy_version:{}\r\nuptime_in_seconds:{}\r\nprocess_cpu_seconds:{:.3}\r\n\
         # Clients\r\nconnected_clients:{}\r\nmonitors:{}\r\n\
         # Backend\r\nmode:{}\r\nbackend_version:{}\r\ntopology_version:{}\r\ntopology_fetches:{}\r\nshards:{}\r\ndatabases:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        shared.started.elapsed().as_secs(),
        process_cpu_seconds().unwrap_or(0.0),
        shared.clients.len(),
        shared.monitors.count(),
        topology.mode(),
        shared.stack.backend_version,
        topology.version(),
        router.topology().fetches(),
        topology.shards().len(),
        topology.databases(),
    );
    if let Some(error) = router.topology().last_error() {
        let _ = write!(out, "topology_last_error:{error}\r\n");
    }
    for (i, shard) in topology.shards().iter().enumerate() {
        let replicas: Vec<&str> = shard.replicas.iter().map(|r| &**r).collect();
        let _ = write!(
            out,
            "shard{i}:primary={},replicas={}\r\n",
            shard.primary,
            replicas.join("|")
        );
    }
    let _ = write!(
        out,
        "# Connections\r\nbackend_connections_open:{}\r\nbackend_connections_dedicated:{}\r\n\
         backend_connections_dedicated_idle:{}\r\nbackend_connections_opened_total:{}\r\nbackend_connect_failures:{}\r\nbackend_requests_total:{}\r\n",
        get(&pool.open),
        get(&pool.dedicated),
        get(&pool.dedicated_idle),
        get(&pool.opened_total),
        get(&pool.connect_failures),
        pool.requests.load(Ordering::Relaxed),
    );
    out
}

/// User plus system CPU time of this process, from `/proc/self/stat`.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after ")".
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every platform we run on.
    Some((utime + stime) / 100.0)
}
