//! Shared helpers for the end-to-end tests: a proxy in this process on a
//! free port, and clients for it.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use proxy::{Proxy, ProxyConfig};
use test_util::{Cluster, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A proxy running in the test's runtime (its clients too, or on worker
/// runtimes of their own). Stopped (drained) when dropped.
pub struct TestProxy {
    /// `127.0.0.1:<port>` of the proxy.
    pub addr: String,
    /// `127.0.0.1:<port>` of its admin HTTP port, when the configuration
    /// asked for one (`admin_listen`).
    pub admin: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    workers: Vec<tokio::runtime::Runtime>,
}

impl TestProxy {
    /// Starts a proxy in front of `backends`, after `tweak` adjusts its
    /// configuration.
    pub async fn start(backends: Vec<String>, tweak: impl FnOnce(&mut ProxyConfig)) -> TestProxy {
        TestProxy::start_on_workers(backends, 0, tweak).await
    }

    /// As [`TestProxy::start`], with the clients served on `workers`
    /// runtimes of one thread each, as the binary does with `--threads`
    /// (0: on the test's runtime).
    pub async fn start_on_workers(
        backends: Vec<String>,
        workers: usize,
        tweak: impl FnOnce(&mut ProxyConfig),
    ) -> TestProxy {
        let mut config = ProxyConfig {
            threads: workers,
            listen: "127.0.0.1:0".into(),
            backends,
            ..ProxyConfig::default()
        };
        tweak(&mut config);
        config.validate().expect("test configuration is valid");
        let admin_listen = config.admin_listen.clone();
        let proxy = Proxy::bind(config).await.expect("bind the proxy");
        let addr = proxy.local_addr().expect("local address").to_string();
        let admin = match admin_listen {
            Some(listen) => {
                let admin = admin::Admin::bind(&listen, proxy.shared().clone(), recorder())
                    .await
                    .expect("bind the admin port");
                let addr = admin.local_addr().expect("admin address").to_string();
                tokio::spawn(admin.run());
                Some(addr)
            }
            None => None,
        };
        let workers: Vec<tokio::runtime::Runtime> = (0..workers)
            .map(|_| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a worker runtime")
            })
            .collect();
        let handles: Vec<_> = workers.iter().map(|w| w.handle().clone()).collect();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            proxy
                .run_on(&handles, async move {
                    let _ = stopped.await;
                })
                .await
        });
        TestProxy {
            addr,
            admin,
            stop: Some(stop),
            task: Some(task),
            workers,
        }
    }

    /// Starts a proxy with the default configuration.
    pub async fn default_for(backends: Vec<String>) -> TestProxy {
        TestProxy::start(backends, |_| {}).await
    }

    /// A `redis` crate connection to the proxy.
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        connect(&self.addr).await
    }

    /// Stops the proxy and waits for the drain.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Dropped inside the test's runtime, where a runtime may not block.
        for worker in self.workers.drain(..) {
            worker.shutdown_background();
        }
    }
}

/// The Prometheus exporter, installed once per test process (the
/// `metrics` facade has one recorder per process).
pub fn recorder() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| admin::install_recorder().ok()).clone()
}

/// `GET path` on `addr` over HTTP/1.1: the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

/// A `redis` crate connection to `addr`. The crate's default timeouts
/// (half a second per reply) are for production clients; tests that load
/// two shared cores with thousands of clients wait longer, and a real hang
/// still fails them.
pub async fn connect(addr: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("valid URL");
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(20)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect")
}

/// Runs one command given as strings and returns the reply value (errors
/// included, as values, so they can be compared too).
pub async fn run(connection: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query_async::<redis::Value>(connection).await {
        Ok(value) => value,
        Err(error) => redis::Value::SimpleString(format!(
            "error: {:?} {} {error}",
            error.kind(),
            error.detail().unwrap_or_default()
        )),
    }
}

/// A client that speaks RESP by hand: for exact frames, push messages and
/// subscriptions, where a client library would hide what the proxy sent.
pub struct RawClient {
    stream: tokio::net::TcpStream,
    buffer: bytes::BytesMut,
    decoder: resp::ReplyDecoder,
}

