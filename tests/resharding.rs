//! Live resharding under load: while clients write 200,000 RPUSH with
//! unique values over 50,000 keys through the proxy, slots move between
//! primaries (`redis-cli --cluster reshard`, and Valkey 9's atomic
//! `CLUSTER MIGRATESLOTS`). The clients see no error, and every value ends
//! up in its list exactly once.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TestProxy;
use futures::future::join_all;
use test_util::client::must;
use test_util::cluster::{migrate_slots, node_id};
use test_util::{Cluster, Flavor};

const PUSHES: usize = 200_000;
const KEYS: usize = 50_000;
const WRITERS: usize = 16;

fn key(i: usize) -> String {
    format!("list:{}", i % KEYS)
}

/// Writes every value once; returns how many pushes failed.
async fn write_all(addr: String, done: Arc<AtomicUsize>) -> usize {
    let writers = (0..WRITERS).map(|w| {
        let addr = addr.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut connection = common::connect(&addr).await;
            let mut errors = 0;
            for i in (w..PUSHES).step_by(WRITERS) {
                let pushed: redis::RedisResult<i64> = redis::cmd("RPUSH")
                    .arg(key(i))
                    .arg(i)
                    .query_async(&mut connection)
                    .await;
                if let Err(error) = pushed {
                    if errors < 5 {
                        eprintln!("RPUSH {} {i}: {error}", key(i));
                    }
                    errors += 1;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            errors
        })
    });
    join_all(writers)
        .await
        .into_iter()
        .map(|r| r.expect("writer task"))
        .sum()
}

/// Every list read back through the proxy: each value must appear once.
async fn check_every_value_once(addr: &str) {
    let mut connection = common::connect(addr).await;
    let mut seen = vec![0u8; PUSHES];
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("LRANGE").arg(key(*k)).arg(0).arg(-1);
        }
        let lists: Vec<Vec<usize>> = pipe.query_async(&mut connection).await.expect("LRANGE");
        for value in lists.into_iter().flatten() {
            seen[value] += 1;
        }
    }
    let missing = seen.iter().filter(|&&n| n == 0).count();
    let repeated = seen.iter().filter(|&&n| n > 1).count();
    assert_eq!((missing, repeated), (0, 0), "values missing / repeated");
}

/// True when `node` sees `owner` serving every slot of `range`.
fn owns(node: &str, owner: &str, (first, last): (u16, u16)) -> bool {
    let nodes = must(node, &["CLUSTER", "NODES"]);
    let Some(line) = nodes.lines().find(|l| l.starts_with(owner)) else {
        return false;
    };
    let ranges: Vec<(u16, u16)> = line
        .split_whitespace()
        .skip(8)
        .filter(|f| !f.starts_with('['))
        .filter_map(|f| match f.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => f.parse().ok().map(|s| (s, s)),
        })
        .collect();
    (first..=last).all(|slot| ranges.iter().any(|&(a, b)| a <= slot && slot <= b))
}

/// A cluster, the proxy in front of it, and the writers under way (a tenth
/// of the pushes done).
async fn start_writing() -> (Cluster, TestProxy, tokio::task::JoinHandle<usize>) {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::start(cluster.addrs(), |c| c.refresh_interval_ms = 1000).await;
    let done = Arc::new(AtomicUsize::new(0));
    let writing = tokio::spawn(write_all(proxy.addr.clone(), done.clone()));
    wait_for_progress(&done, 0.1).await;
    (cluster, proxy, writing)
}

/// Waits until at least `fraction` of the pushes are done.
async fn wait_for_progress(done: &AtomicUsize, fraction: f64) {
    while (done.load(Ordering::Relaxed) as f64) < PUSHES as f64 * fraction {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_with_redis_cli_under_load() {
    let (cluster, proxy, writing) = start_writing().await;
    let primaries: Vec<String> = cluster.primaries().iter().map(|p| p.addr()).collect();
    let moves = [(0, 1, 1500), (2, 0, 1500), (1, 2, 1000)];
    for (from, to, slots) in moves {
        let (from_id, to_id) = (node_id(&primaries[from]), node_id(&primaries[to]));
        let seed = primaries[0].clone();
        let status = tokio::task::spawn_blocking(move || {
            Command::new("redis-cli")
                .args(["--cluster", "reshard", &seed])
                .args(["--cluster-from", &from_id, "--cluster-to", &to_id])
                .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
                .output()
                .expect("redis-cli runs")
        })
        .await
        .unwrap();
        assert!(
            status.status.success(),
            "reshard failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    let errors = writing.await.unwrap();
    assert_eq!(errors, 0, "the clients saw errors");
    check_every_value_once(&proxy.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_slot_migration_under_load() {
    let (cluster, proxy, writing) = start_writing().await;
    let primaries: Vec<String> = cluster.primaries().iter().map(|p| p.addr()).collect();
    // The first primary owns 0-5460: move two ranges of it away, one to
    // each of the others, then one back.
    let moves = [(0, 1, "0", "1999"), (0, 2, "2000", "3999"), (1, 0, "0", "999")];
    for (from, to, first, last) in moves {
        let target = node_id(&primaries[to]);
        migrate_slots(&primaries[from], (first, last), &target);
        // Done when the target owns the whole range, as both nodes see it.
        let range = (first.parse().unwrap(), last.parse().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !(owns(&primaries[to], &target, range) && owns(&primaries[from], &target, range)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the migration never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let errors = writing.await.unwrap();
    assert_eq!(errors, 0, "the clients saw errors");
    check_every_value_once(&proxy.addr).await;
}
