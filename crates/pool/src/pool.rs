//! [`Pool`]: a few shared connections per endpoint, reconnect with backoff,
//! and dedicated connections for stateful sessions. The connections that
//! blocking commands hold are registered under their owner, so that
//! another connection can unblock them ([`Pool::blocked`]).

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;

use tokio::sync::mpsc;

use crate::connection::{PendingReply, StreamEvent};
use crate::watchdog::RequestTimeout;
use crate::{lock, Connection, Endpoint, Error, PoolConfig, PoolStats};

/// Backend connections for every endpoint the proxy talks to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<PoolConfig>,
    stats: Arc<PoolStats>,
    /// The request timeout of the shared connections, changed live.
    timeout: Arc<RequestTimeout>,
    endpoints: RwLock<FxHashMap<Endpoint, Arc<Shared>>>,
    /// Dedicated connections returned clean, ready for the next client.
    idle: Mutex<FxHashMap<Endpoint, Vec<Connection>>>,
    /// The connections blocking commands hold, by owner, oldest first.
    blocked: Mutex<FxHashMap<u64, Vec<Connection>>>,
}

/// The shared connections of one endpoint, used round-robin.
#[derive(Debug)]
struct Shared {
    endpoint: Endpoint,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
}

/// One shared connection and its reconnect state.
#[derive(Debug, Default)]
struct Slot {
    connection: Option<Connection>,
    /// Failed connects in a row.
    failures: u32,
    /// No new connect before this instant.
    retry_at: Option<Instant>,
    last_error: Option<Error>,
}

