//! Operator limits: max clients, idle timeout, and an embedded layer seeing
//! every command.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{connect, run, TestProxy};
use redis::Value;
use router::{Command, Purpose, Reply};
use test_util::{Flavor, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::{Layer, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_the_limit_are_refused_with_valkeys_error() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |c| c.max_clients = 2).await;
    let mut first = connect(&proxy.addr).await;
    let _second = connect(&proxy.addr).await;
    let mut third = TcpStream::connect(&proxy.addr).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-ERR max number of clients reached\r\n"
    );
    assert_eq!(
        run(&mut first, &["PING"]).await,
        Value::SimpleString("PONG".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed_only_when_configured() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |c| c.client_idle_timeout_secs = 1).await;
    let mut idle = TcpStream::connect(&proxy.addr).await.unwrap();
    idle.write_all(b"PING\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = idle.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"+PONG\r\n");
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed, 0, "the idle client was closed");

    let patient = TestProxy::default_for(vec![server.addr()]).await;
    let mut stream = TcpStream::connect(&patient.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(b"PING\r\n").await.unwrap();
    let n = stream.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"+PONG\r\n", "without the setting, idle clients stay");
}

/// Counts the commands that reach it to be run, and names those it is
/// asked only to admit (the ones the proxy answers itself).
#[derive(Clone, Default)]
struct CountLayer {
    run: Arc<AtomicUsize>,
    admitted: Arc<Mutex<Vec<String>>>,
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count(inner, self.clone())
    }
}

#[derive(Clone)]
struct Count<S>(S, CountLayer);

impl<S: Service<Command, Response = Reply>> Service<Command> for Count<S> {
    type Response = Reply;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, command: Command) -> S::Future {
        match command.purpose {
            Purpose::Run => {
                self.1.run.fetch_add(1, Ordering::Relaxed);
            }
            Purpose::Admit => {
                let name = String::from_utf8_lossy(command.request.name()).to_ascii_uppercase();
                self.1.admitted.lock().unwrap().push(name);
            }
        }
        self.0.call(command)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_layer_sees_every_command() {
    let server = Server::start(Flavor::Valkey);
    let config = proxy::ProxyConfig {
        listen: "127.0.0.1:0".into(),
        backends: vec![server.addr()],
        ..proxy::ProxyConfig::default()
    };
    let counter = CountLayer::default();
    let proxy = proxy::Proxy::bind(config).await.unwrap().layer(counter.clone());
    let addr = proxy.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(proxy.run(async {
        let _ = stopped.await;
    }));
    let mut client = connect(&addr).await;
    counter.admitted.lock().unwrap().clear(); // the client's own handshake
    for i in 0..10 {
        assert_eq!(run(&mut client, &["SET", "k", &i.to_string()]).await, Value::Okay);
    }
    // PING goes to the backend, as the SETs do.
    assert_eq!(
        run(&mut client, &["PING"]).await,
        Value::SimpleString("PONG".into())
    );
    // CLIENT GETNAME is answered by the proxy itself: the layer is asked
    // to admit it.
    run(&mut client, &["CLIENT", "GETNAME"]).await;
    assert_eq!(counter.run.load(Ordering::Relaxed), 11);
    assert_eq!(*counter.admitted.lock().unwrap(), ["CLIENT"]);
    let _ = stop.send(());
    drop(client);
    task.await.unwrap();
}

/// A client that reads nothing, its receive buffer small: what the proxy
/// writes to it stays in the proxy.
async fn greedy(addr: &str, gets: usize) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    stream.write_all(&b"GET big\r\n".repeat(gets)).await.unwrap();
    stream
}

/// The clients CLIENT LIST shows, asked on `other`'s connection.
async fn clients_listed(other: &mut redis::aio::MultiplexedConnection) -> usize {
    match run(other, &["CLIENT", "LIST"]).await {
        Value::BulkString(list) => String::from_utf8_lossy(&list).matches("id=").count(),
        Value::VerbatimString { text, .. } => text.matches("id=").count(),
        other => panic!("CLIENT LIST: {other:?}"),
    }
}

