//! [`Connection`]: one multiplexed, pipelined socket to one node.
//!
//! Two tasks own the socket. Requests are copied into the exchange's queue
//! as they are sent; the writer takes the whole queue at once, records what
//! each request expects in the in-flight FIFO, and writes it in one go
//! (write coalescing). The reader scans replies with
//! [`resp::ReplyDecoder`] and completes in-flight entries in order. When
//! either side fails, every request still in flight gets
//! [`Error::ConnectionLost`] with `sent: true`, every queued one gets it with
//! `sent: false`, and the connection reports itself dead so the pool opens a
//! new one.
//!
//! A connection can also learn the id the node gave it
//! ([`Connection::learn_backend_id`]): a connection blocked in a command
//! answers nothing else, so unblocking it (CLIENT UNBLOCK) goes through
//! another connection and needs that id.
//!
//! A *stream* connection ([`Connection::open_stream`]) matches nothing: every
//! frame the node sends goes to a channel as a [`StreamEvent`], and its end is
//! one last event. Subscriptions and MONITOR use it, where the node speaks
//! without being asked.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use resp::{Limits, ReplyDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::exchange::{Exchange, BACKEND_ID_SLOT};
use crate::outbox::{InFlight, Outbox};
use crate::watchdog::{self, RequestTimeout, Verdict};
use crate::{handshake, lock, Endpoint, Error, PoolConfig, PoolStats};

/// Initial size of the read buffer.
const READ_BUFFER: usize = 16 * 1024;

/// What [`Connection::learn_backend_id`] sends.
const CLIENT_ID: &[u8] = b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";
/// [`Shared::backend_id`] before the node answered.
const ID_UNKNOWN: u64 = 0;
/// [`Shared::backend_id`] when the node refused to tell (an ACL, say).
const ID_REFUSED: u64 = u64::MAX;

/// What a stream connection reports: a frame, or its end.
#[derive(Debug)]
pub struct StreamEvent {
    /// The tag given to [`Connection::open_stream`], telling the
    /// connections that share one channel apart.
    pub tag: u64,
    /// A complete frame as the node sent it; `None` when the connection
    /// ended (failed to connect, lost, or closed). No event follows it.
    pub frame: Option<Bytes>,
}

/// Where a stream connection's frames go.
#[derive(Debug)]
struct Sink {
    tag: u64,
    events: mpsc::Sender<StreamEvent>,
}

/// State both tasks and all handles share.
struct Shared {
    endpoint: Endpoint,
    alive: AtomicBool,
    /// Set when the connect or handshake failed (the pool backs off).
    connect_error: Mutex<Option<Error>>,
    in_flight: Mutex<VecDeque<InFlight>>,
    /// Requests for the writer and reply slots for the callers.
    exchange: Mutex<Exchange>,
    shutdown: CancellationToken,
    stats: Arc<PoolStats>,
    /// Set on a stream connection.
    sink: Option<Sink>,
    /// The node's id for this connection ([`ID_UNKNOWN`] until it answered
    /// [`CLIENT_ID`], [`ID_REFUSED`] if it would not).
    backend_id: AtomicU64,
    /// [`CLIENT_ID`] was queued.
    backend_id_asked: AtomicBool,
    /// Woken when `backend_id` is known or the connection ends.
    backend_id_known: Notify,
    /// The pool's request timeout ([`crate::watchdog`]).
    timeout: Arc<RequestTimeout>,
    /// False for a dedicated or stream connection, whose commands may
    /// block on purpose: no request timeout.
    timed: AtomicBool,
    /// Reads from the node so far: the watchdog's sign of life.
    reads: AtomicU64,
    /// The node left the topology: no new requests; closed once idle.
    retired: AtomicBool,
    /// The watchdog closed the connection: the node owed replies and sent
    /// nothing for this long (the error of the requests it carried).
    silent_for: Mutex<Option<std::time::Duration>>,
}

impl watchdog::Watched for Shared {
    fn limit(&self) -> Option<std::time::Duration> {
        self.timed
            .load(Ordering::Relaxed)
            .then(|| self.timeout.get())
            .flatten()
    }

