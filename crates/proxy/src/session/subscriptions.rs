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

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::task::AtomicWaker;
use pool::{Dedicated, StreamEvent};
use resp::{encode, Frame, Protocol};
use router::{Reply, Router};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::mpsc;
use tokio::time::Instant;
use topology::Mode;

use super::notifications::Mapping;
use super::tracking::{Options, Tracking};

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
    /// MONITOR links, with the client reply waiting for their `+OK`.
    monitors: FxHashMap<u64, Option<Arc<Waiting>>>,
    /// CLIENT TRACKING, with its links to the primaries.
    tracking: Option<Tracking>,
    /// Keyspace notification subscriptions translated for emulated
    /// databases ([`super::notifications`]).
    mapped: Vec<Mapping>,
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

impl Subscriptions {
    /// Subscriptions of every kind together (what RESP2's subscribe mode
    /// depends on).
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// The count a confirmation of `kind` reports: channels and patterns
    /// together, shard channels on their own (as Valkey counts them).
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    /// True when a RESP2 client is in subscribe mode.
    pub fn restricts(&self, protocol: Protocol) -> bool {
        protocol == Protocol::Resp2 && self.total() > 0
    }

    /// True while links exist or subscriptions wait to be restored.
    pub fn is_active(&self) -> bool {
        !self.links.is_empty() || self.total() > 0
    }

    /// The client's subscriptions of `kind`.
    pub fn set(&self, kind: Kind) -> &FxHashSet<Bytes> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    fn set_mut(&mut self, kind: Kind) -> &mut FxHashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Records a subscription; true when it is new.
    pub fn add(&mut self, kind: Kind, name: &Bytes) -> bool {
        self.set_mut(kind).insert(name.clone())
    }

    /// Forgets a subscription; true when it existed.
    pub fn remove(&mut self, kind: Kind, name: &Bytes) -> bool {
        if kind == Kind::Shard {
            self.orphans.remove(name);
        }
        self.set_mut(kind).remove(name)
    }

    /// Drops every subscription and closes every link (RESET, or the
    /// client left).
    pub fn clear(&mut self) {
        *self = Subscriptions::default();
    }

    /// Sends `(UN)SUBSCRIBE|PSUBSCRIBE names...` on the main link, opening
    /// it if needed. The client's reply waits for `waiting`.
    pub fn send_main(
        &mut self,
        subscribe: bool,
        kind: Kind,
        names: &[Bytes],
        waiting: &Arc<Waiting>,
        router: &Router,
        protocol: Protocol,
    ) {
        let (everywhere, here): (Vec<Bytes>, Vec<Bytes>) =
            names.iter().cloned().partition(|n| is_notification(n));
        if !everywhere.is_empty() {
            self.send_everywhere(subscribe, kind, &everywhere, Some(waiting), router, protocol);
        }
        if here.is_empty() {
            return;
        }
        let names = &here[..];
        let tag = match self.main {
            Some(tag) => tag,
            None if !subscribe => return,
            None => {
                let Some(addr) = main_node(router) else {
                    self.schedule_retry();
                    return;
                };
                let tag = self.open(addr, router, protocol);
                self.main = Some(tag);
                tag
            }
        };
        self.send(tag, subscribe, kind, names, Some(waiting.clone()));
    }

