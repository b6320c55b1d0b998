//! PROXY: the proxy's own statistics and state.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use pool::PoolStats;
use resp::{Frame, Request};

use super::text::{arg, help, verbatim};
use super::Local;
use crate::context::{SessionState, Shared};
use crate::edge::{unknown_subcommand, wrong_arity};

/// `PROXY STATS [RESET | TENANT name] | PROXY LATENCY [TENANT name]
/// [command] | PROXY INFO | PROXY SLOWLOG BACKENDS ... | PROXY AUDIT ... |
/// PROXY HELP`. A tenant's client sees its tenant's statistics, and
/// nothing of the proxy as a whole.
pub fn proxy(request: &Request, state: &SessionState, shared: &Shared) -> Option<Local> {
    let operator = state.tenant == 0;
    if operator && request.len() >= 3 && request.args()[1].eq_ignore_ascii_case(b"slowlog") {
        return Some(backend_slowlogs(request, state, shared));
    }
    Some(Local::Reply(answer(request, state, shared)))
}

/// `PROXY SLOWLOG BACKENDS [GET [count] | LEN | RESET]`: the backends' own
/// slow logs, every node's (what `SLOWLOG` gave before the proxy had its
/// own).
fn backend_slowlogs(request: &Request, state: &SessionState, shared: &Shared) -> Local {
    if !request.args()[2].eq_ignore_ascii_case(b"backends") {
        return Local::Reply(unknown_subcommand("proxy|slowlog", &request.args()[2]));
    }
    let mut args: Vec<&[u8]> = vec![b"SLOWLOG"];
    args.extend(request.args().iter().skip(3));
    if args.len() == 1 {
        args.push(b"GET");
    }
    Local::Later(crate::door::run(&Request::from_args(args), state, shared))
}