impl RawClient {
    /// Connects to `addr`.
    pub async fn connect(addr: &str) -> RawClient {
        RawClient {
            stream: tokio::net::TcpStream::connect(addr).await.expect("connect"),
            buffer: bytes::BytesMut::new(),
            decoder: resp::ReplyDecoder::new(resp::Limits::default()),
        }
    }

    /// Connects to `addr` and logs in as `user`.
    pub async fn login(addr: &str, user: &str, password: &str) -> RawClient {
        let mut client = RawClient::connect(addr).await;
        assert_eq!(show(&client.call(&["AUTH", user, password]).await), "OK");
        client
    }

    /// Sends one command.
    pub async fn send(&mut self, args: &[&str]) {
        use tokio::io::AsyncWriteExt;
        let mut out = bytes::BytesMut::new();
        resp::encode::encode_command(args, &mut out);
        self.stream.write_all(&out).await.expect("write");
    }

    /// The next frame, or `None` when none arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<resp::Frame> {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(raw) = self.decoder.decode(&mut self.buffer).expect("valid RESP") {
                return Some(resp::Frame::parse_complete(&raw).expect("one frame"));
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer)).await {
                Ok(Ok(0)) => panic!("the connection closed"),
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => panic!("read failed: {error}"),
                Err(_) => return None,
            }
        }
    }

    /// True when the proxy closes the connection within `wait` without
    /// sending anything more.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        matches!(
            tokio::time::timeout(wait, self.stream.read_buf(&mut self.buffer)).await,
            Ok(Ok(0))
        )
    }

    /// The next frame; fails the test after 10 s.
    pub async fn next(&mut self) -> resp::Frame {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("a reply within 10 s")
    }

    /// Sends a command and returns its reply.
    pub async fn call(&mut self, args: &[&str]) -> resp::Frame {
        self.send(args).await;
        self.next().await
    }
}

/// A frame as text for comparisons: bulk and simple strings as they are,
/// errors prefixed with `-`, aggregates bracketed.
pub fn show(frame: &resp::Frame) -> String {
    use resp::Frame;
    match frame {
        Frame::Simple(s) | Frame::Bulk(s) | Frame::Double(s) | Frame::BigNumber(s) => {
            String::from_utf8_lossy(s).into_owned()
        }
        Frame::Error(e) | Frame::BulkError(e) => format!("-{}", String::from_utf8_lossy(e)),
        Frame::Integer(n) => n.to_string(),
        Frame::Boolean(b) => b.to_string(),
        Frame::Null | Frame::NullArray => "(nil)".into(),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            let inner: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", inner.join(" "))
        }
        Frame::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", show(k), show(v)))
                .collect();
            format!("{{{}}}", inner.join(" "))
        }
        other => format!("{other:?}"),
    }
}

