//! Assembling the stack: discovery, the merged command table, the pool, and
//! the services `Stats<Namespace<FanOut<Router>>>`, outermost first, and
//! the gate `Stats<AdmitAll>` made of the same layers ([`crate::gate`]).

use std::sync::Arc;
use std::time::Duration;

use aggregate::FanOutLayer;
use middleware::{NamespaceLayer, StatsLayer, StatsRegistry};
use pool::{Handshake, Pool, PoolConfig};
use router::{CommandTable, Router};
use topology::{DiscoveryConfig, Mode, Probe, RefreshConfig, TcpProbe, TopologyHandle};
use tower::{Layer, ServiceBuilder};

use crate::config::{BackendGroupConfig, ModeSetting, ProxyConfig};
use crate::gate::AdmitAll;

/// The assembled service every session sends its commands to.
pub type Core = middleware::Stats<BelowGate>;

/// The stack below the gate's layers: what carries commands out.
pub type BelowGate = middleware::Namespace<aggregate::FanOut<Router>>;

/// The gate every session asks about the commands it carries out itself:
/// the same layers as [`Core`], over [`AdmitAll`].
pub type GateCore = middleware::Stats<AdmitAll>;

/// The stack and the handles the proxy's own commands read.
#[derive(Clone, Debug)]
pub struct Stack {
    /// The service stack.
    pub service: Core,
    /// The gate, over the same layers.
    pub gate: GateCore,
    /// The stack below the gate, for the session's own commands that ask
    /// the backend ([`crate::door::run`]).
    pub core: BelowGate,
    /// The router (its table, topology and pool).
    pub router: Router,
    /// Per-command statistics.
    pub stats: StatsRegistry,
    /// What the backend says it is (`valkey_version` or `redis_version`).
    pub backend_version: String,
    /// `request_timeout_ms` for this backend's pool
    /// ([`crate::backend_watch`]).
    pub request_timeout: Arc<crate::backend_watch::TimeoutSetting>,
}

/// How long start-up waits for the backend before serving anyway (clients
/// then get an error until discovery succeeds in the background).
const STARTUP_DISCOVERY: Duration = Duration::from_secs(5);

/// Discovers the backend, merges the live command table into the built-in
/// one, and assembles the stack. A backend that is down at start-up does
/// not stop the proxy: discovery keeps retrying in the background.
pub async fn build(config: &ProxyConfig) -> Stack {
    let default = BackendGroupConfig {
        name: "default".into(),
        seeds: config.backends.clone(),
        mode: config.mode,
        username: None,
        password: None,
    };
    build_for(config, &default, None).await
}

/// The stack of a `[[backend_groups]]` entry: its own topology, pool and
/// router, with the default stack's command table and statistics (so that
/// `PROXY STATS` counts every group's commands together).
pub async fn build_group(config: &ProxyConfig, group: &BackendGroupConfig, default: &Stack) -> Stack {
    build_for(config, group, Some(default)).await
}

/// The stack of `group`, logging in as its user (the proxy's
/// `backend_username` when it names none).
async fn build_for(config: &ProxyConfig, group: &BackendGroupConfig, default: Option<&Stack>) -> Stack {
    let (username, password) = match &group.username {
        Some(username) => (Some(username.clone()), group.password.clone()),
        None => (
            config.backend_username.clone(),
            group.password.clone().or_else(|| config.backend_password.clone()),
        ),
    };
    let probe = TcpProbe {
        username: username.clone(),
        password: password.clone(),
        timeout: Duration::from_millis(config.connect_timeout_ms),
    };
    let discovery = DiscoveryConfig {
        mode: match group.mode {
            ModeSetting::Auto => None,
            ModeSetting::Standalone => Some(Mode::Standalone),
            ModeSetting::Replicated => Some(Mode::Replicated),
            ModeSetting::Cluster => Some(Mode::Cluster),
        },
        seeds: group.seeds.clone(),
    };
    let refresh = RefreshConfig {
        interval: Duration::from_millis(config.refresh_interval_ms),
        min_interval: Duration::from_millis(config.refresh_min_interval_ms),
    };
    let probe: Arc<dyn Probe> = Arc::new(probe);
    let topology = TopologyHandle::new(discovery, probe.clone(), refresh);
    match tokio::time::timeout(STARTUP_DISCOVERY, topology.refresh_now()).await {
        Ok(Ok(found)) => {
            tracing::info!(mode = %found.mode(), shards = found.shards().len(), "backend discovered")
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "backend not reachable at start-up; retrying in the background")
        }
        Err(_) => tracing::warn!("backend discovery is slow; retrying in the background"),
    }
    topology.spawn_refresher();

    let mut table = match default {
        Some(default) => (**default.router.table()).clone(),
        None => CommandTable::builtin(),
    };
    let mut backend_version = String::from("unknown");
    if let Some(seed) = topology.current().shards().first().map(|s| s.primary.to_string()) {
        let reply = match default {
            // One table for every group: the default backend's.
            Some(_) => None,
            None => probe.query(&seed, &["COMMAND"]).await.ok(),
        };
        if let Some(reply) = reply {
            let known: Vec<_> = router::command::parse::command_info(&reply)
                .into_iter()
                .filter(|spec| table.get(spec.name.as_bytes()).is_none())
                .collect();
            tracing::info!(added = known.len(), "merged the backend's command table");
            table.merge(known);
        }
        if let Ok(info) = probe.query(&seed, &["INFO", "server"]).await {
            backend_version = version_from_info(info.as_bytes().map(|b| &b[..]).unwrap_or_default());
        }
    }
    let table = Arc::new(table);

    let pool = Pool::new(PoolConfig {
        // Each worker thread has its own (see `session::Lane`).
        connections_per_endpoint: config.connections_per_node * config.threads.max(1),
        connect_timeout: Duration::from_millis(config.connect_timeout_ms),
        request_timeout: None, // set below, from the topology
        handshake: Handshake {
            username,
            password,
            client_name: Some("valkey-proxy".into()),
        },
        ..PoolConfig::default()
    });
    let router = Router::new(
        table.clone(),
        topology,
        pool,
        crate::reload::router_config(config),
    );
    let stats = match default {
        Some(default) => default.stats.clone(),
        None => {
            let tenant_names = config.tenants.iter().map(|tenant| tenant.name.clone()).collect();
            StatsRegistry::with_tenants(&table, tenant_names)
        }
    };
    let core = ServiceBuilder::new()
        .layer(
            NamespaceLayer::new(router.clone(), config.emulated_databases)
                .with_tenants(crate::tenants::prefixes(&config.tenants))
                .with_channel_prefixes(crate::tenants::channel_prefixes(&config.tenants)),
        )
        .layer(FanOutLayer::new(router.clone()))
        .service(router.clone());
    let request_timeout = Arc::new(crate::backend_watch::TimeoutSetting::new(
        config.request_timeout_ms,
    ));
    crate::backend_watch::apply(&router, &request_timeout);
    crate::backend_watch::spawn(router.clone(), request_timeout.clone());
    let service = StatsLayer::new(stats.clone(), table.clone()).layer(core.clone());
    let gate = StatsLayer::new(stats.clone(), table).layer(AdmitAll);
    Stack {
        service,
        gate,
        core,
        router,
        stats,
        backend_version,
        request_timeout,
    }
}

/// `valkey_version` from INFO server, else `redis_version`.
fn version_from_info(info: &[u8]) -> String {
    let text = String::from_utf8_lossy(info);
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    field("valkey_version:")
        .or_else(|| field("redis_version:"))
        .unwrap_or_else(|| "unknown".into())
}
