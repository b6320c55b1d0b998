//! `valkey-proxy`: reads the configuration (TOML file, `VALKEY_PROXY_*`
//! environment variables, then command-line flags, each overriding the one
//! before), starts the runtime and serves until SIGTERM or Ctrl-C, then
//! drains. A bad configuration exits with code 64 and one line saying why.

mod allocator;
mod cli;
mod logs;
mod reloader;
mod settings;

use std::sync::Arc;

use clap::Parser;

/// Exit code for a configuration error (`EX_USAGE`).
const EXIT_BAD_CONFIG: i32 = 64;

fn main() {
    let cli = cli::Cli::parse();
    let mut config = match settings::load(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("valkey-proxy: bad configuration: {error}");
            std::process::exit(EXIT_BAD_CONFIG);
        }
    };
    let logs = Arc::new(logs::Logs::start(&cli, config.log.as_deref()));
    settings::resolve_threads(&mut config);
    let runtimes = match start_runtimes(config.threads) {
        Ok(runtimes) => runtimes,
        Err(error) => {
            eprintln!("valkey-proxy: cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    for runtime in &runtimes {
        runtime.spawn(allocator::nudge_after_give_backs());
    }
    // With one thread, everything runs on it; with more, the clients are
    // handed to them in turn (see `proxy::Proxy::run_on`).
    let workers: Vec<tokio::runtime::Handle> = match runtimes.len() {
        1 => Vec::new(),
        _ => runtimes.iter().map(|runtime| runtime.handle().clone()).collect(),
    };
    let reloader = reloader::FileReloader { cli, logs };
    let code = runtimes[0].block_on(serve(config, workers, reloader));
    std::process::exit(code);
}

/// One runtime per worker thread, each with its own event loop: no task
/// ever moves between threads, and a client's requests never wake a task
/// on another one. Measured (docs/PERFORMANCE.md): with two threads,
/// tokio's own runtime of two workers served 17% fewer pipelined GETs than
/// this. And even for one thread the multi-thread runtime (one worker)
/// beats the current-thread one, as its LIFO slot runs a woken connection
/// task right after the session that woke it.
fn start_runtimes(threads: usize) -> std::io::Result<Vec<tokio::runtime::Runtime>> {
    (0..threads.max(1))
        .map(|index| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(format!("valkey-proxy-{index}"))
                .enable_all()
                .build()
        })
        .collect()
}

async fn serve(
    config: proxy::ProxyConfig,
    workers: Vec<tokio::runtime::Handle>,
    reloader: reloader::FileReloader,
) -> i32 {
    let listen = config.listen.clone();
    let admin_listen = config.admin_listen.clone();
    // Installed before the proxy starts, so that what it records is kept.
    let recorded = match &admin_listen {
        Some(_) => match admin::install_recorder() {
            Ok(handle) => Some(handle),
            Err(error) => {
                eprintln!("valkey-proxy: cannot install the metrics exporter: {error}");
                return 1;
            }
        },
        None => None,
    };
    let proxy = match proxy::Proxy::bind(config).await {
        Ok(proxy) => proxy.reloader(reloader),
        Err(error) => {
            eprintln!("valkey-proxy: cannot start on {listen}: {error}");
            return 1;
        }
    };
    if let Some(addr) = admin_listen {
        match admin::Admin::bind(&addr, proxy.shared().clone(), recorded).await {
            Ok(admin) => {
                match admin.local_addr() {
                    Ok(addr) => tracing::info!(%addr, "admin port listening"),
                    Err(error) => tracing::warn!(%error, "admin port on an unknown address"),
                }
                tokio::spawn(admin.run());
            }
            Err(error) => {
                eprintln!("valkey-proxy: cannot start the admin port on {addr}: {error}");
                return 1;
            }
        }
    }
    let audit = proxy.shared().audit.clone();
    if let Some(audit) = audit.clone() {
        tokio::spawn(reopen_on_sigusr1(audit));
    }
    match proxy.local_addr() {
        Ok(addr) => tracing::info!(%addr, "valkey-proxy listening"),
        Err(error) => tracing::warn!(%error, "listening on an unknown address"),
    }
    let shared = proxy.shared().clone();
    proxy.run_on(&workers, shutdown_signal(shared)).await;
    if let Some(audit) = audit {
        // What is queued is written and made durable before the exit.
        audit.close();
    }
    tracing::info!("stopped");
    0
}

/// Completes on SIGTERM or Ctrl-C. SIGHUP reads the configuration again
/// and applies what can change live (`proxy::reload`).
async fn shutdown_signal(shared: Arc<proxy::context::Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reading the configuration again");
                // The outcome is logged by the reload itself.
                let _ = proxy::reload::reload(&shared, false);
            }
        }
    }
}

/// The audit log's file sinks open their file again on each SIGUSR1 (after
/// an outside logrotate moved it, with `create`).
async fn reopen_on_sigusr1(audit: Arc<audit::Audit>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        return;
    };
    while usr1.recv().await.is_some() {
        tracing::info!("SIGUSR1: reopening the audit log's files");
        audit.reopen();
    }
}
