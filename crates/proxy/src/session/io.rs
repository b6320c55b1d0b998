//! The read / dispatch / write loop of a session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future;
use resp::{Limits, Protocol, Request, RequestDecoder};
use router::{Command, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::ordered::InOrder;
use super::SessionState;
use crate::clients::Clients;
use crate::commands::{self, Local};
use crate::config::ProxyConfig;
use crate::edge;
use crate::stack::Stack;

/// Initial read buffer; it grows for large requests.
const READ_BUFFER: usize = 16 * 1024;

/// What every session shares.
#[derive(Debug)]
pub struct Shared {
    /// The assembled stack.
    pub stack: Stack,
    /// Connected clients.
    pub clients: Clients,
    /// The configuration.
    pub config: Arc<ProxyConfig>,
    /// When the proxy started.
    pub started: Instant,
}

/// A reply waiting for its turn to be written.
struct Outgoing {
    reply: Result<Reply, router::Error>,
    /// The protocol the client spoke when it sent the request.
    protocol: Protocol,
    /// Close the connection after writing this reply.
    close: bool,
}

type Pending<F> = InOrder<InFlight<F>>;

pin_project_lite::pin_project! {
    /// One request's reply in the making: from the stack, or already known
    /// (answered by the proxy itself). An enum rather than a boxed future:
    /// one allocation less per request.
    #[project = InFlightProjection]
    enum InFlight<F> {
        Stack { #[pin] future: F, protocol: Protocol },
        Ready { outgoing: Option<Outgoing> },
    }
}

impl<F> Future for InFlight<F>
where
    F: Future<Output = Result<Reply, router::Error>>,
{
    type Output = Outgoing;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outgoing> {
        match self.project() {
            InFlightProjection::Stack { future, protocol } => future.poll(cx).map(|reply| Outgoing {
                reply,
                protocol: *protocol,
                close: false,
            }),
            InFlightProjection::Ready { outgoing } => match outgoing.take() {
                Some(outgoing) => Poll::Ready(outgoing),
                None => Poll::Pending,
            },
        }
    }
}

/// The service a session sends commands to: the assembled
/// [`crate::stack::Core`] stack,
/// or that stack wrapped in the embedder's own layers.
pub trait StackService:
    Service<Command, Response = Reply, Error = router::Error, Future = Self::Fut> + Clone + Send + 'static
{
    /// The service's future. `Unpin`, so that the session can keep the
    /// futures of a client's requests in a plain queue.
    type Fut: Future<Output = Result<Reply, router::Error>> + Send + Unpin + 'static;
}

impl<S> StackService for S
where
    S: Service<Command, Response = Reply, Error = router::Error> + Clone + Send + 'static,
    S::Future: Send + Unpin + 'static,
{
    type Fut = S::Future;
}

/// Serves one client until it disconnects, is killed, or `shutdown` fires
/// (then the replies in flight are written first). Every layer of `service`
/// must be always ready (see DESIGN.md): `call` is used without
/// `poll_ready`, so that each request is started in arrival order.
pub async fn serve<S: StackService>(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut service: S,
    shutdown: CancellationToken,
) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let info = shared.clients.add(peer, local);
    let id = info.id;
    let kill = info.kill.clone();
    let mut state = SessionState::new(info, shared.config.requires_auth());
    let limits = Limits {
        max_bulk_len: shared.config.max_bulk_len,
        max_query_buffer: shared.config.query_buffer_limit,
        ..Limits::default()
    };
    let mut decoder = RequestDecoder::new(limits);
    decoder.set_authenticated(state.authenticated);
    let (mut read, mut write) = stream.into_split();
    let mut input = BytesMut::with_capacity(READ_BUFFER);
    let mut output = BytesMut::with_capacity(READ_BUFFER);
    let mut pending = Pending::new();
    let mut closing = false;
    let idle = match shared.config.client_idle_timeout_secs {
        0 => None,
        secs => Some(Duration::from_secs(secs)),
    };
    let mut last_read = tokio::time::Instant::now();
    loop {
        if closing && pending.is_empty() {
            break;
        }
        let can_read = !closing && pending.len() < shared.config.max_pipeline;
        let idle_deadline = idle.map(|d| last_read + d);
        tokio::select! {
            biased;
            close = future::poll_fn(|cx| pending.poll_ready(cx, |reply| write_reply(reply, &mut output))),
                if !pending.is_empty() =>
            {
                if write.write_all_buf(&mut output).await.is_err() {
                    break;
                }
                if close {
                    break;
                }
            }
            read_result = read.read_buf(&mut input), if can_read => {
                match read_result {
                    Ok(0) | Err(_) => break,
                    Ok(_) => last_read = tokio::time::Instant::now(),
                }
                closing = dispatch_all(&mut decoder, &mut input, &mut state, &shared, &mut service, &mut pending);
            }
            _ = kill.cancelled() => break,
            _ = shutdown.cancelled(), if !closing => closing = true,
            _ = sleep_until(idle_deadline), if idle_deadline.is_some() && pending.is_empty() => break,
        }
    }
    shared.clients.remove(id);
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => future::pending().await,
    }
}