    fn progress(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn owes_replies(&self) -> bool {
        !lock(&self.in_flight).is_empty() || !lock(&self.exchange).nothing_queued()
    }

    fn retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}

/// A handle to a multiplexed backend connection. Cheap to clone; the socket
/// closes when the last handle is dropped (once what is queued is written)
/// or when it fails.
///
/// The queue is unbounded so that [`Connection::send`] enqueues at once,
/// without awaiting: requests a client sends in order reach the node in that
/// order. What bounds it is upstream: each client has at most
/// `max_pipeline` requests in flight, and there are at most `max_clients`.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Handle>,
}

/// What a [`Connection`] handle holds, behind one `Arc` so that a clone per
/// request costs one atomic increment.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let writer = lock(&self.shared.exchange).abandon_all();
        if let Some(writer) = writer {
            writer.wake();
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.inner.shared.endpoint)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Connection {
    /// Starts connecting to `endpoint` in the background and returns at once;
    /// requests sent before the handshake completes wait in the queue.
    pub fn open(endpoint: Endpoint, config: Arc<PoolConfig>, stats: Arc<PoolStats>) -> Connection {
        let timeout = Arc::new(RequestTimeout::new(config.request_timeout));
        Connection::start(endpoint, config, stats, timeout, None)
    }

    /// [`Connection::open`] with a request timeout that can change while
    /// the connection lives (the pool's).
    pub(crate) fn open_timed(
        endpoint: Endpoint,
        config: Arc<PoolConfig>,
        stats: Arc<PoolStats>,
        timeout: Arc<RequestTimeout>,
    ) -> Connection {
        Connection::start(endpoint, config, stats, timeout, None)
    }

    /// Starts a stream connection: requests are only written
    /// ([`Connection::write`]); every frame the node sends, and finally the
    /// connection's end, goes to `events` tagged with `tag`. A full channel
    /// stops reading from the node (the node's own output limits apply).
    pub fn open_stream(
        endpoint: Endpoint,
        config: Arc<PoolConfig>,
        stats: Arc<PoolStats>,
        events: mpsc::Sender<StreamEvent>,
        tag: u64,
    ) -> Connection {
        let timeout = Arc::new(RequestTimeout::new(None));
        Connection::start(endpoint, config, stats, timeout, Some(Sink { tag, events }))
    }

    fn start(
        endpoint: Endpoint,
        config: Arc<PoolConfig>,
        stats: Arc<PoolStats>,
        timeout: Arc<RequestTimeout>,
        sink: Option<Sink>,
    ) -> Connection {
        let timed = sink.is_none();
        let shared = Arc::new(Shared {
            endpoint,
            alive: AtomicBool::new(true),
            connect_error: Mutex::new(None),
            in_flight: Mutex::new(VecDeque::new()),
            exchange: Mutex::new(Exchange::default()),
            shutdown: CancellationToken::new(),
            stats,
            sink,
            backend_id: AtomicU64::new(ID_UNKNOWN),
            backend_id_asked: AtomicBool::new(false),
            backend_id_known: Notify::new(),
            timeout,
            timed: AtomicBool::new(timed),
            reads: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            silent_for: Mutex::new(None),
        });
        let task_shared = shared.clone();
        let task = async move {
            run(task_shared.clone(), config).await;
            if let Some(sink) = &task_shared.sink {
                let _ = sink
                    .events
                    .send(StreamEvent {
                        tag: sink.tag,
                        frame: None,
                    })
                    .await;
            }
        };
        tokio::spawn(cpu::metered(task, cpu::Task::Connection));
        Connection {
            inner: Arc::new(Handle { shared }),
        }
    }

    /// Sends `bytes` (one complete request) and waits for its reply.
    ///
    /// # Errors
    /// The connection failed, or the request timeout passed.
    pub async fn call(&self, bytes: Bytes) -> Result<Bytes, Error> {
        self.send(&bytes, 0).wait().await
    }

    /// Enqueues `bytes`, which hold `skip + 1` requests written back to back
    /// (such as `ASKING` and a command), without waiting; the returned
    /// [`PendingReply`] resolves to the last reply. Requests enqueued one
    /// after the other are written in that order. The bytes are copied
    /// (large ones are kept by reference count instead).
    pub fn send(&self, bytes: &Bytes, skip: u32) -> PendingReply {
        let Some((Some(slot), writer)) = self.enqueue(bytes, skip, true) else {
            return PendingReply::failed(self.lost(false));
        };
        if let Some(writer) = writer {
            writer.wake();
        }
        PendingReply {
            connection: Some(self.clone()),
            state: Pending::Waiting {
                slot,
                dedicated: None,
            },
        }
    }

    /// Enqueues `bytes` on a stream connection, where what the node says
    /// arrives as [`StreamEvent`]s. False when the connection is gone.
    pub fn write(&self, bytes: &Bytes) -> bool {
        let Some((_, writer)) = self.enqueue(bytes, 0, false) else {
            return false;
        };
        if let Some(writer) = writer {
            writer.wake();
        }
        true
    }

    fn enqueue(&self, bytes: &Bytes, skip: u32, wants_reply: bool) -> Option<(Option<u32>, Option<Waker>)> {
        // Counted for the command that sends it: it is charged for the
        // connection's CPU time per request ([`cpu::connection_cost`]).
        cpu::note_exchange();
        lock(&self.inner.shared.exchange).enqueue(bytes, skip, wants_reply)
    }

    /// Asks the node, once per connection, for the id it gave this
    /// connection (`CLIENT ID`), queued like any request; the answer is
    /// kept for [`Connection::backend_id`]. Call it before a command that
    /// may block the connection.
    pub fn learn_backend_id(&self) {
        let shared = &self.inner.shared;
        if shared.backend_id_asked.swap(true, Ordering::AcqRel) {
            return;
        }
        let queued = lock(&shared.exchange).enqueue_backend_id(&Bytes::from_static(CLIENT_ID));
        if let Some(Some(writer)) = queued {
            writer.wake();
        }
    }

    /// The node's id for this connection, once its answer to
    /// [`Connection::learn_backend_id`] is in. `None` when it was never
    /// asked, the node refused to tell, or the connection ended first.
    pub async fn backend_id(&self) -> Option<u64> {
        let shared = &self.inner.shared;
        loop {
            let known = shared.backend_id_known.notified();
            tokio::pin!(known);
            known.as_mut().enable();
            match shared.backend_id.load(Ordering::Acquire) {
                ID_REFUSED => return None,
                ID_UNKNOWN => {}
                id => return Some(id),
            }
            if !shared.backend_id_asked.load(Ordering::Acquire) || !self.is_alive() {
                return None;
            }
            known.await;
        }
    }

    /// True when both handles are to the same connection.
    pub fn same_as(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner.shared, &other.inner.shared)
    }

    /// False once the connection has failed, was closed or retired.
    pub fn is_alive(&self) -> bool {
        let shared = &self.inner.shared;
        shared.alive.load(Ordering::Acquire) && !shared.retired.load(Ordering::Relaxed)
    }

    /// Retires the connection (its node left the topology): it reports
    /// itself dead, so callers open another where they still need one,
    /// and closes once every reply it owes is in. Nothing in flight fails.
    pub fn retire(&self) {
        self.inner.shared.retired.store(true, Ordering::Relaxed);
    }

    /// Takes the connection out of the request timeout: a dedicated
    /// connection's commands may block on purpose.
    pub(crate) fn untimed(&self) {
        self.inner.shared.timed.store(false, Ordering::Relaxed);
    }

    /// The connect or handshake error, if that is why the connection died.
    pub fn connect_error(&self) -> Option<Error> {
        lock(&self.inner.shared.connect_error).clone()
    }

    /// Closes the connection; requests in flight fail.
    pub fn close(&self) {
        self.inner.shared.shutdown.cancel();
    }

    /// The endpoint this connection serves.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.shared.endpoint
    }

    fn lost(&self, sent: bool) -> Error {
        Error::ConnectionLost {
            addr: self.inner.shared.endpoint.addr.clone(),
            sent,
        }
    }
}

