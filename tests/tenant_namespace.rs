//! The namespace layer keeps each tenant's keys apart ([`Scope`]): a
//! command of tenant 1 or 2 ([`router::Command::tenant`]) sent down the
//! layers below the gate, against real servers, a cluster (with emulated
//! databases) and a standalone server (with real ones). Tenants are not
//! yet bound to users (the configuration comes with the tenants issue);
//! this is the layer they will run on.

use bytes::Bytes;
use middleware::NamespaceLayer;
use proxy::stack::{self, BelowGate};
use proxy::ProxyConfig;
use resp::{Frame, Request};
use router::Command;
use test_util::{Cluster, Flavor, Server};
use tower::{Layer, ServiceExt};

const SHOP: u16 = 1;
const BLOG: u16 = 2;
const KEYS: usize = 300;

async fn layers_for(backends: Vec<String>) -> BelowGate {
    let config = ProxyConfig {
        backends,
        ..ProxyConfig::default()
    };
    let router = stack::build(&config).await.router;
    let below = aggregate::FanOutLayer::new(router.clone()).layer(router.clone());
    NamespaceLayer::new(router, 16)
        .with_tenants(vec![Bytes::from_static(b"shop:"), Bytes::from_static(b"blog:")])
        .layer(below)
}

async fn call(layers: &BelowGate, tenant: u16, db: u32, args: &[&str]) -> Frame {
    let mut command = Command::new(Request::from_args(
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())),
    ));
    command.tenant = tenant;
    command.db = db;
    let reply = layers.clone().oneshot(command).await.expect("a reply");
    reply.into_frame().expect("valid RESP")
}

fn names(frame: &Frame) -> Vec<String> {
    let mut names: Vec<String> = frame
        .as_array()
        .expect("an array")
        .iter()
        .map(|f| String::from_utf8_lossy(f.as_bytes().expect("a name")).into_owned())
        .collect();
    names.sort();
    names
}

/// Every name SCAN returns from cursor 0 back to 0.
async fn scan_all(layers: &BelowGate, tenant: u16) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut all = Vec::new();
    loop {
        let reply = call(layers, tenant, 0, &["SCAN", &cursor, "COUNT", "100"]).await;
        let parts = reply.as_array().expect("[cursor, keys]").to_vec();
        cursor = String::from_utf8_lossy(parts[0].as_bytes().unwrap()).into_owned();
        all.extend(names(&parts[1]));
        if cursor == "0" {
            all.sort();
            return all;
        }
    }
}

async fn tenants_are_isolated(backends: Vec<String>, raw: &dyn Fn(&[&str]) -> Frame) {
    let layers = layers_for(backends).await;
    assert_eq!(
        call(&layers, SHOP, 0, &["SET", "cart:1", "x"]).await,
        Frame::simple("OK")
    );
    assert_eq!(call(&layers, BLOG, 0, &["GET", "cart:1"]).await, Frame::Null);
    // On the backend, the key carries the tenant's prefix.
    assert_eq!(
        raw(&["GET", "shop:cart:1"]),
        Frame::Bulk(Bytes::from_static(b"x"))
    );
    // The operator (no tenant) sees the stored name.
    assert_eq!(
        call(&layers, 0, 0, &["GET", "shop:cart:1"]).await,
        Frame::Bulk(Bytes::from_static(b"x"))
    );

    for tenant in [SHOP, BLOG] {
        let sets = (0..KEYS).map(|i| {
            let key = format!("k{i}");
            let layers = layers.clone();
            async move { call(&layers, tenant, 0, &["SET", &key, "v"]).await }
        });
        futures::future::join_all(sets).await;
    }
    let mut expected: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    expected.push("cart:1".into());
    expected.sort();
    assert_eq!(
        call(&layers, SHOP, 0, &["DBSIZE"]).await,
        Frame::Integer(KEYS as i64 + 1)
    );
    assert_eq!(
        call(&layers, BLOG, 0, &["DBSIZE"]).await,
        Frame::Integer(KEYS as i64)
    );
    assert_eq!(scan_all(&layers, SHOP).await, expected);
    assert_eq!(names(&call(&layers, SHOP, 0, &["KEYS", "*"]).await), expected);
    assert_eq!(
        names(&call(&layers, BLOG, 0, &["KEYS", "cart*"]).await),
        Vec::<String>::new()
    );
    for _ in 0..20 {
        let key = call(&layers, BLOG, 0, &["RANDOMKEY"]).await;
        let key = String::from_utf8_lossy(key.as_bytes().expect("a key")).into_owned();
        assert!(key.starts_with('k') && !key.contains(':'), "{key}");
    }

    // A database of the tenant is inside its prefix, apart from its 0.
    assert_eq!(
        call(&layers, SHOP, 3, &["SET", "in3", "y"]).await,
        Frame::simple("OK")
    );
    assert_eq!(call(&layers, SHOP, 3, &["DBSIZE"]).await, Frame::Integer(1));
    assert_eq!(
        call(&layers, SHOP, 0, &["DBSIZE"]).await,
        Frame::Integer(KEYS as i64 + 1)
    );
    assert_eq!(call(&layers, SHOP, 0, &["GET", "in3"]).await, Frame::Null);

    assert_eq!(call(&layers, SHOP, 0, &["FLUSHDB"]).await, Frame::simple("OK"));
    assert_eq!(call(&layers, SHOP, 0, &["DBSIZE"]).await, Frame::Integer(0));
    assert_eq!(call(&layers, SHOP, 3, &["DBSIZE"]).await, Frame::Integer(1));
    assert_eq!(
        call(&layers, BLOG, 0, &["DBSIZE"]).await,
        Frame::Integer(KEYS as i64)
    );

    // FLUSHALL of a tenant: all its databases, nothing of the others.
    assert_eq!(
        call(&layers, SHOP, 0, &["SET", "again", "1"]).await,
        Frame::simple("OK")
    );
    assert_eq!(call(&layers, SHOP, 0, &["FLUSHALL"]).await, Frame::simple("OK"));
    assert_eq!(call(&layers, SHOP, 0, &["DBSIZE"]).await, Frame::Integer(0));
    assert_eq!(call(&layers, SHOP, 3, &["DBSIZE"]).await, Frame::Integer(0));
    assert_eq!(
        call(&layers, BLOG, 0, &["DBSIZE"]).await,
        Frame::Integer(KEYS as i64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_on_a_cluster() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let raw = |args: &[&str]| {
        let key = args[1];
        let owner = common_owner(&cluster, key);
        cluster.primaries()[owner].command(args)
    };
    tenants_are_isolated(cluster.addrs(), &raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_on_a_standalone_server() {
    let server = Server::start(Flavor::Valkey);
    let raw = |args: &[&str]| server.command(args);
    tenants_are_isolated(vec![server.addr()], &raw).await;
}

/// The primary that serves `key`.
fn common_owner(cluster: &Cluster, key: &str) -> usize {
    cluster
        .primaries()
        .iter()
        .position(|node| !node.command(&["TYPE", key]).is_error())
        .expect("a primary serves every slot")
}
