//! The commands the proxy carries out in steps across two slots (SMOVE,
//! RENAME, LMOVE, MSETNX, BLMOVE), with a fault relay in front of one
//! primary of a 3-primary cluster cutting the connection at one step:
//! before the node runs it, or after it ran with its reply lost. Each
//! command is undone: the client gets an error saying nothing changed,
//! and the keys are as they were. Every other step and fault is covered
//! against a scripted keyspace in `crates/aggregate/src/faults.rs`. The
//! STORE forms computed on copies write in one command, which runs or
//! does not, and leave no copy behind either way.

mod common;

use common::{key_per_node, show, RawClient, TestProxy};
use test_util::{Cluster, Fault, Flavor, Relay};

/// A cluster whose first primary sits behind a relay, the proxy in
/// front, a client, and a key on the relayed node and one elsewhere.
struct Setup {
    cluster: Cluster,
    relay: Relay,
    _proxy: TestProxy,
    client: RawClient,
    relayed: String,
    other: String,
}

async fn setup() -> Setup {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let relay = cluster.relay_for(0);
    let keys = key_per_node(&cluster, "step");
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let client = RawClient::connect(&proxy.addr).await;
    Setup {
        relayed: keys[0].clone(),
        other: keys[1].clone(),
        cluster,
        relay,
        _proxy: proxy,
        client,
    }
}

impl Setup {
    async fn call(&mut self, args: &[&str]) -> String {
        show(&self.client.call(args).await)
    }

    /// Runs `args` with `fault` set on the relay; asserts it was undone.
    async fn undone(&mut self, fault: Fault, args: &[&str]) {
        self.relay.set(fault);
        let reply = self.call(args).await;
        assert!(
            reply.starts_with(&format!(
                "-ERR proxy: {} failed and was undone, nothing changed: connection to",
                args[0]
            )),
            "{args:?} with {fault:?}: {reply}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_between_steps_leaves_the_keys_as_they_were() {
    let mut s = setup().await;
    let (relayed, other) = (s.relayed.clone(), s.other.clone());

    // SMOVE: SADD on the destination, then SREM on the relayed source.
    s.call(&["SADD", &relayed, "a", "b"]).await;
    s.call(&["SADD", &other, "c"]).await;
    for fault in [Fault::DropRequest(b"SREM"), Fault::DropReplyTo(b"SREM")] {
        s.undone(fault, &["SMOVE", &relayed, &other, "a"]).await;
        assert_eq!(s.call(&["SORT", &relayed, "ALPHA"]).await, "[a b]");
        assert_eq!(s.call(&["SORT", &other, "ALPHA"]).await, "[c]");
    }
    assert_eq!(s.call(&["SMOVE", &relayed, &other, "a"]).await, "1");

    // RENAME: RESTORE on the destination, then DEL on the relayed source.
    s.call(&["SET", &relayed, "new"]).await;
    s.call(&["SET", &other, "old"]).await;
    for fault in [Fault::DropRequest(b"DEL"), Fault::DropReplyTo(b"DEL")] {
        s.undone(fault, &["RENAME", &relayed, &other]).await;
        assert_eq!(s.call(&["MGET", &relayed, &other]).await, "[new old]");
    }

    // LMOVE: push on the destination, then LREM on the relayed source.
    s.call(&["DEL", &relayed, &other]).await;
    s.call(&["RPUSH", &relayed, "x", "y"]).await;
    s.call(&["RPUSH", &other, "x"]).await;
    for fault in [Fault::DropRequest(b"LREM"), Fault::DropReplyTo(b"LREM")] {
        s.undone(fault, &["LMOVE", &relayed, &other, "LEFT", "RIGHT"])
            .await;
        assert_eq!(s.call(&["LRANGE", &relayed, "0", "-1"]).await, "[x y]");
        assert_eq!(s.call(&["LRANGE", &other, "0", "-1"]).await, "[x]");
    }

    // BLMOVE: the pop on the other node, then the push to the relayed one.
    for fault in [Fault::DropRequest(b"LPUSH"), Fault::DropReplyTo(b"LPUSH")] {
        s.undone(fault, &["BLMOVE", &other, &relayed, "LEFT", "LEFT", "1"])
            .await;
        assert_eq!(s.call(&["LRANGE", &relayed, "0", "-1"]).await, "[x y]");
        assert_eq!(s.call(&["LRANGE", &other, "0", "-1"]).await, "[x]");
    }

    // MSETNX: the MSET's part for the relayed node is cut; the other part
    // ran, and is deleted again.
    s.call(&["DEL", &relayed, &other]).await;
    for fault in [Fault::DropRequest(b"MSET"), Fault::DropReplyTo(b"MSET")] {
        s.undone(fault, &["MSETNX", &relayed, "1", &other, "2"]).await;
        assert_eq!(s.call(&["EXISTS", &relayed, &other]).await, "0");
    }
    assert_eq!(s.call(&["MSETNX", &relayed, "1", &other, "2"]).await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_copies_cut_at_its_write_runs_whole_or_not_at_all() {
    let mut s = setup().await;
    let (relayed, other) = (s.relayed.clone(), s.other.clone());
    s.call(&["SADD", &relayed, "old"]).await;
    s.call(&["SADD", &other, "a", "b"]).await;
    let node = s.cluster.nodes[0].addr();
    let keys_on_relayed = || show(&test_util::command(&node, &["DBSIZE"]).expect("DBSIZE"));
    let before = keys_on_relayed();
    let store = ["SUNIONSTORE", &relayed, &other];

    s.relay.set(Fault::DropRequest(b"SUNIONSTORE"));
    let reply = s.call(&store).await;
    assert!(reply.contains("the command may have run"), "{reply}");
    assert_eq!(s.call(&["SORT", &relayed, "ALPHA"]).await, "[old]");
    assert_eq!(keys_on_relayed(), before, "a copy left behind");

    s.relay.set(Fault::DropReplyTo(b"SUNIONSTORE"));
    let reply = s.call(&store).await;
    assert!(reply.contains("the command may have run"), "{reply}");
    assert_eq!(s.call(&["SORT", &relayed, "ALPHA"]).await, "[a b]");
    assert_eq!(keys_on_relayed(), before, "a copy left behind");
}
