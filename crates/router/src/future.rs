//! [`RouterFuture`]: the router's future. The common case, one attempt
//! answered with a plain reply, allocates nothing; redirects and retries
//! continue in a boxed future, where their rarity makes the box free.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use pool::PendingReply;

use crate::redirect::classify;
use crate::{Command, Error, Reply, Router};

/// The future [`Router`] returns from `call`.
pub struct RouterFuture {
    state: State,
}

enum State {
    /// The first attempt is on its way.
    Attempt {
        /// What a retry needs of the router (a clone of it would carry
        /// its caches too: 56 bytes instead of 8).
        router: Arc<crate::service::Inner>,
        command: Retained,
        /// Knows the node it went to (for a redirect relative to it).
        pending: PendingReply,
    },
    /// Redirects or retries are being followed.
    Redirected(BoxFuture<'static, Result<Reply, Error>>),
    /// The request could not be routed.
    Failed(Option<Error>),
}

/// What a request in flight keeps for a retry: its raw bytes and
/// connection state, without the argument offsets and the route (moved
/// with every future on the common path, so kept small). A retry decodes
/// the arguments again and routes afresh.
struct Retained {
    raw: bytes::Bytes,
    protocol: resp::Protocol,
    db: u32,
    spec: Option<Arc<crate::CommandSpec>>,
    affinity: u64,
}

impl Retained {
    fn from(command: Command) -> Self {
        let raw = command.request.into_raw();
        Retained {
            raw,
            protocol: command.protocol,
            db: command.db,
            spec: command.spec,
            affinity: command.affinity,
        }
    }

    fn into_command(self) -> Option<Command> {
        Some(Command {
            request: resp::Request::from_raw(&self.raw)?,
            protocol: self.protocol,
            db: self.db,
            spec: self.spec,
            route: None,
            affinity: self.affinity,
            received: None,
            purpose: crate::Purpose::Run,
            // Below the namespace layer: the keys are already the tenant's.
            tenant: 0,
        })
    }
}

impl RouterFuture {
    pub(crate) fn new(
        router: Arc<crate::service::Inner>,
        command: Command,
        first: Result<PendingReply, Error>,
    ) -> Self {
        let state = match first {
            Ok(pending) => State::Attempt {
                router,
                command: Retained::from(command),
                pending,
            },
            Err(error) => State::Failed(Some(error)),
        };
        RouterFuture { state }
    }
}

impl std::fmt::Debug for RouterFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Attempt { pending, .. } => {
                format!("waiting for {}", pending.addr().map_or("?", |addr| &**addr))
            }
            State::Redirected(_) => "following redirects".to_string(),
            State::Failed(_) => "failed".to_string(),
        };
        f.debug_struct("RouterFuture").field("state", &state).finish()
    }
}

impl Future for RouterFuture {
    type Output = Result<Reply, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Failed(error) => return Poll::Ready(Err(error.take().unwrap_or(Error::NoBackend))),
                State::Redirected(future) => return future.as_mut().poll(cx),
                State::Attempt { pending, .. } => {
                    let outcome = match Pin::new(&mut *pending).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(outcome) => outcome,
                    };
                    if let Ok(reply) = &outcome {
                        if classify(reply, pending.addr().map_or("", |addr| addr)).is_none() {
                            this.state = State::Failed(None);
                            return Poll::Ready(outcome.map(Reply::Raw).map_err(Error::Backend));
                        }
                    }
                    let State::Attempt {
                        router,
                        command,
                        pending,
                    } = std::mem::replace(&mut this.state, State::Failed(None))
                    else {
                        return Poll::Ready(Err(Error::NoBackend));
                    };
                    // Only a reply (not a lost request, which is routed
                    // afresh) is read relative to the node that sent it.
                    let target = pending.addr().cloned().unwrap_or_else(|| "".into());
                    this.state = match command.into_command() {
                        Some(command) => State::Redirected(Box::pin(
                            Router::from_inner(router).finish(command, target, outcome),
                        )),
                        None => {
                            State::Failed(Some(Error::InvalidReply("request could not be re-read".into())))
                        }
                    };
                }
            }
        }
    }
}