/// A reply on its way; a future. Dropping it abandons the reply (the
/// connection discards it when it arrives).
#[derive(Debug)]
pub struct PendingReply {
    /// The connection the request went to; `None` when it could not even
    /// be enqueued. Kept after the outcome was returned, so that
    /// [`PendingReply::addr`] still names the node that answered.
    connection: Option<Connection>,
    state: Pending,
}

#[derive(Debug)]
enum Pending {
    /// The request could not even be enqueued.
    Failed(Option<Box<Error>>),
    /// The request is enqueued or written; its reply will be in `slot`.
    Waiting {
        slot: u32,
        /// Keeps a dedicated connection open until its reply is in.
        dedicated: Option<Box<crate::Dedicated>>,
    },
    /// The outcome was returned.
    Done,
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        if let (Pending::Waiting { slot, .. }, Some(connection)) = (&self.state, &self.connection) {
            lock(&connection.inner.shared.exchange).abandon(*slot);
        }
    }
}

impl PendingReply {
    /// A reply that is already known to be this error.
    pub fn failed(error: Error) -> PendingReply {
        PendingReply {
            connection: None,
            state: Pending::Failed(Some(Box::new(error))),
        }
    }

    /// Keeps `dedicated` open until this reply arrives or is abandoned.
    pub(crate) fn holding(mut self, dedicated: crate::Dedicated) -> Self {
        if let Pending::Waiting { dedicated: slot, .. } = &mut self.state {
            *slot = Some(Box::new(dedicated));
        }
        self
    }

