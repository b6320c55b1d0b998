//! MULTI / EXEC / DISCARD / WATCH / UNWATCH through the proxy give what a
//! server gives directly, on a standalone server and on clusters (keys in
//! one slot), and WATCH across slots is refused cleanly.

mod common;

use common::{proxy_info_field, settled_info_field, show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

/// Scripts of commands, each run on a fresh connection; every key shares
/// the hash tag `{t}` so that a cluster can run them.
fn scripts() -> Vec<Vec<Vec<&'static str>>> {
    vec![
        // A plain transaction, with a runtime error inside.
        vec![
            vec!["DEL", "{t}a", "{t}l"],
            vec!["MULTI"],
            vec!["SET", "{t}a", "1"],
            vec!["INCR", "{t}a"],
            vec!["LPUSH", "{t}a", "x"],
            vec!["RPUSH", "{t}l", "p", "q"],
            vec!["GET", "{t}a"],
            vec!["LRANGE", "{t}l", "0", "-1"],
            vec!["EXEC"],
            vec!["GET", "{t}a"],
        ],
        // Errors outside and inside MULTI.
        vec![
            vec!["EXEC"],
            vec!["DISCARD"],
            vec!["MULTI"],
            vec!["MULTI"],
            vec!["EXEC"],
            vec!["MULTI"],
            vec!["NOSUCHCOMMAND", "x", "y"],
            vec!["SET", "{t}a"],
            vec!["SET", "{t}a", "never"],
            vec!["EXEC"],
            vec!["GET", "{t}a"],
        ],
        // DISCARD, then a new transaction on the same connection.
        vec![
            vec!["SET", "{t}d", "before"],
            vec!["MULTI"],
            vec!["SET", "{t}d", "discarded"],
            vec!["DISCARD"],
            vec!["GET", "{t}d"],
            vec!["MULTI"],
            vec!["PING"],
            vec!["ECHO", "hi"],
            vec!["EXEC"],
        ],
        // WATCH fired by the client's own write.
        vec![
            vec!["SET", "{t}w", "0"],
            vec!["WATCH", "{t}w"],
            vec!["SET", "{t}w", "mine"],
            vec!["MULTI"],
            vec!["SET", "{t}w", "tx"],
            vec!["EXEC"],
            vec!["GET", "{t}w"],
        ],
        // WATCH not fired, then UNWATCH, WATCH inside MULTI.
        vec![
            vec!["SET", "{t}w", "0"],
            vec!["WATCH", "{t}w", "{t}v"],
            vec!["MULTI"],
            vec!["INCR", "{t}w"],
            vec!["EXEC"],
            vec!["WATCH", "{t}w"],
            vec!["UNWATCH"],
            vec!["UNWATCH"],
            vec!["MULTI"],
            vec!["WATCH", "{t}w"],
            vec!["INCR", "{t}w"],
            vec!["EXEC"],
            vec!["GET", "{t}w"],
        ],
    ]
}

async fn replies(addr: &str, script: &[Vec<&str>]) -> Vec<String> {
    let mut client = RawClient::connect(addr).await;
    let mut out = Vec::new();
    for command in script {
        out.push(show(&client.call(command).await));
    }
    out
}

