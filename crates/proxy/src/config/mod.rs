//! [`ProxyConfig`]: everything an operator sets, with defaults that work for
//! a proxy in front of a local server.

use std::net::SocketAddr;

use serde::Deserialize;

/// The backend mode the operator asks for.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModeSetting {
    /// Find out from the backend.
    #[default]
    Auto,
    /// One server.
    Standalone,
    /// A primary with replicas.
    Replicated,
    /// A cluster.
    Cluster,
}

/// Where reads go.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReadPolicySetting {
    /// Primaries only.
    #[default]
    Primary,
    /// Replicas for read-only commands when a shard has one.
    PreferReplica,
}

pub use crate::users::UserConfig;

/// One `[[backend_groups]]` entry: another backend, which tenants with
/// `isolation = "dedicated"` (or any tenant naming it in `backend`) use
/// instead of `backends`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackendGroupConfig {
    /// Its name, which tenants give as their `backend`.
    pub name: String,
    /// Its seed nodes, `host:port`.
    pub seeds: Vec<String>,
    /// Its mode.
    #[serde(default)]
    pub mode: ModeSetting,
    /// The user the proxy logs in as on it; `backend_username` when not
    /// given. A prefix or database tenant whose group has a user of its
    /// own may run scripts: the server, whose ACL confines that user to
    /// the tenant's keys and channels, checks the key names a script
    /// builds, which the proxy cannot see.
    #[serde(default)]
    pub username: Option<String>,
    /// That user's password; `backend_password` when not given.
    #[serde(default)]
    pub password: Option<String>,
}

/// Most worker threads: each is a runtime with its own event loop and its
/// own shared connections to every node.
pub const MAX_THREADS: usize = 1024;

