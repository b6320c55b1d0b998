//! `redis-benchmark` through the proxy completes without a single error,
//! in front of a standalone server and a 3-primary cluster (including
//! MSET/MGET, whose keys spread over every slot).

mod common;

use common::TestProxy;
use test_util::{Cluster, Flavor, Server};

/// Runs redis-benchmark with `args` after the common options; returns its
/// output after checking it reported no error.
async fn redis_benchmark(addr: &str, args: &[&str]) -> String {
    let common = ["-P", "16", "-n", "5000", "-c", "20", "-r", "10000", "-q"];
    let all: Vec<&str> = common.iter().chain(args).copied().collect();
    common::redis_benchmark(addr, &all).await
}

async fn benchmark(addr: &str, tests: &str) {
    let text = redis_benchmark(addr, &["-t", tests]).await;
    for test in tests.split(',') {
        let name = test.split('_').next().unwrap().to_ascii_uppercase();
        assert!(text.contains(&name), "no result for {test}: {text}");
    }
}

const TESTS: &str = "set,get,incr,lpush,rpop,sadd,hset,zadd,lrange_100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_against_standalone() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    benchmark(&proxy.addr, TESTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_against_cluster() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(vec![cluster.addrs()[0].clone()]).await;
    benchmark(&proxy.addr, TESTS).await;
    benchmark(&proxy.addr, "mset").await;
    // redis-benchmark has no MGET test: give it the command.
    let mget = [
        "MGET",
        "key:__rand_int__",
        "key:__rand_int__",
        "key:__rand_int__",
        "key:__rand_int__",
    ];
    let text = redis_benchmark(&proxy.addr, &mget).await;
    assert!(text.contains("MGET"), "{text}");
}
