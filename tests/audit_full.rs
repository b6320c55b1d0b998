//! The audit log to a TCP collector that stops reading (a stalled socket:
//! the one thing here a real collector cannot be made to do on demand),
//! under each `on_full` policy, in front of a 3-primary cluster:
//! - `drop`: the collector later gets a gap record whose count is the
//!   dropped figure, and the sequence numbers of records and gaps account
//!   for every number;
//! - `block`: the audited client is not read while the queue is full, an
//!   unaudited one goes on, and nothing is dropped;
//! - `fail`: audited SETs are refused before they run, and were not run,
//!   while unaudited GETs go on.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audit::{AuditConfig, EventKind, OnFull, SinkConfig};
use common::{show, RawClient, TestProxy};
use proxy::config::UserConfig;
use serde_json::Value;
use test_util::{Cluster, Flavor};

/// A collector of JSON lines that can be told to stop reading.
struct Collector {
    addr: String,
    lines: Arc<Mutex<Vec<Value>>>,
    reading: Arc<AtomicBool>,
}

impl Collector {
    fn start() -> Collector {
        // A small receive buffer, so that a stalled collector fills up soon.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(8).unwrap().into_std().unwrap();
        listener.set_nonblocking(false).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reading = Arc::new(AtomicBool::new(true));
        let (into, on) = (lines.clone(), reading.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let mut partial = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    if !on.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => partial.extend_from_slice(&buf[..n]),
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(error) if error.kind() == std::io::ErrorKind::TimedOut => continue,
                        Err(_) => break,
                    }
                    while let Some(at) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=at).collect();
                        let value = serde_json::from_slice(&line).expect("whole JSON lines");
                        into.lock().unwrap().push(value);
                    }
                }
            }
        });
        Collector { addr, lines, reading }
    }

    fn stall(&self) {
        self.reading.store(false, Ordering::Release);
    }

    fn resume(&self) {
        self.reading.store(true, Ordering::Release);
    }

    fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }
}

/// A proxy whose user `default` (password p1) is audited (every write)
/// into `collector`, and `ops` (password o1) is not.
async fn start(cluster: &Cluster, collector: &Collector, on_full: OnFull) -> TestProxy {
    let audit = AuditConfig {
        events: vec![EventKind::Command],
        commands: "+@write".into(),
        users_exclude: vec!["ops".into()],
        queue_records: 500,
        on_full,
        sinks: vec![SinkConfig::Tcp {
            addr: collector.addr.clone(),
        }],
        ..AuditConfig::default()
    };
    // Workers of its own: a held session must not hold the test's tasks.
    TestProxy::start_on_workers(cluster.addrs(), 2, move |config| {
        config.users = vec![user("default", "p1"), user("ops", "o1")];
        config.audit = audit;
    })
    .await
}

fn user(name: &str, password: &str) -> UserConfig {
    UserConfig {
        name: name.into(),
        password: Some(password.into()),
        ..common::user_of(name, None)
    }
}

async fn status(ops: &mut RawClient) -> HashMap<String, u64> {
    show(&ops.call(&["PROXY", "AUDIT", "STATUS"]).await)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter_map(|(field, value)| Some((field.to_string(), value.parse().ok()?)))
        .collect()
}

/// Waits until `done` holds of the status.
async fn until(ops: &mut RawClient, done: impl Fn(&HashMap<String, u64>) -> bool) -> HashMap<String, u64> {
    for _ in 0..1500 {
        let status = status(ops).await;
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the audit log never got there: {:?}", status(ops).await);
}

/// Sends SETs of `prefix{i}` in pipelines of 100 until `stop`, counting
/// the ones answered OK; returns the keys refused.
async fn keep_setting(
    addr: String,
    prefix: &str,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut client = RawClient::login(&addr, "default", "p1").await;
    let mut refused = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        let keys: Vec<String> = (i..i + 100).map(|n| format!("{prefix}{n}")).collect();
        i += 100;
        for key in &keys {
            client.send(&["SET", key, "v"]).await;
        }
        for key in keys {
            match show(&client.next().await).as_str() {
                "OK" => {
                    acked.fetch_add(1, Ordering::AcqRel);
                }
                "-ERR audit log unavailable" => refused.push(key),
                other => panic!("{other}"),
            }
        }
    }
    refused
}

