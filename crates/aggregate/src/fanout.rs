//! [`FanOut`]: passes single-node requests through untouched and fans the
//! others out by Valkey's request and response policies.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{self, BoxFuture, Either};
use resp::Frame;
use router::command::{CommandSpec, Flags, RequestPolicy, ResponsePolicy};
use router::{Command, Error, Reply, Route, Router};
use topology::Mode;
use tower::{Layer, Service};

use crate::scripts::{self, ScriptCache};
use crate::steps::{self, Steps};
use crate::waits::Waiting;
use crate::{colocate, merge, moves, pops, scan, split, streams};

/// Wraps the service below it (normally the [`Router`]) with fan-out.
#[derive(Clone, Debug)]
pub struct FanOutLayer {
    router: Router,
    copy_limit: usize,
    scripts: ScriptCache,
}

impl FanOutLayer {
    /// A layer that decides routes with `router`'s table and topology.
    pub fn new(router: Router) -> Self {
        FanOutLayer {
            router,
            copy_limit: DEFAULT_COPY_LIMIT,
            scripts: ScriptCache::default(),
        }
    }

    /// Bounds the bytes one command may copy between slots ([`colocate`]).
    pub fn with_copy_limit(mut self, bytes: usize) -> Self {
        self.copy_limit = bytes;
        self
    }
}

/// Bytes one command may copy between slots unless configured otherwise.
pub const DEFAULT_COPY_LIMIT: usize = 256 * 1024 * 1024;

impl<S> Layer<S> for FanOutLayer {
    type Service = FanOut<S>;

    fn layer(&self, inner: S) -> FanOut<S> {
        FanOut {
            inner,
            router: self.router.clone(),
            copy_limit: self.copy_limit,
            scripts: self.scripts.clone(),
        }
    }
}

/// The fan-out service. Routes are decided once here and carried down in
/// [`Command::route`], so the router does not decide them again.
#[derive(Clone, Debug)]
pub struct FanOut<S> {
    inner: S,
    router: Router,
    copy_limit: usize,
    scripts: ScriptCache,
}

impl<S> FanOut<S> {
    /// Fan-out over `inner`, deciding routes with `router`.
    pub fn new(inner: S, router: Router) -> Self {
        FanOut {
            inner,
            router,
            copy_limit: DEFAULT_COPY_LIMIT,
            scripts: ScriptCache::default(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<Command> for FanOut<S>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Error;
    /// Single-node requests keep the inner future as it is (no extra box).
    type Future = Either<S::Future, BoxFuture<'static, Result<Reply, Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut command: Command) -> Self::Future {
        // The topology stays borrowed from the router's cache.
        let (prepared, topology) = self.router.prepare_current(&mut command);
        let (mode, shard_count) = (topology.mode(), topology.shards().len());
        let route = match prepared {
            Ok(route) => route,
            Err(Error::NotSupportedOnCluster(name)) if name == "scan" => {
                return Either::Right(self.scan(command, shard_count))
            }
            Err(error) => return Either::Right(Box::pin(future::ready(Err(error)))),
        };
        if let Some(spec) = &command.spec {
            // Scripts and SCRIPT are all `noscript`: one flag test spares
            // every other command the comparison of names.
            if spec.flags.contains(Flags::NOSCRIPT) {
                if let Some(future) = self.scripted(spec.name.as_str(), &command) {
                    return Either::Right(future);
                }
            }
            let sort = matches!(spec.name.as_str(), "sort" | "sort_ro");
            if sort && mode == Mode::Cluster && colocate::sort_has_key_patterns(command.request.args()) {
                return Either::Right(self.in_steps(command));
            }
        }
        if route.is_single() {
            return Either::Left(self.inner.call(command));
        }
        // Every sub-request is started here, in `call`, like a single-node
        // request: a later request of the same client cannot overtake them.
        match route {
            Route::AllShards(policy) => {
                let targets = (0..shard_count as u32).map(|shard| Route::Node { shard, replica: None });
                let calls = self.broadcast(&command, targets);
                Either::Right(Box::pin(merge_by_policy(calls, policy, command.spec.clone())))
            }
            Route::AllNodes(policy) => {
                // Node routes are resolved against the router's copy of the
                // topology, as this one is.
                let topology = self.router.current_topology().clone();
                let targets = topology.shards().iter().zip(0u32..).flat_map(|(s, shard)| {
                    std::iter::once(None)
                        .chain((0..s.replicas.len() as u32).map(Some))
                        .map(move |replica| Route::Node { shard, replica })
                });
                let calls = self.broadcast(&command, targets);
                Either::Right(Box::pin(merge_by_policy(calls, policy, command.spec.clone())))
            }
            _ => Either::Right(self.multi_slot(command)),
        }
    }
}

impl<S> FanOut<S>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// Starts the same command on every target.
    fn broadcast(&mut self, command: &Command, targets: impl Iterator<Item = Route>) -> Vec<S::Future> {
        targets
            .map(|route| {
                self.inner
                    .call(command.with_request(command.request.clone(), Some(route)))
            })
            .collect()
    }

    /// EVAL and SCRIPT LOAD teach the script cache; EVALSHA gets a second
    /// chance after NOSCRIPT ([`scripts`]). `None` for other commands.
    fn scripted(
        &mut self,
        name: &str,
        command: &Command,
    ) -> Option<BoxFuture<'static, Result<Reply, Error>>> {
        let body_at = match name {
            "eval" | "eval_ro" => 1,
            "script|load" => 2,
            "script|flush" => {
                // The client asked every node to forget its scripts: so
                // does the proxy, so that EVALSHA answers NOSCRIPT as the
                // server does rather than loading the script again.
                self.scripts.forget_all();
                return None;
            }
            "evalsha" | "evalsha_ro" => {
                let sha = command.request.arg_bytes(1)?;
                let first = self.call_inner_or_fan_out(command.clone());
                let scripts = self.scripts.clone();
                let steps = Steps::new(self.clone(), command.clone());
                let command = command.clone();
                return Some(Box::pin(async move {
                    let reply = first.await?;
                    match scripts.body(&sha) {
                        Some(body) if scripts::is_noscript(&reply) => {
                            scripts::reload_and_retry(steps, body, command).await
                        }
                        _ => Ok(reply),
                    }
                }));
            }
            _ => return None,
        };
        if let Some(body) = command.request.arg_bytes(body_at) {
            self.scripts.remember(&body);
        }
        None
    }

