//! Transactions whose keys span slots, as client libraries send them (a
//! redis-py or redis-rs pipeline is MULTI/EXEC by default): the same
//! replies as one server, in RESP2 and RESP3, run as one MULTI/EXEC block
//! per slot; and the shapes the proxy cannot run as one server would are
//! refused while queueing, before anything runs.

mod common;

use common::{assert_same_replies, show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

/// Keys `a`, `b` and `c` hash to three different primaries of a
/// three-primary cluster (slots 15495, 3300 and 7365).
fn script() -> Vec<Vec<&'static str>> {
    vec![
        vec!["FLUSHALL"],
        vec!["MULTI"],
        vec!["SET", "a", "1"],
        vec!["SET", "b", "2"],
        vec!["INCR", "c"],
        vec!["GET", "a"],
        vec!["LPUSH", "l", "x"],
        vec!["LPUSH", "a", "wrong type"],
        vec!["MGET", "b"],
        vec!["EXISTS", "c"],
        vec!["PING"],
        vec!["ECHO", "hello"],
        vec!["HSET", "h", "f", "v"],
        vec!["HGETALL", "h"],
        vec!["ZADD", "z", "1.5", "m"],
        vec!["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        vec!["EXEC"],
        vec!["MGET", "a", "b", "c"],
        // One slot, and no keys at all.
        vec!["MULTI"],
        vec!["GET", "a"],
        vec!["EXEC"],
        vec!["MULTI"],
        vec!["EXEC"],
        // An error while queueing: nothing runs.
        vec!["MULTI"],
        vec!["SET", "a", "never"],
        vec!["SET", "b"],
        vec!["EXEC"],
        vec!["MGET", "a", "b"],
        // DISCARD.
        vec!["MULTI"],
        vec!["SET", "a", "discarded"],
        vec!["SET", "b", "discarded"],
        vec!["DISCARD"],
        vec!["MGET", "a", "b"],
        // Another database.
        vec!["SELECT", "2"],
        vec!["MULTI"],
        vec!["SET", "a", "two"],
        vec!["SET", "b", "two"],
        vec!["GET", "a"],
        vec!["EXEC"],
        vec!["MGET", "a", "b"],
        vec!["SELECT", "0"],
        vec!["MGET", "a", "b"],
    ]
}

async fn same_as_one_server(cluster: &Cluster) {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let script = script();
    let script: Vec<&[&str]> = script.iter().map(Vec::as_slice).collect();
    assert_same_replies(&server.addr(), &proxy.addr, &script).await;
}

#[tokio::test]
async fn across_slots_on_a_valkey_cluster_with_emulated_databases() {
    same_as_one_server(&Cluster::start(Flavor::Valkey, 3, 0)).await;
}

#[tokio::test]
async fn across_slots_on_a_valkey_cluster_with_databases() {
    same_as_one_server(&Cluster::start_with(
        Flavor::Valkey,
        3,
        0,
        &[("cluster-databases", "16")],
    ))
    .await;
}

#[tokio::test]
async fn across_slots_on_a_redis_cluster() {
    same_as_one_server(&Cluster::start(Flavor::Redis, 3, 0)).await;
}

#[tokio::test]
async fn a_client_librarys_atomic_pipeline_works() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = proxy.client().await;
    let (a, b, c): (String, String, i64) = redis::pipe()
        .atomic()
        .set("a", "1")
        .ignore()
        .set("b", "2")
        .ignore()
        .get("a")
        .get("b")
        .incr("c", 5)
        .query_async(&mut client)
        .await
        .expect("an atomic pipeline over three nodes");
    assert_eq!((a.as_str(), b.as_str(), c), ("1", "2", 5));
}

#[tokio::test]
async fn what_cannot_keep_one_servers_order_is_refused_before_anything_runs() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    let aborted = "-EXECABORT Transaction discarded because of previous errors.";

    // WATCH holds one node: its transaction stays in the watched slot.
    assert_eq!(show(&client.call(&["WATCH", "a"]).await), "OK");
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["SET", "a", "1"]).await), "QUEUED");
    let refused = show(&client.call(&["SET", "b", "2"]).await);
    assert!(
        refused.starts_with("-ERR proxy: the keys of a transaction with WATCH"),
        "{refused}"
    );
    assert_eq!(show(&client.call(&["EXEC"]).await), aborted);

    // A command on every node and keys in several slots, in either order.
    for order in [["SET", "FLUSHALL"], ["FLUSHALL", "SET"]] {
        assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
        assert_eq!(show(&client.call(&["SET", "a", "1"]).await), "QUEUED");
        let mut refusals = 0;
        for command in order {
            let reply = match command {
                "SET" => show(&client.call(&["SET", "b", "2"]).await),
                _ => show(&client.call(&["FLUSHALL"]).await),
            };
            if reply.starts_with("-ERR proxy:") {
                assert!(reply.contains("spans slots"), "{reply}");
                refusals += 1;
            }
        }
        assert_eq!(refusals, 1, "{order:?}");
        assert_eq!(show(&client.call(&["EXEC"]).await), aborted);
    }

    // One command whose keys span slots.
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    let refused = show(&client.call(&["MSET", "a", "1", "b", "2"]).await);
    assert!(
        refused.starts_with("-ERR proxy: inside MULTI, the keys of one command"),
        "{refused}"
    );
    assert_eq!(show(&client.call(&["EXEC"]).await), aborted);

    // Nothing ran.
    assert_eq!(show(&client.call(&["EXISTS", "a", "b"]).await), "0");
}

