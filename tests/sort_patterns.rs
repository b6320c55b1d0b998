//! SORT with BY and GET patterns gives one server's answer on a cluster,
//! where the keys the patterns name live in other slots, and in an
//! emulated database, where they live under the database's namespace.

mod common;

use common::{assert_same_replies, TestProxy};
use test_util::{Cluster, Flavor, Server};

fn script() -> Vec<Vec<&'static str>> {
    let body = vec![
        vec!["DEL", "a", "dest"],
        vec!["RPUSH", "a", "1", "2", "3"],
        vec!["MSET", "score:1", "30", "score:2", "10", "score:3", "20"],
        vec!["MSET", "user:1", "alice", "user:2", "bob", "user:3", "carol"],
        vec!["HSET", "h:1", "f", "z"],
        vec!["HSET", "h:2", "f", "x"],
        vec!["HSET", "h:3", "f", "y"],
        vec!["SORT", "a", "BY", "score:*"],
        vec!["SORT", "a", "BY", "score:*", "DESC"],
        vec!["SORT", "a", "GET", "user:*"],
        vec!["SORT", "a", "BY", "score:*", "GET", "#", "GET", "user:*"],
        vec!["SORT", "a", "BY", "h:*->f", "ALPHA"],
        vec!["SORT", "a", "BY", "nosort", "GET", "h:*->f"],
        vec!["SORT", "a", "BY", "score:*", "LIMIT", "0", "2", "GET", "user:*"],
        vec!["SORT", "a", "GET", "nosuch:*"],
        vec!["SORT_RO", "a", "BY", "score:*", "GET", "user:*"],
        vec!["SORT", "a", "BY", "score:*", "GET", "user:*", "STORE", "dest"],
        vec!["LRANGE", "dest", "0", "-1"],
    ];
    let mut script = vec![vec!["FLUSHALL"]];
    script.extend(body.iter().cloned());
    script.push(vec!["SELECT", "2"]);
    script.extend(body);
    script
}

async fn same_as_one_server(backends: Vec<String>) {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(backends).await;
    let script = script();
    let script: Vec<&[&str]> = script.iter().map(Vec::as_slice).collect();
    assert_same_replies(&server.addr(), &proxy.addr, &script).await;
}

#[tokio::test]
async fn on_a_cluster_with_emulated_databases() {
    same_as_one_server(Cluster::start(Flavor::Valkey, 3, 0).addrs()).await;
}

#[tokio::test]
async fn on_a_cluster_with_databases() {
    same_as_one_server(Cluster::start_with(Flavor::Valkey, 3, 0, &[("cluster-databases", "16")]).addrs())
        .await;
}

#[tokio::test]
async fn inside_multi_sort_with_patterns_is_refused_before_anything_runs() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = common::RawClient::connect(&proxy.addr).await;
    assert_eq!(common::show(&client.call(&["MULTI"]).await), "OK");
    let refused = common::show(&client.call(&["SORT", "a", "BY", "score:*"]).await);
    assert!(
        refused.starts_with("-ERR proxy: SORT with BY or GET patterns inside MULTI"),
        "{refused}"
    );
    assert_eq!(
        common::show(&client.call(&["SORT", "a", "BY", "nosort"]).await),
        "QUEUED"
    );
    assert!(common::show(&client.call(&["EXEC"]).await).starts_with("-EXECABORT"));
}
