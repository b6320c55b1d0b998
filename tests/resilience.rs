//! Backend trouble never closes a client connection: the client gets error
//! replies while the backend is down and its next command after the
//! restart works, on the same connection.

mod common;

use std::time::Duration;

use common::{run, TestProxy};
use redis::Value;
use test_util::{Flavor, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn roundtrip(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    let mut chunk = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
        .await
        .expect("a reply within 10 s")
        .unwrap();
    assert!(n > 0, "the proxy closed the client connection");
    String::from_utf8_lossy(&chunk[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_survives_a_backend_restart() {
    let mut server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut stream = TcpStream::connect(&proxy.addr).await.unwrap();
    assert_eq!(roundtrip(&mut stream, b"SET k before\r\n").await, "+OK\r\n");

    server.kill();
    for _ in 0..3 {
        let reply = roundtrip(&mut stream, b"GET k\r\n").await;
        assert!(reply.starts_with("-ERR proxy: backend"), "{reply}");
    }

    server.restart();
    let mut after = String::new();
    for _ in 0..100 {
        after = roundtrip(&mut stream, b"SET k after\r\n").await;
        if after == "+OK\r\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(after, "+OK\r\n", "the same connection works after the restart");
    assert_eq!(roundtrip(&mut stream, b"GET k\r\n").await, "$5\r\nafter\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_starts_before_its_backend() {
    let mut server = Server::start(Flavor::Valkey);
    let addr = server.addr();
    server.kill();
    let proxy = TestProxy::start(vec![addr], |c| c.refresh_min_interval_ms = 50).await;
    let mut client = common::connect(&proxy.addr).await;
    let reply = run(&mut client, &["GET", "k"]).await;
    assert!(
        format!("{reply:?}").contains("no backend is reachable"),
        "{reply:?}"
    );
    // WAIT, which the proxy answers by asking every primary, has none to
    // ask: an error at once, not a wait.
    let wait = tokio::time::timeout(Duration::from_secs(5), run(&mut client, &["WAIT", "1", "0"])).await;
    let wait = wait.expect("WAIT answers at once without a backend");
    assert!(
        format!("{wait:?}").contains("no backend is reachable"),
        "{wait:?}"
    );
    server.restart();
    // Eventual recovery is what counts; the bound is generous for a loaded
    // machine (the refresher retries an empty topology every 50 ms).
    let mut reply = Value::Nil;
    for _ in 0..300 {
        reply = run(&mut client, &["SET", "k", "v"]).await;
        if reply == Value::Okay {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reply, Value::Okay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_command_blocks_only_its_client() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut blocked = common::connect(&proxy.addr).await;
    let mut other = common::connect(&proxy.addr).await;
    let waiter = tokio::spawn(async move { run(&mut blocked, &["BLPOP", "queue", "5"]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    for i in 0..100 {
        assert_eq!(run(&mut other, &["SET", "x", &i.to_string()]).await, Value::Okay);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "other clients are not stuck behind BLPOP"
    );
    assert_eq!(run(&mut other, &["RPUSH", "queue", "item"]).await, Value::Int(1));
    let popped = waiter.await.unwrap();
    assert_eq!(
        popped,
        Value::Array(vec![
            Value::BulkString(b"queue".to_vec()),
            Value::BulkString(b"item".to_vec())
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_half_way_is_an_error_and_the_client_stays() {
    let server = Server::start(Flavor::Valkey);
    let relay = test_util::Relay::start(&server.addr());
    let proxy = TestProxy::default_for(vec![relay.addr().to_string()]).await;
    let mut client = common::RawClient::connect(&proxy.addr).await;
    let big = "v".repeat(200_000);
    assert_eq!(common::show(&client.call(&["SET", "big", &big]).await), "OK");
    // The node's reply to the GET arrives half, then the connection ends
    // (a standalone backend: nothing to retry on).
    relay.set(test_util::Fault::CutMidReply);
    let reply = common::show(&client.call(&["GET", "big"]).await);
    assert!(
        reply.starts_with("-ERR proxy: backend failed, the command may have run: connection to"),
        "{reply}"
    );
    // The same client connection goes on, and the value is whole.
    assert_eq!(common::show(&client.call(&["STRLEN", "big"]).await), "200000");
    assert_eq!(common::show(&client.call(&["GET", "big"]).await), big);
}

/// The reply to `args` once the connections a relay cut are gone: a
/// request may still meet one as it closes ("connection ... lost").
async fn reply_after_a_cut(client: &mut common::RawClient, args: &[&str]) -> String {
    let mut reply = common::show(&client.call(args).await);
    for _ in 0..10 {
        if !reply.contains(" lost") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        reply = common::show(&client.call(args).await);
    }
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_accepts_but_never_answers_the_handshake_is_a_connect_timeout() {
    let server = Server::start(Flavor::Valkey);
    let relay = test_util::Relay::start(&server.addr());
    let proxy = TestProxy::start(vec![relay.addr().to_string()], |c| c.connect_timeout_ms = 300).await;
    let mut client = common::RawClient::connect(&proxy.addr).await;
    assert_eq!(common::show(&client.call(&["SET", "k", "v"]).await), "OK");
    // The node's connections end, and new ones are accepted but hang: the
    // proxy's reconnect gets no handshake reply.
    relay.set(test_util::Fault::BlackHole);
    relay.cut_all();
    let reply = reply_after_a_cut(&mut client, &["GET", "k"]).await;
    // Said at once, or (when a reconnect in the background met it first)
    // as the last error of a node in its reconnect backoff.
    let said = format!("connect to {} timed out after 300ms", relay.addr());
    assert!(
        reply.starts_with("-ERR proxy: backend unavailable: ") && reply.contains(&said),
        "{reply}"
    );
    // The fault lifts: the same client goes on.
    relay.set(test_util::Fault::Pass);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = common::show(&client.call(&["GET", "k"]).await);
        if reply == "v" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handshake_says_what_the_node_said() {
    let server = Server::start(Flavor::Valkey);
    server.command(&["CONFIG", "SET", "requirepass", "first"]);
    let relay = test_util::Relay::start(&server.addr());
    let proxy = TestProxy::start(vec![relay.addr().to_string()], |c| {
        c.backend_password = Some("first".into());
    })
    .await;
    let mut client = common::RawClient::connect(&proxy.addr).await;
    assert_eq!(common::show(&client.call(&["SET", "k", "v"]).await), "OK");
    // The node's password changes, and its connections end: the proxy's
    // reconnect logs in with the old one.
    let mut admin = common::RawClient::connect(&server.addr()).await;
    assert_eq!(common::show(&admin.call(&["AUTH", "first"]).await), "OK");
    assert_eq!(
        common::show(&admin.call(&["CONFIG", "SET", "requirepass", "second"]).await),
        "OK"
    );
    relay.cut_all();
    let reply = reply_after_a_cut(&mut client, &["GET", "k"]).await;
    let said = format!(
        "handshake with {} failed: WRONGPASS invalid username-password pair or user is disabled.",
        relay.addr()
    );
    assert!(
        reply.starts_with("-ERR proxy: backend unavailable: ") && reply.contains(&said),
        "{reply}"
    );
}
