//! [`FanOut`]: passes single-node requests through untouched and fans the
//! others out by Valkey's request and response policies.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{self, BoxFuture, Either};
use resp::Frame;
use router::command::{RequestPolicy, ResponsePolicy};
use router::{Command, Error, Reply, Route, Router};
use tower::{Layer, Service, ServiceExt};

use crate::{merge, split};

/// Wraps the service below it (normally the [`Router`]) with fan-out.
#[derive(Clone, Debug)]
pub struct FanOutLayer {
    router: Router,
}

impl FanOutLayer {
    /// A layer that decides routes with `router`'s table and topology.
    pub fn new(router: Router) -> Self {
        FanOutLayer { router }
    }
}

impl<S> Layer<S> for FanOutLayer {
    type Service = FanOut<S>;

    fn layer(&self, inner: S) -> FanOut<S> {
        FanOut::new(inner, self.router.clone())
    }
}

/// The fan-out service. Routes are decided once here and carried down in
/// [`Command::route`], so the router does not decide them again.
#[derive(Clone, Debug)]
pub struct FanOut<S> {
    inner: S,
    router: Router,
}

impl<S> FanOut<S> {
    /// Fan-out over `inner`, deciding routes with `router`.
    pub fn new(inner: S, router: Router) -> Self {
        FanOut { inner, router }
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
        let topology = self.router.topology().snapshot();
        let route = match self.router.prepare(&mut command, &topology) {
            Ok(route) => route,
            Err(error) => return Either::Right(Box::pin(future::ready(Err(error)))),
        };
        if route.is_single() {
            return Either::Left(self.inner.call(command));
        }
        let inner = self.inner.clone();
        match route {
            Route::AllShards(policy) => {
                let targets = (0..topology.shards().len()).map(|shard| Route::Node { shard, replica: None });
                Either::Right(Box::pin(broadcast(inner, command, targets.collect(), policy)))
            }
            Route::AllNodes(policy) => {
                let targets = topology.shards().iter().enumerate().flat_map(|(shard, s)| {
                    std::iter::once(None)
                        .chain((0..s.replicas.len()).map(Some))
                        .map(move |replica| Route::Node { shard, replica })
                });
                Either::Right(Box::pin(broadcast(inner, command, targets.collect(), policy)))
            }
            _ => Either::Right(Box::pin(multi_slot(inner, command))),
        }
    }
}

/// Sends the same command to every target and merges by `policy`.
async fn broadcast<S>(
    inner: S,
    command: Command,
    targets: Vec<Route>,
    policy: ResponsePolicy,
) -> Result<Reply, Error>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let calls = targets.into_iter().map(|route| {
        let sub = command.with_request(command.request.clone(), Some(route));
        inner.clone().oneshot(sub)
    });
    let replies = collect_frames(future::join_all(calls).await)?;
    Ok(Reply::Frame(merge::by_policy(policy, replies)))
}

/// Splits a `multi_shard` command by slot, or refuses with CROSSSLOT.
async fn multi_slot<S>(inner: S, command: Command) -> Result<Reply, Error>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Some(spec) = command.spec.clone() else {
        return Err(Error::CrossSlot);
    };
    if spec.request_policy != RequestPolicy::MultiShard {
        return Err(Error::CrossSlot);
    }
    let Some(parts) = split::by_slot(&spec, &command.request) else {
        return Err(Error::CrossSlot);
    };
    let parts = Arc::new(parts);
    // Each part is single-slot; the router routes it as any other request.
    let calls = parts.iter().map(|part| {
        inner
            .clone()
            .oneshot(command.with_request(part.request.clone(), None))
    });
    let replies = collect_frames(future::join_all(calls).await)?;
    let merged = match spec.response_policy {
        ResponsePolicy::Default => split::reassemble(&parts, replies),
        policy => merge::by_policy(policy, replies),
    };
    Ok(Reply::Frame(merged))
}

fn collect_frames(replies: Vec<Result<Reply, Error>>) -> Result<Vec<Frame>, Error> {
    replies
        .into_iter()
        .map(|reply| reply.and_then(|r| r.into_frame().map_err(|e| Error::InvalidReply(e.to_string()))))
        .collect()
}
