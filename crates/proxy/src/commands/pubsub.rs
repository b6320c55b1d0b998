//! SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBE forms, PING in
//! RESP2 subscribe mode, and the commands a RESP2 subscriber may not send.
//! The links behind them are in [`crate::pubsub`].

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use resp::{Frame, Request};

use super::Local;
use crate::context::{SessionState, Shared};
use crate::edge;
use crate::pubsub::notifications;
use crate::pubsub::{Kind, Waiting, INVALIDATE_CHANNEL};
use middleware::Scope;

pub use crate::handling::is_subscription;

/// Commands a RESP2 client may send while subscribed.
pub fn allowed_while_subscribed(lower: &[u8]) -> bool {
    is_subscription(lower) || matches!(lower, b"ping" | b"quit" | b"reset")
}

/// Valkey's error for another command in RESP2 subscribe mode.
pub fn not_allowed(request: &Request) -> Frame {
    Frame::error(format!(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
        String::from_utf8_lossy(request.name()).to_ascii_lowercase()
    ))
}

/// PING in RESP2 subscribe mode: `["pong", message]`.
pub fn ping(request: &Request) -> Frame {
    let message = match &request.args().to_vec()[..] {
        [_] => Bytes::new(),
        [_, message] => message.clone(),
        _ => return edge::wrong_arity("ping"),
    };
    Frame::Array(vec![Frame::bulk("pong"), Frame::Bulk(message)])
}

/// One of the six subscription commands; `lower` is its name.
pub fn command(request: &Request, lower: &[u8], state: &mut SessionState, shared: &Shared) -> Local {
    let (kind, subscribe) = match lower {
        b"subscribe" => (Kind::Channel, true),
        b"psubscribe" => (Kind::Pattern, true),
        b"ssubscribe" => (Kind::Shard, true),
        b"unsubscribe" => (Kind::Channel, false),
        b"punsubscribe" => (Kind::Pattern, false),
        _ => (Kind::Shard, false),
    };
    let names: Vec<Bytes> = request.args().slice(1..).to_vec();
    if subscribe && names.is_empty() {
        return Local::Reply(edge::wrong_arity(&String::from_utf8_lossy(lower)));
    }
    let router = &shared.stack_of(state.group).router;
    let emulating = crate::door::emulated(state, shared);
    let protocol = state.protocol;
    let tenant = shared
        .tenants
        .prefix(state.tenant)
        .filter(|prefix| !prefix.is_empty());
    let subs = &mut state.pubsub;
    subs.set_tenant(
        tenant
            .as_ref()
            .map(|prefix| Scope::new(prefix.clone(), 0, false).channels()),
    );
    // UNSUBSCRIBE without names means every subscription of that kind.
    let names = if names.is_empty() {
        let mut all: Vec<Bytes> = subs
            .set(kind)
            .iter()
            .map(|stored| subs.client_name(kind, stored))
            .collect();
        all.sort();
        all
    } else {
        names
    };
    let waiting = Arc::new(Waiting::default());
    let mut confirmations = BytesMut::new();
    let (sub_name, unsub_name) = kind.names();
    if names.is_empty() {
        // Nothing to unsubscribe from: one confirmation with a nil name.
        let count = subs.count(kind) as i64;
        return Local::Reply(Frame::Push(vec![
            Frame::bulk(unsub_name),
            Frame::Null,
            Frame::Integer(count),
        ]));
    }
    let keys = shared.tenants.key_prefix(state.tenant).unwrap_or_default();
    let tenant = tenant.unwrap_or_default();
    let db_base = state.db_base;
    let mut to_send = Vec::with_capacity(names.len());
    for name in &names {
        // Keyspace notifications of emulated databases and of tenants live
        // under other names on the backend; a tenant's channels under its
        // prefix.
        let translated = if emulating || !tenant.is_empty() {
            notifications::translate(kind, name, &keys, db_base, emulating)
        } else {
            None
        };
        let stored = match translated {
            Some(_) => name.clone(),
            None => subs.stored_name(kind, name),
        };
        let changed = if subscribe {
            subs.add(kind, &stored)
        } else {
            subs.remove(kind, &stored)
        };
        if changed {
            match (translated, subscribe) {
                (Some(mapping), true) => to_send.push(subs.map(mapping)),
                (Some(_), false) => to_send.extend(subs.unmap(kind, name)),
                (None, _) => to_send.push(stored),
            }
        }
        let confirmation = Frame::Push(vec![
            Frame::bulk(if subscribe { sub_name } else { unsub_name }),
            Frame::Bulk(name.clone()),
            Frame::Integer(subs.count(kind) as i64),
        ]);
        confirmation.encode(protocol, &mut confirmations);
    }
    if !to_send.is_empty() {
        match kind {
            Kind::Shard => subs.send_shard(subscribe, &to_send, Some(&waiting), router, protocol),
            _ => subs.send_main(subscribe, kind, &to_send, &waiting, router, protocol),
        }
    }
    subs.tidy();
    // Other clients' CLIENT TRACKING REDIRECT reaches this one while it
    // listens on the invalidation channel.
    if kind == Kind::Channel {
        let listening = subs.set(Kind::Channel).contains(INVALIDATE_CHANNEL);
        let sink = listening.then(|| subs.events_sender());
        state.info.set_invalidation_sink(sink);
    }
    Local::Pushes(Box::pin(waiting.reply(confirmations.freeze())))
}