    /// Keyspace notification subscriptions, on a link to every primary (to
    /// subscribe) or on the links that carry them (to unsubscribe).
    fn send_everywhere(
        &mut self,
        subscribe: bool,
        kind: Kind,
        names: &[Bytes],
        waiting: Option<&Arc<Waiting>>,
        router: &Router,
        protocol: Protocol,
    ) {
        let tags: Vec<u64> = if subscribe {
            let primaries: Vec<Arc<str>> = router
                .topology()
                .current()
                .shards()
                .iter()
                .map(|s| s.primary.clone())
                .collect();
            primaries
                .into_iter()
                .map(|addr| self.shard_link(addr, router, protocol))
                .collect()
        } else {
            self.links
                .iter()
                .filter(|(_, link)| {
                    names
                        .iter()
                        .any(|n| link.notifications.contains(&(kind, n.clone())))
                })
                .map(|(tag, _)| *tag)
                .collect()
        };
        for tag in tags {
            let Some(link) = self.links.get_mut(&tag) else {
                continue;
            };
            let names: Vec<Bytes> = names
                .iter()
                .filter(|n| subscribe != link.notifications.contains(&(kind, (*n).clone())))
                .cloned()
                .collect();
            if names.is_empty() {
                continue;
            }
            for name in &names {
                if subscribe {
                    link.notifications.insert((kind, name.clone()));
                } else {
                    link.notifications.remove(&(kind, name.clone()));
                }
            }
            self.send(tag, subscribe, kind, &names, waiting.cloned());
        }
    }

    /// Sends `SSUBSCRIBE` / `SUNSUBSCRIBE` for shard channels, one command
    /// per slot, each on the link to the primary that owns the slot now
    /// (subscribing) or that carries the channel (unsubscribing).
    pub fn send_shard(
        &mut self,
        subscribe: bool,
        names: &[Bytes],
        waiting: Option<&Arc<Waiting>>,
        router: &Router,
        protocol: Protocol,
    ) {
        let mut groups: Vec<(u64, Vec<Bytes>)> = Vec::new();
        let topology = router.topology().current();
        let mut by_slot: FxHashMap<(u64, u16), usize> = FxHashMap::default();
        for name in names {
            let slot = router::slot::key_slot(name);
            let tag = if subscribe {
                let addr = match topology.mode() {
                    Mode::Cluster => topology.shard_for_slot(slot).map(|s| s.primary.clone()),
                    _ => topology.shards().first().map(|s| s.primary.clone()),
                };
                let Some(addr) = addr else {
                    self.orphans.insert(name.clone());
                    self.schedule_retry();
                    continue;
                };
                self.shard_link(addr, router, protocol)
            } else {
                match self
                    .links
                    .iter()
                    .find(|(_, link)| link.shard_channels.contains(name))
                {
                    Some((&tag, _)) => tag,
                    None => continue,
                }
            };
            if let Some(link) = self.links.get_mut(&tag) {
                if subscribe {
                    link.shard_channels.insert(name.clone());
                } else {
                    link.shard_channels.remove(name);
                }
            }
            let index = *by_slot.entry((tag, slot)).or_insert_with(|| {
                groups.push((tag, Vec::new()));
                groups.len() - 1
            });
            groups[index].1.push(name.clone());
        }
        for (tag, names) in groups {
            self.send(tag, subscribe, Kind::Shard, &names, waiting.cloned());
        }
    }

    /// The shard link to `addr`, opened if needed.
    fn shard_link(&mut self, addr: Arc<str>, router: &Router, protocol: Protocol) -> u64 {
        let existing = self
            .links
            .iter()
            .find(|(tag, link)| Some(**tag) != self.main && link.addr == addr)
            .map(|(tag, _)| *tag);
        existing.unwrap_or_else(|| self.open(addr, router, protocol))
    }