/// The proxy's configuration. Field names are the TOML keys.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Address clients connect to.
    pub listen: String,
    /// The admin HTTP port (`/metrics`, `/healthz`, `/readyz`, `/stats`):
    /// off unless set. The binary serves it; an embedder serves it with
    /// the `valkey-proxy-admin` crate.
    pub admin_listen: Option<String>,
    /// Log filter (tracing syntax: `info`, `debug`, `valkey_proxy=trace`);
    /// the binary's `--log` and `RUST_LOG` win. Changes on reload.
    pub log: Option<String>,
    /// Requests slower than this through the proxy, in microseconds, go in
    /// its slow log (`SLOWLOG`, [`crate::slowlog`]); negative: none.
    pub slowlog_log_slower_than: i64,
    /// Entries the slow log keeps.
    pub slowlog_max_len: usize,
    /// Seed nodes of the backend, `host:port` (the default backend group).
    pub backends: Vec<String>,
    /// Other backends, for tenants of their own ([`BackendGroupConfig`]).
    pub backend_groups: Vec<BackendGroupConfig>,
    /// Backend mode.
    pub mode: ModeSetting,
    /// Worker threads, each with its own runtime and its own shared backend
    /// connections ([`crate::Proxy::run_on`]); the pool keeps a set of
    /// connections for each. 0: the binary starts one per core; an embedder
    /// calling [`crate::Proxy::run`] gets one set.
    pub threads: usize,
    /// Username the proxy uses on backend connections.
    pub backend_username: Option<String>,
    /// Password the proxy uses on backend connections.
    pub backend_password: Option<String>,
    /// Users clients must authenticate as; empty means no authentication.
    pub users: Vec<UserConfig>,
    /// Tenants ([`crate::tenants`]), `[[tenants]]` in TOML.
    pub tenants: Vec<crate::tenants::TenantConfig>,
    /// More addresses, each for one tenant ([`crate::listeners`]),
    /// `[[listeners]]` in TOML.
    pub listeners: Vec<crate::listeners::ListenerConfig>,
    /// The audit log (`[audit]`, [`audit::AuditConfig`]): on when it has
    /// sinks.
    pub audit: audit::AuditConfig,
    /// Shared connections per backend node (per protocol and database), for
    /// each worker thread.
    pub connections_per_node: usize,
    /// Backend connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Backend request timeout, milliseconds: how long a shared backend
    /// connection may owe replies without a byte from its node. Unset:
    /// half the cluster's `cluster-node-timeout` (10 s when the backend
    /// does not say; [`crate::backend_watch`]); 0 waits for ever.
    pub request_timeout_ms: Option<u64>,
    /// How long a request may keep retrying through failover and
    /// TRYAGAIN-class replies, milliseconds.
    pub retry_budget_ms: u64,
    /// MOVED/ASK hops followed per request.
    pub max_redirects: u32,
    /// Where reads go.
    pub read_policy: ReadPolicySetting,
    /// Topology refresh period, milliseconds.
    pub refresh_interval_ms: u64,
    /// Shortest time between two topology fetches, milliseconds.
    pub refresh_min_interval_ms: u64,
    /// Most clients connected at once; more are refused with an error.
    pub max_clients: usize,
    /// Most requests one client may have in flight before the proxy stops
    /// reading from it (backpressure).
    pub max_pipeline: usize,
    /// Close clients idle this long, seconds; 0 never does (as Valkey's
    /// `timeout 0`).
    pub client_idle_timeout_secs: u64,
    /// Close a client whose replies waiting to be written exceed this many
    /// bytes (Valkey's `client-output-buffer-limit` hard limit); 0 never
    /// does. Default 256 MiB, Valkey's hard limit for replicas (the class
    /// that reads the most).
    pub client_output_buffer_limit: usize,
    /// Close a client whose replies waiting to be written stay over this
    /// many bytes for `client_output_buffer_soft_seconds` (Valkey's soft
    /// limit); 0 never does. Default 64 MiB.
    pub client_output_buffer_soft_limit: usize,
    /// How long a client may stay over the soft limit, seconds. Default 60.
    pub client_output_buffer_soft_seconds: u64,
    /// What every client's buffers (replies not yet written, requests not
    /// yet whole) may hold together, bytes; past it the client holding
    /// the most is closed (Valkey's `maxmemory-clients`, on by default
    /// here). 0: no limit. Default 512 MiB.
    pub maxmemory_clients: usize,
    /// What the proxy may hold resident (its RSS), bytes: once it comes
    /// within a sixteenth of it while the clients' buffers hold at least a
    /// quarter of it, the client holding the most is closed (evicted), so
    /// that clients that do not read cannot take the machine's memory. 0:
    /// no limit. Default 512 MiB.
    pub maxmemory: usize,
    /// Largest bulk argument a client may send, bytes.
    pub max_bulk_len: i64,
    /// Most bytes one client may buffer for an incomplete request.
    pub query_buffer_limit: usize,
    /// Databases (0 included) the proxy emulates by key namespace on a
    /// cluster that has no numbered databases (`cluster-databases` 1, or
    /// Redis). Ignored on backends with real databases.
    pub emulated_databases: u32,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1:7777".into(),
            admin_listen: None,
            log: None,
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            backends: Vec::new(),
            backend_groups: Vec::new(),
            mode: ModeSetting::Auto,
            threads: 0,
            backend_username: None,
            backend_password: None,
            users: Vec::new(),
            tenants: Vec::new(),
            listeners: Vec::new(),
            audit: audit::AuditConfig::default(),
            connections_per_node: 2,
            connect_timeout_ms: 2000,
            request_timeout_ms: None,
            retry_budget_ms: 3000,
            max_redirects: 5,
            read_policy: ReadPolicySetting::Primary,
            refresh_interval_ms: 5000,
            refresh_min_interval_ms: 100,
            max_clients: 10_000,
            max_pipeline: 1024,
            client_idle_timeout_secs: 0,
            client_output_buffer_limit: 256 * 1024 * 1024,
            client_output_buffer_soft_limit: 64 * 1024 * 1024,
            client_output_buffer_soft_seconds: 60,
            maxmemory_clients: 512 * 1024 * 1024,
            maxmemory: 512 * 1024 * 1024,
            max_bulk_len: 512 * 1024 * 1024,
            query_buffer_limit: 1024 * 1024 * 1024,
            emulated_databases: 16,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No backend address.
    #[error("no backend configured: give at least one `backends` entry or --backend HOST:PORT")]
    NoBackend,
    /// An address that does not parse.
    #[error("invalid {what} address {value:?}: expected HOST:PORT")]
    BadAddress {
        /// Which setting.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A number out of range.
    #[error("{name} must be {rule}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// What it must be.
        rule: &'static str,
    },
    /// A user without a usable password.
    #[error("{0}")]
    User(String),
    /// Tenants that cannot be kept apart, or a user of an unknown one.
    #[error("tenants: {0}")]
    Tenants(String),
    /// Listeners that clash, or name users of other tenants.
    #[error("listeners: {0}")]
    Listeners(String),
    /// An audit filter or setting that does not hold.
    #[error("audit: {0}")]
    Audit(String),
}

