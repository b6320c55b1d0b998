//! XREAD and XREADGROUP whose streams span slots, through the proxy on a
//! 3-primary cluster: the answers one server gives, and with BLOCK a wait
//! on every node at once.

mod common;

use std::time::Duration;

use common::{
    assert_same_replies, key_per_node, settled_info_field, show, until_blocked, RawClient, TestProxy,
};
use test_util::{Cluster, Flavor, Server};

/// The commands compared with one server. Stream names carry no hash
/// tag, so they spread over the slots.
#[rustfmt::skip]
const SCRIPT: &[&[&str]] = &[
    &["FLUSHALL"],
    &["XADD", "s1", "1-1", "f", "a"],
    &["XADD", "s1", "1-2", "f", "b"],
    &["XADD", "s3", "3-1", "f", "c"],
    &["XADD", "s4", "4-1", "f", "d"],
    &["SET", "str", "x"],
    &["XREAD", "STREAMS", "s4", "s0", "s1", "s3", "0", "0", "0", "0"],
    &["XREAD", "COUNT", "1", "STREAMS", "s1", "s3", "s4", "0", "0", "0"],
    &["XREAD", "STREAMS", "s1", "s3", "1-1", "3-1"],
    &["XREAD", "STREAMS", "s0", "s9", "0", "0"],
    &["XREAD", "BLOCK", "50", "STREAMS", "s0", "s1", "0", "1-1"],
    &["XREAD", "BLOCK", "50", "STREAMS", "s0", "s1", "0", "$"],
    &["XREAD", "BLOCK", "50", "STREAMS", "s1", "s3", "+", "+"],
    &["XREAD", "STREAMS", "s1", "str", "0", "0"],
    &["XREAD", "STREAMS", "s1", "s3", "0"],
    &["XREAD", "BLOCK", "soon", "STREAMS", "s1", "s3", "0", "0"],
    &["XREAD", "BLOCK", "-5", "STREAMS", "s1", "s3", "0", "0"],
    &["XREAD", "COUNT", "many", "STREAMS", "s1", "s3", "0", "0"],
    &["XREAD", "SOON", "STREAMS", "s1", "s3", "0", "0"],
    &["XREAD", "STREAMS", "s1", "s3", "bad", "0"],
    &["XGROUP", "CREATE", "s1", "g", "0"],
    &["XGROUP", "CREATE", "s3", "g", "0"],
    &["XGROUP", "CREATE", "s4", "g", "$"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s3", "s4", ">", ">", ">"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s4", "s1", "s3", "0", "0", "0"],
    &["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s1", "s3", ">", ">"],
    &["XADD", "s3", "3-2", "f", "e"],
    &["XADD", "s1", "1-3", "f", "g"],
    &["XREADGROUP", "GROUP", "g", "c2", "NOACK", "STREAMS", "s3", "s4", ">", ">"],
    // Errors hand nothing over on the other streams: 1-3 stays new.
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s0", ">", ">"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "str", ">", ">"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s3", ">", "$"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s3", ">", "x-y"],
    &["XPENDING", "s1", "g"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s3", ">"],
    &["XREADGROUP", "STREAMS", "s1", "s3", ">", ">"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s3", ">", ">"],
    &["XPENDING", "s1", "g"],
    &["XPENDING", "s3", "g"],
    &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s1", "s3", ">", ">"],
    &["XADD", "s3", "3-3", "f", "h"],
    &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s1", "s3", ">", ">"],
    &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s1", "s3", "0", ">"],
    &["XREADGROUP", "GROUP", "nogroup", "c", "BLOCK", "50", "STREAMS", "s1", "s3", ">", ">"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reads_across_slots_answer_as_one_server() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    assert_same_replies(&direct.addr(), &proxy.addr, SCRIPT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_read_waits_on_every_node() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let streams = key_per_node(&cluster, "stream");
    let mut reader = RawClient::connect(&proxy.addr).await;
    let mut writer = RawClient::connect(&proxy.addr).await;
    let mut read = vec!["XREAD", "BLOCK", "0", "STREAMS"];
    read.extend(streams.iter().map(String::as_str));
    read.extend(["$", "$", "$"]);
    reader.send(&read).await;
    until_blocked(&cluster, 3).await;
    writer.call(&["XADD", &streams[1], "7-1", "f", "v"]).await;
    assert_eq!(
        show(&reader.next().await),
        format!("[[{} [[7-1 [f v]]]]]", streams[1])
    );
    // The other nodes stopped waiting; their connections went back.
    until_blocked(&cluster, 0).await;
    assert_eq!(
        settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await,
        0
    );
    // CLIENT UNBLOCK reaches every node: TIMEOUT gives nil.
    let id = show(&reader.call(&["CLIENT", "ID"]).await);
    reader.send(&read).await;
    until_blocked(&cluster, 3).await;
    assert_eq!(show(&writer.call(&["CLIENT", "UNBLOCK", &id]).await), "1");
    assert_eq!(show(&reader.next().await), "(nil)");
    until_blocked(&cluster, 0).await;
    // Requests after a blocking read wait for it, as on one server.
    reader.send(&read).await;
    reader.send(&["PING"]).await;
    until_blocked(&cluster, 3).await;
    assert!(reader.next_within(Duration::from_millis(100)).await.is_none());
    writer.call(&["XADD", &streams[0], "8-1", "f", "w"]).await;
    assert_eq!(
        show(&reader.next().await),
        format!("[[{} [[8-1 [f w]]]]]", streams[0])
    );
    assert_eq!(show(&reader.next().await), "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_group_read_waits_on_every_node() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let streams = key_per_node(&cluster, "events");
    let mut reader = RawClient::connect(&proxy.addr).await;
    let mut other = RawClient::connect(&proxy.addr).await;
    for stream in &streams {
        reader
            .call(&["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"])
            .await;
    }
    let read = |block: &'static str| {
        let mut read = vec!["XREADGROUP", "GROUP", "g", "c", "BLOCK", block, "STREAMS"];
        read.extend(streams.iter().map(String::as_str));
        read.extend([">", ">", ">"]);
        read
    };
    reader.send(&read("0")).await;
    until_blocked(&cluster, 3).await;
    other.call(&["XADD", &streams[2], "5-1", "f", "v"]).await;
    assert_eq!(
        show(&reader.next().await),
        format!("[[{} [[5-1 [f v]]]]]", streams[2])
    );
    until_blocked(&cluster, 0).await;
    // Handed to this consumer, once.
    assert_eq!(
        show(&other.call(&["XPENDING", &streams[2], "g"]).await),
        "[1 5-1 5-1 [[c 1]]]"
    );
    // Another consumer blocked on one stream takes the next entry first:
    // the read goes on waiting, and gets the one after.
    reader.send(&read("0")).await;
    until_blocked(&cluster, 3).await;
    let mut rival = RawClient::connect(&proxy.addr).await;
    rival
        .send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "r",
            "BLOCK",
            "0",
            "STREAMS",
            &streams[0],
            ">",
        ])
        .await;
    until_blocked(&cluster, 4).await;
    other.call(&["XADD", &streams[0], "6-1", "f", "first"]).await;
    assert_eq!(
        show(&rival.next().await),
        format!("[[{} [[6-1 [f first]]]]]", streams[0])
    );
    assert!(reader.next_within(Duration::from_millis(200)).await.is_none());
    until_blocked(&cluster, 3).await;
    other.call(&["XADD", &streams[0], "6-2", "f", "second"]).await;
    assert_eq!(
        show(&reader.next().await),
        format!("[[{} [[6-2 [f second]]]]]", streams[0])
    );
    assert_eq!(
        show(&other.call(&["XPENDING", &streams[0], "g"]).await),
        "[2 6-1 6-2 [[c 1] [r 1]]]"
    );
    // A timeout is one nil; CLIENT UNBLOCK reaches every node.
    assert_eq!(show(&reader.call(&read("100")).await), "(nil)");
    let id = show(&reader.call(&["CLIENT", "ID"]).await);
    reader.send(&read("0")).await;
    until_blocked(&cluster, 3).await;
    assert_eq!(show(&other.call(&["CLIENT", "UNBLOCK", &id]).await), "1");
    assert_eq!(show(&reader.next().await), "(nil)");
    until_blocked(&cluster, 0).await;
    assert_eq!(
        settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await,
        0
    );
}