    /// The address of the node the request went to; `None` when it could
    /// not be enqueued. Still known after the reply was returned (a
    /// redirect's `:port` is read relative to it).
    pub fn addr(&self) -> Option<&Arc<str>> {
        self.connection
            .as_ref()
            .map(|connection| &connection.inner.shared.endpoint.addr)
    }

    /// Waits for the reply (the same as awaiting `self`).
    ///
    /// # Errors
    /// As the future's output.
    pub async fn wait(self) -> Result<Bytes, Error> {
        self.await
    }
}

impl Future for PendingReply {
    /// The reply, or why there is none (the request timeout is the
    /// connection's watchdog's: [`crate::watchdog`]).
    type Output = Result<Bytes, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let outcome = match (&mut this.state, &this.connection) {
            (Pending::Failed(error), _) => error.take().map(|error| Err(*error)),
            (Pending::Waiting { slot, dedicated, .. }, Some(connection)) => {
                let shared = &connection.inner.shared;
                if let Poll::Ready(outcome) = lock(&shared.exchange).poll_reply(*slot, cx) {
                    let outcome = outcome.unwrap_or_else(|| Err(connection.lost(true)));
                    // A dedicated connection whose one command answered is
                    // clean again: back to the pool. On an error it closes.
                    if let (Ok(_), Some(dedicated)) = (&outcome, dedicated.take()) {
                        dedicated.release();
                    }
                    this.state = Pending::Done;
                    return Poll::Ready(outcome);
                }
                return Poll::Pending;
            }
            (Pending::Waiting { .. } | Pending::Done, _) => None,
        };
        this.state = Pending::Done;
        Poll::Ready(outcome.unwrap_or_else(|| {
            Err(Error::Protocol {
                addr: "".into(),
                reason: "reply polled after it was returned".into(),
            })
        }))
    }
}

// === the connection's tasks ===

async fn run(shared: Arc<Shared>, config: Arc<PoolConfig>) {
    let connected = tokio::select! {
        _ = shared.shutdown.cancelled() => Err(Error::ConnectionLost { addr: shared.endpoint.addr.clone(), sent: false }),
        outcome = tokio::time::timeout(config.connect_timeout, handshake::connect(&shared.endpoint, &config.handshake)) => {
            outcome.unwrap_or_else(|_| Err(Error::ConnectTimeout {
                addr: shared.endpoint.addr.clone(),
                elapsed: config.connect_timeout,
            }))
        }
    };
    let stream = match connected {
        Ok(stream) => {
            keep_alive(&stream, config.keepalive, &shared.endpoint);
            stream
        }
        Err(error) => {
            tracing::debug!(endpoint = %shared.endpoint, %error, "backend connect failed");
            PoolStats::add(&shared.stats.connect_failures, 1);
            shared.alive.store(false, Ordering::Release);
            shared.backend_id_known.notify_waiters();
            *lock(&shared.connect_error) = Some(error.clone());
            wake_all(lock(&shared.exchange).close(&error));
            return;
        }
    };
    PoolStats::add(&shared.stats.open, 1);
    PoolStats::add(&shared.stats.opened_total, 1);
    let (read, write) = stream.into_split();
    let reader = tokio::spawn(cpu::metered(
        read_replies(shared.clone(), read),
        cpu::Task::Connection,
    ));
    tokio::select! {
        () = write_requests(&shared, write) => {}
        verdict = watchdog::watch(&*shared) => note_verdict(&shared, verdict),
    }
    shared.shutdown.cancel();
    let _ = reader.await;
    shared.alive.store(false, Ordering::Release);
    shared.backend_id_known.notify_waiters();
    PoolStats::sub(&shared.stats.open, 1);
    let lost_in_flight: Vec<InFlight> = lock(&shared.in_flight).drain(..).collect();
    let lost = |sent| Error::ConnectionLost {
        addr: shared.endpoint.addr.clone(),
        sent,
    };
    let silent_for = *lock(&shared.silent_for);
    let carried = || match silent_for {
        Some(elapsed) => Error::Timeout {
            addr: shared.endpoint.addr.clone(),
            elapsed,
        },
        None => lost(true),
    };
    let wakers = {
        let mut exchange = lock(&shared.exchange);
        let mut wakers: Vec<Waker> = lost_in_flight
            .into_iter()
            .filter_map(|entry| exchange.complete(entry.slot, Err(carried())))
            .collect();
        wakers.extend(exchange.close(&lost(false)));
        wakers
    };
    wake_all(wakers);
}

