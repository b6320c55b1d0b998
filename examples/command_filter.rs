//! Embedding valkey-proxy with a layer of your own: a command filter that
//! refuses some commands (by default FLUSHALL, FLUSHDB and KEYS; any list
//! after the two addresses) before they reach the backend, then serves like
//! the bundled binary.
//!
//! ```text
//! cargo run --example command_filter -- 127.0.0.1:6379 127.0.0.1:7777
//! redis-cli -p 7777 flushall   # (error) ERR flushall is disabled on this proxy
//! cargo run --example command_filter -- 127.0.0.1:6379 127.0.0.1:7777 eval evalsha fcall
//! ```
//!
//! The layer sees every command a client sends, whatever state the client
//! is in: pipelined, queued in MULTI (a refusal there makes EXEC answer
//! EXECABORT), in subscribe mode, or answered by the proxy itself (PING,
//! CLIENT, ...). Those last two kinds come with
//! [`router::Purpose::Admit`]: the layer refuses or lets through as for any
//! command, and the proxy carries out what it lets through.

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{self, Either, Ready};
use resp::Frame;
use router::{Command, Reply};
use tower::{Layer, Service};

/// Refuses the commands in its deny list.
#[derive(Clone, Debug)]
struct DenyLayer {
    denied: Arc<HashSet<String>>,
}

impl DenyLayer {
    fn new(commands: &[&str]) -> Self {
        DenyLayer {
            denied: Arc::new(commands.iter().map(|c| c.to_ascii_lowercase()).collect()),
        }
    }
}

impl<S> Layer<S> for DenyLayer {
    type Service = Deny<S>;

    fn layer(&self, inner: S) -> Deny<S> {
        Deny {
            inner,
            denied: self.denied.clone(),
        }
    }
}

/// The service [`DenyLayer`] makes. Like every layer of the stack it is
/// always ready and cheap to clone.
#[derive(Clone, Debug)]
struct Deny<S> {
    inner: S,
    denied: Arc<HashSet<String>>,
}

impl<S> Service<Command> for Deny<S>
where
    S: Service<Command, Response = Reply>,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = Either<Ready<Result<Reply, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, command: Command) -> Self::Future {
        let name = String::from_utf8_lossy(command.request.name()).to_ascii_lowercase();
        if self.denied.contains(&name) {
            let refusal = Frame::error(format!("ERR {name} is disabled on this proxy"));
            return Either::Left(future::ready(Ok(Reply::Frame(refusal))));
        }
        Either::Right(self.inner.call(command))
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "127.0.0.1:6379".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:7777".into());
    let mut denied: Vec<String> = args.collect();
    if denied.is_empty() {
        denied = vec!["flushall".into(), "flushdb".into(), "keys".into()];
    }
    let denied: Vec<&str> = denied.iter().map(String::as_str).collect();
    let config = proxy::ProxyConfig {
        listen,
        backends: vec![backend],
        ..proxy::ProxyConfig::default()
    };
    let proxy = proxy::Proxy::bind(config).await?.layer(DenyLayer::new(&denied));
    println!("listening on {}", proxy.local_addr()?);
    proxy
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
