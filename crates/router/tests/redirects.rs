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
