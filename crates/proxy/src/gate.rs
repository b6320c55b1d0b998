//! The gate: every request a session reads passes the same layers,
//! whatever state the client is in.
//!
//! The stack has two parts. The gate is its upper part: the statistics
//! layer and every layer an embedder adds with [`crate::Proxy::layer`].
//! The core below it (namespace, fan-out, router) carries commands out.
//! [`Admission`] stands between the two.
//!
//! A command the stack carries out ([`Purpose::Run`]) goes through both
//! parts. A command the session carries out itself ([`Purpose::Admit`]) goes
//! through the gate only:
//! - one the proxy answers (PING, SELECT, CLIENT, AUTH, PROXY, ...);
//! - one that changes the session (MULTI, EXEC, WATCH, SUBSCRIBE, ...);
//! - one queued in MULTI, which runs with EXEC.
//!
//! [`Admission`] answers such a command [`Reply::Admitted`] without passing
//! it on. Any other answer from the gate refuses it: the client gets that
//! answer, and a refused queued command makes EXEC answer EXECABORT, as
//! Valkey does for a command refused while queueing.
//!
//! So no sequence of commands walks around a layer: a layer that refuses
//! FLUSHALL refuses it in a pipeline, in MULTI and in subscribe mode alike,
//! and the statistics count every command.
//!
//! Secrets stay out of what a layer sees: AUTH and HELLO's AUTH arguments
//! are admitted as `(redacted)`, as Valkey's slow log shows them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{self, Either, Ready};
use futures::task::noop_waker_ref;
use resp::{Frame, Request};
use router::{Command, Purpose, Reply};
use tower::{Layer, Service};

use crate::edge;

/// Adds [`Admission`] below the gate's layers.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdmissionLayer;

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission::new(inner)
    }
}

/// The bottom of the gate: answers [`Reply::Admitted`] to commands that
/// are only to be admitted and passes the others to the core.
#[derive(Clone, Debug)]
pub struct Admission<S> {
    inner: S,
}

impl<S> Admission<S> {
    /// The gate's bottom above `inner`.
    pub fn new(inner: S) -> Self {
        Admission { inner }
    }

    /// The core below.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The core below, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The core below.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<Command> for Admission<S>
where
    S: Service<Command, Response = Reply>,
{
    type Response = Reply;
    type Error = S::Error;
    /// Commands that run keep the core's future as it is.
    type Future = Either<S::Future, Ready<Result<Reply, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, command: Command) -> Self::Future {
        match command.purpose {
            Purpose::Run => Either::Left(self.inner.call(command)),
            Purpose::Admit => Either::Right(future::ready(Ok(Reply::Admitted))),
        }
    }
}

/// What [`crate::commands::handle`] asks before it carries out a command
/// itself.
pub trait Gate {
    /// `None` when the layers let `request` through; else the reply that
    /// refuses it.
    fn admit(&mut self, request: &Request) -> Option<Frame>;
}

/// Lets everything through: for callers that check no policy (tests, and
/// the debug check that a command is not the proxy's own).
#[derive(Clone, Copy, Debug, Default)]
pub struct Open;

impl Gate for Open {
    fn admit(&mut self, _request: &Request) -> Option<Frame> {
        None
    }
}

/// Asks `service` (the whole stack, gate first) whether `command`, which
/// the session carries out itself, may run. `None` lets it through; else
/// the reply that refuses it.
pub fn admit<S>(service: &mut S, mut command: Command) -> Option<Frame>
where
    S: Service<Command, Response = Reply, Error = router::Error>,
    S::Future: Unpin,
{
    command.purpose = Purpose::Admit;
    command.request = redacted(command.request);
    let mut future = service.call(command);
    let mut cx = Context::from_waker(noop_waker_ref());
    match Pin::new(&mut future).poll(&mut cx) {
        Poll::Ready(Ok(Reply::Admitted)) => None,
        Poll::Ready(Ok(refusal)) => Some(refusal.into_frame().unwrap_or_else(|_| {
            Frame::error("ERR proxy: a layer refused the command with an unreadable reply")
        })),
        Poll::Ready(Err(error)) => Some(edge::reply_for(&error)),
        Poll::Pending => Some(Frame::error(
            "ERR proxy: a layer did not decide about this command at once",
        )),
    }
}

/// What stands for a secret in what a layer sees.
const REDACTED: &[u8] = b"(redacted)";

/// `request` with its secrets replaced by `(redacted)`: every argument of
/// AUTH, and the user name and password after HELLO's AUTH.
fn redacted(request: Request) -> Request {
    let secrets: Vec<usize> = if request.is("auth") {
        (1..request.len()).collect()
    } else if request.is("hello") {
        let args = request.args();
        (2..request.len())
            .find(|&i| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"auth")))
            .map(|at| (at + 1..(at + 3).min(request.len())).collect())
            .unwrap_or_default()
    } else {
        return request;
    };
    if secrets.is_empty() {
        return request;
    }
    let args = request.args();
    Request::from_args((0..request.len()).map(|i| {
        if secrets.contains(&i) {
            REDACTED.to_vec()
        } else {
            args.get(i).unwrap_or_default().to_vec()
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(request: &Request) -> Vec<String> {
        (0..request.len())
            .map(|i| String::from_utf8_lossy(request.args().get(i).unwrap_or_default()).into_owned())
            .collect()
    }

    #[test]
    fn secrets_are_redacted() {
        let auth = redacted(Request::from_args(["AUTH", "user", "secret"]));
        assert_eq!(args(&auth), ["AUTH", "(redacted)", "(redacted)"]);
        let hello = redacted(Request::from_args([
            "HELLO", "3", "AUTH", "u", "p", "SETNAME", "n",
        ]));
        assert_eq!(
            args(&hello),
            ["HELLO", "3", "AUTH", "(redacted)", "(redacted)", "SETNAME", "n"]
        );
        let plain = redacted(Request::from_args(["GET", "auth"]));
        assert_eq!(args(&plain), ["GET", "auth"]);
    }
}
