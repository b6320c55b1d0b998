//! Numbered databases through the proxy give the same results on a
//! standalone server (real databases), a Valkey cluster with
//! `cluster-databases 16` (real databases on a cluster), and a Redis 7.0
//! cluster (databases emulated by key namespace).

mod common;

use common::{show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

/// One connection's commands; keys in several slots on purpose. SWAPDB is
/// left out where the backend refuses it (a cluster with real databases
/// answers `SWAPDB is not allowed in cluster mode`, and so does the proxy).
fn script(swapdb: bool) -> Vec<Vec<&'static str>> {
    let all = vec![
        vec!["FLUSHALL"],
        vec!["SET", "foo", "zero"],
        vec!["SELECT", "3"],
        vec!["GET", "foo"],
        vec!["SET", "foo", "three"],
        vec!["MSET", "a", "1", "b", "2", "{t}c", "3"],
        vec!["MGET", "a", "b", "{t}c", "foo", "nosuch"],
        vec!["KEYS", "*"],
        vec!["KEYS", "{t}*"],
        vec!["DBSIZE"],
        vec!["EXISTS", "a", "b", "foo", "zzz"],
        vec!["RPUSH", "list", "x", "y"],
        vec!["BLPOP", "list", "1"],
        vec!["LMPOP", "1", "list", "LEFT"],
        vec!["XADD", "stream", "1-1", "f", "v"],
        vec!["XREAD", "COUNT", "5", "STREAMS", "stream", "0"],
        vec!["MULTI"],
        vec!["INCR", "{t}c"],
        vec!["GET", "{t}c"],
        vec!["EXEC"],
        vec!["MOVE", "foo", "0"],
        vec!["MOVE", "foo", "5"],
        vec!["MOVE", "foo", "5"],
        vec!["MOVE", "foo", "99"],
        vec!["SELECT", "5"],
        vec!["GET", "foo"],
        vec!["COPY", "foo", "foo", "DB", "0"],
        vec!["COPY", "foo", "foo", "DB", "0", "REPLACE"],
        vec!["COPY", "foo", "{foo}2"],
        vec!["SELECT", "0"],
        vec!["GET", "foo"],
        vec!["KEYS", "*"],
        vec!["DBSIZE"],
        vec!["RANDOMKEY"],
        vec!["SWAPDB", "0", "3"],
        vec!["KEYS", "*"],
        vec!["SELECT", "3"],
        vec!["KEYS", "*"],
        vec!["FLUSHDB"],
        vec!["DBSIZE"],
        vec!["RANDOMKEY"],
        vec!["SELECT", "5"],
        vec!["DBSIZE"],
        vec!["SELECT", "16"],
        vec!["SWAPDB", "0", "16"],
    ];
    all.into_iter().filter(|c| swapdb || c[0] != "SWAPDB").collect()
}

/// Replies, with the order of KEYS and the pick of RANDOMKEY (which no two
/// servers agree on) taken out.
async fn replies(addr: &str, swapdb: bool) -> Vec<String> {
    let mut client = RawClient::connect(addr).await;
    let mut out = Vec::new();
    for command in script(swapdb) {
        let reply = client.call(&command).await;
        let text = match (command[0], reply) {
            ("KEYS", resp::Frame::Array(mut keys)) => {
                keys.sort_by_key(show);
                show(&resp::Frame::Array(keys))
            }
            ("RANDOMKEY", resp::Frame::Bulk(_)) => "(a key)".into(),
            (_, reply) => show(&reply),
        };
        out.push(format!("{} -> {text}", command.join(" ")));
    }
    out
}

async fn same_as_standalone(proxy: &TestProxy, swapdb: bool) {
    let direct = Server::start(Flavor::Valkey);
    let expected = replies(&direct.addr(), swapdb).await;
    let got = replies(&proxy.addr, swapdb).await;
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
    assert_eq!(got.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_on_a_standalone_server() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    same_as_standalone(&proxy, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_on_a_valkey_cluster_with_cluster_databases() {
    let cluster = Cluster::start_with(Flavor::Valkey, 3, 0, &[("cluster-databases", "16")]);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    same_as_standalone(&proxy, false).await;
    // Real databases: the keys are in database 3 of the nodes, unprefixed.
    let mut client = RawClient::connect(&proxy.addr).await;
    client.call(&["SELECT", "7"]).await;
    client.call(&["SET", "{n}seven", "7"]).await;
    let mut found = false;
    for node in cluster.primaries() {
        let mut direct = RawClient::connect(&node.addr()).await;
        direct.call(&["SELECT", "7"]).await;
        if show(&direct.call(&["GET", "{n}seven"]).await) == "7" {
            found = true;
        }
    }
    assert!(found, "the key is in database 7 of its node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_emulated_on_a_redis_cluster() {
    let cluster = Cluster::start(Flavor::Redis, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    same_as_standalone(&proxy, true).await;
    // Emulated: database 7's key is stored in database 0 under a prefix,
    // which database 0 of the proxy does not show.
    let mut client = RawClient::connect(&proxy.addr).await;
    client.call(&["SELECT", "7"]).await;
    client.call(&["SET", "seven", "7"]).await;
    client.call(&["SELECT", "0"]).await;
    assert_eq!(show(&client.call(&["KEYS", "*seven*"]).await), "[]");
    let mut stored = Vec::new();
    for node in cluster.primaries() {
        let mut direct = RawClient::connect(&node.addr()).await;
        if let resp::Frame::Array(keys) = direct.call(&["KEYS", "*seven*"]).await {
            stored.extend(keys.iter().map(show));
        }
    }
    assert_eq!(stored, ["\u{0}7{seven}"]);
}