fn answer(request: &Request, state: &SessionState, shared: &Shared) -> Frame {
    let Some(sub) = request.arg(1) else {
        return wrong_arity("proxy");
    };
    let sub = sub.to_ascii_lowercase();
    let all = &shared.stack.stats;
    // `TENANT name` after STATS or LATENCY: that tenant's ("" for clients
    // without one); a tenant's client always sees its own.
    let tenant_named = request
        .arg(2)
        .is_some_and(|word| word.eq_ignore_ascii_case(b"tenant"));
    let (stats, rest) = if state.tenant != 0 {
        (all.of_tenant(state.tenant), if tenant_named { 4 } else { 2 })
    } else if tenant_named && matches!(&sub[..], b"stats" | b"latency") && request.len() >= 4 {
        match all.named_tenant(&arg(request, 3)) {
            Some(stats) => (stats, 4),
            None => return Frame::error(format!("ERR no tenant named '{}'", arg(request, 3))),
        }
    } else {
        (all, 2)
    };
    let operator = state.tenant == 0;
    let Some(extra) = request.len().checked_sub(rest) else {
        return wrong_arity(&format!("proxy|{}", String::from_utf8_lossy(&sub)));
    };
    let is = |word: &[u8]| {
        request
            .args()
            .get(rest)
            .is_some_and(|arg| arg.eq_ignore_ascii_case(word))
    };
    match (&sub[..], extra) {
        (b"stats", 0) => verbatim(stats.render(None)),
        (b"stats", 1) if operator && request.args()[rest].eq_ignore_ascii_case(b"reset") => {
            stats.reset();
            Frame::simple("OK")
        }
        (b"latency", 0) => verbatim(stats.render(None)),
        (b"latency", 1) => verbatim(stats.render(Some(&arg(request, rest)))),
        (b"info", 0) if operator => verbatim(info(shared)),
        (b"config", 1) if operator && is(b"get") => {
            let config = shared.config();
            verbatim(format!(
                "config_hash:{}\r\n{:#?}\r\n",
                crate::reload::hash(&config),
                crate::reload::masked(&config)
            ))
        }
        (b"config", 1 | 2) if operator && is(b"reload") => {
            let dry_run = match request.args().get(rest + 1) {
                None => false,
                Some(word) if word.eq_ignore_ascii_case(b"dryrun") => true,
                Some(_) => return Frame::error("ERR syntax error: PROXY CONFIG RELOAD [DRYRUN]"),
            };
            match crate::reload::reload(shared, dry_run) {
                Ok(report) => Frame::Array(
                    report
                        .lines
                        .into_iter()
                        .chain([format!("= config_hash: {}", report.hash)])
                        .map(|line| Frame::Simple(line.into()))
                        .collect(),
                ),
                Err(why) => Frame::error(format!("ERR config not reloaded, nothing changed: {why}")),
            }
        }
        (b"audit", 1) if operator && request.args()[rest].eq_ignore_ascii_case(b"status") => {
            verbatim(audit_status(shared))
        }
        (b"audit", 1) if operator && is(b"reopen") | is(b"rotate") => match &shared.audit {
            Some(audit) if is(b"reopen") => {
                audit.reopen();
                Frame::simple("OK")
            }
            Some(audit) => {
                audit.rotate();
                Frame::simple("OK")
            }
            None => Frame::error("ERR the audit log is off"),
        },
        (b"stats" | b"info" | b"audit" | b"slowlog" | b"config", _) if !operator => Frame::error(format!(
            "NOPERM User {} has no permissions to run the 'proxy|{}' command",
            state.user,
            String::from_utf8_lossy(&sub)
        )),
        (b"help", _) => help(&[
            "PROXY <subcommand>. Subcommands are:",
            "STATS [RESET]: per-command calls, errors, CPU and latency (min/max/avg/p50/p95/p99/p99.9).",
            "STATS TENANT <name>: the same, for one tenant's clients (\"\" for clients without one).",
            "LATENCY [TENANT <name>] [<command>]: the same, for one command.",
            "INFO: the proxy's clients, backend topology and connections.",
            "AUDIT STATUS: the audit log's records, queue, drops, waits, refusals and sinks.",
            "AUDIT REOPEN: file sinks open their file again (after an outside logrotate).",
            "AUDIT ROTATE: file sinks rotate their file now.",
            "SLOWLOG BACKENDS [GET [<count>] | LEN | RESET]: the backends' own slow logs (SLOWLOG is the proxy's).",
            "CONFIG GET: the configuration in force (secrets masked) and its hash.",
            "CONFIG RELOAD [DRYRUN]: read the configuration again and apply what can change live (DRYRUN: only list it).",
        ]),
        (b"stats" | b"latency" | b"info" | b"audit" | b"slowlog" | b"config", _) => {
            wrong_arity(&format!("proxy|{}", arg(request, 1).to_ascii_lowercase()))
        }
        _ => unknown_subcommand("proxy", &request.args()[1]),
    }
}

/// `PROXY AUDIT STATUS`: the audit log's figures, then each sink's.
fn audit_status(shared: &Shared) -> String {
    let Some(audit) = &shared.audit else {
        return "audit_enabled:0\r\n".into();
    };
    let status = audit.status();
    let dropped: u64 = status.sinks.iter().map(|sink| sink.dropped).sum();
    let queued: usize = status.sinks.iter().map(|sink| sink.queued).sum();
    let mut out = format!(
        "audit_enabled:1\r\naudit_records:{}\r\naudit_queued:{queued}\r\naudit_dropped:{dropped}\r\n\
         audit_failed_ops:{}\r\naudit_blocked_ms:{}\r\naudit_holding:{}\r\naudit_reserved:{}\r\n",
        status.records,
        status.failed,
        status.blocked.as_millis(),
        u8::from(audit.holds_clients()),
        status.reserved,
    );
    for (i, (sink, name)) in status.sinks.iter().zip(audit.sinks()).enumerate() {
        let _ = write!(
            out,
            "sink{i}:{name},up={},queued={},written={},dropped={},oldest_unwritten_age_ms={}\r\n",
            u8::from(sink.up),
            sink.queued,
            sink.written,
            sink.dropped,
            sink.oldest.as_millis(),
        );
    }
    out
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
