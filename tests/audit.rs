//! The audit log to a file, with `examples/config/audit.toml` in front of
//! a 3-primary cluster: exactly one record per audited command with
//! contiguous sequence numbers, secrets nowhere, one record for a command
//! that spans nodes, one transaction id for a MULTI's commands, and
//! rotation that keeps every record once and whole.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{key_per_node, show, RawClient, TestProxy};
use proxy::ProxyConfig;
use serde_json::Value;
use test_util::{Cluster, Flavor};

/// A directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("audit-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The example's proxy in front of `cluster`, its file sink in `dir`,
/// after `tweak`.
async fn start(cluster: &Cluster, dir: &Path, tweak: impl FnOnce(&mut ProxyConfig)) -> TestProxy {
    let example = common::example_config("audit.toml");
    let path = dir.join("audit.jsonl").to_string_lossy().into_owned();
    TestProxy::start(cluster.addrs(), move |config| {
        config.users = example.users;
        config.audit = example.audit;
        match &mut config.audit.sinks[0] {
            audit::SinkConfig::File { path: to, .. } => *to = path,
            other => panic!("the example's sink is a file: {other:?}"),
        }
        tweak(config);
    })
    .await
}

fn user(name: &str, password: &str, acl: Option<&str>) -> proxy::config::UserConfig {
    proxy::config::UserConfig {
        name: name.into(),
        password: Some(password.into()),
        acl: acl.map(Into::into),
        ..Default::default()
    }
}

/// `PROXY AUDIT STATUS` as field -> value.
async fn status(client: &mut RawClient) -> HashMap<String, String> {
    show(&client.call(&["PROXY", "AUDIT", "STATUS"]).await)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(field, value)| (field.to_string(), value.to_string()))
        .collect()
}

/// Waits until every record taken is written, and returns the status.
async fn settled(client: &mut RawClient) -> HashMap<String, String> {
    for _ in 0..500 {
        let status = status(client).await;
        let field = |name: &str| status[name].parse::<u64>().unwrap();
        let written: u64 = status
            .iter()
            .filter(|(name, _)| name.starts_with("sink"))
            .map(|(_, value)| {
                let written = value
                    .split(',')
                    .find_map(|part| part.strip_prefix("written="))
                    .unwrap();
                written.parse::<u64>().unwrap()
            })
            .sum();
        if field("audit_queued") == 0 && written + field("audit_dropped") >= field("audit_records") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the audit log never caught up");
}

/// Every record in the files of `dir`, oldest file first, each checked to
/// be one whole JSON object.
fn records(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    // Rotated files (`audit.jsonl.<time>`) sort before the open one once
    // the open one is put last.
    files.sort_by_key(|file| (file.extension().is_some_and(|ext| ext == "jsonl"), file.clone()));
    let mut all = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends inside a record",
            file.display()
        );
        for line in text.lines() {
            all.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
    }
    all
}

/// Waits, up to five seconds, until `done` holds (what is checked after
/// says what should have happened).
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..250 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn commands<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|record| record["event"] == "command" && record["cmd"] == name)
        .collect()
}

fn assert_contiguous(records: &[Value]) {
    let seqs: Vec<u64> = records
        .iter()
        .filter_map(|record| record["seq"].as_u64())
        .collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every sequence number once, in order");
}

