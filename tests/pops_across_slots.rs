//! Pops whose keys span slots (BLPOP and the other blocking pops, LMPOP,
//! ZMPOP), through the proxy on a 3-primary cluster: the answers one
//! server gives, waits on every node at once, and no element lost when
//! two nodes answer together.

mod common;

use std::time::{Duration, Instant};

use common::{
    assert_same_replies, key_per_node, settled_info_field, show, until_blocked, RawClient, TestProxy,
};
use resp::Frame;
use test_util::{Cluster, Flavor, Server};

/// The commands compared with one server, after the data they pop from.
/// Key names carry no hash tag, so they spread over the slots.
#[rustfmt::skip]
const SCRIPT: &[&[&str]] = &[
    &["FLUSHALL"],
    &["RPUSH", "l1", "a", "b", "c"],
    &["RPUSH", "l3", "x"],
    &["ZADD", "z2", "1", "m1", "2", "m2", "3", "m3"],
    &["ZADD", "z3", "5", "n"],
    &["SET", "s", "string"],
    &["BLPOP", "l0", "l1", "l3", "1"],
    &["BRPOP", "l0", "l3", "l1", "1"],
    &["BLPOP", "l0", "l3", "0.1"],
    &["BLPOP", "l0", "s", "l1", "1"],
    &["BLPOP", "l0", "l1", "-1"],
    &["BLPOP", "l0", "l1", "soon"],
    &["BZPOPMIN", "z0", "z2", "z3", "1"],
    &["BZPOPMAX", "z0", "z3", "z2", "1"],
    &["BZPOPMIN", "z0", "z3", "0.1"],
    &["BLMPOP", "1", "3", "l0", "l9", "l1", "LEFT", "COUNT", "5"],
    &["BLMPOP", "1", "2", "l0", "l1", "MIDDLE"],
    &["BLMPOP", "0.1", "2", "l0", "l1", "LEFT"],
    &["BZMPOP", "1", "2", "z0", "z2", "MAX", "COUNT", "10"],
    &["BZMPOP", "1", "2", "z0", "z2", "MIN", "COUNT", "0"],
    &["RPUSH", "l9", "p", "q", "r"],
    &["LMPOP", "3", "l0", "l9", "l1", "RIGHT", "COUNT", "2"],
    &["LMPOP", "2", "l0", "l1", "LEFT"],
    &["LMPOP", "2", "l0", "s", "LEFT"],
    &["ZADD", "z9", "7", "w"],
    &["ZMPOP", "2", "z0", "z9", "MAX"],
    &["ZMPOP", "2", "z0", "z9", "MIN"],
    &["RPUSH", "src", "e1", "e2", "e3"],
    &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "1"],
    &["BRPOPLPUSH", "src", "dst", "1"],
    &["LRANGE", "dst", "0", "-1"],
    &["BLMOVE", "src", "s", "LEFT", "LEFT", "1"],
    &["BLMOVE", "s", "dst", "LEFT", "LEFT", "1"],
    &["BLMOVE", "none", "s", "LEFT", "LEFT", "0.1"],
    &["LMOVE", "none", "s", "LEFT", "LEFT"],
    &["BLMOVE", "src", "dst", "UP", "LEFT", "1"],
    &["LRANGE", "src", "0", "-1"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pops_across_slots_answer_as_one_server() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    assert_same_replies(&direct.addr(), &proxy.addr, SCRIPT).await;
}

