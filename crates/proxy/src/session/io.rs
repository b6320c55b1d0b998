//! The read / dispatch / write loop of a session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{self, BoxFuture};
use resp::{Frame, Limits, Protocol, Request, RequestDecoder};
use router::{Command, Purpose, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::Service;

use super::ordered::InOrder;
use super::{Lane, SessionState};
use crate::clients::Clients;
use crate::commands::{self, Handling, Local};
use crate::config::ProxyConfig;
use crate::edge;
use crate::gate::{self, Gate};
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
    /// How the session treats each command: sent as it comes, alone (a
    /// blocking command), or looked at by [`commands::handle`].
    pub handling: commands::CommandHandling,
}

/// A reply waiting for its turn to be written.
struct Outgoing {
    reply: Result<Reply, router::Error>,
    /// The protocol the client spoke when it sent the request.
    protocol: Protocol,
    /// Close the connection after writing this reply.
    close: bool,
    /// Not written at all (CLIENT REPLY OFF / SKIP).
    silent: bool,
}

type Pending<F> = InOrder<InFlight<F>>;

pin_project_lite::pin_project! {
    /// One request's reply in the making: from the stack, or already known
    /// (answered by the proxy itself). An enum rather than a boxed future:
    /// one allocation less per request.
    #[project = InFlightProjection]
    enum InFlight<F> {
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
    lane: Lane,
) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let info = shared.clients.add(peer, local);
    let id = info.id;
    let kill = info.kill.clone();
    let mut state = SessionState::new(info, shared.config.requires_auth());
    state.affinity = lane.affinity(id);
    state.info.set_affinity(state.affinity);
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
    let mut flow = Flow::Continue;
    let mut deferred: Option<Request> = None;
    // Made once, not per turn of the loop: each one made anew registers
    // with its token when polled and unregisters when dropped.
    let killed = kill.cancelled();
    let shutting_down = shutdown.cancelled();
    tokio::pin!(killed, shutting_down);
    loop {
        if closing && pending.is_empty() {
            break;
        }
        if flow == Flow::Fence && pending.is_empty() {
            // The stateful command answered (or may now start): go on with
            // what is already buffered before reading more.
            flow = dispatch_all(
                &mut decoder,
                &mut input,
                Instant::now(),
                &mut state,
                &shared,
                &mut service,
                &mut pending,
                &mut deferred,
            );
            closing |= flow == Flow::Close;
            continue;
        }
        // Under a fence (a stateful or blocking command running alone) the
        // session still reads, so that a client that leaves is noticed at
        // once and what it held is freed; what it sends meanwhile waits in
        // the buffer, up to the query buffer limit, as on Valkey.
        let can_read = !closing
            && matches!(flow, Flow::Continue | Flow::Fence)
            && pending.len() < shared.config.max_pipeline;
        let subscribed = state.pubsub.is_active();
        let idle_deadline = idle.filter(|_| !subscribed).map(|d| last_read + d);
        let retry_at = state.pubsub.retry_at();
        tokio::select! {
            biased;
            // The replies collected in one pass share one clock reading
            // for their latency.
            close = future::poll_fn(|cx| middleware::with_shared_clock(|| {
                pending.poll_ready(cx, |reply| write_reply(reply, &mut output))
            })),
                if !pending.is_empty() =>
            {
                if over_output_limit(&output, &shared, &state) {
                    break;
                }
                if write.write_all_buf(&mut output).await.is_err() {
                    break;
                }
                if close {
                    break;
                }
            }
            event = state.pubsub.next_event(), if subscribed => {
                forward_events(event, &mut state, &shared, &mut output);
                if over_output_limit(&output, &shared, &state) {
                    break;
                }
                if !output.is_empty() && write.write_all_buf(&mut output).await.is_err() {
                    break;
                }
            }
            read_result = read.read_buf(&mut input), if can_read => {
                match read_result {
                    Ok(0) | Err(_) => break,
                    Ok(_) => last_read = tokio::time::Instant::now(),
                }
                if flow == Flow::Fence {
                    if input.len() > shared.config.query_buffer_limit {
                        tracing::info!(client = state.info.id, bytes = input.len(), "closing a client over the query buffer limit");
                        break;
                    }
                    continue;
                }
                flow = dispatch_all(&mut decoder, &mut input, last_read.into_std(), &mut state, &shared, &mut service, &mut pending, &mut deferred);
                closing |= flow == Flow::Close;
            }
            _ = shared.clients.pause.wait(), if flow == Flow::Paused => {
                flow = Flow::Fence;
            }
            _ = sleep_until(retry_at), if retry_at.is_some() => {
                state.pubsub.restore(&shared.stack.router, state.protocol);
            }
            _ = &mut killed => break,
            _ = &mut shutting_down, if !closing => closing = true,
            _ = sleep_until(idle_deadline), if idle_deadline.is_some() && pending.is_empty() => break,
        }
    }
    // Everything the client held goes now: links, the watch connection,
    // and (dropped with `pending`) any blocked command's connection.
    state.pubsub.clear();
    state.transaction.reset();
    shared.clients.remove(id);
}

