//! Loading the configuration: defaults, then the TOML file, then
//! `VALKEY_PROXY_*` environment variables, then flags.

use config::{Config, Environment, File, FileFormat};
use proxy::config::ModeSetting;
use proxy::ProxyConfig;

use crate::cli::{Cli, ModeArg};

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    /// The file or the environment could not be read or parsed.
    #[error(transparent)]
    Read(#[from] config::ConfigError),
    /// The settings do not make a working proxy.
    #[error(transparent)]
    Invalid(#[from] proxy::config::ConfigError),
    /// The file's `log` is not a log filter.
    #[error("invalid log filter {filter:?}: {why}")]
    LogFilter { filter: String, why: String },
}

/// Reads every source and validates the result.
pub(crate) fn load(cli: &Cli) -> Result<ProxyConfig, SettingsError> {
    let mut builder = Config::builder();
    if let Some(path) = &cli.config {
        builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml).required(true));
    }
    builder = builder.add_source(
        Environment::with_prefix("VALKEY_PROXY")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("backends"),
    );
    let mut config: ProxyConfig = builder.build()?.try_deserialize()?;
    if let Some(listen) = &cli.listen {
        config.listen = listen.clone();
    }
    if !cli.backends.is_empty() {
        config.backends = cli.backends.clone();
    }
    if let Some(mode) = cli.mode {
        config.mode = match mode {
            ModeArg::Auto => ModeSetting::Auto,
            ModeArg::Standalone => ModeSetting::Standalone,
            ModeArg::Replicated => ModeSetting::Replicated,
            ModeArg::Cluster => ModeSetting::Cluster,
        };
    }
    if let Some(admin) = &cli.admin_listen {
        config.admin_listen = Some(admin.clone());
    }
    if let Some(threads) = cli.threads {
        config.threads = threads;
    }
    config.validate()?;
    if let Some(filter) = &config.log {
        if let Err(why) = tracing_subscriber::EnvFilter::try_new(filter) {
            return Err(SettingsError::LogFilter {
                filter: filter.clone(),
                why: why.to_string(),
            });
        }
    }
    Ok(config)
}

/// Threads 0 means one per core (at most `MAX_THREADS`).
pub(crate) fn resolve_threads(config: &mut ProxyConfig) {
    if config.threads == 0 {
        config.threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(proxy::config::MAX_THREADS);
    }
}