/// `BLPOP keys... timeout`.
fn blpop<'a>(keys: &'a [String], timeout: &'a str) -> Vec<&'a str> {
    let mut command = vec!["BLPOP"];
    command.extend(keys.iter().map(String::as_str));
    command.push(timeout);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop_waits_on_every_node_and_leaves_nothing_behind() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let keys = key_per_node(&cluster, "list");
    let mut blocked = RawClient::connect(&proxy.addr).await;
    let mut pusher = RawClient::connect(&proxy.addr).await;
    blocked.send(&blpop(&keys, "0")).await;
    until_blocked(&cluster, 3).await;
    assert_eq!(show(&pusher.call(&["RPUSH", &keys[2], "late"]).await), "1");
    assert_eq!(show(&blocked.next().await), format!("[{} late]", keys[2]));
    // The other nodes stopped waiting; their connections went back.
    until_blocked(&cluster, 0).await;
    assert_eq!(
        settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await,
        0
    );
    // A timeout on every node is one nil, after the timeout.
    let started = Instant::now();
    assert_eq!(blocked.call(&blpop(&keys, "0.2")).await, Frame::NullArray);
    assert!(started.elapsed() >= Duration::from_millis(200));
    // And the connection goes on as before.
    assert_eq!(show(&blocked.call(&["PING"]).await), "PONG");
    // A client that leaves while blocked frees every node at once.
    blocked.send(&blpop(&keys, "0")).await;
    until_blocked(&cluster, 3).await;
    drop(blocked);
    until_blocked(&cluster, 0).await;
    assert_eq!(
        settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_element_is_lost_when_two_nodes_answer_at_once() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let keys = key_per_node(&cluster, "race");
    let (first, second) = (&keys[0], &keys[1]);
    let zkeys = key_per_node(&cluster, "zrace");
    let mut blocked = RawClient::connect(&proxy.addr).await;
    let mut pusher = RawClient::connect(&proxy.addr).await;
    for round in 0..10 {
        // Both lists get an element at nearly the same moment, while the
        // client waits on both nodes.
        blocked.send(&["BLPOP", first, second, "0"]).await;
        until_blocked(&cluster, 2).await;
        pusher.send(&["RPUSH", first, "one"]).await;
        pusher.send(&["RPUSH", second, "two"]).await;
        pusher.next().await;
        pusher.next().await;
        let popped = show(&blocked.next().await);
        assert!(
            popped == format!("[{first} one]") || popped == format!("[{second} two]"),
            "round {round}: {popped}"
        );
        // Exactly one element left, in the list it was pushed to.
        until_blocked(&cluster, 0).await;
        let mut left = Vec::new();
        for key in [first, second] {
            left.push(show(&pusher.call(&["LRANGE", key, "0", "-1"]).await));
        }
        let expected = if popped.contains("one") {
            ["[]", "[two]"]
        } else {
            ["[one]", "[]"]
        };
        assert_eq!(left, expected, "round {round}");
        pusher.call(&["DEL", first, second]).await;
    }
    // The same for sorted sets: members keep their scores.
    for round in 0..5 {
        blocked
            .send(&["BZPOPMIN", &zkeys[0], &zkeys[1], &zkeys[2], "0"])
            .await;
        until_blocked(&cluster, 3).await;
        pusher.send(&["ZADD", &zkeys[2], "2.5", "c"]).await;
        pusher.send(&["ZADD", &zkeys[1], "1.5", "b"]).await;
        pusher.next().await;
        pusher.next().await;
        let popped = show(&blocked.next().await);
        until_blocked(&cluster, 0).await;
        let mut left = Vec::new();
        for key in &zkeys {
            left.push(show(
                &pusher.call(&["ZRANGE", key, "0", "-1", "WITHSCORES"]).await,
            ));
        }
        let expected = if popped == format!("[{} c 2.5]", zkeys[2]) {
            ["[]", "[b 1.5]", "[]"]
        } else {
            assert_eq!(popped, format!("[{} b 1.5]", zkeys[1]), "round {round}");
            ["[]", "[]", "[c 2.5]"]
        };
        assert_eq!(left, expected, "round {round}");
        for key in &zkeys {
            pusher.call(&["DEL", key]).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_reaches_every_node() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let keys = key_per_node(&cluster, "waiting");
    let mut blocked = RawClient::connect(&proxy.addr).await;
    let mut other = RawClient::connect(&proxy.addr).await;
    let id = show(&blocked.call(&["CLIENT", "ID"]).await);
    for (reason, answer) in [("TIMEOUT", "(nil)"), ("ERROR", "-UNBLOCKED")] {
        blocked.send(&blpop(&keys, "0")).await;
        until_blocked(&cluster, 3).await;
        assert_eq!(show(&other.call(&["CLIENT", "UNBLOCK", &id, reason]).await), "1");
        let reply = show(&blocked.next().await);
        assert!(reply.starts_with(answer), "{reason}: {reply}");
        until_blocked(&cluster, 0).await;
    }
    assert_eq!(show(&other.call(&["CLIENT", "UNBLOCK", &id]).await), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pops_across_slots_in_an_emulated_database() {
    // Redis 7 has one database in cluster mode: the proxy keeps the
    // others as key namespaces, which the keys of the replies leave.
    let cluster = Cluster::start(Flavor::Redis, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut blocked = RawClient::connect(&proxy.addr).await;
    let mut pusher = RawClient::connect(&proxy.addr).await;
    for client in [&mut blocked, &mut pusher] {
        assert_eq!(show(&client.call(&["SELECT", "2"]).await), "OK");
    }
    pusher.call(&["RPUSH", "b", "now"]).await;
    assert_eq!(
        show(&blocked.call(&["BLPOP", "a", "b", "c", "1"]).await),
        "[b now]"
    );
    blocked.send(&["BRPOP", "a", "b", "c", "0"]).await;
    until_blocked(&cluster, 3).await;
    pusher.call(&["RPUSH", "c", "later"]).await;
    assert_eq!(show(&blocked.next().await), "[c later]");
    let mut other_db = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&other_db.call(&["EXISTS", "a", "b", "c"]).await), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_answer_does_not_keep_the_answer() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let keys = key_per_node(&cluster, "stuck");
    let mut blocked = RawClient::connect(&proxy.addr).await;
    let mut pusher = RawClient::connect(&proxy.addr).await;
    blocked.send(&blpop(&keys, "0")).await;
    until_blocked(&cluster, 3).await;
    // The third node stops answering anything, CLIENT UNBLOCK included.
    cluster.primaries()[2].pause();
    pusher.call(&["RPUSH", &keys[0], "v"]).await;
    let started = Instant::now();
    assert_eq!(show(&blocked.next().await), format!("[{} v]", keys[0]));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Once it is back it sees the closed connection and stops waiting.
    cluster.primaries()[2].resume();
    until_blocked(&cluster, 0).await;
    assert_eq!(show(&blocked.call(&["PING"]).await), "PONG");
}
