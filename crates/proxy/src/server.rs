//! [`Proxy`]: the listener, one task per client, and a graceful drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clients::Clients;
use crate::config::ProxyConfig;
use crate::context::Shared;
use crate::session::{serve, Lane, StackService, Stacks};
use crate::stack::{self, Core, GateCore};
use tower::Layer;

/// How long a drain waits for clients to finish their in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound proxy, ready to run. `S` is the service sessions send commands
/// to: the assembled [`Core`] stack, or that stack inside layers added with
/// [`Proxy::layer`]; `G` is the gate, the same layers over
/// [`crate::gate::AdmitAll`].
#[derive(Debug)]
pub struct Proxy<S = Core, G = GateCore> {
    listener: TcpListener,
    /// The `[[listeners]]`, each for one tenant.
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    stacks: Stacks<S, G>,
}

impl Proxy<Core, GateCore> {
    /// Binds the listen address and assembles the stack (discovering the
    /// backend; a backend that is down does not stop this).
    ///
    /// # Errors
    /// The listen address cannot be bound.
    pub async fn bind(config: ProxyConfig) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(&config.listen).await?;
        let stack = stack::build(&config).await;
        let mut groups = Vec::with_capacity(config.backend_groups.len());
        for group in &config.backend_groups {
            groups.push(stack::build_group(&config, group, &stack).await);
        }
        let pair = |stack: &stack::Stack| (stack.service.clone(), stack.gate.clone());
        let stacks = Stacks::new(pair(&stack), groups.iter().map(pair).collect());
        let handling = crate::handling::CommandHandling::new(stack.router.table());
        let tenants = crate::tenants::Tenants::new(&config.tenants, stack.router.table()).with_backends(
            config
                .tenants
                .iter()
                .map(|tenant| (config.group_of(tenant), config.scripts_confined(tenant))),
        );
        let users = crate::users::Users::new(&config.users, &tenants, stack.router.table());
        let (listeners, roles) =
            crate::listeners::bind(&config.listeners, |name| tenants.number(Some(name))).await?;
        let audit = match config.audit.enabled() {
            true => Some(audit::Audit::start(
                &config.audit,
                &config.listen,
                stack.router.table(),
            )?),
            false => None,
        };
        let hooks = crate::hooks::Installed::default();
        if let Some(audit) = &audit {
            let routers = std::iter::once(&stack)
                .chain(&groups)
                .map(|stack| stack.router.clone())
                .collect();
            let table = stack.router.table().clone();
            let audit_hooks = crate::audit::AuditHooks::new(audit.clone(), table, tenants.clone(), routers);
            let _ = hooks.audit.set(Arc::new(audit_hooks));
        }
        let slowlog = crate::slowlog::SlowLog::new(config.slowlog_log_slower_than, config.slowlog_max_len);
        let turn_limits = crate::context::TurnLimits::default();
        turn_limits.set(&config);
        Ok(Proxy {
            listener,
            listeners,
            shared: Arc::new(Shared {
                handling,
                stack,
                groups,
                clients: Clients::default(),
                config: arc_swap::ArcSwap::from_pointee(config),
                started: Instant::now(),
                monitors: Default::default(),
                hooks,
                audit,
                tenants,
                users: arc_swap::ArcSwap::from_pointee(users),
                users_version: Default::default(),
                reloader: Default::default(),
                reloading: Default::default(),
                turn_limits,
                client_memory: Default::default(),
                acl_log: Default::default(),
                listeners: roles,
                draining: CancellationToken::new(),
                slowlog,
            }),
            stacks,
        })
    }
}

impl<S: StackService, G: StackService> Proxy<S, G> {
    /// Wraps the stack in `layer` (an audit log, a command filter, ...),
    /// and the gate too, so that the layer sees every command a client
    /// sends ([`crate::gate`]). Layers must be always ready, as every layer
    /// of the stack is.
    pub fn layer<L>(self, layer: L) -> Proxy<<L as Layer<S>>::Service, <L as Layer<G>>::Service>
    where
        L: Layer<S> + Layer<G>,
        <L as Layer<S>>::Service: StackService,
        <L as Layer<G>>::Service: StackService,
    {
        Proxy {
            listener: self.listener,
            listeners: self.listeners,
            shared: self.shared,
            stacks: self.stacks.map(|run| layer.layer(run), |gate| layer.layer(gate)),
        }
    }

