//! A command sent between MULTI and EXEC: checked, and queued as the
//! backend must get it with the nodes it reaches, or refused.

use aggregate::colocate::sort_has_key_patterns;
use middleware::namespace::carries_out;
use resp::{Frame, Request};
use router::command::{Flags, ResponsePolicy};
use router::Route;

use crate::context::{SessionState, Shared};
use crate::transaction::{Queued, Reach};
use crate::{door, edge};

/// A command sent between MULTI and EXEC: checked and queued, or refused
/// (which marks the transaction). `lower` is its name in lower case.
pub fn queue(request: &Request, lower: &[u8], state: &mut SessionState, shared: &Shared) -> Frame {
    let checked = check_queued(request, lower, state, shared);
    let limit = shared.config().query_buffer_limit;
    let Some(queue) = state.transaction.queue.as_mut() else {
        return Frame::error("ERR EXEC without MULTI");
    };
    match checked {
        Ok((_, queued)) if queue.bytes + queued.request.raw().len() > limit => {
            queue.dirty = true;
            Frame::error("ERR proxy: the transaction is larger than the query buffer limit")
        }
        Ok((slot, queued)) => {
            queue.spans_slots |= matches!((queue.slot, slot), (Some(first), Some(slot)) if first != slot);
            queue.slot = queue.slot.or(slot);
            queue.reaches_every |= matches!(queued.reach, Reach::Every { .. });
            queue.bytes += queued.request.raw().len();
            queue.commands.push(queued);
            Frame::simple("QUEUED")
        }
        Err(error) => {
            queue.dirty = true;
            error
        }
    }
}

/// Whether `request` may join the transaction: its slot if it has keys,
/// and the command as it is queued.
fn check_queued(
    request: &Request,
    lower: &[u8],
    state: &SessionState,
    shared: &Shared,
) -> Result<(Option<u16>, Queued), Frame> {
    let name = String::from_utf8_lossy(request.name()).to_ascii_uppercase();
    // Connection state the proxy keeps cannot change inside a block that
    // may run on a shared backend connection.
    let connection_state = matches!(
        lower,
        b"select" | b"hello" | b"auth" | b"client" | b"proxy" | b"readonly" | b"readwrite" | b"monitor"
    );
    if connection_state || crate::commands::pubsub::is_subscription(lower) {
        return Err(Frame::error(format!(
            "ERR proxy: {name} inside MULTI is not supported"
        )));
    }
    let router = &shared.stack_of(state.group).router;
    let Some(spec) = router.table().lookup(request).cloned() else {
        return Err(edge::unknown_command(request));
    };
    if !spec.arity_ok(request.len()) {
        return Err(edge::wrong_arity(&spec.name));
    }
    if spec.flags.contains(Flags::NO_MULTI) {
        return Err(Frame::error(format!(
            "ERR Command '{}' not allowed inside a transaction",
            spec.name
        )));
    }
    let topology = router.topology().snapshot();
    if door::emulated(state, shared) && carries_out(&spec.name, request.args()) {
        return Err(Frame::error(format!(
            "ERR proxy: {name} inside MULTI is not supported where databases are emulated \
             (the proxy carries it out in several steps over every node)"
        )));
    }
    let sort = matches!(spec.name.as_str(), "sort" | "sort_ro");
    if sort && topology.mode() == topology::Mode::Cluster && sort_has_key_patterns(request.args()) {
        return Err(Frame::error(format!(
            "ERR proxy: {name} with BY or GET patterns inside MULTI is not supported on a cluster \
             (the keys the patterns name are copied in several steps)"
        )));
    }
    let backend = door::backend_form(request, state, shared);
    let mut command = door::command(&backend, state);
    command.spec = Some(spec.clone());
    let route = router
        .prepare(&mut command, &topology)
        .map_err(|error| edge::reply_for(&error))?;
    let (slot, reach) =
        match route {
            Route::Shard { slot, .. } => (slot, Reach::Home),
            // PING checks every shard outside a transaction (its request
            // tip); inside one, the transaction's node answers it, as the
            // one server does, without spreading the transaction.
            Route::AllShards(_) if spec.name == "ping" => (None, Reach::Home),
            Route::Any { .. } | Route::Node { .. } => (None, Reach::Home),
            Route::AllShards(ResponsePolicy::Special) | Route::AllNodes(ResponsePolicy::Special)
                if !matches!(spec.name.as_str(), "randomkey" | "info") =>
            {
                return Err(Frame::error(format!(
                    "ERR proxy: {name} runs on every node of a cluster and cannot be part of a transaction"
                )))
            }
            Route::AllShards(policy) => (
                None,
                Reach::Every {
                    replicas: false,
                    policy,
                },
            ),
            Route::AllNodes(policy) => (
                None,
                Reach::Every {
                    replicas: true,
                    policy,
                },
            ),
            Route::MultiSlot => return Err(Frame::error(
                "ERR proxy: inside MULTI, the keys of one command on a cluster must hash to one slot (use a hash tag)",
            )),
        };
    let transaction = &state.transaction;
    if let (Some(pinned), Some(slot)) = (transaction.pinned_slot(), slot) {
        if pinned != slot && transaction.is_watching() {
            return Err(Frame::error(format!(
                "ERR proxy: the keys of a transaction with WATCH on a cluster must hash to one slot \
                 (use a hash tag): this command's keys are in slot {slot}, earlier ones in slot {pinned}"
            )));
        }
    }
    let queue = transaction.queue.as_ref();
    let spans_slots = queue.is_some_and(|q| {
        q.spans_slots || matches!((q.slot, slot), (Some(first), Some(slot)) if first != slot)
    });
    let reaches_every = queue.is_some_and(|q| q.reaches_every) || matches!(reach, Reach::Every { .. });
    if spans_slots && reaches_every {
        return Err(Frame::error(format!(
            "ERR proxy: {name} cannot join a transaction that both spans slots and runs a command on \
             every node (FLUSHALL, CONFIG SET, SCRIPT, ...): their order could not be kept"
        )));
    }
    let nodes = match reach {
        Reach::Home => 1,
        Reach::Every { replicas: false, .. } => topology.shards().len(),
        Reach::Every { replicas: true, .. } => topology.shards().iter().map(|s| 1 + s.replicas.len()).sum(),
    };
    if state.transaction.is_watching() && nodes > 1 {
        return Err(Frame::error(format!(
            "ERR proxy: {name} runs on every node, and a transaction with WATCH runs on the watched keys' node only"
        )));
    }
    Ok((
        slot,
        Queued {
            request: backend,
            client: request.clone(),
            reach,
            spec,
            slot,
        },
    ))
}