#[tokio::test]
async fn a_slot_that_moves_while_queued_is_followed_and_nothing_runs_twice() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    // `k` and `{k}n` share a slot that holds no key yet, so it can move at
    // once.
    let owner = common::owner(&cluster, "k");
    let target = (owner + 1) % 3;
    let slot = show(&cluster.primaries()[0].command(&["CLUSTER", "KEYSLOT", "k"]));
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["SET", "k", "v"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["INCR", "{k}n"]).await), "QUEUED");
    let target_id = show(&cluster.primaries()[target].command(&["CLUSTER", "MYID"]));
    for node in cluster.primaries() {
        assert_eq!(
            show(&node.command(&["CLUSTER", "SETSLOT", &slot, "NODE", &target_id])),
            "OK"
        );
    }
    assert_eq!(show(&client.call(&["EXEC"]).await), "[OK 1]");
    assert_eq!(show(&cluster.primaries()[target].command(&["GET", "k"])), "v");
    assert_eq!(show(&cluster.primaries()[target].command(&["GET", "{k}n"])), "1");
}

/// Marks `key`'s slot as being migrated from its owner to the next
/// primary, as `redis-cli --cluster reshard` does before it moves the
/// keys: the owner answers ASK for a key it no longer holds. Returns the
/// slot and the target's index.
fn start_migrating(cluster: &Cluster, key: &str) -> (String, usize) {
    let owner = common::owner(cluster, key);
    let target = (owner + 1) % 3;
    let slot = show(&cluster.primaries()[0].command(&["CLUSTER", "KEYSLOT", key]));
    let id = |i: usize| show(&cluster.primaries()[i].command(&["CLUSTER", "MYID"]));
    let (owner_id, target_id) = (id(owner), id(target));
    let importing = ["CLUSTER", "SETSLOT", &slot, "IMPORTING", &owner_id];
    assert_eq!(show(&cluster.primaries()[target].command(&importing)), "OK");
    let migrating = ["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target_id];
    assert_eq!(show(&cluster.primaries()[owner].command(&migrating)), "OK");
    (slot, target)
}

#[tokio::test]
async fn a_slot_being_migrated_is_followed_with_asking() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    // `k` does not exist yet: its owner answers ASK. `a` is in another
    // slot, so EXEC runs two blocks. (Two keys of the slot, both still to
    // come, would get TRYAGAIN from the importing node: Valkey serves a
    // migrating slot's keys one by one.)
    let (slot, target) = start_migrating(&cluster, "k");
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["SET", "k", "1"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["SET", "a", "x"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["INCR", "k"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["EXEC"]).await), "[OK OK 2]");
    // The block ran once, on the node importing the slot.
    let count = ["CLUSTER", "COUNTKEYSINSLOT", &slot];
    assert_eq!(show(&cluster.primaries()[target].command(&count)), "1");
    assert_eq!(show(&client.call(&["GET", "a"]).await), "x");
}

#[tokio::test]
async fn a_block_whose_keys_are_half_moved_runs_nowhere() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&client.call(&["SET", "{k}old", "1"]).await), "OK");
    let (slot, target) = start_migrating(&cluster, "k");
    // The owner holds `{k}old` but not `k`; the importing node holds
    // neither: no node can run both, as Valkey says with TRYAGAIN.
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["INCR", "{k}old"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["SET", "k", "v"]).await), "QUEUED");
    let exec = show(&client.call(&["EXEC"]).await);
    assert!(exec.starts_with("-TRYAGAIN"), "{exec}");
    // Nothing ran, anywhere.
    let count = ["CLUSTER", "COUNTKEYSINSLOT", &slot];
    assert_eq!(show(&cluster.primaries()[target].command(&count)), "0");
    assert_eq!(show(&client.call(&["GET", "{k}old"]).await), "1");
}
