//! The [`Router`] service: route, send through the pool, follow redirects.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pool::{PendingReply, Pool};
use topology::{Mode, Topology, TopologyCache, TopologyHandle};

use crate::command::CommandTable;
use crate::future::RouterFuture;
use crate::last::{LastConnection, ShardKey};
use crate::redirect::{classify, Redirect};
use crate::route::{select, ReadPolicy, Route};
use crate::Error;

pub use crate::message::{Command, Purpose, Reply};

/// How hard the router tries before giving up.
#[derive(Clone, Copy, Debug)]
pub struct RouterConfig {
    /// MOVED/ASK hops followed for one request.
    pub max_redirects: u32,
    /// How long one request may keep retrying TRYAGAIN, CLUSTERDOWN,
    /// LOADING, MASTERDOWN, READONLY and lost connections.
    pub retry_budget: Duration,
    /// Where reads go.
    pub read_policy: ReadPolicy,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_redirects: 5,
            retry_budget: Duration::from_secs(3),
            read_policy: ReadPolicy::Primary,
        }
    }
}

/// Routes a command to one node and returns its reply, following
/// redirects. Requests for several nodes are refused with
/// [`Error::CrossSlot`] or [`Error::FanOutRequired`]: the fan-out layer above
/// splits them first. Cheap to clone.
#[derive(Debug)]
pub struct Router {
    inner: Arc<Inner>,
    /// The shared connection this clone used last. Clones start empty.
    last: LastConnection,
    /// This clone's copy of the topology, renewed when it changes.
    topology: TopologyCache,
}

impl Clone for Router {
    fn clone(&self) -> Self {
        Router::from_inner(self.inner.clone())
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    table: Arc<CommandTable>,
    topology: Arc<TopologyHandle>,
    pool: Pool,
    config: LiveConfig,
    next: AtomicUsize,
}

/// The [`RouterConfig`] in force, changed in place by
/// [`Router::reconfigure`]: each request reads what it needs when it needs
/// it, with a relaxed load.
#[derive(Debug)]
struct LiveConfig {
    max_redirects: std::sync::atomic::AtomicU32,
    retry_budget_ms: std::sync::atomic::AtomicU64,
    prefer_replica: std::sync::atomic::AtomicBool,
}

impl LiveConfig {
    fn new(config: RouterConfig) -> LiveConfig {
        let live = LiveConfig {
            max_redirects: Default::default(),
            retry_budget_ms: Default::default(),
            prefer_replica: Default::default(),
        };
        live.store(config);
        live
    }

    fn store(&self, config: RouterConfig) {
        self.max_redirects.store(config.max_redirects, Ordering::Relaxed);
        let budget = u64::try_from(config.retry_budget.as_millis()).unwrap_or(u64::MAX);
        self.retry_budget_ms.store(budget, Ordering::Relaxed);
        let prefer = config.read_policy == ReadPolicy::PreferReplica;
        self.prefer_replica.store(prefer, Ordering::Relaxed);
    }

    fn load(&self) -> RouterConfig {
        RouterConfig {
            max_redirects: self.max_redirects(),
            retry_budget: self.retry_budget(),
            read_policy: match self.prefers_replica() {
                true => ReadPolicy::PreferReplica,
                false => ReadPolicy::Primary,
            },
        }
    }

    fn max_redirects(&self) -> u32 {
        self.max_redirects.load(Ordering::Relaxed)
    }

    fn retry_budget(&self) -> Duration {
        Duration::from_millis(self.retry_budget_ms.load(Ordering::Relaxed))
    }

    fn prefers_replica(&self) -> bool {
        self.prefer_replica.load(Ordering::Relaxed)
    }
}

impl Router {
    /// A router over a command table, a topology and a pool.
    pub fn new(
        table: Arc<CommandTable>,
        topology: Arc<TopologyHandle>,
        pool: Pool,
        config: RouterConfig,
    ) -> Router {
        Router {
            inner: Arc::new(Inner {
                table,
                topology,
                pool,
                config: LiveConfig::new(config),
                next: AtomicUsize::new(0),
            }),
            last: LastConnection::default(),
            topology: TopologyCache::default(),
        }
    }

    /// A router over `inner`, with empty caches.
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Router {
        Router {
            inner,
            last: LastConnection::default(),
            topology: TopologyCache::default(),
        }
    }

    /// Changes how hard every clone of this router tries and where reads
    /// go, from the next request on (a configuration reload).
    pub fn reconfigure(&self, config: RouterConfig) {
        self.inner.config.store(config);
    }

    /// The settings in force.
    pub fn config(&self) -> RouterConfig {
        self.inner.config.load()
    }

    /// The command table.
    pub fn table(&self) -> &Arc<CommandTable> {
        &self.inner.table
    }