/// True when the replies waiting to be written exceed the operator's
/// `client_output_buffer_limit` (Valkey's hard limit): the client is
/// closed, as Valkey closes it. Without a limit set, nothing is ever
/// closed for this; the session writes what it has before it reads more,
/// so what waits is at most one pipeline's replies.
fn over_output_limit(output: &BytesMut, shared: &Shared, state: &SessionState) -> bool {
    let limit = shared.config.client_output_buffer_limit;
    let over = limit > 0 && output.len() > limit;
    if over {
        tracing::info!(
            client = state.info.id,
            bytes = output.len(),
            limit,
            "closing a client over the output buffer limit"
        );
    }
    over
}

/// Most link events handled in one go before the replies are looked at.
const EVENT_BATCH: usize = 64;

/// Handles `event` and whatever else the links have queued, up to a batch:
/// messages go to `output`; a completed subscription reply stops the batch
/// so that it is written before the messages after it.
fn forward_events(
    event: pool::StreamEvent,
    state: &mut SessionState,
    shared: &Shared,
    output: &mut BytesMut,
) {
    let router = &shared.stack.router;
    let mut next = Some(event);
    let mut handled = 0;
    while let Some(event) = next.take() {
        let outcome = state.pubsub.handle(event, router, state.protocol, output);
        handled += 1;
        if outcome.completed || handled >= EVENT_BATCH {
            break;
        }
        next = state.pubsub.try_event();
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => future::pending().await,
    }
}

/// What the session does after a request was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Go on with the next request.
    Continue,
    /// Start nothing more until every reply in flight is written (a
    /// stateful command is running or waiting to run).
    Fence,
    /// Close once the queued replies are written.
    Close,
    /// A CLIENT PAUSE holds the next request (kept in `deferred`).
    Paused,
}

