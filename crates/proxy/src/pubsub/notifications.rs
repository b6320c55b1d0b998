//! Keyspace notifications in emulated databases and for tenants.
//!
//! Where databases are emulated by namespace, the backend has only
//! database 0: a change to key `k` of database 3 is announced on
//! `__keyspace@0__:<stored name>` and `__keyevent@0__:<event>` with the
//! stored name as payload. A client subscribed to `__keyspace@3__:k` or
//! `__keyevent@3__:set` is subscribed to those backend channels instead,
//! and the messages come back under the names the client chose, with the
//! key as the client knows it. Database 0 does not see the emulated
//! databases' keys there either.
//!
//! A tenant's client is subscribed the same way to the notifications of
//! its own keys (their stored names carry the tenant's prefix, in the
//! backend's database or in database 0 where databases are emulated), and
//! gets them with the prefix taken off; another tenant's keys never show.

use bytes::{BufMut, Bytes, BytesMut};
use resp::Frame;

use super::Kind;
use middleware::namespace::glob;
use middleware::Scope;

/// How one client subscription maps onto the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// What the client subscribed to.
    pub client: Bytes,
    /// What the backend is subscribed to for it.
    pub backend: Bytes,
    /// The database the client named.
    db: u32,
    /// Where that database's keys are stored.
    keys: Scope,
    /// The backend's channels start with this (`__keyspace@0__:`).
    backend_head: Bytes,
    /// `__keyspace@` (true) or `__keyevent@` (false).
    keyspace: bool,
    /// The part after `__:` as the client gave it.
    rest: Bytes,
    kind: Kind,
}

/// The backend subscription for a client's channel or pattern, when it is
/// a keyspace or keyevent channel, for a client of the tenant with key
/// prefix `tenant` (empty for none) whose database 0 is the backend's
/// `db_base`, where databases are `emulated` or not.
pub fn translate(
    kind: Kind,
    client: &Bytes,
    tenant: &Bytes,
    db_base: u32,
    emulated: bool,
) -> Option<Mapping> {
    if kind == Kind::Shard {
        return None;
    }
    let (keyspace, after) = if let Some(after) = client.strip_prefix(b"__keyspace@") {
        (true, after)
    } else {
        (false, client.strip_prefix(b"__keyevent@")?)
    };
    let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
    let db: u32 = std::str::from_utf8(&after[..digits]).ok()?.parse().ok()?;
    let rest = after[digits..].strip_prefix(b"__:")?;
    let rest = client.slice(client.len() - rest.len()..);
    let keys = Scope::new(tenant.clone(), db_base + db, emulated);
    let backend_db = if emulated { 0 } else { db_base + db };
    let backend_head = join(
        if keyspace { b"__keyspace@" } else { b"__keyevent@" },
        backend_db,
        b"",
    );
    let mut backend = BytesMut::from(&backend_head[..]);
    match (keyspace, kind, keys.glob()) {
        // One key: its stored name.
        (true, Kind::Channel, _) => backend.put_slice(&keys.encode(&rest)),
        // Any key of the database or tenant: narrowed in the proxy.
        (true, _, Some(glob)) => backend.put_slice(&glob),
        // Events are channels per event, for every database at once.
        _ => backend.put_slice(&rest),
    }
    Some(Mapping {
        client: client.clone(),
        backend: backend.freeze(),
        db,
        keys,
        backend_head,
        keyspace,
        rest,
        kind,
    })
}

impl Mapping {
    /// Channel or pattern.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The client's message for a backend message on `channel` with
    /// `payload`, or `None` when it is not for this subscription.
    pub fn message(&self, channel: &Bytes, payload: &Bytes) -> Option<Frame> {
        let suffix = channel.slice(self.backend_head.len().min(channel.len())..);
        let (client_channel, client_payload) = if self.keyspace {
            let key = self.keys.decode(&suffix)?;
            if self.kind == Kind::Pattern && !glob::matches(&self.rest, &key) {
                return None;
            }
            (join(b"__keyspace@", self.db, &key), payload.clone())
        } else {
            let key = self.keys.decode(payload)?;
            (join(b"__keyevent@", self.db, &suffix), key)
        };
        let mut items = vec![Frame::bulk(if self.kind == Kind::Pattern {
            "pmessage"
        } else {
            "message"
        })];
        if self.kind == Kind::Pattern {
            items.push(Frame::Bulk(self.client.clone()));
        }
        items.push(Frame::Bulk(client_channel));
        items.push(Frame::Bulk(client_payload));
        Some(Frame::Push(items))
    }
}