impl Pool {
    /// An empty pool; connections open on first use.
    pub fn new(config: PoolConfig) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                timeout: Arc::new(RequestTimeout::new(config.request_timeout)),
                config: Arc::new(config),
                stats: Arc::new(PoolStats::default()),
                endpoints: RwLock::new(FxHashMap::default()),
                idle: Mutex::new(FxHashMap::default()),
                blocked: Mutex::new(FxHashMap::default()),
            }),
        }
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Sets the request timeout of every shared connection, those open
    /// now included (`None`: none). See [`crate::watchdog`].
    pub fn set_request_timeout(&self, limit: Option<Duration>) {
        self.inner.timeout.set(limit);
    }

    /// The request timeout of the shared connections now.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.inner.timeout.get()
    }

    /// Live counters.
    pub fn stats(&self) -> &PoolStats {
        &self.inner.stats
    }

    /// Sends one request on a shared connection to `endpoint`.
    ///
    /// # Errors
    /// The endpoint is unreachable or the connection failed; see
    /// [`Error::never_sent`] for whether a retry is safe.
    pub async fn call(&self, endpoint: &Endpoint, request: Bytes) -> Result<Bytes, Error> {
        self.shared(endpoint)?.call(request).await
    }

    /// A shared connection to `endpoint`, opening one if needed, chosen
    /// round-robin.
    ///
    /// # Errors
    /// [`Error::Unreachable`] while the endpoint is in its reconnect backoff.
    pub fn shared(&self, endpoint: &Endpoint) -> Result<Connection, Error> {
        let shared = self.endpoint(endpoint);
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        self.slot_connection(&shared, index)
    }

    /// The shared connection to `endpoint` that `affinity` (a client id)
    /// always gets. One client's requests to one node then travel on one
    /// connection, so they run in the order the client sent them.
    ///
    /// It is connection number `affinity % connections_per_endpoint`: the
    /// proxy relies on that to give each worker thread connections of its
    /// own (affinities equal to the worker modulo the number of workers,
    /// with `connections_per_endpoint` a multiple of it).
    ///
    /// # Errors
    /// [`Error::Unreachable`] while the endpoint is in its reconnect backoff.
    pub fn shared_for(&self, endpoint: &Endpoint, affinity: u64) -> Result<Connection, Error> {
        let shared = self.endpoint(endpoint);
        self.slot_connection(&shared, affinity as usize)
    }

    fn slot_connection(&self, shared: &Shared, index: usize) -> Result<Connection, Error> {
        let endpoint = &shared.endpoint;
        let index = index % shared.slots.len();
        let mut slot = lock(&shared.slots[index]);
        if let Some(connection) = &slot.connection {
            if connection.is_alive() {
                return Ok(connection.clone());
            }
            match connection.connect_error() {
                Some(error) => {
                    slot.failures = slot.failures.saturating_add(1);
                    slot.retry_at = Some(Instant::now() + self.backoff(slot.failures));
                    slot.last_error = Some(error);
                }
                None => {
                    slot.failures = 0;
                    slot.retry_at = None;
                }
            }
            slot.connection = None;
        }
        if let Some(retry_at) = slot.retry_at {
            let now = Instant::now();
            if now < retry_at {
                return Err(Error::Unreachable {
                    addr: endpoint.addr.clone(),
                    last: slot
                        .last_error
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    retry_in: retry_at - now,
                });
            }
        }
        let connection = self.open(shared.endpoint.clone());
        slot.connection = Some(connection.clone());
        Ok(connection)
    }

    /// Sends a blocking command on a dedicated connection. The connection
    /// goes back to the idle list once the reply is in, and is closed if
    /// the reply is abandoned (the client went away while blocked). Until
    /// then it is registered under `owner` (a key unique to the client: the
    /// proxy passes its affinity) for [`Pool::blocked`], and it learns its
    /// id on the node ([`Connection::learn_backend_id`]).
    pub fn send_blocking(&self, endpoint: &Endpoint, request: &Bytes, owner: u64) -> PendingReply {
        let mut dedicated = self.dedicated(endpoint);
        dedicated.learn_backend_id();
        lock(&self.inner.blocked)
            .entry(owner)
            .or_default()
            .push((*dedicated).clone());
        dedicated.owner = Some(owner);
        dedicated.send(request, 0).holding(dedicated)
    }

    /// The connections on which `owner`'s blocking commands wait for their
    /// replies ([`Pool::send_blocking`]), oldest first: one, or one per
    /// slot for a blocking command whose keys span slots.
    pub fn blocked(&self, owner: u64) -> Vec<Connection> {
        lock(&self.inner.blocked).get(&owner).cloned().unwrap_or_default()
    }

    /// Asks the node of `blocked` (a connection of [`Pool::blocked`]) to
    /// unblock it with `CLIENT UNBLOCK <its id> <reason>` (`TIMEOUT` or
    /// `ERROR`); the blocked command then answers as the node's own
    /// would. True when the node unblocked it; false when it was not
    /// blocked there (its command answered already, or has not reached
    /// the node yet), or its id did not come within `id_wait`.
    ///
    /// # Errors
    /// The node could not be asked.
    pub async fn unblock(
        &self,
        blocked: &Connection,
        reason: &str,
        id_wait: Duration,
    ) -> Result<bool, Error> {
        let Ok(Some(backend_id)) = tokio::time::timeout(id_wait, blocked.backend_id()).await else {
            return Ok(false);
        };
        let mut command = BytesMut::new();
        resp::encode_command(
            &[
                &b"CLIENT"[..],
                b"UNBLOCK",
                backend_id.to_string().as_bytes(),
                reason.as_bytes(),
            ],
            &mut command,
        );
        let node = Endpoint::new(blocked.endpoint().addr.clone());
        let reply = self.call(&node, command.freeze()).await?;
        Ok(reply.as_ref() == b":1\r\n")
    }

    fn unregister_blocked(&self, owner: u64, connection: &Connection) {
        let mut blocked = lock(&self.inner.blocked);
        if let Some(list) = blocked.get_mut(&owner) {
            list.retain(|held| !held.same_as(connection));
            if list.is_empty() {
                blocked.remove(&owner);
            }
        }
    }

    /// A connection to `endpoint` for one client alone (transactions,
    /// blocking commands): an idle one returned clean by an earlier client,
    /// or a new one. Dropping the handle closes it; [`Dedicated::release`]
    /// returns it for reuse.
    pub fn dedicated(&self, endpoint: &Endpoint) -> Dedicated {
        let reused = {
            let mut idle = lock(&self.inner.idle);
            let list = idle.get_mut(endpoint);
            let mut found = None;
            if let Some(list) = list {
                while let Some(connection) = list.pop() {
                    if connection.is_alive() {
                        found = Some(connection);
                        break;
                    }
                }
            }
            found
        };
        if reused.is_some() {
            PoolStats::sub(&self.inner.stats.dedicated_idle, 1);
        }
        let connection = reused.unwrap_or_else(|| self.open(endpoint.clone()));
        self.hand_out(connection, true)
    }

    /// A stream connection to `endpoint` (subscriptions, MONITOR): every
    /// frame the node sends goes to `events`, tagged with `tag`, and its end
    /// is one last event (see [`crate::connection::StreamEvent`]). Never
    /// reused: it closes when the handle is dropped.
    pub fn stream(&self, endpoint: &Endpoint, events: mpsc::Sender<StreamEvent>, tag: u64) -> Dedicated {
        let inner = &self.inner;
        let connection = Connection::open_stream(
            endpoint.clone(),
            inner.config.clone(),
            inner.stats.clone(),
            events,
            tag,
        );
        self.hand_out(connection, false)
    }

    fn hand_out(&self, connection: Connection, reusable: bool) -> Dedicated {
        connection.untimed();
        PoolStats::add(&self.inner.stats.dedicated, 1);
        Dedicated {
            connection: Some(connection),
            pool: self.clone(),
            reusable,
            owner: None,
        }
    }

    /// Puts a clean dedicated connection on the idle list, or closes it
    /// when the list is full.
    fn give_back(&self, connection: Connection) {
        let limit = self.inner.config.idle_dedicated_per_endpoint;
        let mut idle = lock(&self.inner.idle);
        let list = idle.entry(connection.endpoint().clone()).or_default();
        if list.len() < limit && connection.is_alive() {
            list.push(connection);
            PoolStats::add(&self.inner.stats.dedicated_idle, 1);
        } else {
            connection.close();
        }
    }

    /// Lets go of every connection to `addr` (all protocols and
    /// databases), for a node that left the topology: idle dedicated ones
    /// close, shared ones retire ([`Connection::retire`]: they close once
    /// the replies they owe are in, and sessions holding one open another
    /// where they still need it).
    pub fn forget(&self, addr: &str) {
        let mut endpoints = self.inner.endpoints.write().unwrap_or_else(|e| e.into_inner());
        let mut idle = lock(&self.inner.idle);
        idle.retain(|endpoint, list| {
            let keep = &*endpoint.addr != addr;
            if !keep {
                PoolStats::sub(&self.inner.stats.dedicated_idle, list.len() as u64);
                list.drain(..).for_each(|connection| connection.close());
            }
            keep
        });
        drop(idle);
        endpoints.retain(|endpoint, shared| {
            let keep = &*endpoint.addr != addr;
            if !keep {
                for slot in &shared.slots {
                    if let Some(connection) = &lock(slot).connection {
                        connection.retire();
                    }
                }
            }
            keep
        });
    }

    fn open(&self, endpoint: Endpoint) -> Connection {
        let inner = &self.inner;
        Connection::open_timed(
            endpoint,
            inner.config.clone(),
            inner.stats.clone(),
            inner.timeout.clone(),
        )
    }

    /// The addresses the pool holds shared connections to.
    pub fn addrs(&self) -> Vec<Arc<str>> {
        let endpoints = self.inner.endpoints.read().unwrap_or_else(|e| e.into_inner());
        let mut addrs: Vec<Arc<str>> = endpoints.keys().map(|endpoint| endpoint.addr.clone()).collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    fn endpoint(&self, endpoint: &Endpoint) -> Arc<Shared> {
        if let Some(shared) = self
            .inner
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(endpoint)
        {
            return shared.clone();
        }
        let mut endpoints = self.inner.endpoints.write().unwrap_or_else(|e| e.into_inner());
        let per_endpoint = self.inner.config.connections_per_endpoint.max(1);
        endpoints
            .entry(endpoint.clone())
            .or_insert_with(|| {
                Arc::new(Shared {
                    endpoint: endpoint.clone(),
                    slots: (0..per_endpoint).map(|_| Mutex::new(Slot::default())).collect(),
                    next: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    fn backoff(&self, failures: u32) -> Duration {
        let config = &self.inner.config;
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        config.min_backoff.saturating_mul(factor).min(config.max_backoff)
    }
}

/// A connection that belongs to one client. Counted in
/// [`PoolStats::dedicated`] until dropped or released; dropping closes it.
#[derive(Debug)]
pub struct Dedicated {
    /// `None` only once released.
    connection: Option<Connection>,
    pool: Pool,
    /// False for stream connections, which are never reused.
    reusable: bool,
    /// Set while a blocking command holds it: registered under this owner.
    owner: Option<u64>,
}

impl Dedicated {
    /// Returns the connection to the pool for the next client. Call it only
    /// when the connection holds no state: no transaction, no WATCH, no
    /// subscription, no blocked command. A stream connection is closed.
    pub fn release(mut self) {
        if let Some(connection) = self.take() {
            if self.reusable {
                self.pool.give_back(connection);
            } else {
                connection.close();
            }
        }
    }
}

impl Deref for Dedicated {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection
            .as_ref()
            .expect("a released Dedicated is consumed")
    }
}

impl Dedicated {
    /// Takes the connection out, no longer registered as blocked.
    fn take(&mut self) -> Option<Connection> {
        let connection = self.connection.take()?;
        if let Some(owner) = self.owner.take() {
            self.pool.unregister_blocked(owner, &connection);
        }
        Some(connection)
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        if let Some(connection) = self.take() {
            connection.close();
        }
        PoolStats::sub(&self.pool.inner.stats.dedicated, 1);
    }
}
