//! A client's subscriptions and the backend stream connections that carry
//! them.
//!
//! The client sees one connection; behind it the proxy keeps one *main*
//! stream connection for SUBSCRIBE and PSUBSCRIBE (on a cluster any node
//! receives every PUBLISH), and one per primary for SSUBSCRIBE (shard
//! channels live with their slot). What the client subscribed to is the
//! truth; the links follow it:
//!
//! - The client's confirmations are built by the proxy from that truth
//!   (counts as one server would give them), and sent only once every link
//!   involved has confirmed, so a client that publishes right after its
//!   SUBSCRIBE returned cannot miss the message.
//! - The links' own confirmations are matched against *tickets* (what each
//!   link was asked, in order) and never reach the client.
//! - A link that dies, or a shard channel the server unsubscribes on its
//!   own (its slot moved, a failover), is resubscribed where the topology
//!   now says, after a short pause, without the client noticing.
//!   Messages published in between are lost, as pub/sub promises no more.
//!
//! # Layout
//! - this file: the [`Subscriptions`] a session holds, the kinds of
//!   subscription, and the [`Waiting`] behind a client reply;
//! - `links`: the sets the client subscribed to, and the commands sent on
//!   the links for them;
//! - `watchers`: MONITOR and CLIENT TRACKING's links to every node;
//! - `events`: what the links send back, and restoring what was lost;
//! - [`tracking`]: CLIENT TRACKING's invalidations;
//! - [`notifications`]: keyspace notifications in emulated databases and
//!   for tenants;
//! - `tenant`: a tenant's channels, under its prefix.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::task::AtomicWaker;
use middleware::Scope;
use pool::{Dedicated, StreamEvent};
use resp::{encode, Frame, Protocol};
use router::{Reply, Router};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::mpsc;
use tokio::time::Instant;
use topology::Mode;

mod events;
mod links;
pub mod notifications;
mod tenant;
pub mod tracking;
mod watchers;

use notifications::Mapping;
use tracking::{Options, Tracking};

/// The channel CLIENT TRACKING REDIRECT sends invalidations on.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// Frames a client's links may queue before the proxy stops reading them.
const EVENTS: usize = 1024;
/// First pause before resubscribing; doubled per failure up to a second.
const RETRY_FIRST: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// The three kinds of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SUBSCRIBE: a channel.
    Channel,
    /// PSUBSCRIBE: a pattern.
    Pattern,
    /// SSUBSCRIBE: a shard channel.
    Shard,
}

impl Kind {
    /// The confirmation's name when subscribing / unsubscribing.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }

    fn command(self, subscribe: bool) -> &'static str {
        match (self, subscribe) {
            (Kind::Channel, true) => "SUBSCRIBE",
            (Kind::Channel, false) => "UNSUBSCRIBE",
            (Kind::Pattern, true) => "PSUBSCRIBE",
            (Kind::Pattern, false) => "PUNSUBSCRIBE",
            (Kind::Shard, true) => "SSUBSCRIBE",
            (Kind::Shard, false) => "SUNSUBSCRIBE",
        }
    }
}

/// One confirmation a link owes: `(subscribe?, kind, channel)`.
type Expected = (bool, Kind, Bytes);

/// What one command sent on a link should bring back.
#[derive(Debug)]
struct Ticket {
    expected: VecDeque<Expected>,
    /// The client reply waiting for it (`None` for a resubscription).
    waiting: Option<Arc<Waiting>>,
}

/// One backend stream connection.
#[derive(Debug)]
struct Link {
    connection: Dedicated,
    addr: Arc<str>,
    tickets: VecDeque<Ticket>,
    /// Shard channels this link carries (shard links only).
    shard_channels: FxHashSet<Bytes>,
    /// Keyspace notification channels and patterns this link carries (by
    /// backend name): notifications are local to each node, so they are
    /// subscribed on every primary.
    notifications: FxHashSet<(Kind, Bytes)>,
}

