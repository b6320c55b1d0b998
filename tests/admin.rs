//! The admin HTTP port: `/metrics` counts what clients sent, with bounded
//! labels; `/readyz` follows the backends and the drain while `/healthz`
//! stays up; `/stats` gives the same figures as JSON; the shipped Grafana
//! dashboard only asks for metrics the proxy exports.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{http_get, run, TestProxy};
use test_util::{Cluster, Flavor, Server};

/// Every sample line of family `name` (its own name or `name{...}`).
fn samples<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// The value of the sample `series` (a name with its labels, exactly as
/// the exposition writes them).
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
        .parse()
        .unwrap()
}

/// The `cmd` label values of family `name`.
fn commands(metrics: &str, name: &str) -> BTreeSet<String> {
    samples(metrics, name)
        .iter()
        .filter_map(|line| Some(line.split_once("cmd=\"")?.1.split_once('"')?.0.to_string()))
        .collect()
}

async fn scrape(proxy: &TestProxy) -> String {
    let (status, body) = http_get(proxy.admin.as_deref().unwrap(), "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_each_command_sent_and_keep_labels_bounded() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::start(cluster.addrs(), |config| {
        config.admin_listen = Some("127.0.0.1:0".into());
    })
    .await;
    let mut client = proxy.client().await;
    for i in 0..120 {
        run(&mut client, &["SET", &format!("key{i}"), "v"]).await;
    }
    for i in 0..250 {
        run(&mut client, &["GET", &format!("key{i}")]).await;
    }
    for _ in 0..40 {
        run(&mut client, &["MGET", "key1", "key2", "key3", "key4"]).await;
    }
    for _ in 0..7 {
        run(&mut client, &["PING"]).await;
    }
    for _ in 0..5 {
        redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg("counter")
            .cmd("INCR")
            .arg("counter")
            .query_async::<()>(&mut client)
            .await
            .unwrap();
    }
    let _ = run(&mut client, &["NOSUCHCOMMAND"]).await;
    let metrics = scrape(&proxy).await;
    let calls = |cmd: &str| value(&metrics, &format!("redis_commands_total{{cmd=\"{cmd}\"}}"));
    assert_eq!(calls("set"), 120.0);
    assert_eq!(calls("get"), 250.0);
    assert_eq!(calls("mget"), 40.0);
    assert_eq!(calls("ping"), 7.0);
    // Queued in MULTI and carried by EXEC: each counts.
    assert_eq!(calls("incr"), 10.0);
    assert_eq!(calls("multi"), 5.0);
    assert_eq!(calls("exec"), 5.0);
    assert_eq!(
        value(&metrics, "redis_commands_failed_calls_total{cmd=\"(unknown)\"}"),
        1.0
    );
    // The histogram: cumulative buckets ending at +Inf, which is the count.
    let get_buckets: Vec<f64> = samples(&metrics, "valkey_proxy_commands_duration_seconds_bucket")
        .iter()
        .filter(|line| line.contains("cmd=\"get\""))
        .map(|line| line.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(get_buckets.len() > 10, "{get_buckets:?}");
    assert!(
        get_buckets.windows(2).all(|pair| pair[0] <= pair[1]),
        "{get_buckets:?}"
    );
    assert_eq!(*get_buckets.last().unwrap(), 250.0);
    assert_eq!(
        value(
            &metrics,
            "valkey_proxy_commands_duration_seconds_count{cmd=\"get\"}"
        ),
        250.0
    );
    assert!(value(&metrics, "redis_commands_duration_seconds_total{cmd=\"get\"}") > 0.0);
    assert!(value(&metrics, "redis_net_input_bytes_total") > 0.0);
    assert_eq!(value(&metrics, "valkey_proxy_up"), 1.0);

    // 10,000 distinct keys and 500 distinct unknown command names add no
    // series: labels are command names from the table.
    let series = |metrics: &str| metrics.lines().filter(|line| !line.starts_with('#')).count();
    let before = series(&metrics);
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("GET").arg(format!("distinct:{i}"));
    }
    pipe.query_async::<()>(&mut client).await.unwrap();
    for i in 0..500 {
        let _ = run(&mut client, &[&format!("NOSUCH{i}")]).await;
    }
    let metrics = scrape(&proxy).await;
    assert_eq!(series(&metrics), before, "new series appeared");
    let table: BTreeSet<String> = router::CommandTable::builtin()
        .all()
        .iter()
        .map(|spec| spec.name.clone())
        .collect();
    for cmd in commands(&metrics, "redis_commands_total") {
        assert!(
            cmd == "(unknown)" || table.contains(&cmd),
            "unexpected label cmd=\"{cmd}\""
        );
    }
    assert_eq!(
        value(&metrics, "redis_commands_failed_calls_total{cmd=\"(unknown)\"}"),
        501.0
    );

    // The same figures as JSON.
    let (status, body) = http_get(proxy.admin.as_deref().unwrap(), "/stats").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["commands"]["get"]["calls"], 10_250);
    assert_eq!(stats["ready"], true);
    proxy.stop().await;
}