    /// The topology handle.
    pub fn topology(&self) -> &Arc<TopologyHandle> {
        &self.inner.topology
    }

    /// The current topology, through this clone's cache: cheaper per
    /// request than [`TopologyHandle::snapshot`], and borrowed, so that a
    /// request costs no reference-count round trip (clone it to keep it).
    pub fn current_topology(&mut self) -> &Arc<Topology> {
        self.topology.get(&self.inner.topology)
    }

    /// [`Router::prepare`] against this clone's cached topology, which is
    /// returned with the route (borrowed, as [`Router::current_topology`]).
    pub fn prepare_current(&mut self, command: &mut Command) -> (Result<Route, Error>, &Arc<Topology>) {
        let topology = self.topology.get(&self.inner.topology);
        (self.inner.prepare(command, topology), topology)
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Looks up the command's spec and decides its route, filling both in.
    ///
    /// # Errors
    /// As [`select`].
    pub fn prepare(&self, command: &mut Command, topology: &Topology) -> Result<Route, Error> {
        self.inner.prepare(command, topology)
    }

    /// The primary that would serve `command`, and the slot of its keys (in
    /// cluster mode), for a session that pins a dedicated connection
    /// (WATCH, transactions, subscriptions). A keyless command gets the
    /// first primary and no slot.
    ///
    /// # Errors
    /// The keys span slots ([`Error::CrossSlot`]), the command needs every
    /// node ([`Error::FanOutRequired`]), or no backend is known.
    pub fn pin_target(&self, command: &mut Command) -> Result<(Arc<str>, Option<u16>), Error> {
        let topology = self.inner.topology.snapshot();
        let route = self.prepare(command, &topology)?;
        let shards = topology.shards();
        let (shard, slot) = match route {
            Route::Shard { shard, slot, .. } => (shard as usize, slot),
            Route::Any { .. } => (0, None),
            Route::Node { shard, .. } => (shard as usize, None),
            Route::MultiSlot => return Err(Error::CrossSlot),
            Route::AllShards(_) | Route::AllNodes(_) => return Err(Error::FanOutRequired),
        };
        let shard = shards.get(shard).ok_or(Error::NoBackend)?;
        Ok((shard.primary.clone(), slot))
    }

    /// Sends `command` to the node its route names and returns the reply.
    ///
    /// # Errors
    /// The route needs several nodes, the backend failed, or the redirect
    /// and retry budgets ran out.
    pub async fn dispatch(mut self, mut command: Command) -> Result<Reply, Error> {
        let first = self.start(&mut command);
        RouterFuture::new(self.inner.clone(), command, first).await
    }

    /// Routes `command` and enqueues it on its backend connection at once,
    /// so that requests started one after the other reach a node in order.
    /// The target address stays borrowed from the cached topology: the
    /// reply knows which node it came from ([`PendingReply::addr`]).
    pub(crate) fn start(&mut self, command: &mut Command) -> Result<PendingReply, Error> {
        let (topology, stamp) = self.topology.get_stamped(&self.inner.topology);
        let route = match (command.route, &command.spec) {
            (Some(route), Some(_)) => route,
            _ => self.inner.prepare(command, topology)?,
        };
        // The common case: the same shard's primary as the request before.
        let shard = self.inner.primary_shard(route, stamp);
        if let Some(pending) = shard.and_then(|shard| self.last.resend(command, shard)) {
            return Ok(pending);
        }
        let target = self.inner.target(route, topology)?;
        Ok(self.last.send(&self.inner.pool, command, target, false, shard))
    }

    /// Enqueues one attempt of `command` on `target`.
    fn send(&mut self, command: &Command, target: &Arc<str>, asking: bool) -> PendingReply {
        self.last.send(&self.inner.pool, command, target, asking, None)
    }

    /// Takes over after the first attempt's `outcome` asked for more than a
    /// plain reply: follows redirects and retries within the budgets.
    pub(crate) async fn finish(
        mut self,
        mut command: Command,
        mut target: Arc<str>,
        first: Result<Bytes, pool::Error>,
    ) -> Result<Reply, Error> {
        let inner = self.inner.clone();
        // The retry budget starts at the first trouble.
        let mut trouble_since: Option<Instant> = None;
        let mut redirects = 0;
        let mut pause = Duration::from_millis(5);
        let mut pending: Option<PendingReply> = None;
        let mut first = Some(first);
        loop {
            let outcome = match (first.take(), pending.take()) {
                (Some(outcome), _) => outcome,
                (None, Some(next)) => next.await,
                (None, None) => return Err(Error::NoBackend),
            };
            let mut retry_allowed = || {
                let since = *trouble_since.get_or_insert_with(Instant::now);
                since.elapsed() < inner.config.retry_budget()
                    && inner.topology.current().mode() != Mode::Standalone
            };
            let reply = match outcome {
                Ok(reply) => reply,
                Err(error) => {
                    let safe = error.never_sent() || command.spec.as_ref().is_some_and(|s| s.is_read_only());
                    if !(safe && retry_allowed()) {
                        return Err(Error::Backend(error));
                    }
                    let (next_target, next) = self.retry_later(&mut command, &mut pause).await?;
                    (target, pending) = (next_target, Some(next));
                    continue;
                }
            };
            match classify(&reply, &target) {
                None => return Ok(Reply::Raw(reply)),
                Some(Redirect::Moved { slot, addr }) | Some(Redirect::Ask { slot, addr })
                    if redirects >= inner.config.max_redirects() =>
                {
                    return Err(Error::TooManyRedirects { slot, addr });
                }
                Some(Redirect::Moved { slot, addr }) => {
                    redirects += 1;
                    inner.topology.note_moved(slot, &addr);
                    target = addr.into();
                    pending = Some(self.send(&command, &target, false));
                }
                Some(Redirect::Ask { addr, .. }) => {
                    redirects += 1;
                    target = addr.into();
                    pending = Some(self.send(&command, &target, true));
                }
                Some(Redirect::Wait | Redirect::ReadOnly) if retry_allowed() => {
                    let (next_target, next) = self.retry_later(&mut command, &mut pause).await?;
                    (target, pending) = (next_target, Some(next));
                }
                // Out of budget: the client sees the server's own error.
                Some(Redirect::Wait | Redirect::ReadOnly) => return Ok(Reply::Raw(reply)),
            }
        }
    }

    /// Asks for a topology refresh, waits a growing pause, and sends again
    /// wherever the (possibly new) topology says.
    async fn retry_later(
        &mut self,
        command: &mut Command,
        pause: &mut Duration,
    ) -> Result<(Arc<str>, PendingReply), Error> {
        self.inner.topology.request_refresh();
        tokio::time::sleep(*pause).await;
        *pause = (*pause * 2).min(Duration::from_millis(200));
        command.route = None;
        let topology = self.inner.topology.current();
        let route = self.inner.prepare(command, &topology)?;
        let target = self.inner.target(route, &topology)?.clone();
        let pending = self.send(command, &target, false);
        Ok((target, pending))
    }
}

impl Inner {
    /// Looks up the command's spec and decides its route, filling both in.
    fn prepare(&self, command: &mut Command, topology: &Topology) -> Result<Route, Error> {
        if command.spec.is_none() {
            command.spec = self.table.lookup(&command.request).cloned();
        }
        let route = match command.route {
            Some(route) => route,
            None => select(&command.request, command.spec.as_deref(), topology)?,
        };
        command.route = Some(route);
        Ok(route)
    }