    /// The command's own path (one node, or keys in several slots), boxed.
    fn call_inner_or_fan_out(&mut self, command: Command) -> BoxFuture<'static, Result<Reply, Error>> {
        match command.route {
            Some(route) if route.is_single() => Box::pin(self.inner.call(command)),
            _ => self.multi_slot(command),
        }
    }

    /// SCAN over every primary with the proxy's cursor ([`scan`]): the
    /// node at the cursor, and the next ones while each finishes its walk
    /// short of COUNT. The first node's request starts here, in `call`.
    fn scan(&mut self, command: Command, shards: usize) -> BoxFuture<'static, Result<Reply, Error>> {
        let (node_command, mut position) = match scan::start(&command, shards) {
            Ok(started) => started,
            Err(reply) => return Box::pin(future::ready(Ok(Reply::Frame(reply)))),
        };
        let mut call = self.inner.call(node_command);
        let mut inner = self.inner.clone();
        let wanted = scan::count(command.request.args());
        Box::pin(async move {
            let mut keys = Vec::new();
            loop {
                let (next, page) = match scan::finish(call.await?, position, shards)? {
                    scan::Page::Keys(next, page) => (next, page),
                    scan::Page::Refused(reply) => return Ok(reply),
                };
                keys.extend(page);
                if !scan::at_node_start(next) || keys.len() >= wanted {
                    return Ok(Reply::Frame(Frame::Array(vec![
                        Frame::bulk(next.to_string()),
                        Frame::Array(keys),
                    ])));
                }
                let node_command;
                (node_command, position) = match scan::start(&scan::with_cursor(&command, next), shards) {
                    Ok(started) => started,
                    Err(reply) => return Ok(Reply::Frame(reply)),
                };
                call = inner.call(node_command);
            }
        })
    }

    /// A command with keys in several slots: a `multi_shard` one is split
    /// by slot and every part started at once; the others are carried out
    /// in steps ([`moves`], [`colocate`]), pops by [`pops`], stream reads
    /// by [`streams`]; other blocking commands and scripts are refused.
    fn multi_slot(&mut self, command: Command) -> BoxFuture<'static, Result<Reply, Error>> {
        let refuse = |error: Error| -> BoxFuture<'static, Result<Reply, Error>> {
            Box::pin(future::ready(Err(error)))
        };
        let Some(spec) = command.spec.clone() else {
            return refuse(Error::CrossSlot);
        };
        if pops::handles(&spec.name) {
            return self.pops(command, &spec.name);
        }
        if streams::handles(&spec.name) {
            return self.stream_read(command);
        }
        if let Some(error) = unsplittable(&spec, command.request.args()) {
            return refuse(error);
        }
        if spec.request_policy == RequestPolicy::MultiShard {
            if let Some(parts) = split::by_slot(&spec, &command.request) {
                return self.split(command, spec, parts);
            }
        }
        self.in_steps(command)
    }

    /// A pop whose keys span slots ([`pops`]).
    fn pops(&mut self, command: Command, name: &str) -> BoxFuture<'static, Result<Reply, Error>> {
        let name = name.to_owned();
        let (steps, waiting) = self.waiting_steps(command);
        Box::pin(async move { pops::run(steps, waiting, &name).await })
    }

    /// XREAD or XREADGROUP whose streams span slots ([`streams`]).
    fn stream_read(&mut self, command: Command) -> BoxFuture<'static, Result<Reply, Error>> {
        let (steps, waiting) = self.waiting_steps(command);
        Box::pin(streams::read(steps, waiting))
    }

    /// Steps for `command`, and what its requests that block need.
    fn waiting_steps(&mut self, command: Command) -> (Steps<Self>, Waiting) {
        let waiting = Waiting {
            pool: self.router.pool().clone(),
            owner: command.affinity,
            args: command.request.args().to_vec(),
        };
        (Steps::new(self.clone(), command), waiting)
    }

    /// Carries a command out in several requests: [`moves`] for the ones
    /// that change keys in two slots, else [`colocate`].
    fn in_steps(&mut self, command: Command) -> BoxFuture<'static, Result<Reply, Error>> {
        let Some(spec) = command.spec.clone() else {
            return Box::pin(future::ready(Err(Error::CrossSlot)));
        };
        let request = command.request.clone();
        let mut steps = Steps::new(self.clone(), command);
        let limit = self.copy_limit;
        Box::pin(async move {
            if let Some(outcome) = moves::run(&mut steps, &spec.name, &request.args().to_vec()).await {
                return outcome;
            }
            colocate::run(steps, &spec, &request, limit, &|key| {
                bytes::Bytes::copy_from_slice(key)
            })
            .await
        })
    }

    /// Starts every single-slot part of a split command and reassembles
    /// the replies.
    fn split(
        &mut self,
        command: Command,
        spec: Arc<CommandSpec>,
        parts: Vec<split::Part>,
    ) -> BoxFuture<'static, Result<Reply, Error>> {
        // Each part is single-slot; the router routes it as any other request.
        let calls: Vec<S::Future> = parts
            .iter()
            .map(|part| self.inner.call(command.with_request(part.request.clone(), None)))
            .collect();
        Box::pin(async move {
            let replies = steps::into_frames(future::join_all(calls).await).await?;
            Ok(Reply::Frame(match spec.response_policy {
                ResponsePolicy::Default => split::reassemble(&parts, replies),
                policy => merge::by_policy(policy, replies),
            }))
        })
    }
}