fn join(prefix: &[u8], db: u32, rest: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + rest.len() + 8);
    out.put_slice(prefix);
    out.put_slice(db.to_string().as_bytes());
    out.put_slice(b"__:");
    out.put_slice(rest);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use middleware::Space;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn keyspace_channels_of_database_three() {
        let stored = Space::database(3).encode(b"k");
        let exact = translate(Kind::Channel, &b("__keyspace@3__:k"), &Bytes::new(), 0, true).unwrap();
        let mut expected = b"__keyspace@0__:".to_vec();
        expected.extend_from_slice(&stored);
        assert_eq!(&exact.backend[..], &expected[..]);
        let message = exact.message(&Bytes::from(expected.clone()), &b("set")).unwrap();
        assert_eq!(
            message,
            Frame::Push(vec![
                Frame::bulk("message"),
                Frame::Bulk(b("__keyspace@3__:k")),
                Frame::Bulk(b("set"))
            ])
        );
        let pattern = translate(Kind::Pattern, &b("__keyspace@3__:k*"), &Bytes::new(), 0, true).unwrap();
        assert!(pattern.message(&Bytes::from(expected), &b("set")).is_some());
        let events = translate(Kind::Channel, &b("__keyevent@3__:set"), &Bytes::new(), 0, true).unwrap();
        assert_eq!(&events.backend[..], b"__keyevent@0__:set");
        let message = events.message(&b("__keyevent@0__:set"), &stored).unwrap();
        assert_eq!(
            message,
            Frame::Push(vec![
                Frame::bulk("message"),
                Frame::Bulk(b("__keyevent@3__:set")),
                Frame::Bulk(b("k"))
            ])
        );
        // Database 0 does not see database 3's key.
        let zero = translate(Kind::Channel, &b("__keyevent@0__:set"), &Bytes::new(), 0, true).unwrap();
        assert_eq!(zero.message(&b("__keyevent@0__:set"), &stored), None);
        assert_eq!(translate(Kind::Channel, &b("news"), &Bytes::new(), 0, true), None);
    }

    #[test]
    fn a_tenant_hears_of_its_own_keys_only() {
        let shop = b("shop:");
        // On a backend with databases: database 10 stays 10.
        let exact = translate(Kind::Channel, &b("__keyspace@10__:cart:1"), &shop, 0, false).unwrap();
        assert_eq!(exact.backend, b("__keyspace@10__:shop:cart:1"));
        let message = exact
            .message(&b("__keyspace@10__:shop:cart:1"), &b("set"))
            .unwrap();
        assert_eq!(
            message,
            Frame::Push(vec![
                Frame::bulk("message"),
                Frame::Bulk(b("__keyspace@10__:cart:1")),
                Frame::Bulk(b("set"))
            ])
        );
        let pattern = translate(Kind::Pattern, &b("__keyspace@0__:cart:*"), &shop, 0, true).unwrap();
        assert_eq!(pattern.backend, b("__keyspace@0__:shop:*"));
        assert!(pattern
            .message(&b("__keyspace@0__:shop:cart:2"), &b("set"))
            .is_some());
        assert_eq!(pattern.message(&b("__keyspace@0__:shop:user:2"), &b("set")), None);
        assert_eq!(pattern.message(&b("__keyspace@0__:blog:cart:2"), &b("set")), None);
        let events = translate(Kind::Channel, &b("__keyevent@0__:set"), &shop, 0, true).unwrap();
        assert_eq!(events.message(&b("__keyevent@0__:set"), &b("blog:k")), None);
        let mine = events.message(&b("__keyevent@0__:set"), &b("shop:k")).unwrap();
        assert_eq!(
            mine,
            Frame::Push(vec![
                Frame::bulk("message"),
                Frame::Bulk(b("__keyevent@0__:set")),
                Frame::Bulk(b("k"))
            ])
        );
    }
}