/// Turns TCP keepalive on for `stream` (see [`PoolConfig::keepalive`]); a
/// failure is logged, the connection still used.
fn keep_alive(stream: &tokio::net::TcpStream, idle: Option<std::time::Duration>, endpoint: &Endpoint) {
    let Some(idle) = idle else { return };
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(idle / 3)
        .with_retries(3);
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%endpoint, %error, "TCP keepalive could not be set");
    }
}

/// Logs why the watchdog closed the connection, and keeps the timeout for
/// the requests it carried.
fn note_verdict(shared: &Shared, verdict: Verdict) {
    match verdict {
        Verdict::Silent(limit) => {
            tracing::warn!(endpoint = %shared.endpoint, timeout = ?limit, "backend owed replies and sent nothing within the request timeout; closing the connection");
            *lock(&shared.silent_for) = Some(limit);
        }
        Verdict::Retired => {
            tracing::debug!(endpoint = %shared.endpoint, "closing a retired connection: nothing owed any more");
        }
    }
}

fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for waker in wakers {
        waker.wake();
    }
}

/// Writes queued requests in batches until the queue closes or the
/// connection shuts down.
async fn write_requests(shared: &Shared, mut write: OwnedWriteHalf) {
    // Swapped with the exchange's queue: a batch changes hands without
    // copying, and both keep their memory for the next one.
    let mut outbox = Outbox::default();
    // Made once: a new one per turn would register with the token and
    // unregister each time.
    let shutdown = shared.shutdown.cancelled();
    tokio::pin!(shutdown);
    loop {
        let more = tokio::select! {
            biased;
            _ = &mut shutdown => return,
            more = std::future::poll_fn(|cx| lock(&shared.exchange).poll_queued(cx)) => more,
        };
        if !more {
            return; // every handle was dropped, and everything is written
        }
        // Let the other tasks that are ready (other clients) queue their
        // requests too, so one write carries many clients' requests. When
        // nothing else is ready this returns at once.
        yield_to_ready_tasks().await;
        lock(&shared.exchange).take_queued(&mut outbox);
        lock(&shared.in_flight).extend(outbox.take_expected());
        PoolStats::add(&shared.stats.requests, outbox.requests() as u64);
        for chunk in outbox.chunks() {
            if write.write_all(chunk).await.is_err() {
                return;
            }
        }
        outbox.clear();
    }
}

/// Lets the tasks that are ready now run first: the task wakes itself, so
/// the runtime puts it behind them in its run queue.
///
/// `tokio::task::yield_now` would also wait for the runtime to poll the
/// operating system for new events, one more `epoll_wait` per batch: with
/// it the proxy made 18,800-26,000 `epoll_wait` calls per million
/// pipelined requests, with this 12,700-15,100 (docs/PERFORMANCE.md).
async fn yield_to_ready_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// The deepest nesting of a backend reply the reader accepts. The reader
/// only finds where a reply ends (the bytes are passed on as they are), with
/// an explicit stack of 16 bytes a level, so depth costs no recursion. A
/// Lua script can return tables nested about 8,000 deep (Valkey answers
/// "reached lua stack limit" past that), and the proxy must pass on
/// whatever the server sends; this bound, 8 times that, only stops a
/// broken backend from growing the stack without end (1 MiB at most).
const BACKEND_REPLY_DEPTH: usize = 1 << 16;