    fn open(&mut self, addr: Arc<str>, router: &Router, protocol: Protocol) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        let events = self.events.get_or_insert_with(|| mpsc::channel(EVENTS)).0.clone();
        let endpoint = crate::door::link_endpoint(&addr, protocol);
        let connection = router.pool().stream(&endpoint, events, tag);
        self.links.insert(
            tag,
            Link {
                connection,
                addr,
                tickets: VecDeque::new(),
                shard_channels: FxHashSet::default(),
                notifications: FxHashSet::default(),
            },
        );
        tag
    }

    fn send(
        &mut self,
        tag: u64,
        subscribe: bool,
        kind: Kind,
        names: &[Bytes],
        waiting: Option<Arc<Waiting>>,
    ) {
        let Some(link) = self.links.get_mut(&tag) else {
            return;
        };
        let mut args: Vec<&[u8]> = Vec::with_capacity(names.len() + 1);
        args.push(kind.command(subscribe).as_bytes());
        args.extend(names.iter().map(|n| &n[..]));
        let mut bytes = BytesMut::new();
        encode::encode_command(&args, &mut bytes);
        if let Some(waiting) = &waiting {
            waiting.add(1);
        }
        link.tickets.push_back(Ticket {
            expected: names.iter().map(|n| (subscribe, kind, n.clone())).collect(),
            waiting,
        });
        // A dead link reports its end as an event; the ticket is settled then.
        link.connection.write(&bytes.freeze());
    }

    /// MONITOR: a link to every node of the backend, each sending MONITOR;
    /// the client's `+OK` waits for all of theirs. What the nodes then
    /// report (every command they run, the proxy's included) goes to the
    /// client as it comes.
    pub fn monitor(&mut self, router: &Router, protocol: Protocol) -> Arc<Waiting> {
        let waiting = Arc::new(Waiting::default());
        if !self.monitors.is_empty() {
            return waiting;
        }
        for addr in router.topology().current().addrs() {
            let tag = self.open(addr, router, protocol);
            waiting.add(1);
            self.monitors.insert(tag, Some(waiting.clone()));
            if let Some(link) = self.links.get(&tag) {
                link.connection
                    .write(&Bytes::from_static(b"*1\r\n$7\r\nMONITOR\r\n"));
            }
        }
        waiting
    }

    /// CLIENT TRACKING ON: a tracking link to every primary. The client's
    /// `+OK` waits for every link's, so that no change after it goes
    /// unreported.
    pub fn start_tracking(
        &mut self,
        options: Options,
        router: &Router,
        redirect: Option<Arc<crate::clients::ClientInfo>>,
    ) -> Arc<Waiting> {
        self.stop_tracking();
        let mut tracking = Tracking::new(options);
        tracking.redirect = redirect;
        self.tracking = Some(tracking);
        let waiting = Arc::new(Waiting::default());
        self.open_tracking_links(router, Some(&waiting));
        waiting
    }

    /// Opens the tracking links that are missing (all, or the ones lost).
    fn open_tracking_links(&mut self, router: &Router, waiting: Option<&Arc<Waiting>>) {
        let Some(command) = self.tracking.as_ref().map(Tracking::link_command) else {
            return;
        };
        let open: Vec<Arc<str>> = self
            .tracking
            .iter()
            .flat_map(|t| t.links.iter())
            .filter_map(|tag| self.links.get(tag).map(|l| l.addr.clone()))
            .collect();
        let topology = router.topology().current();
        for shard in topology.shards() {
            if open.contains(&shard.primary) {
                continue;
            }
            let tag = self.open(shard.primary.clone(), router, Protocol::Resp3);
            if let Some(link) = self.links.get(&tag) {
                link.connection.write(&command);
            }
            if let Some(tracking) = self.tracking.as_mut() {
                tracking.links.push(tag);
                let waiting = waiting.cloned().unwrap_or_default();
                waiting.add(1);
                tracking.confirming.insert(tag, waiting);
            }
        }
    }

    /// CLIENT TRACKING OFF: closes the tracking links.
    pub fn stop_tracking(&mut self) {
        if let Some(tracking) = self.tracking.take() {
            for tag in tracking.links {
                self.links.remove(&tag);
            }
        }
    }

    /// The tracking state, when on.
    pub fn tracking(&self) -> Option<&Tracking> {
        self.tracking.as_ref()
    }

    /// The tracking state, mutably, when on.
    pub fn tracking_mut(&mut self) -> Option<&mut Tracking> {
        self.tracking.as_mut()
    }

    /// True while the client monitors.
    pub fn is_monitoring(&self) -> bool {
        !self.monitors.is_empty()
    }

    /// The channel this client's links report to, created if needed: other
    /// sessions deliver redirected invalidations through it.
    pub fn events_sender(&mut self) -> mpsc::Sender<StreamEvent> {
        self.events.get_or_insert_with(|| mpsc::channel(EVENTS)).0.clone()
    }

    /// Waits for the next frame or end of a link. Pending for ever when the
    /// client has no link.
    pub async fn next_event(&mut self) -> StreamEvent {
        match &mut self.events {
            Some((_, receiver)) => match receiver.recv().await {
                Some(event) => event,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// Takes another event if one is queued, without waiting.
    pub fn try_event(&mut self) -> Option<StreamEvent> {
        self.events.as_mut()?.1.try_recv().ok()
    }

    /// When the lost subscriptions are due to be restored.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Handles one link event: messages are appended to `output` in the
    /// client's protocol, the links' confirmations settle tickets, and lost
    /// subscriptions are scheduled for restoration.
    pub fn handle(
        &mut self,
        event: StreamEvent,
        router: &Router,
        protocol: Protocol,
        output: &mut BytesMut,
    ) -> Handled {
        let mut handled = Handled::default();
        let Some(frame) = event.frame else {
            self.lost(event.tag, router, protocol, output, &mut handled);
            return handled;
        };
        if event.tag == crate::clients::REDIRECTED {
            // Another client's invalidation, redirected here.
            if self.channels.contains(INVALIDATE_CHANNEL) {
                output.extend_from_slice(&frame);
            }
            return handled;
        }
        if !self.links.contains_key(&event.tag) {
            return handled;
        }
        if let Some(tracking) = self.tracking.as_mut().filter(|t| t.links.contains(&event.tag)) {
            if let Some(waiting) = tracking.confirming.remove(&event.tag) {
                // The link's +OK to CLIENT TRACKING ON.
                handled.completed |= waiting.done_one();
            } else if let Some(target) = tracking.redirect.clone() {
                let target_protocol = if target.resp() == 3 {
                    Protocol::Resp3
                } else {
                    Protocol::Resp2
                };
                if let Some(message) = tracking.invalidation_message(&frame, target_protocol) {
                    target.deliver_invalidation(message);
                }
            } else if let Some(push) = tracking.invalidation(&frame, protocol) {
                output.extend_from_slice(&push);
            }
            return handled;
        }
        if let Some(waiting) = self.monitors.get_mut(&event.tag) {
            // The first frame is MONITOR's +OK; then one line per command.
            match waiting.take() {
                Some(waiting) => handled.completed |= waiting.done_one(),
                None => output.extend_from_slice(&frame),
            }
            return handled;
        }
        match frame_kind(&frame).as_deref() {
            Some(b"message" | b"pmessage") if !self.mapped.is_empty() => {
                self.translate_message(&frame, protocol, output)
            }
            Some(b"message" | b"pmessage" | b"smessage") => output.extend_from_slice(&frame),
            Some(b"pong") | None if !frame.starts_with(b"-") => {}
            _ => self.confirmation(event.tag, &frame, router, &mut handled),
        }
        self.close_idle_links();
        handled
    }

    /// Records a translated subscription; the backend name to subscribe to.
    pub fn map(&mut self, mapping: Mapping) -> Bytes {
        let backend = mapping.backend.clone();
        if !self.mapped.contains(&mapping) {
            self.mapped.push(mapping);
        }
        backend
    }

    /// Forgets a translated subscription of `kind` named `client`; the
    /// backend name to unsubscribe from, when nothing else needs it.
    pub fn unmap(&mut self, kind: Kind, client: &Bytes) -> Option<Bytes> {
        let at = self
            .mapped
            .iter()
            .position(|m| m.kind() == kind && m.client == *client)?;
        let backend = self.mapped.remove(at).backend;
        let still_used = self
            .mapped
            .iter()
            .any(|m| m.kind() == kind && m.backend == backend)
            || self.set(kind).contains(&backend);
        (!still_used).then_some(backend)
    }

    /// The backend name for the client's subscription `name`.
    fn backend_name(&self, kind: Kind, name: &Bytes) -> Bytes {
        self.mapped
            .iter()
            .find(|m| m.kind() == kind && m.client == *name)
            .map_or_else(|| name.clone(), |m| m.backend.clone())
    }

    /// A message on a channel some translated subscription listens to: the
    /// client's messages for it, and the message itself only if the client
    /// also subscribed to the backend name plainly.
    fn translate_message(&self, frame: &Bytes, protocol: Protocol, output: &mut BytesMut) {
        let Ok(Frame::Array(items) | Frame::Push(items)) = Frame::parse_complete(frame) else {
            output.extend_from_slice(frame);
            return;
        };
        let bytes = |i: usize| {
            items
                .get(i)
                .and_then(Frame::as_bytes)
                .cloned()
                .unwrap_or_default()
        };
        let (kind, name, channel, payload) = if items.len() == 4 {
            (Kind::Pattern, bytes(1), bytes(2), bytes(3))
        } else {
            (Kind::Channel, bytes(1), bytes(1), bytes(2))
        };
        let mut mapped = false;
        for mapping in self
            .mapped
            .iter()
            .filter(|m| m.kind() == kind && m.backend == name)
        {
            mapped = true;
            if let Some(message) = mapping.message(&channel, &payload) {
                message.encode(protocol, output);
            }
        }
        let plain = self.mapped.iter().all(|m| m.client != name) && self.set(kind).contains(&name);
        if !mapped || plain {
            output.extend_from_slice(frame);
        }
    }

    /// A link's confirmation or error: settles the ticket it belongs to, or
    /// (a server-side SUNSUBSCRIBE of a channel the client still wants)
    /// schedules the channel's restoration.
    fn confirmation(&mut self, tag: u64, frame: &Bytes, router: &Router, handled: &mut Handled) {
        let Some(link) = self.links.get_mut(&tag) else {
            return;
        };
        if frame.starts_with(b"-") {
            // A command was refused as a whole (MOVED, for instance).
            let Some(ticket) = link.tickets.pop_front() else {
                return;
            };
            if let Some(router::redirect::Redirect::Moved { slot, addr }) =
                router::redirect::classify(frame, &link.addr)
            {
                router.topology().note_moved(slot, &addr);
            }
            router.topology().request_refresh();
            for (subscribe, kind, name) in &ticket.expected {
                if *subscribe && kind == &Kind::Shard {
                    link.shard_channels.remove(name);
                    if self.shard_channels.contains(name) {
                        self.orphans.insert(name.clone());
                    }
                }
            }
            settle(ticket, handled);
            self.schedule_retry();
            return;
        }
        let Some((subscribe, kind, name)) = parse_confirmation(frame) else {
            return;
        };
        let expected = link.tickets.front().and_then(|t| t.expected.front());
        if expected.is_some_and(|(s, k, n)| *s == subscribe && *k == kind && *n == name) {
            let ticket = link.tickets.front_mut().expect("checked above");
            ticket.expected.pop_front();
            if ticket.expected.is_empty() {
                let ticket = link.tickets.pop_front().expect("checked above");
                settle(ticket, handled);
            }
            return;
        }
        // Not asked for: the server dropped a shard channel (slot moved,
        // failover). Restore it if the client still wants it.
        if !subscribe && kind == Kind::Shard {
            link.shard_channels.remove(&name);
            if self.shard_channels.contains(&name) {
                self.orphans.insert(name);
                router.topology().request_refresh();
                self.schedule_retry();
            }
        }
    }

    /// A link ended: settle what it owed and restore what it carried.
    fn lost(
        &mut self,
        tag: u64,
        router: &Router,
        protocol: Protocol,
        output: &mut BytesMut,
        handled: &mut Handled,
    ) {
        let Some(mut link) = self.links.remove(&tag) else {
            return;
        };
        if let Some(tracking) = self.tracking.as_mut().filter(|t| t.links.contains(&tag)) {
            // Changes on that node may go unreported until the link is
            // back: the client must drop its whole cache.
            tracking.links.retain(|&t| t != tag);
            if let Some(waiting) = tracking.confirming.remove(&tag) {
                handled.completed |= waiting.done_one();
            }
            if protocol == Protocol::Resp3 {
                Frame::Push(vec![Frame::bulk("invalidate"), Frame::Null]).encode(protocol, output);
            }
            router.topology().request_refresh();
            self.schedule_retry();
            return;
        }
        if let Some(waiting) = self.monitors.remove(&tag) {
            // A node that went away is no longer monitored.
            if let Some(waiting) = waiting {
                handled.completed |= waiting.done_one();
            }
            return;
        }
        for ticket in link.tickets.drain(..) {
            settle(ticket, handled);
        }
        if self.main == Some(tag) {
            self.main = None;
        }
        let wanted: Vec<Bytes> = link
            .shard_channels
            .drain()
            .filter(|name| self.shard_channels.contains(name))
            .collect();
        self.orphans.extend(wanted);
        if self.total() > 0 {
            tracing::debug!(addr = %link.addr, "subscription link lost; resubscribing");
            router.topology().request_refresh();
            self.schedule_retry();
        }
    }

    fn schedule_retry(&mut self) {
        if self.retry_at.is_none() {
            self.retry_pause = if self.retry_pause.is_zero() {
                RETRY_FIRST
            } else {
                (self.retry_pause * 2).min(RETRY_MAX)
            };
            self.retry_at = Some(Instant::now() + self.retry_pause);
        }
    }

    /// Restores what was lost: the main link with every channel and
    /// pattern, and orphaned shard channels on their owners' links.
    pub fn restore(&mut self, router: &Router, protocol: Protocol) {
        self.retry_at = None;
        if self.main.is_none() && (!self.channels.is_empty() || !self.patterns.is_empty()) {
            match main_node(router) {
                Some(addr) => {
                    let tag = self.open(addr, router, protocol);
                    self.main = Some(tag);
                    let channels: Vec<Bytes> = self
                        .channels
                        .iter()
                        .map(|c| self.backend_name(Kind::Channel, c))
                        .filter(|c| !is_notification(c))
                        .collect();
                    let patterns: Vec<Bytes> = self
                        .patterns
                        .iter()
                        .map(|p| self.backend_name(Kind::Pattern, p))
                        .filter(|p| !is_notification(p))
                        .collect();
                    if !channels.is_empty() {
                        self.send(tag, true, Kind::Channel, &channels, None);
                    }
                    if !patterns.is_empty() {
                        self.send(tag, true, Kind::Pattern, &patterns, None);
                    }
                }
                None => self.schedule_retry(),
            }
        }
        for kind in [Kind::Channel, Kind::Pattern] {
            let wanted: Vec<Bytes> = self
                .set(kind)
                .iter()
                .map(|n| self.backend_name(kind, n))
                .filter(|n| is_notification(n))
                .collect();
            if !wanted.is_empty() {
                self.send_everywhere(true, kind, &wanted, None, router, protocol);
            }
        }
        self.open_tracking_links(router, None);
        let orphans: Vec<Bytes> = self.orphans.drain().collect();
        if !orphans.is_empty() {
            self.send_shard(true, &orphans, None, router, protocol);
        }
        if self.retry_at.is_none() && self.orphans.is_empty() {
            self.retry_pause = Duration::ZERO;
        }
    }

    /// Closes links that carry nothing and owe nothing.
    fn close_idle_links(&mut self) {
        let main = self.main;
        let (channels, patterns) = (self.channels.len(), self.patterns.len());
        let monitors = &self.monitors;
        let tracking: &[u64] = self.tracking.as_ref().map_or(&[], |t| &t.links);
        self.links.retain(|tag, link| {
            let carries = if monitors.contains_key(tag) || tracking.contains(tag) {
                true
            } else if Some(*tag) == main {
                channels + patterns > 0
            } else {
                !link.shard_channels.is_empty() || !link.notifications.is_empty()
            };
            carries || !link.tickets.is_empty()
        });
        if main.is_some_and(|tag| !self.links.contains_key(&tag)) {
            self.main = None;
        }
    }

    /// Closes idle links now (after an unsubscribe that needed no backend).
    pub fn tidy(&mut self) {
        self.close_idle_links();
    }
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
