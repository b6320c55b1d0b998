//! A request's reply on its way to the client: [`InFlight`] while it is
//! made, [`Outgoing`] once known, and how it is written.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use resp::Protocol;
use router::{Command, Reply};
use tower::Service;

use super::ordered::InOrder;
use super::output::ClientOutput;
use crate::edge;

/// A reply waiting for its turn to be written.
pub(super) struct Outgoing {
    reply: Result<Reply, router::Error>,
    /// The protocol the client spoke when it sent the request.
    protocol: Protocol,
    /// Close the connection after writing this reply.
    close: bool,
    /// Not written at all (CLIENT REPLY OFF / SKIP).
    silent: bool,
}

/// The replies a session waits for, each with its request when the slow
/// log is on ([`Watched`]).
pub(super) type Pending<F> = InOrder<InFlight<F>, Watched>;

/// A request kept until its reply, for the slow log ([`crate::slowlog`]):
/// a reference to the bytes the session read (not a copy), decoded again
/// only if the reply was slow.
#[derive(Debug)]
pub(super) struct Watched {
    pub(super) raw: bytes::Bytes,
    pub(super) received: std::time::Instant,
    /// From when its reply is slow enough for the log.
    pub(super) slow_from: std::time::Instant,
}

pin_project_lite::pin_project! {
    /// One request's reply in the making: from the stack, or already known
    /// (answered by the proxy itself). An enum rather than a boxed future:
    /// one allocation less per request.
    #[project = InFlightProjection]
    pub(super) enum InFlight<F> {
        Stack { #[pin] future: F, protocol: Protocol, silent: bool },
        Ready { outgoing: Option<Outgoing> },
        Later { future: BoxFuture<'static, Result<Reply, router::Error>>, protocol: Protocol, silent: bool },
    }
}

// The session moves each request's `InFlight` into its queue and out of
// it; past 128 bytes each move is a `memcpy` call (docs/PERFORMANCE.md,
// "The size of a command").
const _: () =
    assert!(std::mem::size_of::<InFlight<<crate::stack::Core as Service<Command>>::Future>>() <= 128);

impl<F> Future for InFlight<F>
where
    F: Future<Output = Result<Reply, router::Error>>,
{
    type Output = Outgoing;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outgoing> {
        match self.project() {
            InFlightProjection::Stack {
                future,
                protocol,
                silent,
            } => future.poll(cx).map(|reply| Outgoing {
                reply,
                protocol: *protocol,
                close: false,
                silent: *silent,
            }),
            InFlightProjection::Later {
                future,
                protocol,
                silent,
            } => future.as_mut().poll(cx).map(|reply| Outgoing {
                reply,
                protocol: *protocol,
                close: false,
                silent: *silent,
            }),
            InFlightProjection::Ready { outgoing } => match outgoing.take() {
                Some(outgoing) => Poll::Ready(outgoing),
                None => Poll::Pending,
            },
        }
    }
}
pub(super) fn ready<F>(
    reply: Result<Reply, router::Error>,
    protocol: Protocol,
    close: bool,
    silent: bool,
) -> InFlight<F> {
    InFlight::Ready {
        outgoing: Some(Outgoing {
            reply,
            protocol,
            close,
            silent,
        }),
    }
}

/// Appends one reply to the output buffer (unless it is silenced); returns
/// its close flag.
impl Outgoing {
    /// The reply, or the error that stands for it.
    pub(super) fn reply(&self) -> &Result<Reply, router::Error> {
        &self.reply
    }
}

pub(super) fn write_reply(outgoing: Outgoing, output: &mut ClientOutput) -> bool {
    if outgoing.silent {
        return outgoing.close;
    }
    match outgoing.reply {
        Ok(Reply::Raw(raw)) => output.push(raw),
        Ok(Reply::Frame(frame)) => frame.encode(outgoing.protocol, output.buffer()),
        // Not a reply: only a layer that passes a command it should have
        // answered returns it. An error, never a silent success.
        Ok(reply @ Reply::Admitted) => {
            if let Ok(frame) = reply.into_frame() {
                frame.encode(outgoing.protocol, output.buffer())
            }
        }
        Err(error) => edge::reply_for(&error).encode(outgoing.protocol, output.buffer()),
    }
    outgoing.close
}
