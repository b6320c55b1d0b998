//! A tenant's own channels: what it subscribes to is kept, and sent to the
//! backend, under its prefix (patterns under the escaped prefix), and the
//! messages come back with the prefix taken off. Another tenant's
//! messages never match its subscriptions, so isolation needs no filter.

// The methods of [`Subscriptions`] by job, over the types of this module.
use super::*;

impl Subscriptions {
    /// Where the client's channels are: under its tenant's prefix, or
    /// `None` for the backend's own names.
    pub fn set_tenant(&mut self, channels: Option<Scope>) {
        self.tenant = channels;
    }

    /// The name a subscription of the client's is kept and sent under.
    pub fn stored_name(&self, kind: Kind, client: &Bytes) -> Bytes {
        match (&self.tenant, kind) {
            (None, _) => client.clone(),
            (Some(scope), Kind::Pattern) => scope.pattern(client),
            (Some(scope), _) => scope.encode(client),
        }
    }

    /// The client's name for a subscription kept as `stored`.
    pub fn client_name(&self, kind: Kind, stored: &Bytes) -> Bytes {
        let Some(scope) = &self.tenant else {
            return stored.clone();
        };
        if self
            .mapped
            .iter()
            .any(|m| m.kind() == kind && m.client == *stored)
        {
            // A keyspace notification: kept under the client's name.
            return stored.clone();
        }
        let decoded = match kind {
            Kind::Pattern => {
                let head = scope.pattern(b"");
                stored.starts_with(&head).then(|| stored.slice(head.len()..))
            }
            _ => scope.decode(stored),
        };
        decoded.unwrap_or_else(|| stored.clone())
    }

    /// A message on a tenant's channel, named as the client knows it.
    pub(super) fn tenant_message(&self, frame: &Bytes, protocol: Protocol, output: &mut BytesMut) {
        let Ok(Frame::Array(mut items) | Frame::Push(mut items)) = Frame::parse_complete(frame) else {
            return;
        };
        let kind = match items.len() {
            4 => Kind::Pattern,
            _ if frame_kind(frame).as_deref() == Some(b"smessage") => Kind::Shard,
            _ => Kind::Channel,
        };
        if kind == Kind::Pattern {
            if let Some(Frame::Bulk(pattern)) = items.get(1) {
                items[1] = Frame::Bulk(self.client_name(Kind::Pattern, pattern));
            }
        }
        let channel_at = items.len() - 2;
        if let Some(Frame::Bulk(channel)) = items.get(channel_at) {
            items[channel_at] = Frame::Bulk(self.client_name(Kind::Channel, channel));
        }
        Frame::Push(items).encode(protocol, output);
    }
}
