//! Backend connections for valkey-proxy.
//!
//! A [`Connection`] is one socket to one node, multiplexed: any number of
//! callers send requests through it, the requests are written in batches
//! (one write for everything queued), and replies are matched to requests in
//! order through a FIFO of in-flight entries. A [`Pool`] keeps a few shared
//! connections per [`Endpoint`] (node, protocol, database), reconnects with
//! backoff, and hands out dedicated connections for stateful sessions.
//!
//! The pool never interprets commands: it moves bytes and counts replies.
//! The one reply it reads is its own: a connection that may block asks the
//! node for its client id, so that CLIENT UNBLOCK can name it.
//!
//! # Layout
//! - [`config`]: the [`PoolConfig`] and the [`Handshake`] run on every new connection.
//! - [`endpoint`]: the [`Endpoint`], what a connection is keyed by.
//! - [`error`]: the [`Error`], with the classifier the router acts on.
//! - [`connection`]: the [`Connection`], the multiplexed socket and its tasks.
//! - `exchange`: the queue and reply slots a connection shares with its callers.
//! - `outbox`: the queued requests, as the bytes the writer will send.
//! - [`handshake`]: AUTH / HELLO / SELECT / CLIENT SETNAME / READONLY.
//! - [`pool`]: the [`Pool`], shared connections per endpoint and dedicated ones.
//! - [`stats`]: counters the proxy reports in `PROXY INFO`.
//! - [`watchdog`]: the request timeout, one timer per connection.
//! - [`waiting`]: large replies arrived and not yet collected, counted.

use std::sync::{Mutex, MutexGuard};

pub mod config;
pub mod connection;
pub mod endpoint;
pub mod error;
mod exchange;
pub mod handshake;
mod outbox;
pub mod pool;
pub mod stats;
pub mod waiting;
pub mod watchdog;

pub use config::{Handshake, PoolConfig};
pub use connection::{Connection, PendingReply, StreamEvent};
pub use endpoint::Endpoint;
pub use error::Error;
pub use pool::{Dedicated, Pool};
pub use stats::PoolStats;

/// Locks `mutex`. The pool's locks guard plain queues, maps and lists,
/// which a panic while holding one cannot leave half-changed, so a
/// poisoned lock is still used.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