/// Reads what the proxy sent a greedy client of `gets` GETs of the 100 KB
/// value before it closed the connection: less than all of it.
async fn assert_cut_short(greedy: &mut TcpStream, gets: usize) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), greedy.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the proxy did not close the connection");
    assert!(
        received.len() < gets * 100_000,
        "every reply came: {} bytes",
        received.len()
    );
}

/// Waits until the proxy lists `count` clients (a new one was accepted).
async fn listed(other: &mut redis::aio::MultiplexedConnection, count: usize) {
    while clients_listed(other).await != count {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long until only `left` clients are listed (the others were closed
/// by the proxy; they never read, so they cannot have noticed); `None`
/// if that takes longer than `within`.
async fn closed_within(
    other: &mut redis::aio::MultiplexedConnection,
    left: usize,
    within: Duration,
) -> Option<Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if clients_listed(other).await == left {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_the_hard_output_buffer_limit_is_closed() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |c| {
        c.client_output_buffer_limit = 1024 * 1024
    })
    .await;
    let mut other = connect(&proxy.addr).await;
    assert_eq!(
        run(&mut other, &["SET", "big", &"x".repeat(100_000)]).await,
        Value::Okay
    );
    assert_eq!(run(&mut other, &["SET", "small", "v"]).await, Value::Okay);
    // 20 MB of replies: far more than the sockets' buffers take.
    let mut greedy = greedy(&proxy.addr, 200).await;
    let closed = closed_within(&mut other, 1, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "a client over the hard limit is still connected"
    );
    assert_cut_short(&mut greedy, 200).await;
    // Everyone else is served, small replies included.
    assert_eq!(
        run(&mut other, &["GET", "small"]).await,
        Value::BulkString(b"v".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_the_soft_limit_for_its_seconds_is_closed() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |c| {
        c.client_output_buffer_limit = 0;
        c.client_output_buffer_soft_limit = 1024 * 1024;
        c.client_output_buffer_soft_seconds = 2;
    })
    .await;
    let mut other = connect(&proxy.addr).await;
    assert_eq!(
        run(&mut other, &["SET", "big", &"x".repeat(100_000)]).await,
        Value::Okay
    );
    let _slow = greedy(&proxy.addr, 200).await;
    listed(&mut other, 2).await;
    let after = closed_within(&mut other, 1, Duration::from_secs(10))
        .await
        .expect("still connected after 10 s over the soft limit");
    assert!(
        after >= Duration::from_millis(1900),
        "closed after {after:?}, before its 2 seconds over the soft limit"
    );
    assert_eq!(run(&mut other, &["STRLEN", "big"]).await, Value::Int(100_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_maxmemory_clients_the_client_holding_the_most_is_evicted() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |c| {
        c.client_output_buffer_limit = 0;
        c.client_output_buffer_soft_limit = 0;
        c.maxmemory_clients = 8 * 1024 * 1024;
    })
    .await;
    let mut other = connect(&proxy.addr).await;
    assert_eq!(
        run(&mut other, &["SET", "big", &"x".repeat(100_000)]).await,
        Value::Okay
    );
    // 1 MB held by the modest client, then 30 MB by the greedy one.
    let mut modest = greedy(&proxy.addr, 10).await;
    listed(&mut other, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut hog = greedy(&proxy.addr, 300).await;
    assert!(
        closed_within(&mut other, 2, Duration::from_secs(10))
            .await
            .is_some(),
        "the client holding the most was not evicted"
    );
    assert_cut_short(&mut hog, 300).await;
    // The modest one keeps its connection and every reply.
    let mut replies = vec![0u8; 10 * "$100000\r\n".len() + 10 * (100_000 + 2)];
    tokio::time::timeout(Duration::from_secs(10), modest.read_exact(&mut replies))
        .await
        .expect("the modest client's replies")
        .unwrap();
    modest.write_all(b"PING\r\n").await.unwrap();
    let mut pong = [0u8; 7];
    modest.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    assert_eq!(run(&mut other, &["STRLEN", "big"]).await, Value::Int(100_000));
}
