//! A thousand clients in transactions and blocking pops beside a thousand
//! pipelining clients: every reply is checked against a value unique to
//! its request, and every dedicated backend connection is back once the
//! clients have gone.

mod common;

use common::{proxy_info_field, settled_info_field, TestProxy};
use futures::future::join_all;
use test_util::{Cluster, Flavor, Server};

const STATEFUL: usize = 1000;
const PIPELINING: usize = 1000;
const ROUNDS: usize = 3;
const DEPTH: usize = 16;

async fn stateful_client(addr: String, id: usize) {
    let mut connection = common::connect(&addr).await;
    let tag = format!("{{s{id}}}");
    for round in 0..ROUNDS {
        let unique = format!("tx-{id}-{round}");
        let (set, count, read): (String, i64, String) = redis::pipe()
            .atomic()
            .set(format!("{tag}a"), &unique)
            .incr(format!("{tag}n"), 1)
            .get(format!("{tag}a"))
            .query_async(&mut connection)
            .await
            .expect("EXEC");
        assert_eq!(
            (set.as_str(), count, read.as_str()),
            ("OK", round as i64 + 1, unique.as_str())
        );

        let unique = format!("pop-{id}-{round}");
        let list = format!("{tag}l");
        let _: i64 = redis::cmd("RPUSH")
            .arg(&list)
            .arg(&unique)
            .query_async(&mut connection)
            .await
            .expect("RPUSH");
        let popped: (String, String) = redis::cmd("BLPOP")
            .arg(&list)
            .arg(5)
            .query_async(&mut connection)
            .await
            .expect("BLPOP");
        assert_eq!(popped, (list.clone(), unique));
    }
}

async fn pipelining_client(addr: String, id: usize) {
    let mut connection = common::connect(&addr).await;
    for round in 0..ROUNDS {
        let mut pipe = redis::pipe();
        for i in 0..DEPTH {
            pipe.set(format!("p{id}:{i}"), format!("v-{id}-{round}-{i}"))
                .ignore();
            pipe.get(format!("p{id}:{i}"));
        }
        let values: Vec<String> = pipe.query_async(&mut connection).await.expect("pipeline");
        let expected: Vec<String> = (0..DEPTH).map(|i| format!("v-{id}-{round}-{i}")).collect();
        assert_eq!(values, expected);
    }
}

async fn run_all(proxy: &TestProxy) {
    let stateful = (0..STATEFUL).map(|id| tokio::spawn(stateful_client(proxy.addr.clone(), id)));
    let pipelining = (0..PIPELINING).map(|id| tokio::spawn(pipelining_client(proxy.addr.clone(), id)));
    let all: Vec<_> = stateful.chain(pipelining).collect();
    for outcome in join_all(all).await {
        outcome.expect("a client task failed");
    }
    // Every client is gone: nothing dedicated is still handed out, and the
    // idle ones are bounded by the pool's limit.
    let dedicated = settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await;
    assert_eq!(dedicated, 0, "dedicated connections still handed out");
    let idle = proxy_info_field(&proxy.addr, "backend_connections_dedicated_idle");
    let nodes = proxy_info_field(&proxy.addr, "shards");
    assert!(idle <= 32 * nodes, "{idle} idle dedicated connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_clients_on_a_standalone_server() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    run_all(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_clients_on_a_cluster() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    run_all(&proxy).await;
}