    /// Installs session hooks ([`crate::hooks`]): every client session
    /// calls them, with a context of their own per session.
    ///
    /// # Panics
    ///
    /// When hooks were installed already: compose them into one
    /// [`SessionHooks`](crate::hooks::SessionHooks) instead.
    pub fn hooks(self, hooks: impl crate::hooks::SessionHooks) -> Self {
        assert!(
            self.shared.hooks.embedder.set(Arc::new(hooks)).is_ok(),
            "the proxy's session hooks are installed once"
        );
        self
    }

    /// Installs where `PROXY CONFIG RELOAD` (and the binary's SIGHUP) read
    /// the configuration again ([`crate::reload`]).
    ///
    /// # Panics
    ///
    /// When a reloader was installed already.
    pub fn reloader(self, reloader: impl crate::reload::Reloader + 'static) -> Self {
        assert!(
            self.shared.reloader.set(Arc::new(reloader)).is_ok(),
            "the proxy's reloader is installed once"
        );
        self
    }

    /// The address clients connect to.
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the sessions share: the stack, the clients, the configuration.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Accepts clients until `shutdown` completes, then stops accepting, lets
    /// every client finish the requests it has in flight (up to ten
    /// seconds), and returns. Every client is served on the current runtime.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        self.run_on(&[], shutdown).await
    }

    /// As [`Proxy::run`], with the clients handed in turn to `workers`
    /// (one runtime each, normally with one thread): each worker then uses
    /// its own shared backend connections ([`Lane`]), so a request never
    /// wakes a task on another thread. The pool keeps a set of connections
    /// for each of [`ProxyConfig::threads`], which should therefore be
    /// `workers.len()`. With no workers, every client is served on the
    /// current runtime.
    pub async fn run_on(self, workers: &[Handle], shutdown: impl Future<Output = ()>) {
        if !workers.is_empty() && self.shared.config().threads != workers.len() {
            tracing::warn!(
                workers = workers.len(),
                threads = self.shared.config().threads,
                "the pool was sized for another number of worker threads; workers will share connections"
            );
        }
        let sessions = TaskTracker::new();
        let mut next_worker = 0usize;
        let draining = self.shared.draining.clone();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = crate::listeners::accept(&self.listener, &self.listeners) => {
                    let (mut stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors and the like: wait, then go on.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if self.shared.clients.len() >= self.shared.config().max_clients {
                        tracing::warn!(%peer, "refusing a client: max_clients reached");
                        metrics::counter!("redis_rejected_connections_total").increment(1);
                        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                        continue;
                    }
                    let (shared, stacks, draining) = (self.shared.clone(), self.stacks.clone(), draining.clone());
                    if workers.is_empty() {
                        sessions.spawn(cpu::metered(serve(stream, shared, stacks, draining, Lane::default()), cpu::Task::Session));
                        continue;
                    }
                    let index = next_worker;
                    next_worker = (next_worker + 1) % workers.len();
                    let lane = Lane { index: index as u64, count: workers.len() as u64 };
                    // The socket moves to the worker's own event loop.
                    let stream = match stream.into_std() {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::warn!(%peer, %error, "could not hand a client to a worker");
                            continue;
                        }
                    };
                    workers[index].spawn(sessions.track_future(async move {
                        match TcpStream::from_std(stream) {
                            Ok(stream) => cpu::metered(serve(stream, shared, stacks, draining, lane), cpu::Task::Session).await,
                            Err(error) => tracing::warn!(%peer, %error, "a worker could not take a client"),
                        }
                    }));
                }
            }
        }
        tracing::info!(clients = self.shared.clients.len(), "draining");
        drop(self.listener);
        drop(self.listeners);
        draining.cancel();
        sessions.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("drain timed out; closing the remaining clients");
        }
    }
}