/// Decodes every complete request in `input` and starts each one. Returns
/// true when the connection must close once the queued replies are written.
fn dispatch_all<S: StackService>(
    decoder: &mut RequestDecoder,
    input: &mut BytesMut,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
) -> bool {
    let mut last_command = None;
    let closing = loop {
        match decoder.decode(input) {
            Ok(Some(request)) => {
                // A reference to the name, not a copy: this runs per request.
                last_command = request.arg(0).cloned();
                if dispatch(request, state, shared, service, pending) {
                    break true;
                }
                decoder.set_authenticated(state.authenticated);
            }
            Ok(None) => break false,
            Err(error) => {
                if let Some(reply) = error.client_reply() {
                    pending.push_back(ready(Ok(Reply::Raw(reply)), state.protocol, true));
                } else {
                    pending.push_back(ready(Ok(Reply::Raw(Default::default())), state.protocol, true));
                }
                tracing::debug!(client = state.info.id, %error, "protocol error; closing the client");
                break true;
            }
        }
    };
    if let Some(name) = last_command {
        state.info.touch(state.db, state.protocol.version() as u8, &name);
    }
    closing
}

/// Starts one request. Returns true when the connection must close after it.
fn dispatch<S: StackService>(
    request: Request,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
) -> bool {
    let protocol = state.protocol;
    match commands::handle(&request, state, shared) {
        Some(Local::Reply(frame)) => {
            pending.push_back(ready(Ok(Reply::Frame(frame)), protocol, false));
            false
        }
        Some(Local::Close(frame)) => {
            pending.push_back(ready(Ok(Reply::Frame(frame)), protocol, true));
            true
        }
        None => {
            let command = Command {
                request,
                protocol,
                db: state.db,
                spec: None,
                route: None,
                affinity: state.info.id,
            };
            // Every layer of the stack is always ready (see DESIGN.md), so
            // `call` needs no `poll_ready` first.
            pending.push_back(InFlight::Stack {
                future: service.call(command),
                protocol,
            });
            false
        }
    }
}

fn ready<F>(reply: Result<Reply, router::Error>, protocol: Protocol, close: bool) -> InFlight<F> {
    InFlight::Ready {
        outgoing: Some(Outgoing {
            reply,
            protocol,
            close,
        }),
    }
}

/// Appends one reply to the output buffer; returns its close flag.
fn write_reply(outgoing: Outgoing, output: &mut BytesMut) -> bool {
    match outgoing.reply {
        Ok(Reply::Raw(raw)) => output.extend_from_slice(&raw),
        Ok(Reply::Frame(frame)) => frame.encode(outgoing.protocol, output),
        Err(error) => edge::reply_for(&error).encode(outgoing.protocol, output),
    }
    outgoing.close
}
