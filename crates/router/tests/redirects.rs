//! Redirect handling against mock nodes (a real server cannot be made to
//! answer MOVED or ASK on demand).

use std::sync::Arc;

use bytes::Bytes;
use pool::{Pool, PoolConfig};
use resp::Request;
use test_util::mock::{Answer, MockNode};
use topology::{Shard, TcpProbe, Topology, TopologyHandle};
use valkey_proxy_router::{Command, CommandTable, Error, Reply, Router, RouterConfig};

fn get(key: &str) -> Command {
    Command::new(Request::from_args([
        Bytes::from_static(b"GET"),
        Bytes::copy_from_slice(key.as_bytes()),
    ]))
}

fn router_for(first: &str) -> Router {
    let shard = Shard {
        primary: first.into(),
        replicas: vec![],
    };
    let topology = TopologyHandle::fixed(
        Topology::cluster(vec![(0, 16383, shard)], 1),
        Arc::new(TcpProbe::default()),
    );
    Router::new(
        Arc::new(CommandTable::builtin()),
        topology,
        Pool::new(PoolConfig::default()),
        RouterConfig::default(),
    )
}

#[tokio::test]
async fn moved_is_followed_and_remembered() {
    let target = MockNode::start(|_| Answer::Reply(Bytes::from_static(b"$5\r\nvalue\r\n")));
    let moved = format!("-MOVED 12182 {}\r\n", target.addr());
    let source = MockNode::start(move |_| Answer::Reply(Bytes::from(moved.clone())));
    let router = router_for(source.addr());
    let reply = router.clone().dispatch(get("foo")).await.unwrap();
    assert_eq!(reply, Reply::Raw(Bytes::from_static(b"$5\r\nvalue\r\n")));
    // The slot map now sends slot 12182 straight to the target.
    router.clone().dispatch(get("foo")).await.unwrap();
    assert_eq!(source.seen().len(), 1);
    assert_eq!(target.seen().len(), 2);
}

#[tokio::test]
async fn ask_sends_asking_first_and_does_not_update_the_map() {
    let target = MockNode::start(|request| {
        if request.is("ASKING") {
            Answer::Reply(Bytes::from_static(b"+OK\r\n"))
        } else {
            Answer::Reply(Bytes::from_static(b"$2\r\nok\r\n"))
        }
    });
    let ask = format!("-ASK 12182 {}\r\n", target.addr());
    let source = MockNode::start(move |_| Answer::Reply(Bytes::from(ask.clone())));
    let router = router_for(source.addr());
    for _ in 0..2 {
        let reply = router.clone().dispatch(get("foo")).await.unwrap();
        assert_eq!(reply, Reply::Raw(Bytes::from_static(b"$2\r\nok\r\n")));
    }
    assert_eq!(source.seen().len(), 2, "ASK does not change the slot map");
    let seen = target.seen();
    assert_eq!(
        seen,
        [
            ["ASKING"].as_slice(),
            &["GET", "foo"],
            &["ASKING"],
            &["GET", "foo"]
        ]
        .map(|c| c.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
}

#[tokio::test]
async fn moved_loops_are_capped() {
    // Two nodes that each claim the slot lives on the other.
    let b_addr = Arc::new(std::sync::OnceLock::<String>::new());
    let to_b = b_addr.clone();
    let a = MockNode::start(move |_| {
        Answer::Reply(Bytes::from(format!(
            "-MOVED 12182 {}\r\n",
            to_b.get().map_or("", String::as_str)
        )))
    });
    let to_a = format!("-MOVED 12182 {}\r\n", a.addr());
    let b = MockNode::start(move |_| Answer::Reply(Bytes::from(to_a.clone())));
    b_addr.set(b.addr().to_string()).unwrap();
    let router = router_for(a.addr());
    let error = router.dispatch(get("foo")).await.unwrap_err();
    assert!(
        matches!(error, Error::TooManyRedirects { slot: 12182, .. }),
        "{error}"
    );
    assert_eq!(
        a.seen().len() + b.seen().len(),
        6,
        "the first try and five redirects"
    );
}

/// A probe that describes one cluster node owning every slot, and counts
/// the topology fetches.
struct OneNodeProbe {
    node: String,
}

#[async_trait::async_trait]
impl topology::Probe for OneNodeProbe {
    async fn query(&self, _addr: &str, args: &[&str]) -> Result<resp::Frame, topology::Error> {
        use resp::Frame;
        let (ip, port) = self.node.rsplit_once(':').unwrap();
        Ok(match args {
            ["INFO", ..] => Frame::Bulk(Bytes::from_static(b"cluster_enabled:1\r\n")),
            ["CLUSTER", "SLOTS"] => Frame::Array(vec![Frame::Array(vec![
                Frame::Integer(0),
                Frame::Integer(16383),
                Frame::Array(vec![
                    Frame::Bulk(Bytes::copy_from_slice(ip.as_bytes())),
                    Frame::Integer(port.parse().unwrap()),
                ]),
            ])]),
            _ => Frame::Error(Bytes::from_static(b"ERR unknown command")),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_moved_replies_cause_one_topology_fetch() {
    let target = MockNode::start(|_| Answer::Reply(Bytes::from_static(b"$2\r\nok\r\n")));
    let target_addr = target.addr().to_string();
    let source = MockNode::start(move |request| {
        let key = request.arg_bytes(1).unwrap_or_default();
        let slot = valkey_proxy_router::slot::key_slot(&key);
        Answer::Reply(Bytes::from(format!("-MOVED {slot} {target_addr}\r\n")))
    });
    // The cluster as first seen: everything on the source.
    let probe = Arc::new(OneNodeProbe {
        node: source.addr().to_string(),
    });
    let topology = TopologyHandle::new(
        topology::DiscoveryConfig {
            mode: None,
            seeds: vec![source.addr().to_string()],
        },
        probe,
        topology::RefreshConfig {
            interval: std::time::Duration::from_secs(60),
            min_interval: std::time::Duration::from_secs(2),
        },
    );
    topology.refresh_now().await.unwrap();
    let refresher = topology.spawn_refresher();
    let before = topology.fetches();
    let router = Router::new(
        Arc::new(CommandTable::builtin()),
        topology.clone(),
        Pool::new(PoolConfig::default()),
        RouterConfig::default(),
    );
    let calls = (0..1000).map(|i| router.clone().dispatch(get(&format!("key:{i}"))));
    for reply in futures::future::join_all(calls).await {
        assert_eq!(reply.unwrap(), Reply::Raw(Bytes::from_static(b"$2\r\nok\r\n")));
    }
    // Let the refresher act on every request it got.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(topology.fetches() - before, 1, "one fetch for a thousand MOVED");
    refresher.abort();
}
