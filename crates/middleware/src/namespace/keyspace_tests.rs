//! KEYS over many keys lets the other tasks of its worker run between
//! batches, and still answers every key once.

use std::future::{ready, Ready};

use bytes::Bytes;
use resp::{Frame, Request};
use router::{Command, Error, Reply};
use test_util::turns::OtherTask;

use super::{Node, Scope};
use aggregate::steps::Steps;

/// A node that answers any request with `KEYS` keys named `k0`, `k1`, ...
fn many_keys(_: Command) -> Ready<Result<Reply, Error>> {
    let keys = (0..KEYS).map(|i| Frame::Bulk(Bytes::from(format!("k{i}"))));
    ready(Ok(Reply::Frame(Frame::Array(keys.collect()))))
}

const KEYS: usize = 100_000;

#[tokio::test(flavor = "current_thread")]
async fn keys_over_many_keys_lets_other_tasks_run() {
    let other_client = OtherTask::spawn();
    let request = Request::from_args(["KEYS", "*"]);
    let mut node = Node {
        steps: Steps::new(tower::service_fn(many_keys), Command::new(request)),
        shards: 1,
    };
    let args = [Bytes::from_static(b"KEYS"), Bytes::from_static(b"*")];
    let before = other_client.turns();
    let reply = node.keys(&Scope::database(0), &args).await.expect("a reply");
    let during = other_client.turns() - before;
    assert!(during >= KEYS / 1024 - 1, "the other task ran {during} times");
    let Ok(Frame::Array(keys)) = reply.into_frame() else {
        panic!("not an array")
    };
    assert_eq!(keys.len(), KEYS);
    assert_eq!(keys[KEYS - 1], Frame::Bulk(Bytes::from(format!("k{}", KEYS - 1))));
}