/// The value of `field` in `PROXY INFO` on `addr`.
pub fn proxy_info_field(addr: &str, field: &str) -> u64 {
    let info = test_util::command(addr, &["PROXY", "INFO"]).expect("PROXY INFO");
    let text = String::from_utf8_lossy(info.as_bytes().expect("text")).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("PROXY INFO has no {field}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Polls `field` of `PROXY INFO` until it equals `expected` (for up to 5
/// s: connections are released by background tasks); returns the last
/// value seen.
pub async fn settled_info_field(addr: &str, field: &str, expected: u64) -> u64 {
    let mut value = proxy_info_field(addr, field);
    for _ in 0..250 {
        if value == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        value = proxy_info_field(addr, field);
    }
    value
}

/// The index of the primary of `cluster` that serves `key` (the others
/// answer MOVED).
pub fn owner(cluster: &Cluster, key: &str) -> usize {
    cluster
        .primaries()
        .iter()
        .position(|node| !node.command(&["TYPE", key]).is_error())
        .expect("a primary serves every slot")
}

/// One key on each primary, named `prefix` and a number.
pub fn key_per_node(cluster: &Cluster, prefix: &str) -> Vec<String> {
    let mut keys: Vec<Option<String>> = vec![None; cluster.primaries().len()];
    for i in 0.. {
        let key = format!("{prefix}{i}");
        let node = owner(cluster, &key);
        keys[node].get_or_insert(key);
        if keys.iter().all(Option::is_some) {
            break;
        }
    }
    keys.into_iter().flatten().collect()
}

/// Clients blocked on `node` (`INFO clients`).
pub fn blocked_on(node: &Server) -> u64 {
    let info = node.command(&["INFO", "clients"]);
    let text = String::from_utf8_lossy(info.as_bytes().expect("text")).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("blocked_clients")
}

/// Waits until `count` clients are blocked on the nodes in all.
pub async fn until_blocked(cluster: &Cluster, count: u64) {
    for _ in 0..250 {
        if cluster.primaries().iter().map(blocked_on).sum::<u64>() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never {count} blocked clients on the nodes");
}

/// Every reply to `script`, sent in order on one connection in
/// `protocol` (2 or 3), exactly as decoded: a nil array and a nil string
/// differ.
pub async fn exact_replies(addr: &str, protocol: &str, script: &[&[&str]]) -> Vec<String> {
    let mut client = RawClient::connect(addr).await;
    assert!(!client.call(&["HELLO", protocol]).await.is_error());
    let mut out = Vec::new();
    for command in script {
        out.push(format!(
            "{} -> {:?}",
            command.join(" "),
            client.call(command).await
        ));
    }
    out
}

/// Runs `script` on `direct` and on `proxied`, in RESP2 and in RESP3, and
/// fails at the first reply that differs.
pub async fn assert_same_replies(direct: &str, proxied: &str, script: &[&[&str]]) {
    for protocol in ["2", "3"] {
        let expected = exact_replies(direct, protocol, script).await;
        let got = exact_replies(proxied, protocol, script).await;
        assert_eq!(got.len(), script.len());
        for (got, expected) in got.iter().zip(&expected) {
            assert_eq!(got, expected, "RESP{protocol}");
        }
    }
}

/// A user with password `pw`, of `tenant` (none: an operator).
pub fn user_of(name: &str, tenant: Option<&str>) -> proxy::config::UserConfig {
    proxy::config::UserConfig {
        name: name.into(),
        password: Some("pw".into()),
        tenant: tenant.map(Into::into),
        ..Default::default()
    }
}

/// Runs `redis-benchmark` against `addr` with `args`; returns its output
/// after checking that it succeeded and reported no error.
pub async fn redis_benchmark(addr: &str, args: &[&str]) -> String {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut command = std::process::Command::new("redis-benchmark");
    command.args(["-h", host, "-p", port]).args(args);
    let output = tokio::task::spawn_blocking(move || {
        command
            .output()
            .expect("redis-benchmark is installed (scripts/install-deps.sh)")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(!text.to_ascii_lowercase().contains("error"), "{text}");
    text
}

/// `examples/config/<name>`, parsed as the binary parses it: the tests
/// run the examples the README shows.
pub fn example_config(name: &str) -> ProxyConfig {
    use config::{Config, File, FileFormat};
    let path = format!("{}/examples/config/{name}", env!("CARGO_MANIFEST_DIR"));
    Config::builder()
        .add_source(File::new(&path, FileFormat::Toml))
        .build()
        .and_then(Config::try_deserialize)
        .unwrap_or_else(|error| panic!("{path} parses: {error}"))
}

/// `examples/config/tenants.toml`'s users and tenants in front of a
/// 3-primary cluster that sends every keyspace notification.
pub async fn start_tenants_example() -> (Cluster, TestProxy) {
    let cluster = Cluster::start_with(
        test_util::Flavor::Valkey,
        3,
        0,
        &[("notify-keyspace-events", "KEA")],
    );
    let example = example_config("tenants.toml");
    let proxy = TestProxy::start(cluster.addrs(), move |config| {
        config.users = example.users;
        config.tenants = example.tenants;
    })
    .await;
    (cluster, proxy)
}
