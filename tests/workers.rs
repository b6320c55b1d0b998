//! Clients served on several worker runtimes (`--threads N`): every client
//! sees one proxy whatever worker serves it, and each worker keeps to its
//! own shared backend connections.

mod common;

use std::time::Duration;

use common::{connect, proxy_info_field, run, RawClient, TestProxy};
use futures::future::join_all;
use redis::Value;
use test_util::{Flavor, Server};

/// Worker runtimes in these tests: more than the machine's two cores, so
/// the clients land on three lanes.
const WORKERS: usize = 3;

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_every_worker_see_one_proxy() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start_on_workers(vec![server.addr()], WORKERS, |_| {}).await;
    // Clients go to the workers in turn: nine clients, three on each.
    let mut clients = Vec::new();
    for _ in 0..3 * WORKERS {
        clients.push(connect(&proxy.addr).await);
    }
    let writes = clients.iter_mut().enumerate().map(|(i, client)| async move {
        let key = format!("worker-key-{i}");
        run(client, &["SET", &key, &i.to_string()]).await
    });
    assert!(join_all(writes).await.iter().all(|reply| *reply == Value::Okay));
    for client in &mut clients {
        let keys: Vec<String> = (0..3 * WORKERS).map(|i| format!("worker-key-{i}")).collect();
        let mut args = vec!["MGET"];
        args.extend(keys.iter().map(String::as_str));
        let Value::Array(values) = run(client, &args).await else {
            panic!("MGET answers an array")
        };
        let got: Vec<String> = values.iter().map(text).collect();
        let expected: Vec<String> = (0..3 * WORKERS).map(|i| i.to_string()).collect();
        assert_eq!(got, expected);
    }

    // CLIENT LIST and CLIENT KILL reach the clients of every worker.
    let list = text(&run(&mut clients[0], &["CLIENT", "LIST"]).await);
    assert_eq!(list.lines().count(), 3 * WORKERS, "{list}");
    let mut ids = Vec::new();
    for client in &mut clients[1..=WORKERS] {
        let Value::Int(id) = run(client, &["CLIENT", "ID"]).await else {
            panic!("CLIENT ID is an integer")
        };
        ids.push(id);
    }
    for id in &ids {
        let reply = run(&mut clients[0], &["CLIENT", "KILL", "ID", &id.to_string()]).await;
        assert_eq!(reply, Value::Int(1), "client {id}");
    }
    let list = text(&run(&mut clients[0], &["CLIENT", "LIST"]).await);
    assert_eq!(list.lines().count(), 2 * WORKERS, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_pubsub_and_transactions_cross_workers() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start_on_workers(vec![server.addr()], WORKERS, |_| {}).await;
    // In turn: the blocked client, the subscriber and the writer each get
    // a worker of their own.
    let mut blocked = RawClient::connect(&proxy.addr).await;
    let mut subscriber = RawClient::connect(&proxy.addr).await;
    let mut writer = connect(&proxy.addr).await;

    blocked.send(&["BLPOP", "worker-queue", "0"]).await;
    assert_eq!(
        common::show(&subscriber.call(&["SUBSCRIBE", "worker-news"]).await),
        "[subscribe worker-news 1]"
    );
    // The BLPOP is on the server before the push (it holds a dedicated
    // connection while it waits).
    for _ in 0..250 {
        if proxy_info_field(&proxy.addr, "backend_connections_dedicated") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        run(&mut writer, &["RPUSH", "worker-queue", "job"]).await,
        Value::Int(1)
    );
    assert_eq!(common::show(&blocked.next().await), "[worker-queue job]");
    assert_eq!(
        run(&mut writer, &["PUBLISH", "worker-news", "hello"]).await,
        Value::Int(1)
    );
    assert_eq!(
        common::show(&subscriber.next().await),
        "[message worker-news hello]"
    );

    let mut transaction = RawClient::connect(&proxy.addr).await;
    assert_eq!(common::show(&transaction.call(&["MULTI"]).await), "OK");
    assert_eq!(
        common::show(&transaction.call(&["INCR", "worker-counter"]).await),
        "QUEUED"
    );
    assert_eq!(
        common::show(&transaction.call(&["INCR", "worker-counter"]).await),
        "QUEUED"
    );
    assert_eq!(common::show(&transaction.call(&["EXEC"]).await), "[1 2]");
    assert_eq!(
        run(&mut writer, &["GET", "worker-counter"]).await,
        Value::BulkString(b"2".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_opens_its_own_shared_connections() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start_on_workers(vec![server.addr()], WORKERS, |config| {
        config.connections_per_node = 1;
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..4 * WORKERS {
        clients.push(connect(&proxy.addr).await);
    }
    for client in &mut clients {
        assert_eq!(run(client, &["SET", "shared", "x"]).await, Value::Okay);
    }
    // One shared connection per worker, however many clients each has.
    assert_eq!(
        proxy_info_field(&proxy.addr, "backend_connections_open"),
        WORKERS as u64
    );
    assert_eq!(
        proxy_info_field(&proxy.addr, "backend_connections_opened_total"),
        WORKERS as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_drains_the_clients_of_every_worker() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start_on_workers(vec![server.addr()], WORKERS, |_| {}).await;
    let mut clients = Vec::new();
    for _ in 0..WORKERS {
        clients.push(RawClient::connect(&proxy.addr).await);
    }
    for client in &mut clients {
        assert_eq!(common::show(&client.call(&["PING"]).await), "PONG");
    }
    // A request in flight on every worker when the stop comes is answered.
    for client in &mut clients {
        client.send(&["BLPOP", "worker-nothing", "0.3"]).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(Duration::from_secs(10), proxy.stop())
        .await
        .expect("the drain ends");
    for client in &mut clients {
        assert_eq!(common::show(&client.next().await), "(nil)");
        assert!(
            client.closed_within(Duration::from_secs(2)).await,
            "then the connection closes"
        );
    }
}
