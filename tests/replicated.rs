//! A primary with replicas behind the proxy: found from any seed, writes go
//! to the primary, and with `read_policy = "prefer-replica"` reads go to a
//! replica.

mod common;

use std::time::Duration;

use common::{connect, run, TestProxy};
use proxy::config::ReadPolicySetting;
use redis::Value;
use test_util::{Cluster, Flavor, Replicated, Server};

fn commandstat(info: &resp::Frame, command: &str) -> u64 {
    let text = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_replicas_when_asked() {
    let group = Replicated::start(Flavor::Valkey, 1);
    let seed = group.replicas[0].addr();
    let proxy = TestProxy::start(vec![seed], |c| c.read_policy = ReadPolicySetting::PreferReplica).await;
    let mut client = connect(&proxy.addr).await;
    assert_eq!(run(&mut client, &["SET", "k", "v"]).await, Value::Okay);
    // Wait until the replica has the write, then read through the proxy.
    let mut got = Value::Nil;
    for _ in 0..100 {
        got = run(&mut client, &["GET", "k"]).await;
        if got != Value::Nil {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, Value::BulkString(b"v".to_vec()));
    let replica_gets = commandstat(&group.replicas[0].command(&["INFO", "commandstats"]), "get");
    let primary_gets = commandstat(&group.primary.command(&["INFO", "commandstats"]), "get");
    let primary_sets = commandstat(&group.primary.command(&["INFO", "commandstats"]), "set");
    assert!(replica_gets >= 1, "reads reached the replica");
    assert_eq!(primary_gets, 0, "no read reached the primary");
    assert_eq!(primary_sets, 1, "the write reached the primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_everything_goes_to_the_primary() {
    let group = Replicated::start(Flavor::Redis, 1);
    let proxy = TestProxy::default_for(vec![group.primary.addr()]).await;
    let mut client = connect(&proxy.addr).await;
    assert_eq!(run(&mut client, &["SET", "k", "v"]).await, Value::Okay);
    assert_eq!(
        run(&mut client, &["GET", "k"]).await,
        Value::BulkString(b"v".to_vec())
    );
    assert_eq!(
        commandstat(&group.replicas[0].command(&["INFO", "commandstats"]), "get"),
        0
    );
    assert_eq!(
        commandstat(&group.primary.command(&["INFO", "commandstats"]), "get"),
        1
    );
}

/// WAIT counts the replicas that acknowledged the client's own writes: a
/// replica that stopped acknowledging is not counted, however many other
/// connections the proxy holds to the primary.
async fn wait_counts_acknowledgements_of_the_clients_writes(flavor: Flavor) {
    let group = Replicated::start(flavor, 1);
    let proxy = TestProxy::default_for(group.addrs()).await;
    let mut client = connect(&proxy.addr).await;
    assert_eq!(run(&mut client, &["SET", "w", "1"]).await, Value::Okay);
    assert_eq!(run(&mut client, &["WAIT", "1", "5000"]).await, Value::Int(1));

    group.replicas[0].pause();
    assert_eq!(run(&mut client, &["SET", "w", "2"]).await, Value::Okay);
    let started = std::time::Instant::now();
    assert_eq!(
        run(&mut client, &["WAIT", "1", "300"]).await,
        Value::Int(0),
        "the stopped replica did not acknowledge the write"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "WAIT waited its timeout"
    );
    assert_eq!(run(&mut client, &["WAIT", "0", "0"]).await, Value::Int(0));

    // Without a timeout it waits until the replica is back.
    let waiting = tokio::spawn({
        let mut client = client.clone();
        async move { run(&mut client, &["WAIT", "1", "0"]).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "still waiting for the stopped replica");
    group.replicas[0].resume();
    let acknowledged = tokio::time::timeout(Duration::from_secs(10), waiting).await;
    assert_eq!(acknowledged.unwrap().unwrap(), Value::Int(1));
    let error = run(&mut client, &["WAIT", "1", "-1"]).await;
    assert!(format!("{error:?}").contains("timeout is negative"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_acknowledgements_on_valkey() {
    wait_counts_acknowledgements_of_the_clients_writes(Flavor::Valkey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_acknowledgements_on_redis() {
    wait_counts_acknowledgements_of_the_clients_writes(Flavor::Redis).await;
}

/// On a cluster, WAIT answers the fewest acknowledgements over the
/// primaries (WAIT's `agg_min` reply policy): one stopped replica is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_on_a_cluster_counts_the_least_acknowledged_primary() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 1);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = connect(&proxy.addr).await;
    for i in 0..30 {
        let key = format!("w{i}");
        assert_eq!(run(&mut client, &["SET", &key, "1"]).await, Value::Okay);
    }
    assert_eq!(run(&mut client, &["WAIT", "1", "5000"]).await, Value::Int(1));
    cluster.replicas_of(1)[0].pause();
    for i in 0..30 {
        let key = format!("w{i}");
        assert_eq!(run(&mut client, &["SET", &key, "2"]).await, Value::Okay);
    }
    assert_eq!(run(&mut client, &["WAIT", "1", "300"]).await, Value::Int(0));
    cluster.replicas_of(1)[0].resume();
    assert_eq!(run(&mut client, &["WAIT", "1", "5000"]).await, Value::Int(1));
}

/// WAITAOF, too, counts for the client's own writes: a replica without an
/// append-only file never acknowledges one, through the proxy as direct;
/// a primary with one fsyncs the client's write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitaof_counts_for_the_clients_own_writes() {
    let group = Replicated::start(Flavor::Valkey, 1);
    let proxy = TestProxy::default_for(group.addrs()).await;
    let mut client = connect(&proxy.addr).await;
    let mut direct = connect(&group.primary.addr()).await;
    let no_replica_fsync = Value::Array(vec![Value::Int(0), Value::Int(0)]);
    for connection in [&mut client, &mut direct] {
        assert_eq!(run(connection, &["SET", "a", "1"]).await, Value::Okay);
        assert_eq!(
            run(connection, &["WAITAOF", "0", "1", "200"]).await,
            no_replica_fsync
        );
        let refused = format!("{:?}", run(connection, &["WAITAOF", "1", "0", "0"]).await);
        assert!(refused.contains("appendonly is disabled"), "{refused}");
    }

    let server = Server::start_with(Flavor::Valkey, &[("appendonly", "yes")]);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = connect(&proxy.addr).await;
    assert_eq!(run(&mut client, &["SET", "a", "1"]).await, Value::Okay);
    assert_eq!(
        run(&mut client, &["WAITAOF", "1", "0", "5000"]).await,
        Value::Array(vec![Value::Int(1), Value::Int(0)])
    );
}
