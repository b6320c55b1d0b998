//! Key namespaces: numbered databases on a cluster that has none.
//!
//! A Valkey cluster without `cluster-databases` (and every Redis 7.0
//! cluster) only has database 0. [`Namespace`] gives clients databases 1 to
//! N anyway: each is a [`Space`], a prefix on every key on the way in,
//! removed from every key that comes back. Database 0 is the real
//! keyspace, minus the keys of the emulated databases, which it never
//! shows. The stored form keeps each key's slot (see [`space`]), so
//! commands that work in one slot keep working, and MOVE is a RENAMENX.
//!
//! SCAN in database N asks the nodes for N's keys only (a MATCH on the
//! prefix) and applies the client's MATCH to the keys once translated
//! back; in database 0 it drops the emulated databases' keys. Pages may
//! come back shorter than COUNT, or empty, as SCAN allows.
//!
//! Commands over the whole keyspace are done by the layer itself:
//! KEYS, DBSIZE, FLUSHDB, RANDOMKEY, SWAPDB and MOVE, by scanning every
//! primary for the database's keys ([`keyspace`]). They cost a scan of the
//! keyspace, and SWAPDB and FLUSHDB are not atomic: keys written while they
//! run may or may not be included. Replies that carry key names (blocking
//! pops, XREAD, ...) have them translated back ([`rewrite`]).
//!
//! On a backend with real databases (standalone, or a cluster with
//! `cluster-databases` > 1) the layer passes everything through untouched
//! and costs one topology read per request.
//!
//! Tenants use the same mechanism ([`Scope`]): a client of tenant `t`
//! ([`router::Command::tenant`]) has every key under the tenant's prefix,
//! on any backend, and KEYS, DBSIZE, FLUSHDB, RANDOMKEY and SCAN see the
//! tenant's keys only (by scanning, on a backend with databases too). Its
//! emulated databases are spaces inside the prefix. Its pub/sub channels
//! carry the prefix too ([`channels`]).

mod between;
pub mod channels;
pub mod glob;
pub mod keyspace;
pub mod rewrite;
pub mod scan;
pub mod scope;
pub mod space;

use std::task::{Context, Poll};

use aggregate::colocate::{self, sort_has_key_patterns};
use aggregate::fanout::DEFAULT_COPY_LIMIT;
use aggregate::steps::Steps;
use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use router::{Command, Error, Reply, Router};
use std::sync::Arc;
use topology::Mode;

use tower::{Layer, Service};

pub use scope::Scope;
pub use space::Space;

/// Adds [`Namespace`] to a stack.
#[derive(Clone, Debug)]
pub struct NamespaceLayer {
    router: Router,
    databases: u32,
    tenants: Arc<[Bytes]>,
    channels: Arc<[Bytes]>,
}

impl NamespaceLayer {
    /// Emulates `databases` databases (0 included) on clusters without
    /// them, looking commands up in `router`'s table.
    pub fn new(router: Router, databases: u32) -> Self {
        NamespaceLayer {
            router,
            databases,
            tenants: Arc::from([]),
            channels: Arc::from([]),
        }
    }

    /// The key prefixes of the tenants: tenant `t` (from 1) has the
    /// `t-1`th; their channels carry the same prefixes. A prefix holds no
    /// `{` or `}`; an empty one leaves the tenant's keys as they are (a
    /// tenant kept apart by databases of its own).
    pub fn with_tenants(mut self, prefixes: Vec<Bytes>) -> Self {
        self.channels = prefixes.clone().into();
        self.tenants = prefixes.into();
        self
    }

    /// The tenants' channel prefixes, when they differ from their key
    /// prefixes (given after [`NamespaceLayer::with_tenants`]).
    pub fn with_channel_prefixes(mut self, prefixes: Vec<Bytes>) -> Self {
        self.channels = prefixes.into();
        self
    }
}

impl<S> Layer<S> for NamespaceLayer {
    type Service = Namespace<S>;

    fn layer(&self, inner: S) -> Namespace<S> {
        Namespace {
            inner,
            router: self.router.clone(),
            databases: self.databases,
            tenants: self.tenants.clone(),
            channels: self.channels.clone(),
        }
    }
}