async fn same_as_direct(direct: &str, proxied: &str) {
    for script in scripts() {
        let expected = replies(direct, &script).await;
        let got = replies(proxied, &script).await;
        assert_eq!(got, expected, "script {script:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_match_a_standalone_valkey() {
    let direct = Server::start(Flavor::Valkey);
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    same_as_direct(&direct.addr(), &proxy.addr).await;
    assert_eq!(
        settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_match_on_a_valkey_cluster() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    same_as_direct(&direct.addr(), &proxy.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_match_on_a_valkey_cluster_with_databases() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start_with(Flavor::Valkey, 3, 0, &[("cluster-databases", "16")]);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    same_as_direct(&direct.addr(), &proxy.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_match_on_a_redis_cluster() {
    // The proxy queues transactions itself and words its errors as Valkey
    // 9.1 does, whatever the backend.
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Redis, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    same_as_direct(&direct.addr(), &proxy.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_across_slots_is_refused() {
    // Transactions across slots: tests/transactions_across_slots.rs.
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    let refused = show(&client.call(&["WATCH", "a", "b"]).await);
    assert!(refused.starts_with("-ERR proxy: keys watched"), "{refused}");
    assert_eq!(show(&client.call(&["MSET", "a", "1", "b", "2"]).await), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_other_clients_writes() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut watcher = RawClient::connect(&proxy.addr).await;
    let mut other = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&watcher.call(&["WATCH", "k"]).await), "OK");
    assert_eq!(proxy_info_field(&proxy.addr, "backend_connections_dedicated"), 1);
    assert_eq!(show(&other.call(&["SET", "k", "theirs"]).await), "OK");
    watcher.call(&["MULTI"]).await;
    watcher.call(&["SET", "k", "mine"]).await;
    assert_eq!(show(&watcher.call(&["EXEC"]).await), "(nil)", "the watch fired");
    assert_eq!(show(&other.call(&["GET", "k"]).await), "theirs");
    // EXEC gave the connection back; a second WATCH reuses it.
    assert_eq!(proxy_info_field(&proxy.addr, "backend_connections_dedicated"), 0);
    assert_eq!(show(&watcher.call(&["WATCH", "k"]).await), "OK");
    watcher.call(&["MULTI"]).await;
    watcher.call(&["SET", "k", "mine"]).await;
    assert_eq!(show(&watcher.call(&["EXEC"]).await), "[OK]");
    assert_eq!(show(&other.call(&["GET", "k"]).await), "mine");
    // A client that leaves while watching frees its connection at once.
    assert_eq!(show(&watcher.call(&["WATCH", "k"]).await), "OK");
    drop(watcher);
    let held = settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await;
    assert_eq!(held, 0, "the watch connection was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_transactions_keep_their_order() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    // Everything written at once: replies in order, EXEC after the reads
    // before it, the reads after it seeing its effects.
    let commands: Vec<Vec<&str>> = vec![
        vec!["SET", "p", "0"],
        vec!["WATCH", "p"],
        vec!["GET", "p"],
        vec!["MULTI"],
        vec!["INCR", "p"],
        vec!["INCR", "p"],
        vec!["EXEC"],
        vec!["GET", "p"],
        vec!["MULTI"],
        vec!["INCR", "p"],
        vec!["EXEC"],
        vec!["GET", "p"],
    ];
    for command in &commands {
        client.send(command).await;
    }
    let mut got = Vec::new();
    for _ in &commands {
        got.push(show(&client.next().await));
    }
    assert_eq!(
        got,
        ["OK", "OK", "0", "OK", "QUEUED", "QUEUED", "[1 2]", "2", "OK", "QUEUED", "[3]", "3"]
    );
}

/// The same session typed into redis-cli, direct and through the proxy.
fn redis_cli(port: &str, script: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("redis-cli")
        .args(["-p", port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_sees_the_same_transactions() {
    let direct = Server::start(Flavor::Valkey);
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    let script = "SET n 1\nWATCH n\nMULTI\nINCR n\nLPUSH n x\nGET n\nEXEC\nMULTI\nNOSUCH\nEXEC\nSELECT 2\nMULTI\nSET k v\nEXEC\nGET k\n";
    let port = |addr: &str| addr.rsplit(':').next().unwrap().to_string();
    let expected = tokio::task::spawn_blocking({
        let port = port(&direct.addr());
        move || redis_cli(&port, script)
    });
    let got = tokio::task::spawn_blocking({
        let port = port(&proxy.addr);
        move || redis_cli(&port, script)
    });
    let (expected, got) = (expected.await.unwrap(), got.await.unwrap());
    assert!(expected.contains("EXECABORT"), "{expected}");
    assert_eq!(got, expected);
}
