//! Pub/sub through the proxy: subscribe mode as Valkey gives it, messages
//! on a cluster (shard channels on their owners), RESP3 pushes mixed with
//! replies, links freed when done, and subscriptions that survive a
//! failover.

mod common;

use std::time::Duration;

use common::{proxy_info_field, settled_info_field, show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

async fn replies(addr: &str, script: &[Vec<&str>]) -> Vec<String> {
    let mut client = RawClient::connect(addr).await;
    let mut out = Vec::new();
    for command in script {
        client.send(command).await;
    }
    // Read until the stream goes quiet: subscription replies are several
    // frames per command.
    while let Some(frame) = client.next_within(Duration::from_millis(500)).await {
        out.push(show(&frame));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_mode_matches_valkey() {
    let direct = Server::start(Flavor::Valkey);
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    let script: Vec<Vec<&str>> = vec![
        vec!["SUBSCRIBE", "a", "b", "a"],
        vec!["GET", "x"],
        vec!["PING"],
        vec!["PING", "hi"],
        vec!["PSUBSCRIBE", "p*"],
        vec!["SSUBSCRIBE", "s"],
        vec!["UNSUBSCRIBE", "nosuch"],
        vec!["UNSUBSCRIBE"],
        vec!["PUNSUBSCRIBE"],
        vec!["SUNSUBSCRIBE"],
        vec!["UNSUBSCRIBE"],
        vec!["SUNSUBSCRIBE"],
        vec!["GET", "x"],
        vec!["HELLO", "3", "SETNAME", "n"],
        vec!["SUBSCRIBE", "a"],
        vec!["GET", "x"],
        vec!["PING"],
        vec!["UNSUBSCRIBE", "a"],
    ];
    let mut expected = replies(&direct.addr(), &script).await;
    let mut got = replies(&proxy.addr, &script).await;
    // HELLO's server description differs (the proxy is not the server).
    let hello = script.iter().position(|c| c[0] == "HELLO").unwrap();
    let hello_reply = |replies: &mut Vec<String>| {
        let at = replies
            .iter()
            .position(|r| r.starts_with('{'))
            .expect("HELLO's map");
        replies.remove(at);
    };
    hello_reply(&mut expected);
    hello_reply(&mut got);
    assert!(hello > 0);
    assert_eq!(got, expected);
    assert_eq!(
        settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await,
        0
    );
}

/// A channel name whose slot is served by primary `shard` of three (the
/// test cluster gives each primary an equal range of slots).
fn channel_on_shard(prefix: &str, shard: usize) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|name| usize::from(router::slot::key_slot(name.as_bytes())) * 3 / 16384 == shard)
        .expect("some name hashes there")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_subscribers_on_a_valkey_cluster() {
    messages_reach_subscribers(Cluster::start(Flavor::Valkey, 3, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_subscribers_on_a_valkey_cluster_with_databases() {
    messages_reach_subscribers(Cluster::start_with(
        Flavor::Valkey,
        3,
        0,
        &[("cluster-databases", "16")],
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_subscribers_on_a_redis_cluster() {
    messages_reach_subscribers(Cluster::start(Flavor::Redis, 3, 0)).await;
}

async fn messages_reach_subscribers(cluster: Cluster) {
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut subscriber = RawClient::connect(&proxy.addr).await;
    let mut publisher = RawClient::connect(&proxy.addr).await;
    assert_eq!(
        show(&subscriber.call(&["SUBSCRIBE", "news"]).await),
        "[subscribe news 1]"
    );
    assert_eq!(
        show(&subscriber.call(&["PSUBSCRIBE", "n*"]).await),
        "[psubscribe n* 2]"
    );
    // Shard channels on the three primaries: one command for the client,
    // one per slot behind it.
    let channels: Vec<String> = (0..3).map(|shard| channel_on_shard("s-", shard)).collect();
    let mut command = vec!["SSUBSCRIBE"];
    command.extend(channels.iter().map(String::as_str));
    subscriber.send(&command).await;
    for (i, channel) in channels.iter().enumerate() {
        assert_eq!(
            show(&subscriber.next().await),
            format!("[ssubscribe {channel} {}]", i + 1)
        );
    }
    assert_eq!(show(&publisher.call(&["PUBLISH", "news", "hello"]).await), "2");
    let mut seen = vec![show(&subscriber.next().await), show(&subscriber.next().await)];
    seen.sort();
    assert_eq!(seen, ["[message news hello]", "[pmessage n* news hello]"]);
    for channel in &channels {
        assert_eq!(show(&publisher.call(&["SPUBLISH", channel, "m"]).await), "1");
        assert_eq!(show(&subscriber.next().await), format!("[smessage {channel} m]"));
    }
    // Three shard links and the main one, closed as the client unsubscribes.
    assert_eq!(proxy_info_field(&proxy.addr, "backend_connections_dedicated"), 4);
    subscriber.send(&["SUNSUBSCRIBE"]).await;
    for _ in 0..3 {
        assert!(show(&subscriber.next().await).starts_with("[sunsubscribe s-"));
    }
    assert_eq!(
        show(&subscriber.call(&["UNSUBSCRIBE"]).await),
        "[unsubscribe news 1]"
    );
    assert_eq!(
        show(&subscriber.call(&["PUNSUBSCRIBE"]).await),
        "[punsubscribe n* 0]"
    );
    assert_eq!(show(&subscriber.call(&["GET", "x"]).await), "(nil)");
    assert_eq!(
        settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_pushes_mix_with_replies() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    client.call(&["HELLO", "3"]).await;
    assert_eq!(show(&client.call(&["SUBSCRIBE", "c"]).await), "[subscribe c 1]");
    assert_eq!(show(&client.call(&["SET", "k", "v"]).await), "OK");
    let mut publisher = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&publisher.call(&["PUBLISH", "c", "x"]).await), "1");
    let push = client.next().await;
    assert!(matches!(push, resp::Frame::Push(_)), "a RESP3 push: {push:?}");
    assert_eq!(show(&push), "[message c x]");
    assert_eq!(show(&client.call(&["GET", "k"]).await), "v");
    // Leaving while subscribed frees the link at once.
    drop(client);
    let held = settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await;
    assert_eq!(held, 0, "the subscription link was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_survives_a_failover() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 1);
    let proxy = TestProxy::start(cluster.addrs(), |config| {
        config.refresh_interval_ms = 500;
    })
    .await;
    let shard_channel = channel_on_shard("shard-", 0);
    let mut subscriber = RawClient::connect(&proxy.addr).await;
    assert_eq!(
        show(&subscriber.call(&["SSUBSCRIBE", &shard_channel]).await),
        format!("[ssubscribe {shard_channel} 1]")
    );
    assert_eq!(
        show(&subscriber.call(&["SUBSCRIBE", "plain"]).await),
        "[subscribe plain 1]"
    );
    let mut publisher = RawClient::connect(&proxy.addr).await;
    publisher.call(&["SPUBLISH", &shard_channel, "before"]).await;
    assert_eq!(
        show(&subscriber.next().await),
        format!("[smessage {shard_channel} before]")
    );

    // The replica of the first shard takes over.
    let replica = &cluster.replicas_of(0)[0];
    assert!(!replica.command(&["CLUSTER", "FAILOVER"]).is_error());
    let mut promoted = false;
    for _ in 0..200 {
        let info = test_util::client::must(&replica.addr(), &["INFO", "replication"]);
        if info.contains("role:master") {
            promoted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(promoted, "the replica became primary");

    // Publish until the message arrives: the proxy resubscribes on the new
    // owner by itself, and nothing but messages reaches the client.
    let mut got_shard = false;
    let mut got_plain = false;
    for i in 0..100 {
        let message = format!("after-{i}");
        publisher.call(&["SPUBLISH", &shard_channel, &message]).await;
        publisher.call(&["PUBLISH", "plain", &message]).await;
        while let Some(frame) = subscriber.next_within(Duration::from_millis(100)).await {
            let text = show(&frame);
            if text.starts_with(&format!("[smessage {shard_channel} after-")) {
                got_shard = true;
            } else if text.starts_with("[message plain after-") {
                got_plain = true;
            } else {
                panic!("the client saw something other than a message: {text}");
            }
        }
        if got_shard && got_plain {
            break;
        }
    }
    assert!(got_shard, "shard messages arrive after the failover");
    assert!(got_plain, "plain messages arrive after the failover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_introspection_counts_every_node() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut through_proxy = RawClient::connect(&proxy.addr).await;
    through_proxy.call(&["SUBSCRIBE", "news"]).await;
    through_proxy.call(&["PSUBSCRIBE", "n*"]).await;
    let shard_channel = channel_on_shard("sc-", 2);
    through_proxy.call(&["SSUBSCRIBE", &shard_channel]).await;
    // A subscriber connected straight to another node counts too.
    let mut direct = RawClient::connect(&cluster.primaries()[1].addr()).await;
    direct.call(&["SUBSCRIBE", "news"]).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    assert_eq!(
        show(&client.call(&["PUBSUB", "NUMSUB", "news", "none"]).await),
        "[news 2 none 0]"
    );
    assert_eq!(show(&client.call(&["PUBSUB", "NUMPAT"]).await), "1");
    assert_eq!(show(&client.call(&["PUBSUB", "CHANNELS"]).await), "[news]");
    assert_eq!(
        show(&client.call(&["PUBSUB", "SHARDNUMSUB", &shard_channel]).await),
        format!("[{shard_channel} 1]")
    );
    assert_eq!(
        show(&client.call(&["PUBSUB", "SHARDCHANNELS"]).await),
        format!("[{shard_channel}]")
    );
    // PUBLISH counts the proxy's subscribers (on the home node).
    assert_eq!(show(&client.call(&["PUBLISH", "news", "x"]).await), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_libraries_subscribe_through_the_proxy() {
    use futures::StreamExt;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let cluster = Cluster::start(Flavor::Redis, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    // The redis crate's async PubSub.
    let client = redis::Client::open(format!("redis://{}/", proxy.addr)).unwrap();
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub connection");
    pubsub.subscribe("lib").await.unwrap();
    pubsub.psubscribe("li*").await.unwrap();
    // redis-cli, subscribed in another process.
    let port = proxy.addr.rsplit(':').next().unwrap().to_string();
    let mut cli = Command::new("redis-cli")
        .args(["-p", &port, "SUBSCRIBE", "lib"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    // Its confirmation: "subscribe", "lib", "1".
    let confirmation: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    assert_eq!(confirmation, ["subscribe", "lib", "1"]);

    let mut publisher = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&publisher.call(&["PUBLISH", "lib", "hello"]).await), "3");
    let mut messages = pubsub.on_message();
    let mut got = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("a message in time")
            .expect("the stream is open");
        got.push(format!(
            "{} {}",
            message.get_channel_name(),
            message.get_payload::<String>().unwrap()
        ));
    }
    got.sort();
    assert_eq!(got, ["lib hello", "lib hello"]);
    let printed: Vec<String> =
        tokio::task::spawn_blocking(move || (0..3).map(|_| lines.next().unwrap().unwrap()).collect())
            .await
            .unwrap();
    assert_eq!(printed, ["message", "lib", "hello"]);
    let _ = cli.kill();
    let _ = cli.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_notifications_from_every_node_and_database() {
    let cluster = Cluster::start_with(Flavor::Redis, 3, 0, &[("notify-keyspace-events", "KEA")]);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    // Database 0: events for keys on all three primaries.
    let mut zero = RawClient::connect(&proxy.addr).await;
    assert_eq!(
        show(&zero.call(&["SUBSCRIBE", "__keyevent@0__:set"]).await),
        "[subscribe __keyevent@0__:set 1]"
    );
    // Database 3 (emulated on this Redis cluster).
    let mut three = RawClient::connect(&proxy.addr).await;
    three.call(&["SUBSCRIBE", "__keyspace@3__:k"]).await;
    assert_eq!(
        show(&three.call(&["PSUBSCRIBE", "__keyevent@3__:*"]).await),
        "[psubscribe __keyevent@3__:* 2]"
    );
    let mut writer = RawClient::connect(&proxy.addr).await;
    for key in ["a", "b", "c", "d"] {
        writer.call(&["SET", key, "0"]).await;
    }
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..4 {
        seen.push(show(&zero.next().await));
    }
    seen.sort();
    let expected: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| format!("[message __keyevent@0__:set {k}]"))
        .collect();
    assert_eq!(seen, expected);
    writer.call(&["SELECT", "3"]).await;
    writer.call(&["SET", "k", "3"]).await;
    let mut got = vec![show(&three.next().await), show(&three.next().await)];
    got.sort();
    assert_eq!(
        got,
        [
            "[message __keyspace@3__:k set]",
            "[pmessage __keyevent@3__:* __keyevent@3__:set k]"
        ]
    );
    // Database 0's subscriber did not see database 3's key.
    assert!(zero.next_within(Duration::from_millis(300)).await.is_none());
}