/// Starts the request kept in `deferred`, if any, then decodes every
/// complete request in `input` and starts each one, until a request fences
/// or closes the session. A stateful request that must wait for earlier
/// replies is kept in `deferred`.
#[allow(clippy::too_many_arguments)]
fn dispatch_all<S: StackService>(
    decoder: &mut RequestDecoder,
    input: &mut BytesMut,
    received: Instant,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
    deferred: &mut Option<Request>,
) -> Flow {
    if let Some(request) = deferred.take() {
        let flow = dispatch_one(request, received, state, shared, service, pending, deferred);
        if flow != Flow::Continue {
            return flow;
        }
    }
    // The last command's name, for CLIENT LIST: copied (names are short)
    // rather than kept as a reference-counted slice, as this runs per
    // request. A longer, made-up name is shown cut.
    let mut last_name = [0u8; SHOWN_NAME];
    let mut last_len = None;
    let flow = loop {
        match decoder.decode(input) {
            Ok(Some(request)) => {
                let name = request.name();
                let len = name.len().min(SHOWN_NAME);
                last_name[..len].copy_from_slice(&name[..len]);
                last_len = Some(len);
                let flow = dispatch_one(request, received, state, shared, service, pending, deferred);
                decoder.set_authenticated(state.authenticated);
                if flow != Flow::Continue {
                    break flow;
                }
            }
            Ok(None) => break Flow::Continue,
            Err(error) => {
                if let Some(reply) = error.client_reply() {
                    pending.push_back(ready(Ok(Reply::Raw(reply)), state.protocol, true, false));
                } else {
                    pending.push_back(ready(
                        Ok(Reply::Raw(Default::default())),
                        state.protocol,
                        true,
                        false,
                    ));
                }
                tracing::debug!(client = state.info.id, %error, "protocol error; closing the client");
                break Flow::Close;
            }
        }
    };
    if let Some(len) = last_len {
        state
            .info
            .touch(state.db, state.protocol.version() as u8, &last_name[..len]);
    }
    flow
}

/// Longest command name CLIENT LIST shows.
const SHOWN_NAME: usize = 32;

/// Starts one request, or keeps it in `deferred`: a stateful request while
/// others are in flight waits for them, and any request waits out a CLIENT
/// PAUSE that holds it.
fn dispatch_one<S: StackService>(
    request: Request,
    received: Instant,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
    deferred: &mut Option<Request>,
) -> Flow {
    if paused_for(&request, shared) {
        *deferred = Some(request);
        return Flow::Paused;
    }
    let idle = pending.is_empty();
    let spec = state.recent.lookup(shared.stack.router.table(), &request);
    let plain_state =
        state.authenticated && !state.transaction.in_multi() && !state.pubsub.restricts(state.protocol);
    let handling = match &spec {
        Some(spec) if plain_state => shared.handling.of(spec, &request),
        _ => Handling::Local,
    };
    match handling {
        Handling::Data => {
            // The common case: nothing for the proxy to answer or hold.
            #[cfg(debug_assertions)]
            assert!(
                commands::handle(&request, state, shared, idle, &mut gate::Open).is_none(),
                "{} is answered by the proxy but missing from commands::PLAIN",
                String::from_utf8_lossy(request.name())
            );
            return start(request, None, (spec, received), state, shared, service, pending);
        }
        Handling::Blocking if !idle => {
            *deferred = Some(request);
            return Flow::Fence;
        }
        Handling::Blocking => {
            let alone = Some(Local::Alone);
            return start(request, alone, (spec, received), state, shared, service, pending);
        }
        Handling::Local => {}
    }
    let mut gate = SessionGate {
        service: &mut *service,
        protocol: state.protocol,
        db: state.db,
        affinity: state.affinity,
        received,
        spec: spec.clone(),
    };
    match commands::handle(&request, state, shared, idle, &mut gate) {
        Some(Local::Wait) if !idle => {
            *deferred = Some(request);
            Flow::Fence
        }
        local => start(request, local, (spec, received), state, shared, service, pending),
    }
}

/// The gate as [`commands::handle`] asks it about one request of this
/// session, with the session's state as the request found it.
struct SessionGate<'a, S> {
    service: &'a mut S,
    protocol: Protocol,
    db: u32,
    affinity: u64,
    received: Instant,
    spec: Option<Arc<router::CommandSpec>>,
}

impl<S: StackService> Gate for SessionGate<'_, S> {
    fn admit(&mut self, request: &Request) -> Option<Frame> {
        gate::admit(
            self.service,
            Command {
                request: request.clone(),
                protocol: self.protocol,
                db: self.db,
                spec: self.spec.clone(),
                route: None,
                affinity: self.affinity,
                received: Some(self.received),
                purpose: Purpose::Admit,
            },
        )
    }
}

