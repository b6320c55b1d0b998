//! Tenants with databases of their own (`isolation = "database"`) on a
//! Valkey 9 cluster with `cluster-databases 16`, next to a prefix tenant:
//! the tenant's database k is the backend's base + k, SELECT outside its
//! range is Valkey's error, MOVE and FLUSHALL stay inside the range, and
//! its keyspace notifications come under its own numbers.

mod common;

use std::time::Duration;

use common::{show, user_of, RawClient, TestProxy};
use proxy::tenants::{Isolation, TenantConfig};
use test_util::{Cluster, Flavor};

fn tenant(name: &str, isolation: Isolation, base: Option<u32>, databases: u32) -> TenantConfig {
    TenantConfig {
        name: name.into(),
        isolation,
        base,
        databases,
        ..TenantConfig::default()
    }
}

/// `key` in backend database `db`, read on the node that owns it.
async fn stored(cluster: &Cluster, db: u32, key: &str) -> String {
    let owner = common::owner(cluster, key);
    let mut node = RawClient::connect(&cluster.primaries()[owner].addr()).await;
    node.call(&["SELECT", &db.to_string()]).await;
    show(&node.call(&["GET", key]).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_databases_are_a_range_of_the_backends() {
    let cluster = Cluster::start_with(
        Flavor::Valkey,
        3,
        0,
        &[("cluster-databases", "16"), ("notify-keyspace-events", "KEA")],
    );
    let proxy = TestProxy::start(cluster.addrs(), |config| {
        config.tenants = vec![
            tenant("db", Isolation::Database, Some(8), 4),
            tenant("shop", Isolation::Prefix, None, 1),
        ];
        config.users = vec![
            user_of("db-app", Some("db")),
            user_of("shop-app", Some("shop")),
            user_of("ops", None),
        ];
    })
    .await;
    let mut app = RawClient::login(&proxy.addr, "db-app", "pw").await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "pw").await;
    assert_eq!(show(&ops.call(&["SET", "k", "root"]).await), "OK");

    assert_eq!(show(&app.call(&["SET", "k", "zero"]).await), "OK");
    assert_eq!(stored(&cluster, 8, "k").await, "zero");
    assert_eq!(show(&app.call(&["SELECT", "1"]).await), "OK");
    assert_eq!(show(&app.call(&["SET", "k", "one"]).await), "OK");
    assert_eq!(stored(&cluster, 9, "k").await, "one");
    assert_eq!(show(&app.call(&["DBSIZE"]).await), "1");
    assert_eq!(show(&app.call(&["KEYS", "*"]).await), "[k]");
    // INFO keyspace: its databases, under its numbers; not the operator's.
    let keyspace = show(&app.call(&["INFO", "keyspace"]).await);
    let lines: Vec<&str> = keyspace
        .split("\r\n")
        .filter(|line| line.starts_with("db"))
        .collect();
    assert_eq!(lines.len(), 2, "{keyspace}");
    assert!(
        lines[0].starts_with("db0:keys=1,") && lines[1].starts_with("db1:keys=1,"),
        "{keyspace}"
    );
    assert!(show(&app.call(&["CLIENT", "INFO"]).await).contains(" db=1 "));
    for outside in ["4", "8", "-1"] {
        assert_eq!(
            show(&app.call(&["SELECT", outside]).await),
            "-ERR DB index is out of range"
        );
    }
    // MOVE names the tenant's databases too.
    assert_eq!(show(&app.call(&["MOVE", "k", "2"]).await), "1");
    assert_eq!(stored(&cluster, 10, "k").await, "one");
    assert_eq!(
        show(&app.call(&["MOVE", "k", "4"]).await),
        "-ERR DB index is out of range"
    );

    // Its keyspace notifications, under its own database numbers.
    let mut listener = RawClient::login(&proxy.addr, "db-app", "pw").await;
    assert_eq!(
        show(&listener.call(&["SUBSCRIBE", "__keyspace@3__:n"]).await),
        "[subscribe __keyspace@3__:n 1]"
    );
    assert_eq!(show(&app.call(&["SELECT", "3"]).await), "OK");
    assert_eq!(show(&app.call(&["SET", "n", "1"]).await), "OK");
    assert_eq!(show(&listener.next().await), "[message __keyspace@3__:n set]");
    // The operator's database 3 is not the tenant's.
    assert_eq!(show(&ops.call(&["SELECT", "3"]).await), "OK");
    assert_eq!(show(&ops.call(&["SET", "n", "2"]).await), "OK");
    assert!(listener.next_within(Duration::from_millis(300)).await.is_none());

    // FLUSHALL empties the tenant's databases and nothing else.
    assert_eq!(show(&app.call(&["FLUSHALL"]).await), "OK");
    for db in 8..12 {
        assert_eq!(stored(&cluster, db, "k").await, "(nil)", "database {db}");
    }
    assert_eq!(stored(&cluster, 0, "k").await, "root");
    assert_eq!(stored(&cluster, 3, "n").await, "2");
}
