//! The gate: every request a session reads passes the same layers,
//! whatever state the client is in.
//!
//! The layers are the statistics layer and every layer an embedder adds
//! with [`crate::Proxy::layer`]. The proxy builds them twice, over two
//! different bottoms ([`crate::session::Stacks`]):
//! - over the stack that carries commands out (namespace, fan-out, router),
//!   for a command the stack runs ([`Purpose::Run`]);
//! - over [`AdmitAll`], for a command the session carries out itself
//!   ([`Purpose::Admit`]).
//!
//! The second kind is:
//! - a command the proxy answers (PING, SELECT, CLIENT, AUTH, PROXY, ...);
//! - one that changes the session (MULTI, EXEC, WATCH, SUBSCRIBE, ...);
//! - one queued in MULTI, which runs with EXEC.
//!
//! [`AdmitAll`] answers such a command [`Reply::Admitted`]. Any other answer
//! from the layers refuses it: the client gets that answer. A refused queued
//! command makes EXEC answer EXECABORT, as Valkey does for a command refused
//! while queueing; a refused EXEC discards the transaction.
//!
//! So no sequence of commands walks around a layer: a layer that refuses
//! FLUSHALL refuses it in a pipeline, in MULTI and in subscribe mode alike,
//! and the statistics count every command. Two stacks rather than one
//! with a switch at its bottom keep the path of a command that runs exactly
//! what it was: a switch there cost 55 instructions per request
//! (docs/PERFORMANCE.md, "The gate").
//!
//! Secrets stay out of what a layer sees: AUTH and HELLO's AUTH arguments
//! are admitted as `(redacted)`, as Valkey's slow log shows them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{self, Ready};
use futures::task::noop_waker_ref;
use resp::{Frame, Request};
use router::{Command, Purpose, Reply};
use tower::Service;

use crate::edge;

/// The bottom of the gate: admits every command that reaches it, and runs
/// none. Always ready, and cheap to clone.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdmitAll;

impl Service<Command> for AdmitAll {
    type Response = Reply;
    type Error = router::Error;
    type Future = Ready<Result<Reply, router::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), router::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, command: Command) -> Self::Future {
        future::ready(Ok(match command.purpose {
            Purpose::Admit => Reply::Admitted,
            // Only the session calls the gate, with commands to admit.
            Purpose::Run => Reply::Frame(Frame::error("ERR proxy: the gate does not run commands")),
        }))
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
pub(crate) const REDACTED: &[u8] = b"(redacted)";

/// Settings whose values are passwords: CONFIG SET shows them redacted.
const SECRET_SETTINGS: [&[u8]; 4] = [
    b"requirepass",
    b"masterauth",
    b"tls-key-file-pass",
    b"tls-client-key-file-pass",
];

/// The arguments that are secrets, as Valkey redacts them: AUTH's,
/// HELLO's after AUTH, MIGRATE's after AUTH or AUTH2, ACL SETUSER's
/// password rules (`>pass`, `<pass`, `#hash`, `!hash`), and the values
/// CONFIG SET gives password settings.
pub(crate) fn secrets(request: &Request) -> Vec<usize> {
    let args = request.args();
    let at =
        |word: &[u8]| (1..request.len()).find(|&i| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word)));
    let following = |from: usize, count: usize| (from + 1..(from + 1 + count).min(request.len())).collect();
    if request.is("auth") {
        (1..request.len()).collect()
    } else if request.is("hello") {
        at(b"auth").map_or_else(Vec::new, |i| following(i, 2))
    } else if request.is("acl")
        && args
            .get(1)
            .is_some_and(|sub| sub.eq_ignore_ascii_case(b"setuser"))
    {
        (3..request.len())
            .filter(|&i| {
                matches!(
                    args.get(i).and_then(|rule| rule.first()),
                    Some(b'>' | b'<' | b'#' | b'!')
                )
            })
            .collect()
    } else if request.is("config") && args.get(1).is_some_and(|sub| sub.eq_ignore_ascii_case(b"set")) {
        (2..request.len())
            .step_by(2)
            .filter(|&i| {
                let name = args.get(i).unwrap_or_default();
                SECRET_SETTINGS
                    .iter()
                    .any(|secret| name.eq_ignore_ascii_case(secret))
            })
            .map(|i| i + 1)
            .filter(|&i| i < request.len())
            .collect()
    } else if request.is("migrate") {
        match (at(b"auth"), at(b"auth2")) {
            (Some(i), _) => following(i, 1),
            (_, Some(i)) => following(i, 2),
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    }
}

/// `request` with its [`secrets`] replaced by `(redacted)`.
pub(crate) fn redacted(request: Request) -> Request {
    let secrets = secrets(&request);
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
        let setuser = redacted(Request::from_args(["ACL", "SETUSER", "u", "on", ">pw", "~*"]));
        assert_eq!(args(&setuser), ["ACL", "SETUSER", "u", "on", "(redacted)", "~*"]);
        let config = redacted(Request::from_args([
            "CONFIG",
            "SET",
            "maxmemory",
            "1",
            "requirepass",
            "pw",
        ]));
        assert_eq!(
            args(&config),
            ["CONFIG", "SET", "maxmemory", "1", "requirepass", "(redacted)"]
        );
        let plain = redacted(Request::from_args(["GET", "auth"]));
        assert_eq!(args(&plain), ["GET", "auth"]);
    }
}