    /// The shard whose primary `route` goes to, stamped with the
    /// topology's `stamp`; `None` for a route that may go elsewhere (any
    /// shard, one chosen node, or a replica under the read policy).
    fn primary_shard(&self, route: Route, stamp: u64) -> Option<ShardKey> {
        match route {
            Route::Shard { shard, read_only, .. } if !(read_only && self.config.prefers_replica()) => {
                Some(ShardKey { stamp, shard })
            }
            _ => None,
        }
    }

    /// The address a single-node route goes to.
    fn target<'t>(&self, route: Route, topology: &'t Topology) -> Result<&'t Arc<str>, Error> {
        let shards = topology.shards();
        let (shard, read_only) = match route {
            Route::Shard { shard, read_only, .. } => (shard as usize, read_only),
            Route::Any { read_only } => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                (n % shards.len().max(1), read_only)
            }
            Route::Node { shard, replica } => {
                let shard = shards.get(shard as usize).ok_or(Error::NoBackend)?;
                return match replica {
                    None => Ok(&shard.primary),
                    Some(i) => shard.replicas.get(i as usize).ok_or(Error::NoBackend),
                };
            }
            Route::MultiSlot => return Err(Error::CrossSlot),
            Route::AllShards(_) | Route::AllNodes(_) => return Err(Error::FanOutRequired),
        };
        let shard = shards.get(shard).ok_or(Error::NoBackend)?;
        let use_replica = read_only
            && self.config.prefers_replica()
            && !shard.replicas.is_empty()
            && topology.mode() == Mode::Replicated;
        if use_replica {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            return Ok(&shard.replicas[n % shard.replicas.len()]);
        }
        Ok(&shard.primary)
    }
}

impl tower::Service<Command> for Router {
    type Response = Reply;
    type Error = Error;
    type Future = RouterFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut command: Command) -> Self::Future {
        // Enqueue now, not when the future is first polled: request order.
        let first = self.start(&mut command);
        RouterFuture::new(self.inner.clone(), command, first)
    }
}
