//! A baseline for the end-to-end benchmark, not a proxy: a relay that gives
//! each client its own backend connection and copies bytes both ways,
//! doing no work on them (no parsing, no routing, no statistics).
//!
//! What it reaches against a direct connection is what one TCP hop costs
//! on the machine, with nothing of valkey-proxy's own work in it.
//! `scripts/bench.sh --relay` measures it in the same rounds as the proxy
//! (docs/PERFORMANCE.md, "A relay that does no work").
//!
//! ```text
//! cargo run --release -p valkey-proxy-bin --example byte_relay -- 127.0.0.1:7778 127.0.0.1:6379
//! ```
//!
//! It runs on one worker thread, as the proxy does in the benchmark.

use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(backend)) = (args.next(), args.next()) else {
        eprintln!("usage: byte_relay LISTEN_ADDR BACKEND_ADDR");
        std::process::exit(64);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (client, _) = listener.accept().await?;
            let backend = backend.clone();
            tokio::spawn(async move {
                if let Err(error) = relay(client, &backend).await {
                    eprintln!("relay: {error}");
                }
            });
        }
    })
}

/// Copies bytes between `client` and a new connection to `backend` until
/// either side closes.
async fn relay(mut client: TcpStream, backend: &str) -> std::io::Result<()> {
    let mut server = TcpStream::connect(backend).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
