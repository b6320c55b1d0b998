//! A primary with replicas behind the proxy: found from any seed, writes go
//! to the primary, and with `read_policy = "prefer-replica"` reads go to a
//! replica.

mod common;

use std::time::Duration;

use common::{connect, run, TestProxy};
use proxy::config::ReadPolicySetting;
use redis::Value;
use test_util::{Flavor, Replicated};

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
