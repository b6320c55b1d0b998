//! The sets a client subscribed to, and the commands sent on the links
//! for them.

// The methods of [`Subscriptions`] by job, over the types of this module.
use super::*;

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
        !self.links.is_empty() || self.total() > 0 || self.monitoring
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
    pub(super) fn send_everywhere(
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

    pub(super) fn open(&mut self, addr: Arc<str>, router: &Router, protocol: Protocol) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        let events = self.events.get_or_insert_with(|| mpsc::channel(EVENTS)).0.clone();
        let endpoint = link_endpoint(&addr, protocol);
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

    pub(super) fn send(
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
}

/// The endpoint of a subscription link to `addr`: channels have no
/// database, so links are shared by every database (the one endpoint a
/// session builds outside [`crate::door`], which needs nothing of it).
fn link_endpoint(addr: &Arc<str>, protocol: Protocol) -> pool::Endpoint {
    pool::Endpoint {
        addr: addr.clone(),
        protocol,
        db: 0,
        readonly: false,
    }
}