/// Reads replies and completes in-flight requests in order.
async fn read_replies(shared: Arc<Shared>, mut read: OwnedReadHalf) {
    let mut decoder = ReplyDecoder::new(Limits {
        max_reply_depth: BACKEND_REPLY_DEPTH,
        ..Limits::default()
    });
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut done: Vec<(u32, Bytes)> = Vec::new();
    let mut wakers: Vec<Waker> = Vec::new();
    let shutdown = shared.shutdown.cancelled();
    tokio::pin!(shutdown);
    loop {
        let read_result = tokio::select! {
            biased;
            _ = &mut shutdown => return,
            n = read.read_buf(&mut buf) => n,
        };
        match read_result {
            Ok(0) | Err(_) => {
                shared.shutdown.cancel();
                return;
            }
            Ok(_) => {
                shared.reads.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(sink) = &shared.sink {
            if forward_frames(&shared, sink, &mut decoder, &mut buf)
                .await
                .is_err()
            {
                shared.shutdown.cancel();
                return;
            }
            continue;
        }
        // Each reply is matched with the oldest request in flight as it is
        // decoded (the writer adds to the back under the same lock).
        {
            let mut in_flight = lock(&shared.in_flight);
            loop {
                let reply = match decoder.decode(&mut buf) {
                    Ok(Some(reply)) => reply,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(endpoint = %shared.endpoint, %error, "backend sent invalid RESP; closing");
                        shared.shutdown.cancel();
                        return;
                    }
                };
                // A push message on a shared connection belongs to no
                // request (tracking invalidations, for instance).
                if reply.first() == Some(&b'>') {
                    continue;
                }
                let Some(front) = in_flight.front_mut() else {
                    tracing::warn!(endpoint = %shared.endpoint, "reply with no request in flight; closing");
                    shared.shutdown.cancel();
                    return;
                };
                if front.skip > 0 {
                    front.skip -= 1;
                    continue;
                }
                match in_flight.pop_front() {
                    Some(entry) if entry.slot == BACKEND_ID_SLOT => keep_backend_id(&shared, &reply),
                    Some(entry) => done.push((entry.slot, reply)),
                    None => {}
                }
            }
        }
        if done.is_empty() {
            continue;
        }
        {
            let mut exchange = lock(&shared.exchange);
            wakers.extend(
                done.drain(..)
                    .filter_map(|(slot, reply)| exchange.complete(slot, Ok(reply))),
            );
        }
        wake_all(wakers.drain(..));
    }
}

/// Keeps the node's answer to [`CLIENT_ID`] (`:<id>`, or an error when it
/// refuses) and wakes whoever waits for it.
fn keep_backend_id(shared: &Shared, reply: &Bytes) {
    let id = match resp::Frame::parse_complete(reply) {
        Ok(resp::Frame::Integer(id)) => u64::try_from(id).ok(),
        _ => None,
    }
    .filter(|id| *id != ID_UNKNOWN && *id != ID_REFUSED)
    .unwrap_or(ID_REFUSED);
    shared.backend_id.store(id, Ordering::Release);
    shared.backend_id_known.notify_waiters();
}

/// Sends every complete frame in `buf` to a stream connection's sink.
/// `Err` when the frames are invalid or nobody listens any more.
async fn forward_frames(
    shared: &Shared,
    sink: &Sink,
    decoder: &mut ReplyDecoder,
    buf: &mut BytesMut,
) -> Result<(), ()> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(frame)) => {
                let event = StreamEvent {
                    tag: sink.tag,
                    frame: Some(frame),
                };
                sink.events.send(event).await.map_err(drop)?;
            }
            Ok(None) => return Ok(()),
            Err(error) => {
                tracing::warn!(endpoint = %shared.endpoint, %error, "backend sent invalid RESP; closing");
                return Err(());
            }
        }
    }
}