/// True when a CLIENT PAUSE in force holds `request` (every command, or
/// only writes with `WRITE`). One atomic load when nothing is paused.
fn paused_for(request: &Request, shared: &Shared) -> bool {
    let Some((_, writes_only)) = shared.clients.pause.remaining() else {
        return false;
    };
    if !writes_only {
        // CLIENT UNPAUSE itself must get through.
        return !commands::client::is_unpause(request);
    }
    shared
        .stack
        .router
        .table()
        .lookup(request)
        .is_some_and(|spec| spec.flags.contains(router::command::Flags::WRITE))
}

/// What the session already knows of a request it passes down: the
/// command's spec, and when the request was read.
type Known = (Option<Arc<router::CommandSpec>>, Instant);

/// Queues the reply of a request: the proxy's own answer, or the stack's.
/// Inlined: it runs per request, and a call would move the request and
/// what is known of it once more.
#[inline(always)]
fn start<S: StackService>(
    request: Request,
    local: Option<Local>,
    known: Known,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
) -> Flow {
    let protocol = state.protocol;
    let silent = state.take_silence();
    match local {
        Some(Local::Reply(frame)) => {
            pending.push_back(ready(Ok(Reply::Frame(frame)), protocol, false, silent));
            Flow::Continue
        }
        Some(Local::Close(frame)) => {
            pending.push_back(ready(Ok(Reply::Frame(frame)), protocol, true, silent));
            Flow::Close
        }
        Some(Local::Later(future)) => {
            pending.push_back(InFlight::Later {
                future,
                protocol,
                silent,
            });
            Flow::Fence
        }
        // Only asked for while replies are in flight, which `dispatch_one`
        // rules out; answered rather than trusted.
        Some(Local::Wait) => {
            let error = Frame::error("ERR proxy: internal ordering error; please retry");
            pending.push_back(ready(Ok(Reply::Frame(error)), protocol, false, silent));
            Flow::Continue
        }
        Some(Local::Alone) => {
            forward(request, known, state, shared, service, pending, silent);
            Flow::Fence
        }
        None => {
            forward(request, known, state, shared, service, pending, silent);
            Flow::Continue
        }
    }
}

/// Sends a request down the stack and queues its reply (inlined, as
/// [`start`]).
#[inline(always)]
fn forward<S: StackService>(
    request: Request,
    (spec, received): Known,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
    silent: bool,
) {
    let protocol = state.protocol;
    if state.pubsub.tracking().is_some() {
        let topology = shared.stack.router.topology().current();
        let emulated =
            middleware::namespace::emulates(topology.mode(), topology.databases()) && state.db != 0;
        let space = emulated.then(|| middleware::Space::database(state.db));
        if let Some(tracking) = state.pubsub.tracking_mut() {
            tracking.note_request(&request, &shared.stack.router, space.as_ref());
        }
    }
    let command = Command {
        request,
        protocol,
        db: state.db,
        spec,
        route: None,
        affinity: state.affinity,
        received: Some(received),
        purpose: Purpose::Run,
    };
    // Every layer of the stack is always ready (see DESIGN.md), so `call`
    // needs no `poll_ready` first.
    pending.push_back(InFlight::Stack {
        future: service.call(command),
        protocol,
        silent,
    });
}

fn ready<F>(
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
fn write_reply(outgoing: Outgoing, output: &mut BytesMut) -> bool {
    if outgoing.silent {
        return outgoing.close;
    }
    match outgoing.reply {
        Ok(Reply::Raw(raw)) => output.extend_from_slice(&raw),
        Ok(Reply::Frame(frame)) => frame.encode(outgoing.protocol, output),
        // Not a reply: only a layer that passes a command it should have
        // answered returns it. An error, never a silent success.
        Ok(reply @ Reply::Admitted) => {
            if let Ok(frame) = reply.into_frame() {
                frame.encode(outgoing.protocol, output)
            }
        }
        Err(error) => edge::reply_for(&error).encode(outgoing.protocol, output),
    }
    outgoing.close
}
