//! `valkey-proxy`: reads the configuration (TOML file, `VALKEY_PROXY_*`
//! environment variables, then command-line flags, each overriding the one
//! before), starts the runtime and serves until SIGTERM or Ctrl-C, then
//! drains. A bad configuration exits with code 64 and one line saying why.

/// The allocator: measured with callgrind and scripts/bench.sh, see docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod settings;

use clap::Parser;

/// Exit code for a configuration error (`EX_USAGE`).
const EXIT_BAD_CONFIG: i32 = 64;

fn main() {
    let cli = cli::Cli::parse();
    let config = match settings::load(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("valkey-proxy: bad configuration: {error}");
            std::process::exit(EXIT_BAD_CONFIG);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();

    // Measured with scripts/bench.sh: even for one thread the multi-thread
    // runtime (one worker) beats the current-thread one here, as its LIFO
    // slot runs a woken connection task right after the session that woke it.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.threads > 0 {
        runtime.worker_threads(config.threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("valkey-proxy: cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(serve(config));
    std::process::exit(code);
}

async fn serve(config: proxy::ProxyConfig) -> i32 {
    let listen = config.listen.clone();
    let proxy = match proxy::Proxy::bind(config).await {
        Ok(proxy) => proxy,
        Err(error) => {
            eprintln!("valkey-proxy: cannot listen on {listen}: {error}");
            return 1;
        }
    };
    match proxy.local_addr() {
        Ok(addr) => tracing::info!(%addr, "valkey-proxy listening"),
        Err(error) => tracing::warn!(%error, "listening on an unknown address"),
    }
    proxy.run(shutdown_signal()).await;
    tracing::info!("stopped");
    0
}

/// Completes on SIGTERM or Ctrl-C. SIGHUP is caught and logged so that it
/// does not kill the process: live reload is not implemented yet.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => tracing::warn!("SIGHUP: configuration reload is not implemented yet; restart to apply changes"),
        }
    }
}