/// A client's subscriptions.
#[derive(Debug, Default)]
pub struct Subscriptions {
    channels: FxHashSet<Bytes>,
    patterns: FxHashSet<Bytes>,
    shard_channels: FxHashSet<Bytes>,
    /// Shard channels subscribed by the client but on no link right now.
    orphans: FxHashSet<Bytes>,
    links: FxHashMap<u64, Link>,
    /// The link carrying channels and patterns.
    main: Option<u64>,
    next_tag: u64,
    events: Option<(mpsc::Sender<StreamEvent>, mpsc::Receiver<StreamEvent>)>,
    /// The client monitors ([`crate::monitor`]): its lines arrive on
    /// `events`.
    monitoring: bool,
    /// CLIENT TRACKING, with its links to the primaries.
    tracking: Option<Tracking>,
    /// Keyspace notification subscriptions translated for emulated
    /// databases or a tenant ([`notifications`]).
    mapped: Vec<Mapping>,
    /// The client's tenant's channels (`tenant`): its subscriptions are
    /// kept under the prefix.
    tenant: Option<Scope>,
    /// When to resubscribe what was lost.
    retry_at: Option<Instant>,
    retry_pause: Duration,
}

/// What handling the links' frames produced for the client.
#[derive(Debug, Default)]
pub struct Handled {
    /// A client reply became ready: write the replies before any more
    /// messages, so that a confirmation precedes what follows it.
    pub completed: bool,
}

/// Keyspace and keyevent notification channels, which each node publishes
/// for its own keys only.
fn is_notification(name: &[u8]) -> bool {
    name.starts_with(b"__keyspace@") || name.starts_with(b"__keyevent@")
}

/// The node main links go to: the primary of the home shard (the first),
/// where PUBLISH is routed too, so that its count includes the proxy's
/// subscribers (on a cluster every node receives every PUBLISH, but each
/// counts only its own subscribers).
fn main_node(router: &Router) -> Option<Arc<str>> {
    let topology = router.topology().current();
    topology.shards().first().map(|shard| shard.primary.clone())
}

fn settle(ticket: Ticket, handled: &mut Handled) {
    if let Some(waiting) = ticket.waiting {
        if waiting.done_one() {
            handled.completed = true;
        }
    }
}

/// The first element of an array or push frame, lower-cased: `message`,
/// `subscribe`, ... `None` for anything else.
fn frame_kind(frame: &Bytes) -> Option<Vec<u8>> {
    if !matches!(frame.first(), Some(b'*' | b'>')) {
        return None;
    }
    let parsed = Frame::parse_complete(frame).ok()?;
    let items = match parsed {
        Frame::Array(items) | Frame::Push(items) => items,
        _ => return None,
    };
    let first = items.first()?.as_bytes()?;
    Some(first.to_ascii_lowercase())
}

/// `(subscribe?, kind, channel)` of a link's confirmation frame.
fn parse_confirmation(frame: &Bytes) -> Option<Expected> {
    let (Frame::Array(items) | Frame::Push(items)) = Frame::parse_complete(frame).ok()? else {
        return None;
    };
    let [name, channel, _count] = items.as_slice() else {
        return None;
    };
    let name = name.as_bytes()?.to_ascii_lowercase();
    let channel = channel.as_bytes()?.clone();
    let (subscribe, kind) = match name.as_slice() {
        b"subscribe" => (true, Kind::Channel),
        b"unsubscribe" => (false, Kind::Channel),
        b"psubscribe" => (true, Kind::Pattern),
        b"punsubscribe" => (false, Kind::Pattern),
        b"ssubscribe" => (true, Kind::Shard),
        b"sunsubscribe" => (false, Kind::Shard),
        _ => return None,
    };
    Some((subscribe, kind, channel))
}

/// A client reply waiting for its links' confirmations.
#[derive(Debug, Default)]
pub struct Waiting {
    /// Tickets not settled yet.
    remaining: AtomicUsize,
    waker: AtomicWaker,
}

impl Waiting {
    fn add(&self, n: usize) {
        self.remaining.fetch_add(n, Ordering::AcqRel);
    }

    /// Settles one ticket; true when it was the last.
    fn done_one(&self) -> bool {
        let last = self.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.waker.wake();
        }
        last
    }

    /// The reply `confirmations` once every ticket is settled.
    pub fn reply(self: Arc<Self>, confirmations: Bytes) -> WaitingReply {
        WaitingReply {
            waiting: self,
            confirmations: Some(confirmations),
        }
    }
}

/// The future of a subscription command's reply.
#[derive(Debug)]
pub struct WaitingReply {
    waiting: Arc<Waiting>,
    confirmations: Option<Bytes>,
}

impl Future for WaitingReply {
    type Output = Result<Reply, router::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.waiting.waker.register(cx.waker());
        if self.waiting.remaining.load(Ordering::Acquire) > 0 {
            return Poll::Pending;
        }
        Poll::Ready(Ok(Reply::Raw(self.confirmations.take().unwrap_or_default())))
    }
}