/// The namespace service (see the module docs).
#[derive(Clone, Debug)]
pub struct Namespace<S> {
    inner: S,
    router: Router,
    databases: u32,
    tenants: Arc<[Bytes]>,
    channels: Arc<[Bytes]>,
}

/// True when `mode` and `databases` (what the backend offers) call for
/// emulated databases.
pub fn emulates(mode: Mode, databases: u32) -> bool {
    mode == Mode::Cluster && databases <= 1
}

/// True for the commands the layer carries out itself in an emulated
/// database, in several steps (the whole-keyspace commands of [`keyspace`],
/// and SCAN), rather than passing them on rewritten: they cannot be sent
/// as one command, inside a transaction for instance.
pub fn carries_out(name: &str, args: resp::Args<'_>) -> bool {
    name == "scan" || keyspace::is_own(name, args)
}

impl<S> Service<Command> for Namespace<S>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    /// Pass-through keeps the inner future as it is (no extra box).
    type Future = Either<S::Future, BoxFuture<'static, Result<Reply, Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut command: Command) -> Self::Future {
        let (emulating, shards, backend_databases) = {
            let topology = self.router.current_topology();
            (
                emulates(topology.mode(), topology.databases()),
                topology.shards().len(),
                topology.databases(),
            )
        };
        if !emulating && command.tenant == 0 {
            return Either::Left(self.inner.call(command));
        }
        let prefixes = |all: &Arc<[Bytes]>| match command.tenant {
            0 => Bytes::new(),
            tenant => all.get(usize::from(tenant) - 1).cloned().unwrap_or_default(),
        };
        let (keys, channels) = (prefixes(&self.tenants), prefixes(&self.channels));
        if command.spec.is_none() {
            command.spec = self.router.table().lookup(&command.request).cloned();
        }
        let Some(spec) = command.spec.clone() else {
            // Unknown to the table: the server answers with its own error.
            return Either::Left(self.inner.call(command));
        };
        let scope = Scope::with_prefixes(keys, channels, command.db, emulating);
        // The databases a client may use: emulated, or the backend's.
        let databases = if emulating {
            self.databases
        } else {
            backend_databases
        };
        let sizes = (databases, shards);
        // Keys kept as they are in a real database need no scan to be
        // told apart.
        let scoped_keys = emulating || !scope.is_root();
        if scoped_keys {
            if let Some(future) =
                keyspace::handle(&spec.name, &command, &self.inner, sizes, &scope, emulating)
            {
                return Either::Right(future);
            }
            if spec.name == "scan" {
                return Either::Right(scan::call(command, &mut self.inner, scope, emulating));
            }
        }
        if scope.is_root() && (scope.channels_are_root() || !channels::names_channels_in_request(&spec.name))
        {
            return Either::Left(self.inner.call(command));
        }
        let backend_db = if emulating { 0 } else { command.db };
        let space = scope;
        let rewritten = rewrite::request(&spec, &command.request, &space);
        if matches!(spec.name.as_str(), "sort" | "sort_ro") && sort_has_key_patterns(command.request.args()) {
            // The keys SORT's patterns name are stored under the database's
            // names, which the server cannot build from a pattern: they are
            // copied where it can ([`aggregate::colocate`]).
            let mut base = command.with_request(rewritten.clone(), None);
            base.db = backend_db;
            let steps = Steps::new(self.inner.clone(), base);
            return Either::Right(Box::pin(async move {
                let stored = move |key: &[u8]| space.encode(key);
                colocate::run(steps, &spec, &rewritten, DEFAULT_COPY_LIMIT, &stored).await
            }));
        }
        let mut inner_command = command.with_request(rewritten, None);
        inner_command.db = backend_db;
        let future = self.inner.call(inner_command);
        if !rewrite::rewrites_reply(&spec.name, &space) {
            // Most replies name no key (GET, SET, ...): nothing to undo.
            return Either::Left(future);
        }
        Either::Right(Box::pin(async move {
            let reply = future.await?;
            rewrite::reply(&spec.name, reply, &space)
        }))
    }
}
