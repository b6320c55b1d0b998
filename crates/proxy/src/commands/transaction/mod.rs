//! MULTI, EXEC, DISCARD, WATCH and UNWATCH.
//!
//! The proxy queues a transaction itself: each command between MULTI and
//! EXEC is admitted by the gate ([`crate::gate`]), checked (known command,
//! arity, and on a cluster one slot for each command's keys) and answered
//! `+QUEUED`, as Valkey answers. Each is queued as the backend must get it
//! (rewritten into the client's database where databases are emulated)
//! with the nodes it reaches: its keys' primary, or every primary (or every
//! node) for a keyless command that goes everywhere outside a transaction
//! too (FLUSHALL, FLUSHDB, CONFIG SET, SCRIPT, FUNCTION, ...).
//!
//! EXEC sends one block per slot of the transaction's keys (keyless
//! commands join the first slot's block on its node, and form a block of
//! their own on the other nodes): `MULTI`, the block's commands and `EXEC`,
//! which a backend connection writes contiguously, so even a shared
//! connection runs it atomically: nobody else's command can fall between
//! MULTI and EXEC. With one block the client gets that node's EXEC reply
//! as it is; with several, each command's reply comes from its block,
//! merged by its response policy where it ran on several nodes (`run`).
//!
//! What a transaction over several blocks loses is stated in the README:
//! each block is atomic, the blocks are not atomic together. Every key's
//! commands stay in one block, in the client's order, so the replies are
//! one server's; what could see another order is a command on every node
//! (FLUSHALL) next to keys in several slots, and that is refused while
//! queueing.
//!
//! WATCH needs the backend to remember the watched keys until EXEC, so it
//! takes a dedicated connection to the keys' primary; the transaction then
//! runs on that connection, which goes back to the pool once EXEC, DISCARD
//! or UNWATCH has cleared the watch. A client that disconnects while
//! watching closes it. A watched transaction must stay in the watched
//! slot: a command that would leave it is refused while queueing, and
//! makes EXEC answer EXECABORT, the same as any other error while
//! queueing. So are the commands that the namespace layer carries out in
//! steps where databases are emulated (FLUSHDB, KEYS, SCAN, ...): they
//! cannot be one command of an atomic block.
//!
//! - `queue`: checking and queueing a command.
//! - `run`: EXEC, on one node or several.

mod queue;
mod redirect;
mod run;

pub use queue::queue;
pub use run::exec;

use bytes::Bytes;
use resp::{Frame, Request};
use router::Reply;

use super::Local;
use crate::context::{SessionState, Shared};
use crate::transaction::{Queue, Watch, UNWATCH};
use crate::{door, edge};

/// `MULTI`
pub fn multi(request: &Request, state: &mut SessionState) -> Frame {
    if request.len() != 1 {
        return edge::wrong_arity("multi");
    }
    if state.transaction.in_multi() {
        // Not reached from a session (MULTI inside MULTI is refused while
        // queueing, as a `no-multi` command), kept for direct callers.
        return Frame::error("ERR Command 'multi' not allowed inside a transaction");
    }
    state.transaction.queue = Some(Queue::default());
    Frame::simple("OK")
}

/// A refused EXEC, as Valkey answers one: the transaction (and any
/// watch) is discarded, and the refusal is told inside an EXECABORT.
pub fn abort(refusal: Frame, state: &mut SessionState) -> Frame {
    state.transaction.reset();
    let reason = match &refusal {
        Frame::Error(text) | Frame::BulkError(text) => String::from_utf8_lossy(text).into_owned(),
        other => format!("{other:?}"),
    };
    Frame::error(format!("EXECABORT Transaction discarded because of: {reason}"))
}

/// `DISCARD`
pub fn discard(request: &Request, state: &mut SessionState) -> Frame {
    if request.len() != 1 {
        return edge::wrong_arity("discard");
    }
    if state.transaction.queue.is_none() {
        return Frame::error("ERR DISCARD without MULTI");
    }
    state.transaction.reset();
    Frame::simple("OK")
}

/// `WATCH key [key ...]`: on the dedicated connection to the keys' primary.
pub fn watch(request: &Request, state: &mut SessionState, shared: &Shared) -> Local {
    if request.len() < 2 {
        return Local::Reply(edge::wrong_arity("watch"));
    }
    if state.transaction.in_multi() {
        return Local::Reply(Frame::error(
            "ERR Command 'watch' not allowed inside a transaction",
        ));
    }
    let router = &shared.stack_of(state.group).router;
    let backend = door::backend_form(request, state, shared);
    let mut command = door::command(&backend, state);
    let (addr, slot) = match router.pin_target(&mut command) {
        Ok(target) => target,
        Err(router::Error::CrossSlot) => {
            return Local::Reply(Frame::error(
                "ERR proxy: keys watched on a cluster must hash to one slot (use a hash tag)",
            ))
        }
        Err(error) => return Local::Reply(edge::reply_for(&error)),
    };
    let endpoint = door::endpoint(&addr, state, shared);
    let transaction = &mut state.transaction;
    if let (Some(pinned), Some(slot)) = (transaction.pinned_slot(), slot) {
        if pinned != slot {
            return Local::Reply(Frame::error(format!(
                "ERR proxy: keys watched on a cluster must hash to one slot (use a hash tag): \
                 these keys are in slot {slot}, the ones already watched in slot {pinned}"
            )));
        }
    }
    let watch = transaction.watch.get_or_insert_with(|| Watch {
        connection: router.pool().dedicated(&endpoint),
        slot: None,
    });
    watch.slot = watch.slot.or(slot);
    let reply = watch.connection.send(backend.raw(), 0);
    Local::Later(Box::pin(async move {
        Ok(Reply::Raw(reply.await.map_err(router::Error::Backend)?))
    }))
}

/// `UNWATCH`
pub fn unwatch(request: &Request, state: &mut SessionState) -> Local {
    if request.len() != 1 {
        return Local::Reply(edge::wrong_arity("unwatch"));
    }
    let Some(watch) = state.transaction.watch.take() else {
        return Local::Reply(Frame::simple("OK"));
    };
    Local::Later(Box::pin(async move {
        let reply = watch
            .connection
            .send(&Bytes::from_static(UNWATCH), 0)
            .await
            .map_err(router::Error::Backend)?;
        watch.connection.release();
        Ok(Reply::Raw(reply))
    }))
}
