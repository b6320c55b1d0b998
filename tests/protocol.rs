//! Malformed input through the proxy gets Valkey's own errors (the cases of
//! Valkey's tests/unit/protocol.tcl), the offending connection is closed as
//! Valkey closes it, and other clients are unaffected.

mod common;

use std::time::Duration;

use common::{connect, run, TestProxy};
use test_util::{Flavor, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `input` on a new connection and returns everything the proxy
/// writes until it closes the connection (or 5 s pass).
async fn exchange(addr: &str, input: &[u8]) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(input).await.unwrap();
    let mut out = Vec::new();
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    (out, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_match_valkey_and_spare_other_clients() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut bystander = connect(&proxy.addr).await;
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*3000000000\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"PING\r\nset \"\"\"test-key\"\"\" test-value\r\nping\r\n",
            b"+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (input, expected) in cases {
        let (reply, closed) = exchange(&proxy.addr, input).await;
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(expected),
            "{input:?}"
        );
        assert!(closed, "the connection is closed after {input:?}");
        assert_eq!(
            run(&mut bystander, &["PING"]).await,
            redis::Value::SimpleString("PONG".into())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desync_attempts_are_refused() {
    // Valkey's "Protocol desync regression test": a line that never ends.
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    for prefix in [&b"\x00"[..], b"*\x00", b"*1\r\n$\x00"] {
        let mut input = prefix.to_vec();
        input.extend(std::iter::repeat_n(b'A', 70 * 1024));
        let (reply, closed) = exchange(&proxy.addr, &input).await;
        assert!(
            String::from_utf8_lossy(&reply).starts_with("-ERR Protocol error: too big"),
            "{reply:?}"
        );
        assert!(closed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_queries_and_inline_commands_work() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let (reply, _) = exchange(&proxy.addr, b"\r\n*-10\r\nset k \"a b\"\r\nget k\r\nQUIT\r\n").await;
    assert_eq!(String::from_utf8_lossy(&reply), "+OK\r\n$3\r\na b\r\n+OK\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_arity_and_unknown_commands_get_server_texts() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let (reply, _) = exchange(&proxy.addr, b"ping x y z\r\nget\r\nfoo bar\r\nQUIT\r\n").await;
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-ERR wrong number of arguments for 'ping' command\r\n\
         -ERR wrong number of arguments for 'get' command\r\n\
         -ERR unknown command 'foo', with args beginning with: 'bar' \r\n+OK\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_arguments_pass_through_intact() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = connect(&proxy.addr).await;
    let big: String = (0..3_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query_async(&mut client)
        .await
        .unwrap();
    let back: String = redis::cmd("GET")
        .arg("big")
        .query_async(&mut client)
        .await
        .unwrap();
    assert_eq!(back, big);
    // 10k arguments in one command.
    let mut rpush = redis::cmd("RPUSH");
    rpush.arg("many");
    for i in 0..10_000 {
        rpush.arg(i);
    }
    let len: i64 = rpush.query_async(&mut client).await.unwrap();
    assert_eq!(len, 10_000);
}