impl ProxyConfig {
    /// Checks the configuration as a whole.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::BadAddress {
                what: "listen",
                value: self.listen.clone(),
            });
        }
        if let Some(admin) = self
            .admin_listen
            .as_ref()
            .filter(|addr| addr.parse::<SocketAddr>().is_err())
        {
            return Err(ConfigError::BadAddress {
                what: "admin_listen",
                value: admin.clone(),
            });
        }
        if self.backends.is_empty() {
            return Err(ConfigError::NoBackend);
        }
        let group_seeds = self.backend_groups.iter().flat_map(|group| &group.seeds);
        for backend in self.backends.iter().chain(group_seeds) {
            let valid = backend
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(ConfigError::BadAddress {
                    what: "backend",
                    value: backend.clone(),
                });
            }
        }
        let positive = [
            ("connections_per_node", self.connections_per_node as u64),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("max_clients", self.max_clients as u64),
            ("emulated_databases", u64::from(self.emulated_databases)),
            ("max_pipeline", self.max_pipeline as u64),
            ("refresh_interval_ms", self.refresh_interval_ms),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::OutOfRange {
                    name,
                    rule: "greater than 0",
                });
            }
        }
        if self.max_bulk_len <= 0 {
            return Err(ConfigError::OutOfRange {
                name: "max_bulk_len",
                rule: "greater than 0",
            });
        }
        if !self.users.is_empty() {
            let table = router::CommandTable::builtin();
            for user in &self.users {
                user.check(&table)?;
            }
            crate::users::check_password_only(&self.users, &table)?;
        }
        let user_tenants: Vec<Option<&str>> = self.users.iter().map(|user| user.tenant.as_deref()).collect();
        let listener_tenants = self
            .listeners
            .iter()
            .map(|listener| Some(listener.tenant.as_str()));
        let named: Vec<Option<&str>> = user_tenants.into_iter().chain(listener_tenants).collect();
        crate::tenants::check(&self.tenants, &named).map_err(ConfigError::Tenants)?;
        self.check_groups()?;
        crate::listeners::check(&self.listeners, &self.listen, &self.users)?;
        self.audit
            .check(&router::CommandTable::builtin())
            .map_err(ConfigError::Audit)?;
        if self.threads > MAX_THREADS {
            return Err(ConfigError::OutOfRange {
                name: "threads",
                rule: "at most 1024",
            });
        }
        Ok(())
    }

    /// Backend groups with unique names and seeds, and tenants that name
    /// groups that exist.
    fn check_groups(&self) -> Result<(), ConfigError> {
        let bad = |why: String| Err(ConfigError::Tenants(why));
        for (i, group) in self.backend_groups.iter().enumerate() {
            if group.name == "default"
                || self.backend_groups[..i]
                    .iter()
                    .any(|other| other.name == group.name)
            {
                return bad(format!(
                    "backend group {:?} is configured twice (or is \"default\")",
                    group.name
                ));
            }
            if group.seeds.is_empty() {
                return bad(format!("backend group {:?} has no seeds", group.name));
            }
        }
        for tenant in &self.tenants {
            match tenant.backend.as_deref() {
                None | Some("default") => {}
                Some(name) if self.backend_groups.iter().any(|group| group.name == name) => {}
                Some(name) => {
                    return bad(format!(
                        "tenant {:?} names backend group {name:?}, which is not configured",
                        tenant.name
                    ))
                }
            }
        }
        Ok(())
    }

    /// The backend group of tenant configuration `tenant`: 0 for the
    /// default, `i + 1` for `backend_groups[i]`.
    pub fn group_of(&self, tenant: &crate::tenants::TenantConfig) -> usize {
        tenant
            .backend
            .as_deref()
            .and_then(|name| self.backend_groups.iter().position(|group| group.name == name))
            .map_or(0, |index| index + 1)
    }

    /// True when the backend group of `tenant` has a backend user of its
    /// own, which the server confines to the tenant's keys (or the tenant
    /// owns the group): the server then checks what its scripts touch.
    pub fn scripts_confined(&self, tenant: &crate::tenants::TenantConfig) -> bool {
        if tenant.isolation == crate::tenants::Isolation::Dedicated {
            return true;
        }
        let group = self
            .group_of(tenant)
            .checked_sub(1)
            .map(|index| &self.backend_groups[index]);
        group.is_some_and(|group| group.username.is_some() && group.username != self.backend_username)
    }

    /// True when clients must authenticate.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }
}

#[cfg(test)]
mod tests;