/// redis-benchmark as the example's user `default`.
async fn redis_benchmark(addr: &str, args: &[&str]) {
    let all: Vec<&str> = ["-a", "p1", "-q"].iter().chain(args).copied().collect();
    common::redis_benchmark(addr, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audited_write_has_exactly_one_record() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("exact");
    let proxy = start(&cluster, &dir, |_| {}).await;
    redis_benchmark(
        &proxy.addr,
        &[
            "-t", "set,get", "-n", "10000", "-c", "20", "-P", "8", "-r", "1000",
        ],
    )
    .await;
    let mut ops = RawClient::login(&proxy.addr, "default", "p1").await;
    settled(&mut ops).await;
    let all = records(&dir);
    assert_eq!(commands(&all, "SET").len(), 10_000);
    assert!(commands(&all, "GET").is_empty());
    assert_contiguous(&all);
    let set = commands(&all, "SET")[0];
    assert_eq!(set["user"], "default");
    assert_eq!(set["status"], "ok");
    assert_eq!(set["reply"], "simple");
    assert_eq!(set["argc"], 3);
    assert!(set["keys"][0].as_str().unwrap().starts_with("key:"), "{set}");
    assert_eq!(set["backends"].as_array().unwrap().len(), 1);
    // The benchmark's clients: each connected and logged in, recorded.
    let auths: Vec<_> = all.iter().filter(|record| record["event"] == "auth").collect();
    assert!(auths.len() >= 20 && auths.iter().all(|auth| auth["status"] == "ok"));
    assert!(all.iter().filter(|record| record["event"] == "connect").count() >= 20);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_shows_each_sinks_queue() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("metrics");
    let proxy = start(&cluster, &dir, |config| {
        config.admin_listen = Some("127.0.0.1:0".into())
    })
    .await;
    let mut client = RawClient::login(&proxy.addr, "default", "p1").await;
    client.call(&["SET", "audited", "1"]).await;
    let (status, metrics) = common::http_get(proxy.admin.as_deref().unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    let sink = dir.join("audit.jsonl").display().to_string();
    for series in [
        format!("valkey_proxy_audit_sink_up{{sink=\"file {sink}\"}} 1"),
        format!("valkey_proxy_audit_queue_records{{sink=\"file {sink}\"}} "),
        format!("valkey_proxy_audit_oldest_unwritten_seconds{{sink=\"file {sink}\"}} "),
    ] {
        assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("secrets");
    let proxy = start(&cluster, &dir, |config| {
        config.audit.payload = audit::Payload::Args;
        config.audit.events.push(audit::EventKind::Admin);
    })
    .await;
    let mut client = RawClient::connect(&proxy.addr).await;
    assert!(show(&client.call(&["AUTH", "default", "wrong-secret-1"]).await).starts_with("-WRONGPASS"));
    assert_eq!(show(&client.call(&["AUTH", "default", "p1"]).await), "OK");
    let mut hello = RawClient::connect(&proxy.addr).await;
    let greeting = show(&hello.call(&["HELLO", "3", "AUTH", "default", "p1"]).await);
    assert!(greeting.contains("proto"), "{greeting}");
    // An operator changes a node's password setting and sets it back.
    let set = ["CONFIG", "SET", "requirepass", "server-secret-2"];
    assert_eq!(show(&client.call(&set).await), "OK");
    assert_eq!(
        show(&client.call(&["CONFIG", "SET", "requirepass", ""]).await),
        "OK"
    );
    assert_eq!(show(&client.call(&["SET", "plain", "visible-value"]).await), "OK");
    settled(&mut client).await;
    let text: String = records(&dir).iter().map(|record| format!("{record}\n")).collect();
    for secret in ["wrong-secret-1", "p1\"", "server-secret-2"] {
        assert!(!text.contains(secret), "{secret} is in the log:\n{text}");
    }
    // What is not secret is there: the failed login, the change, the value.
    assert!(
        text.contains("\"status\":\"error\"") && text.contains("\"error\":\"WRONGPASS\""),
        "{text}"
    );
    assert!(
        text.contains("\"cmd\":\"CONFIG SET\"") && text.contains("(redacted)"),
        "{text}"
    );
    assert!(text.contains("visible-value"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_across_nodes_is_one_record_and_a_transaction_shares_an_id() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("spans");
    let proxy = start(&cluster, &dir, |_| {}).await;
    let mut client = RawClient::login(&proxy.addr, "default", "p1").await;
    let keys = key_per_node(&cluster, "k");
    assert_eq!(keys.len(), 3);
    let mset = ["MSET", &keys[0], "1", &keys[1], "2", &keys[2], "3"];
    assert_eq!(show(&client.call(&mset).await), "OK");
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["SET", "{t}x", "1"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["INCR", "{t}x"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["LPUSH", "{t}x", "a"]).await), "QUEUED");
    assert_eq!(
        show(&client.call(&["EXEC"]).await),
        "[OK 2 -WRONGTYPE Operation against a key holding the wrong kind of value]"
    );
    // A transaction discarded ran nothing.
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["DEL", "{t}x"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["DISCARD"]).await), "OK");
    settled(&mut client).await;
    let all = records(&dir);
    let mset = commands(&all, "MSET");
    assert_eq!(mset.len(), 1);
    assert_eq!(mset[0]["keys"], serde_json::json!(keys));
    assert_eq!(mset[0]["backends"].as_array().unwrap().len(), 3, "{}", mset[0]);
    let queued: Vec<_> = ["SET", "INCR", "LPUSH"]
        .iter()
        .map(|name| commands(&all, name)[0])
        .collect();
    let txn = &queued[0]["txn"];
    assert!(txn.is_u64());
    assert!(queued.iter().all(|record| &record["txn"] == txn));
    let statuses: Vec<_> = queued.iter().map(|record| record["status"].clone()).collect();
    assert_eq!(statuses, ["ok", "ok", "error"]);
    let del = commands(&all, "DEL");
    assert_eq!(del[0]["status"], "discarded");
    assert_ne!(&del[0]["txn"], txn);
    assert_contiguous(&all);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_keeps_every_record_once_and_whole() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("rotate");
    let proxy = start(&cluster, &dir, |config| match &mut config.audit.sinks[0] {
        audit::SinkConfig::File {
            rotate_bytes, keep, ..
        } => {
            *rotate_bytes = 256 * 1024;
            *keep = 0;
        }
        other => panic!("{other:?}"),
    })
    .await;
    redis_benchmark(
        &proxy.addr,
        &["-t", "set", "-n", "20000", "-c", "20", "-P", "16", "-r", "100000"],
    )
    .await;
    let mut ops = RawClient::login(&proxy.addr, "default", "p1").await;
    settled(&mut ops).await;
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert!(files >= 3, "{files} files");
    // Asked to, the writer rotates now.
    assert_eq!(show(&ops.call(&["PROXY", "AUDIT", "ROTATE"]).await), "OK");
    eventually(|| std::fs::read_dir(&dir).unwrap().count() > files).await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), files + 1);
    let all = records(&dir);
    assert_contiguous(&all);
    assert_eq!(commands(&all, "SET").len(), 20_000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_leave_out_users_and_keys() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("filters");
    let proxy = start(&cluster, &dir, |config| {
        config.audit.users_exclude = vec!["exporter".into()];
        config.audit.keys = vec!["user:*".into()];
        config.users.push(user("exporter", "e1", None));
    })
    .await;
    let mut app = RawClient::login(&proxy.addr, "default", "p1").await;
    let mut exporter = RawClient::login(&proxy.addr, "exporter", "e1").await;
    assert_eq!(show(&app.call(&["SET", "user:1", "x"]).await), "OK");
    assert_eq!(show(&app.call(&["SET", "order:1", "x"]).await), "OK");
    assert_eq!(show(&exporter.call(&["SET", "user:2", "x"]).await), "OK");
    settled(&mut app).await;
    let all = records(&dir);
    let keys: Vec<_> = commands(&all, "SET")
        .iter()
        .map(|record| record["keys"][0].clone())
        .collect();
    assert_eq!(keys, ["user:1"]);
    // The excluded user's connection and login are left out too.
    assert!(all.iter().all(|record| record["user"] != "exporter"), "{all:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_came_what_was_refused_and_why_they_left() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("sessions");
    let proxy = start(&cluster, &dir, |config| {
        config.audit.events = audit::AuditConfig::default().events;
        let reader = user("reader", "r1", Some("on +@read +@connection ~*"));
        config.users.push(reader);
    })
    .await;
    let mut app = RawClient::login(&proxy.addr, "default", "p1").await;
    assert_eq!(show(&app.call(&["CLIENT", "SETNAME", "checkout"]).await), "OK");
    let lib = ["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"];
    assert_eq!(show(&app.call(&lib).await), "OK");
    assert_eq!(show(&app.call(&["SET", "order:1", "x"]).await), "OK");
    let mut reader = RawClient::login(&proxy.addr, "reader", "r1").await;
    assert!(show(&reader.call(&["SET", "order:1", "y"]).await).starts_with("-NOPERM"));
    let id = show(&reader.call(&["CLIENT", "ID"]).await);
    assert_eq!(show(&app.call(&["CLIENT", "KILL", "ID", &id]).await), "1");
    assert!(reader.closed_within(Duration::from_secs(5)).await);
    let status = show(&app.call(&["PROXY", "AUDIT", "STATUS"]).await);
    assert!(status.contains("audit_enabled:1"), "{status}");
    assert_eq!(show(&app.call(&["QUIT"]).await), "OK");
    let mut ops = RawClient::login(&proxy.addr, "default", "p1").await;
    let disconnects = || {
        records(&dir)
            .iter()
            .filter(|r| r["event"] == "disconnect")
            .count()
    };
    eventually(|| disconnects() == 2).await;
    settled(&mut ops).await;
    let all = records(&dir);
    let set = commands(&all, "SET");
    assert_eq!(set.len(), 1);
    assert_eq!(
        (&set[0]["name"], &set[0]["lib"]),
        (&"checkout".into(), &"redis-rs".into())
    );
    let denied: Vec<_> = all.iter().filter(|r| r["event"] == "denied").collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(
        (&denied[0]["user"], &denied[0]["error"]),
        (&"reader".into(), &"NOPERM".into())
    );
    assert_eq!(denied[0]["cmd"], "SET");
    let kill = all.iter().find(|r| r["cmd"] == "CLIENT KILL").unwrap();
    assert_eq!(kill["event"], "admin");
    let proxy_status = all.iter().find(|r| r["cmd"] == "PROXY").unwrap();
    assert_eq!(proxy_status["event"], "admin");
    assert_eq!(proxy_status["user"], "default");
    let mut reasons: Vec<_> = all
        .iter()
        .filter(|r| r["event"] == "disconnect")
        .map(|r| {
            (
                r["user"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("default".into(), "quit".into()),
            ("reader".into(), "kill".into())
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_way_of_leaving_has_its_reason() {
    use tokio::io::AsyncWriteExt;
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let dir = scratch("leaving");
    let proxy = start(&cluster, &dir, |config| {
        config.audit.events = vec![audit::EventKind::Disconnect];
        config.client_idle_timeout_secs = 1;
    })
    .await;
    // Leaves by itself.
    drop(RawClient::login(&proxy.addr, "default", "p1").await);
    // Sends what RESP cannot read: answered, then closed.
    let mut garbage = tokio::net::TcpStream::connect(&proxy.addr).await.unwrap();
    garbage.write_all(b"*1\r\n$abc\r\n").await.unwrap();
    // Says nothing for longer than the idle timeout.
    let mut idle = RawClient::login(&proxy.addr, "default", "p1").await;
    assert!(idle.closed_within(Duration::from_secs(5)).await);
    eventually(|| records(&dir).len() == 3).await;
    let mut reasons: Vec<String> = records(&dir)
        .iter()
        .map(|record| record["reason"].as_str().unwrap().to_string())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["client", "idle", "protocol"]);
    drop(garbage);
    let _ = std::fs::remove_dir_all(&dir);
}
