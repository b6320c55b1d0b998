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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

mod pending;
mod tasks;

use pending::Pending;
pub use pending::PendingReply;

use crate::exchange::Exchange;
use crate::outbox::InFlight;
use crate::watchdog::{self, RequestTimeout};
use crate::{lock, Endpoint, Error, PoolConfig, PoolStats};

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
            tasks::run(task_shared.clone(), config).await;
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
