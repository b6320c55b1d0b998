//! Command-line flags. Each overrides the same setting from the file and
//! the environment.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// A Valkey proxy: one address in front of a server, a primary with
/// replicas, or a cluster.
#[derive(Clone, Debug, Parser)]
#[command(name = "valkey-proxy", version, about, long_about = None)]
pub(crate) struct Cli {
    /// TOML configuration file. Keys are the field names of `ProxyConfig`
    /// (listen, backends, mode, threads, users, ...); see the README.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Address clients connect to [default: 127.0.0.1:7777].
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) listen: Option<String>,

    /// A backend seed node. Repeat for several; any node of a cluster will
    /// do, the rest is discovered.
    #[arg(long = "backend", value_name = "HOST:PORT")]
    pub(crate) backends: Vec<String>,

    /// What the backend is: found out from it (auto), or insisted on.
    #[arg(long, value_enum)]
    pub(crate) mode: Option<ModeArg>,

    /// Worker threads, each with its own event loop and backend connections
    /// [default: one per core].
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,

    /// The admin HTTP port: /metrics (Prometheus), /healthz, /readyz,
    /// /stats (JSON) [default: off].
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) admin_listen: Option<String>,

    /// Log filter (tracing syntax: info, debug, valkey_proxy=trace, ...)
    /// [default: the file's `log`, else info]. RUST_LOG wins when set.
    #[arg(long, value_name = "FILTER")]
    pub(crate) log: Option<String>,

    /// How log lines look: text for people (colours only on a terminal),
    /// or one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
}

/// `--log-format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// `2026-12-05T11:14:11Z  INFO valkey-proxy listening addr=...`.
    Text,
    /// `{"timestamp":"...","level":"INFO","fields":{"message":"...",...}}`.
    Json,
}

/// `--mode` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ModeArg {
    /// Ask the backend (INFO cluster, ROLE).
    Auto,
    /// One server.
    Standalone,
    /// A primary with replicas.
    Replicated,
    /// A Valkey cluster.
    Cluster,
}