/// The sequence numbers the collector got: each record's, and each gap's
/// range; every number from 1 must be there once.
fn assert_accounted(lines: &[Value], records: u64) -> u64 {
    let mut seen = Vec::new();
    let mut dropped = 0;
    for line in lines {
        match line["seq"].as_u64() {
            Some(seq) => seen.push(seq),
            None => {
                assert_eq!(line["event"], "audit_gap", "{line}");
                let (from, to) = (
                    line["from_seq"].as_u64().unwrap(),
                    line["to_seq"].as_u64().unwrap(),
                );
                assert_eq!(line["dropped"].as_u64().unwrap(), to - from + 1);
                dropped += to - from + 1;
                seen.extend(from..=to);
            }
        }
    }
    assert_eq!(seen, (1..=records).collect::<Vec<_>>());
    dropped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_writes_a_gap_that_accounts_for_every_record() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let collector = Collector::start();
    let proxy = start(&cluster, &collector, OnFull::Drop).await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    collector.stall();
    let (acked, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let setter = tokio::spawn(keep_setting(proxy.addr.clone(), "d", acked.clone(), stop.clone()));
    let during = until(&mut ops, |status| status["audit_dropped"] > 1000).await;
    stop.store(true, Ordering::Release);
    assert!(setter.await.unwrap().is_empty(), "drop refuses nothing");
    collector.resume();
    // The next record the lane takes is preceded by the gap.
    let mut client = RawClient::login(&proxy.addr, "default", "p1").await;
    until(&mut ops, |status| status["audit_queued"] == 0).await;
    assert_eq!(show(&client.call(&["SET", "after", "1"]).await), "OK");
    let done = until(&mut ops, |status| {
        status["audit_queued"] == 0
            && collector
                .lines()
                .last()
                .is_some_and(|line| line["keys"][0] == "after")
    })
    .await;
    assert!(done["audit_dropped"] >= during["audit_dropped"]);
    let lines = collector.lines();
    let dropped = assert_accounted(&lines, done["audit_records"]);
    assert_eq!(dropped, done["audit_dropped"]);
    // Every SET answered was recorded or counted.
    assert_eq!(done["audit_records"], acked.load(Ordering::Acquire) + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_holds_audited_clients_and_loses_nothing() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let collector = Collector::start();
    let proxy = start(&cluster, &collector, OnFull::Block).await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    collector.stall();
    let (acked, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let setter = tokio::spawn(keep_setting(proxy.addr.clone(), "b", acked.clone(), stop.clone()));
    until(&mut ops, |status| status["audit_holding"] == 1).await;
    // Held: what it had sent before the queue filled is answered, then
    // nothing more, while a client the log does not record goes on.
    let held_at = acked.load(Ordering::Acquire);
    for i in 0..50 {
        let key = format!("ops{i}");
        assert_eq!(show(&ops.call(&["SET", &key, "1"]).await), "OK");
    }
    assert!(acked.load(Ordering::Acquire) - held_at <= 100);
    collector.resume();
    until(&mut ops, |status| status["audit_holding"] == 0).await;
    stop.store(true, Ordering::Release);
    assert!(setter.await.unwrap().is_empty());
    let done = until(&mut ops, |status| {
        status["audit_queued"] == 0 && collector.lines().len() as u64 == status["audit_records"]
    })
    .await;
    assert_eq!(done["audit_dropped"], 0);
    assert!(done["audit_blocked_ms"] > 0);
    assert_eq!(done["audit_records"], acked.load(Ordering::Acquire));
    assert_accounted(&collector.lines(), done["audit_records"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_refuses_audited_commands_before_they_run() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let collector = Collector::start();
    let proxy = start(&cluster, &collector, OnFull::Fail).await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    collector.stall();
    let (acked, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let setter = tokio::spawn(keep_setting(proxy.addr.clone(), "f", acked.clone(), stop.clone()));
    until(&mut ops, |status| status["audit_failed_ops"] > 100).await;
    // Unaudited reads go on meanwhile, for the audited user too.
    let mut reader = RawClient::login(&proxy.addr, "default", "p1").await;
    assert_eq!(show(&reader.call(&["GET", "f0"]).await), "v");
    stop.store(true, Ordering::Release);
    let refused = setter.await.unwrap();
    assert!(refused.len() > 100);
    for key in &refused {
        assert_eq!(show(&ops.call(&["EXISTS", key]).await), "0", "{key} ran");
    }
    collector.resume();
    let done = until(&mut ops, |status| {
        status["audit_queued"] == 0 && collector.lines().len() as u64 == status["audit_records"]
    })
    .await;
    // Every SET that ran has its record, and no refused one has.
    assert_eq!(done["audit_records"], acked.load(Ordering::Acquire));
    assert_eq!(done["audit_failed_ops"], refused.len() as u64);
    assert_eq!(done["audit_dropped"], 0);
    let recorded: std::collections::HashSet<String> = collector
        .lines()
        .iter()
        .map(|line| line["keys"][0].as_str().unwrap().to_string())
        .collect();
    assert!(refused.iter().all(|key| !recorded.contains(key)));
    assert_accounted(&collector.lines(), done["audit_records"]);
}
