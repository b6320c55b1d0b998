//! A tenant with a backend of its own (`isolation = "dedicated"` on a
//! `[[backend_groups]]` entry), in the same proxy as prefix tenants on the
//! default backend: its commands, transactions and channels reach its own
//! server, untouched, from the command after its AUTH on.

mod common;

use std::time::Duration;

use common::{show, user_of, RawClient, TestProxy};
use proxy::config::{BackendGroupConfig, ModeSetting};
use proxy::tenants::{Isolation, TenantConfig};
use test_util::{Cluster, Flavor, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_tenant_runs_on_its_own_backend() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let own = Server::start(Flavor::Valkey);
    let own_addr = own.addr();
    let proxy = TestProxy::start(cluster.addrs(), move |config| {
        config.backend_groups = vec![BackendGroupConfig {
            name: "legacy".into(),
            seeds: vec![own_addr],
            mode: ModeSetting::Auto,
            ..BackendGroupConfig::default()
        }];
        config.tenants = vec![
            TenantConfig {
                name: "billing".into(),
                isolation: Isolation::Dedicated,
                backend: Some("legacy".into()),
                ..TenantConfig::default()
            },
            TenantConfig {
                name: "shop".into(),
                ..TenantConfig::default()
            },
        ];
        config.users = vec![
            user_of("billing-app", Some("billing")),
            user_of("shop-app", Some("shop")),
            user_of("ops", None),
        ];
    })
    .await;
    // AUTH and the first command in one write: the command goes to the
    // tenant's backend already.
    let mut billing = RawClient::connect(&proxy.addr).await;
    billing.send(&["AUTH", "billing-app", "pw"]).await;
    billing.send(&["SET", "k", "billed"]).await;
    assert_eq!(show(&billing.next().await), "OK");
    assert_eq!(show(&billing.next().await), "OK");
    assert_eq!(show(&own.command(&["GET", "k"])), "billed");
    // INFO is its own server's.
    let keyspace = show(&billing.call(&["INFO", "keyspace"]).await);
    assert!(keyspace.contains("db0:keys=1,"), "{keyspace}");
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "pw").await;
    assert_eq!(show(&shop.call(&["SET", "k", "shopped"]).await), "OK");
    assert_eq!(show(&own.command(&["DBSIZE"])), "1");
    let mut ops = RawClient::login(&proxy.addr, "ops", "pw").await;
    assert_eq!(show(&ops.call(&["GET", "shop:k"]).await), "shopped");
    assert_eq!(show(&ops.call(&["GET", "k"]).await), "(nil)");

    // Keyless commands and transactions: its backend's, as they are.
    assert_eq!(show(&billing.call(&["KEYS", "*"]).await), "[k]");
    assert_eq!(show(&billing.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&billing.call(&["SET", "n", "1"]).await), "QUEUED");
    assert_eq!(show(&billing.call(&["INCR", "n"]).await), "QUEUED");
    assert_eq!(show(&billing.call(&["EXEC"]).await), "[OK 2]");
    assert_eq!(show(&own.command(&["GET", "n"])), "2");
    assert_eq!(show(&billing.call(&["WATCH", "n"]).await), "OK");
    assert_eq!(show(&billing.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&billing.call(&["INCR", "n"]).await), "QUEUED");
    assert_eq!(show(&billing.call(&["EXEC"]).await), "[3]");

    // Channels: its server's, not the cluster's.
    let mut listener = RawClient::login(&proxy.addr, "billing-app", "pw").await;
    assert_eq!(
        show(&listener.call(&["SUBSCRIBE", "news"]).await),
        "[subscribe news 1]"
    );
    let mut shop_listener = RawClient::login(&proxy.addr, "shop-app", "pw").await;
    shop_listener.call(&["SUBSCRIBE", "news"]).await;
    assert_eq!(show(&billing.call(&["PUBLISH", "news", "hi"]).await), "1");
    assert_eq!(show(&listener.next().await), "[message news hi]");
    assert!(shop_listener
        .next_within(Duration::from_millis(300))
        .await
        .is_none());

    // Counted with every other command.
    let stats = show(&ops.call(&["PROXY", "STATS", "TENANT", "billing"]).await);
    assert!(stats.contains("cmdstat_incr:calls=2"), "{stats}");
}
