//! Shared helpers for the end-to-end tests: a proxy in this process on a
//! free port, and clients for it.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use proxy::{Proxy, ProxyConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A proxy running in the test's runtime. Stopped (drained) when dropped.
pub struct TestProxy {
    /// `127.0.0.1:<port>` of the proxy.
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestProxy {
    /// Starts a proxy in front of `backends`, after `tweak` adjusts its
    /// configuration.
    pub async fn start(backends: Vec<String>, tweak: impl FnOnce(&mut ProxyConfig)) -> TestProxy {
        let mut config = ProxyConfig {
            listen: "127.0.0.1:0".into(),
            backends,
            ..ProxyConfig::default()
        };
        tweak(&mut config);
        config.validate().expect("test configuration is valid");
        let proxy = Proxy::bind(config).await.expect("bind the proxy");
        let addr = proxy.local_addr().expect("local address").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(proxy.run(async move {
            let _ = stopped.await;
        }));
        TestProxy {
            addr,
            stop: Some(stop),
            task: Some(task),
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
    }
}

/// A `redis` crate connection to `addr`.
pub async fn connect(addr: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("valid URL");
    client.get_multiplexed_async_connection().await.expect("connect")
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