/// Why a command with keys in several slots is refused, if it is.
///
/// A blocking command other than those of [`pops`] and [`streams`] (one a
/// module adds) is refused: how to wait for it on several nodes is not
/// known. A script cannot run atomically on several nodes.
fn unsplittable(spec: &CommandSpec, args: resp::Args<'_>) -> Option<Error> {
    let reason = if spec.blocks(args) {
        "a blocking command cannot wait on several nodes; keep its keys in one slot with a hash tag"
    } else if spec.name.starts_with("eval") || spec.name.starts_with("fcall") {
        "a script or function cannot run atomically on several nodes; keep its keys in one slot with a hash tag"
    } else {
        return None;
    };
    Some(Error::Unsplittable {
        command: spec.name.clone(),
        reason,
    })
}

/// Waits for every started call and merges the replies by `policy` (or by
/// the command's own rule when the policy is `special`).
async fn merge_by_policy<F>(
    calls: Vec<F>,
    policy: ResponsePolicy,
    spec: Option<Arc<CommandSpec>>,
) -> Result<Reply, Error>
where
    F: std::future::Future<Output = Result<Reply, Error>>,
{
    let replies = future::join_all(calls).await;
    if policy == ResponsePolicy::Default {
        if let Some(merged) = concatenate_unparsed(&replies) {
            return Ok(Reply::Raw(merged));
        }
    }
    let replies = steps::into_frames(replies).await?;
    Ok(Reply::Frame(merge::for_command(policy, spec.as_deref(), replies)))
}

/// The arrays of every node concatenated without parsing them, when every
/// reply is one, as it came from its node.
fn concatenate_unparsed(replies: &[Result<Reply, Error>]) -> Option<Bytes> {
    let raw: Option<Vec<Bytes>> = replies
        .iter()
        .map(|reply| match reply {
            Ok(Reply::Raw(raw)) => Some(raw.clone()),
            _ => None,
        })
        .collect();
    merge::concatenate_raw(&raw?)
}
