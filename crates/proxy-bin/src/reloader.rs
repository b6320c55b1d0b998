//! What SIGHUP and `PROXY CONFIG RELOAD` read: the same file, environment
//! and flags as at start ([`crate::settings`]).

use std::sync::Arc;

use proxy::reload::Reloader;
use proxy::ProxyConfig;

use crate::cli::Cli;
use crate::logs::Logs;

/// Reads the configuration as `main` did.
pub(crate) struct FileReloader {
    pub(crate) cli: Cli,
    pub(crate) logs: Arc<Logs>,
}

impl Reloader for FileReloader {
    fn load(&self) -> Result<ProxyConfig, String> {
        let mut config = crate::settings::load(&self.cli).map_err(|error| error.to_string())?;
        crate::settings::resolve_threads(&mut config);
        Ok(config)
    }

    fn applied(&self, config: &ProxyConfig) {
        self.logs.follow(config.log.as_deref());
    }
}
