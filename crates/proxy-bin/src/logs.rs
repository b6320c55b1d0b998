//! Logging: text for people (colours only when stderr is a terminal, so a
//! log file gets no escape codes) or one JSON object per line, through a
//! filter a reload may change.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::cli::{Cli, LogFormat};

/// The filter used when nothing names one.
const DEFAULT_FILTER: &str = "info";

/// The running log filter.
pub(crate) struct Logs {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` or `--log` named the filter: they win over the file's.
    pinned: bool,
}

impl Logs {
    /// Starts logging to stderr with the filter `RUST_LOG`, `--log`, the
    /// file's `log` or `info` names, the first that is set.
    pub(crate) fn start(cli: &Cli, file_filter: Option<&str>) -> Logs {
        let from_env = std::env::var("RUST_LOG").ok().filter(|filter| !filter.is_empty());
        let pinned = from_env.is_some() || cli.log.is_some();
        let named = from_env
            .or_else(|| cli.log.clone())
            .or_else(|| file_filter.map(str::to_string))
            .unwrap_or_else(|| DEFAULT_FILTER.to_string());
        let (filter, handle) = reload::Layer::new(EnvFilter::new(named));
        let registry = tracing_subscriber::registry().with(filter);
        let layer = fmt::layer().with_target(false).with_writer(std::io::stderr);
        match cli.log_format {
            LogFormat::Text => registry
                .with(layer.with_ansi(std::io::stderr().is_terminal()))
                .init(),
            LogFormat::Json => registry.with(layer.json().with_current_span(false)).init(),
        }
        Logs { handle, pinned }
    }

    /// Follows the file's `log` after a reload, unless `RUST_LOG` or
    /// `--log` named the filter.
    pub(crate) fn follow(&self, file_filter: Option<&str>) {
        if self.pinned {
            return;
        }
        let filter = EnvFilter::new(file_filter.unwrap_or(DEFAULT_FILTER));
        if let Err(error) = self.handle.reload(filter) {
            tracing::warn!(%error, "could not change the log filter");
        }
    }
}
