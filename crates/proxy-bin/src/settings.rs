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
    /// A value in the file is not of its setting's type.
    #[error("{0}")]
    FileType(String),
    /// The file's `log` is not a log filter.
    #[error("invalid log filter {filter:?}: {why}")]
    LogFilter { filter: String, why: String },
}

/// Reads every source and validates the result.
pub(crate) fn load(cli: &Cli) -> Result<ProxyConfig, SettingsError> {
    let mut builder = Config::builder();
    if let Some(path) = &cli.config {
        check_types(path)?;
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

/// Reads the file on its own as strictly typed TOML: the layered read
/// converts what it can (`1.5` into 2, `"100"` into 100), which a file
/// must not rely on, so a value of the wrong type is refused, with its
/// line. An unreadable or malformed file is left to the layered read,
/// which says so.
fn check_types(path: &std::path::Path) -> Result<(), SettingsError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    if text.parse::<toml::Table>().is_err() {
        return Ok(());
    }
    let Err(error) = toml::from_str::<ProxyConfig>(&text) else {
        return Ok(());
    };
    let at = error.span().map_or(0, |span| span.start);
    let line = text[..at.min(text.len())].matches('\n').count() + 1;
    let shown = text.lines().nth(line - 1).unwrap_or_default().trim();
    Err(SettingsError::FileType(format!(
        "{}: line {line}, `{shown}`: {}",
        path.display(),
        error.message()
    )))
}

/// Threads 0 means one per core (at most `MAX_THREADS`).
pub(crate) fn resolve_threads(config: &mut ProxyConfig) {
    if config.threads == 0 {
        config.threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(proxy::config::MAX_THREADS);
    }
}
