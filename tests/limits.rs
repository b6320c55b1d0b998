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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_the_output_buffer_limit_is_closed() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |c| c.client_output_buffer_limit = 4096).await;
    let mut other = connect(&proxy.addr).await;
    let big = "x".repeat(10_000);
    assert_eq!(run(&mut other, &["SET", "big", &big]).await, Value::Okay);
    assert_eq!(run(&mut other, &["SET", "small", "v"]).await, Value::Okay);
    let mut greedy = TcpStream::connect(&proxy.addr).await.unwrap();
    greedy.write_all(b"GET big\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), greedy.read_to_end(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed without the reply: {read:?}");
    // Everyone else is served, small replies included.
    assert_eq!(
        run(&mut other, &["GET", "small"]).await,
        Value::BulkString(b"v".to_vec())
    );
}
