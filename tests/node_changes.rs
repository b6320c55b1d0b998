//! Nodes added and removed under load. A new primary joins the cluster
//! (CLUSTER MEET), takes slots (Valkey 9's atomic CLUSTER MIGRATESLOTS),
//! gives them back, is forgotten by every node and stopped; again and
//! again, while clients push unique numbers through the proxy. The clients
//! see no error (a closed connection would be one), every acknowledged
//! number is in its list exactly once, and the proxy's backend connections
//! come back to what they were: those to each removed node were closed.
//!
//! CI runs `NODE_CYCLES` cycles, 10 unless set; docs/OPERATIONS.md gives
//! a run of 100.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{proxy_info_field, settled_info_field, TestProxy};
use futures::future::join_all;
use test_util::client::must;
use test_util::cluster::{migrate_slots, node_id};
use test_util::{Cluster, Flavor, Server};

const WRITERS: usize = 4;
const LISTS: usize = 2_000;
/// Slots the new node takes and gives back each cycle.
const SLOTS: (&str, &str) = ("0", "199");

fn list(number: usize) -> String {
    format!("node-change:{}", number % LISTS)
}

/// Pushes `writer`, `writer + WRITERS`, ... until `stop`; returns how many
/// it pushed (all acknowledged) and the errors it saw.
async fn push_until(addr: String, writer: usize, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let mut connection = common::connect(&addr).await;
    let mut errors = Vec::new();
    let mut pushed = 0;
    while !stop.load(Ordering::Relaxed) {
        let number = writer + pushed * WRITERS;
        let reply: redis::RedisResult<i64> = redis::cmd("RPUSH")
            .arg(list(number))
            .arg(number)
            .query_async(&mut connection)
            .await;
        match reply {
            Ok(_) => pushed += 1,
            Err(error) => {
                errors.push(format!("RPUSH {number}: {error}"));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (pushed, errors)
}

/// Polls `done` every 50 ms for up to 30 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when every one of `nodes` says `owner` serves slot `slot`.
fn all_see_owner(nodes: &[String], slot: &str, owner: &str) -> bool {
    nodes.iter().all(|node| {
        must(node, &["CLUSTER", "NODES"])
            .lines()
            .find(|line| line.starts_with(owner))
            .is_some_and(|line| {
                line.split_whitespace()
                    .skip(8)
                    .any(|range| range.starts_with(&format!("{slot}-")))
            })
    })
}

/// Moves `SLOTS` from `from` to `to` and waits until every node agrees.
fn migrate(nodes: &[String], from: &str, to: &str) {
    let target = node_id(to);
    migrate_slots(from, SLOTS, &target);
    wait_until("the migration", || all_see_owner(nodes, SLOTS.0, &target));
}

/// True while the proxy at `proxy` routes to `node` (`PROXY INFO` lists it).
fn proxy_knows(proxy: &str, node: &str) -> bool {
    let info = test_util::command(proxy, &["PROXY", "INFO"]).expect("PROXY INFO");
    String::from_utf8_lossy(info.as_bytes().expect("text")).contains(&format!("={node},"))
}

/// One cycle: a node joins, takes the slots, gives them back, and goes:
/// forgotten by the cluster, then stopped once the proxy has dropped it
/// (the removal procedure docs/OPERATIONS.md gives).
fn add_and_remove_a_node(cluster: &Cluster, proxy: &str) {
    let primaries: Vec<String> = cluster.primaries().iter().map(Server::addr).collect();
    let node = Server::start_with(
        Flavor::Valkey,
        &[("cluster-enabled", "yes"), ("cluster-node-timeout", "2000")],
    );
    let (addr, id) = (node.addr(), node_id(&node.addr()));
    let bus = node.bus_port().expect("a cluster bus").to_string();
    must(
        &primaries[0],
        &["CLUSTER", "MEET", "127.0.0.1", &node.port().to_string(), &bus],
    );
    let everyone: Vec<String> = primaries.iter().cloned().chain([addr.clone()]).collect();
    // Known to all, and knowing who serves every slot (a migration to a
    // node that does not yet is refused: "Slot 0 has no node served").
    wait_until("the new node joining", || {
        everyone.iter().all(|n| {
            let info = must(n, &["CLUSTER", "INFO"]);
            info.contains("cluster_known_nodes:4") && info.contains("cluster_slots_ok:16384")
        })
    });
    migrate(&everyone, &primaries[0], &addr);
    migrate(&everyone, &addr, &primaries[0]);
    for primary in &primaries {
        must(primary, &["CLUSTER", "FORGET", &id]);
    }
    wait_until("the proxy dropping the node", || !proxy_knows(proxy, &addr));
    drop(node);
    wait_until("the node being forgotten", || {
        primaries
            .iter()
            .all(|n| must(n, &["CLUSTER", "INFO"]).contains("cluster_known_nodes:3"))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_added_and_removed_under_load_lose_nothing_and_leak_nothing() {
    let cycles: usize = std::env::var("NODE_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let cluster = Arc::new(Cluster::start(Flavor::Valkey, 3, 0));
    let proxy = TestProxy::start(cluster.addrs(), |c| c.refresh_interval_ms = 500).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(push_until(proxy.addr.clone(), w, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let connections = proxy_info_field(&proxy.addr, "backend_connections_open");
    let opened = proxy_info_field(&proxy.addr, "backend_connections_opened_total");

    let (changing, addr) = (cluster.clone(), proxy.addr.clone());
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        for _ in 0..cycles {
            add_and_remove_a_node(&changing, &addr);
        }
    })
    .await
    .expect("the cycles");
    let opened = proxy_info_field(&proxy.addr, "backend_connections_opened_total") - opened;
    eprintln!(
        "{cycles} nodes added and removed in {:?}; {opened} backend connections opened meanwhile",
        started.elapsed()
    );
    stop.store(true, Ordering::Relaxed);

    let mut pushed = Vec::new();
    for writer in join_all(writers).await {
        let (count, errors) = writer.expect("a writer");
        assert_eq!(errors, Vec::<String>::new(), "a client saw an error");
        pushed.push(count);
    }
    // Every acknowledged number once, nothing else.
    let mut connection = common::connect(&proxy.addr).await;
    let mut seen = vec![0u8; pushed.iter().max().unwrap() * WRITERS];
    for chunk in (0..LISTS).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for &l in chunk {
            pipe.cmd("LRANGE").arg(list(l)).arg(0).arg(-1);
        }
        let lists: Vec<Vec<usize>> = pipe.query_async(&mut connection).await.expect("LRANGE");
        for number in lists.into_iter().flatten() {
            seen[number] += 1;
        }
    }
    for (writer, &count) in pushed.iter().enumerate() {
        for i in 0..count {
            assert_eq!(seen[writer + i * WRITERS], 1, "number {}", writer + i * WRITERS);
        }
    }
    eprintln!("{} numbers pushed, each once", pushed.iter().sum::<usize>());
    let total: usize = seen.iter().map(|&n| usize::from(n)).sum();
    assert_eq!(total, pushed.iter().sum::<usize>(), "numbers nobody acknowledged");
    // The removed nodes' connections are closed: back to the three nodes'.
    let now = settled_info_field(&proxy.addr, "backend_connections_open", connections).await;
    assert_eq!(now, connections, "backend connections before and after");
}