/// Polls `path` until it answers `status`, for at most `limit`.
async fn until_status(admin: &str, path: &str, status: u16, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let (now, body) = http_get(admin, path).await;
        if now == status {
            return body;
        }
        assert!(start.elapsed() < limit, "{path} still answers {now}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_backend_and_the_drain_while_liveness_stays() {
    let mut server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |config| {
        config.admin_listen = Some("127.0.0.1:0".into());
        config.refresh_interval_ms = 500;
    })
    .await;
    let admin = proxy.admin.clone().unwrap();
    assert_eq!(http_get(&admin, "/readyz").await.0, 200);

    // Every backend lost: not ready within a refresh interval or so (the
    // bound is generous for a loaded machine; it is not a timing test).
    server.kill();
    let why = until_status(&admin, "/readyz", 503, Duration::from_secs(10)).await;
    assert!(why.contains("unreachable"), "{why}");
    assert_eq!(http_get(&admin, "/healthz").await.0, 200);
    let metrics = http_get(&admin, "/metrics").await.1;
    assert_eq!(value(&metrics, "valkey_proxy_up"), 0.0);
    assert_eq!(
        value(&metrics, "valkey_proxy_topology_up{group=\"default\"}"),
        0.0
    );

    // Back: ready again.
    server.restart();
    until_status(&admin, "/readyz", 200, Duration::from_secs(10)).await;

    // A drain held open by a client blocked for a while: not ready during
    // it, alive all along.
    let mut blocked = common::RawClient::connect(&proxy.addr).await;
    blocked.send(&["BLPOP", "nothing", "3"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(proxy.stop());
    let why = until_status(&admin, "/readyz", 503, Duration::from_secs(2)).await;
    assert!(why.contains("draining"), "{why}");
    assert_eq!(http_get(&admin, "/healthz").await.0, 200);
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_only_asks_for_exported_metrics() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |config| {
        config.admin_listen = Some("127.0.0.1:0".into());
    })
    .await;
    let mut client = proxy.client().await;
    run(&mut client, &["SET", "k", "v"]).await;
    let _ = run(&mut client, &["GET", "k"]).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let metrics = scrape(&proxy).await;
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("docs/grafana-dashboard.json").unwrap()).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "{exprs:?}");
    for expr in &exprs {
        for name in metric_names(expr) {
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                metrics.contains(&format!("# TYPE {family} ")),
                "the dashboard asks for {name}, which /metrics does not export (in {expr})"
            );
        }
    }
    proxy.stop().await;
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(expr) if key == "expr" => out.push(expr.clone()),
                    other => collect_exprs(other, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

/// The metric names in a PromQL expression: words with an underscore that
/// start with one of the exported prefixes.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| {
            ["redis_", "valkey_proxy_", "process_"]
                .iter()
                .any(|prefix| word.starts_with(prefix))
        })
        .map(str::to_string)
        .collect()
}
