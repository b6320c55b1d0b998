//! What the links send back: messages for the client, confirmations that
//! settle tickets, and subscriptions lost and restored.

// The methods of [`Subscriptions`] by job, over the types of this module.
use super::*;

impl Subscriptions {
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
        if event.tag == crate::monitor::MONITOR_TAG {
            if self.monitoring {
                output.extend_from_slice(&frame);
            }
            return handled;
        }
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
        match frame_kind(&frame).as_deref() {
            Some(b"message" | b"pmessage") if !self.mapped.is_empty() => {
                self.translate_message(&frame, protocol, output)
            }
            Some(b"message" | b"pmessage" | b"smessage") if self.tenant.is_some() => {
                self.tenant_message(&frame, protocol, output)
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
            if self.tenant.is_some() {
                self.tenant_message(frame, protocol, output);
            } else {
                output.extend_from_slice(frame);
            }
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

    pub(super) fn schedule_retry(&mut self) {
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
        let tracking: &[u64] = self.tracking.as_ref().map_or(&[], |t| &t.links);
        self.links.retain(|tag, link| {
            let carries = if tracking.contains(tag) {
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
