//! A tenant's rate limits: over `max_ops_per_sec` its clients are read
//! more slowly (the rate holds, nothing fails), a command that would wait
//! longer than `max_queue_ms` is answered with an error, and another
//! tenant is not held back.

mod common;

use std::time::Duration;

use common::{show, user_of, RawClient, TestProxy};
use proxy::tenants::TenantConfig;
use test_util::{Cluster, Flavor, Server};

fn tenant(name: &str, max_ops_per_sec: u64, max_queue_ms: u64) -> TenantConfig {
    TenantConfig {
        name: name.into(),
        max_ops_per_sec,
        max_queue_ms,
        ..TenantConfig::default()
    }
}

/// redis-benchmark GET with 50 clients as `user`; its requests per second,
/// after checking that no request failed.
async fn benchmark(addr: &str, user: &str, requests: usize) -> f64 {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut command = std::process::Command::new("redis-benchmark");
    command.args([
        "-h", host, "-p", port, "--user", user, "-a", "pw", "-t", "get", "-c", "50",
    ]);
    command.args(["-n", &requests.to_string(), "--csv"]);
    let output = tokio::task::spawn_blocking(move || command.output().expect("redis-benchmark is installed"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}");
    let line = text
        .lines()
        .find(|line| line.starts_with("\"GET\""))
        .expect("a GET result");
    assert!(!text.to_ascii_lowercase().contains("error"), "{text}");
    line.split(',').nth(1).unwrap().trim_matches('"').parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_is_slowed_not_failed() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::start(cluster.addrs(), |config| {
        config.tenants = vec![tenant("shop", 2000, 1000), tenant("blog", 0, 1000)];
        config.users = vec![
            user_of("shop-app", Some("shop")),
            user_of("blog-app", Some("blog")),
        ];
    })
    .await;
    // 4,000 GETs at 2,000/s: two seconds, whatever 50 clients ask for.
    let started = std::time::Instant::now();
    let rate = benchmark(&proxy.addr, "shop-app", 4000).await;
    assert!(rate <= 2000.0 * 1.05, "shop ran at {rate}/s, over its 2,000/s");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1900));
    benchmark(&proxy.addr, "blog-app", 4000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_would_wait_too_long_is_refused() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |config| {
        config.tenants = vec![tenant("slow", 1, 0), tenant("free", 0, 0)];
        config.users = vec![
            user_of("slow-app", Some("slow")),
            user_of("free-app", Some("free")),
        ];
    })
    .await;
    let mut client = RawClient::login(&proxy.addr, "slow-app", "pw").await;
    // One a second, and no wait allowed: the second is refused, and
    // nothing of it runs.
    assert_eq!(show(&client.call(&["PING"]).await), "PONG");
    assert_eq!(
        show(&client.call(&["SET", "k", "v"]).await),
        "-ERR tenant 'slow' over max_ops_per_sec"
    );
    assert_eq!(show(&server.command(&["EXISTS", "slow:k"])), "0");
    // Another tenant is not held back.
    let mut free = RawClient::login(&proxy.addr, "free-app", "pw").await;
    for _ in 0..100 {
        assert_eq!(show(&free.call(&["SET", "k", "v"]).await), "OK");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_requests_in_flight_is_not_read() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |config| {
        config.tenants = vec![
            TenantConfig {
                name: "one".into(),
                max_inflight: 1,
                ..TenantConfig::default()
            },
            tenant("free", 0, 1000),
        ];
        config.users = vec![
            user_of("one-app", Some("one")),
            user_of("free-app", Some("free")),
            user_of("ops", None),
        ];
    })
    .await;
    // A blocked pop holds the tenant's one place.
    let mut blocker = RawClient::login(&proxy.addr, "one-app", "pw").await;
    blocker.send(&["BLPOP", "q", "0"]).await;
    assert!(blocker.next_within(Duration::from_millis(200)).await.is_none());
    let mut waiting = RawClient::login(&proxy.addr, "one-app", "pw").await;
    waiting.send(&["GET", "k"]).await;
    assert!(
        waiting.next_within(Duration::from_millis(300)).await.is_none(),
        "read past the limit"
    );
    // Another tenant is read as usual.
    let mut free = RawClient::login(&proxy.addr, "free-app", "pw").await;
    for _ in 0..10 {
        assert_eq!(show(&free.call(&["SET", "k", "v"]).await), "OK");
    }
    // The pop answers: its place goes to the waiting GET.
    let mut ops = RawClient::login(&proxy.addr, "ops", "pw").await;
    assert_eq!(show(&ops.call(&["LPUSH", "one:q", "x"]).await), "1");
    assert_eq!(show(&blocker.next().await), "[q x]");
    assert_eq!(show(&waiting.next().await), "(nil)");
}
