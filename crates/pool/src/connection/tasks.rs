//! The two tasks that own a connection's socket: `run` connects (and
//! handshakes) and then writes what the exchange queues
//! (`write_requests`), while `read_replies` scans the node's replies and
//! completes the requests in flight in order, or, for a stream
//! connection, forwards every frame (`forward_frames`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use resp::{Limits, ReplyDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::{Shared, Sink, StreamEvent, ID_REFUSED, ID_UNKNOWN};
use crate::exchange::BACKEND_ID_SLOT;
use crate::outbox::{InFlight, Outbox};
use crate::watchdog::{self, Verdict};
use crate::{handshake, lock, Endpoint, Error, PoolConfig, PoolStats};

/// Initial size of the read buffer.
const READ_BUFFER: usize = 16 * 1024;

pub(super) async fn run(shared: Arc<Shared>, config: Arc<PoolConfig>) {
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
        let delivered: usize = done.iter().map(|(_, reply)| reply.len()).sum();
        {
            let mut exchange = lock(&shared.exchange);
            wakers.extend(
                done.drain(..)
                    .filter_map(|(slot, reply)| exchange.complete(slot, Ok(reply))),
            );
        }
        wake_all(wakers.drain(..));
        if delivered >= YIELD_AFTER {
            // The runtime's budget counts reads, not bytes: without this,
            // a node sending large replies fast is read for hundreds of
            // megabytes before the sessions they are for run and take
            // them (to write them, or to count them against their
            // client's limits).
            yield_to_ready_tasks().await;
        }
    }
}

/// Replies of this many bytes delivered in one read make the reader let
/// the tasks it woke run before it reads more.
const YIELD_AFTER: usize = 1024 * 1024;

/// Keeps the node's answer to [`super::CLIENT_ID`] (`:<id>`, or an error when it
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
