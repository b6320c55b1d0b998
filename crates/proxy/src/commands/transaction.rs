//! MULTI, EXEC, DISCARD, WATCH and UNWATCH.
//!
//! The proxy queues a transaction itself: each command between MULTI and
//! EXEC is checked (known command, arity, and on a cluster one slot for the
//! whole transaction) and answered `+QUEUED`, as Valkey answers. EXEC sends
//! `MULTI`, the queued commands and `EXEC` as one block, which a backend
//! connection writes contiguously, so even a shared connection runs it
//! atomically: nobody else's command can fall between MULTI and EXEC. The
//! client gets EXEC's reply.
//!
//! WATCH needs the backend to remember the watched keys until EXEC, so it
//! takes a dedicated connection to the keys' primary; the transaction then
//! runs on that connection, which goes back to the pool once EXEC, DISCARD
//! or UNWATCH has cleared the watch. A client that disconnects while
//! watching closes it.
//!
//! On a cluster a transaction must keep its keys in one slot (Valkey's own
//! rule for EXEC). The first command that breaks the rule is refused with an
//! error and marks the transaction, so EXEC answers EXECABORT, the same as
//! any other error while queueing.

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use middleware::namespace::{emulates, rewrite, Space};
use pool::{Dedicated, Endpoint};
use resp::{Frame, Request};
use router::command::{Flags, ResponsePolicy};
use router::{Command, Reply};

use super::Local;
use crate::edge;
use crate::session::{SessionState, Shared};

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";
const UNWATCH: &[u8] = b"*1\r\n$7\r\nUNWATCH\r\n";

/// A client's MULTI queue and WATCH connection.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Set between MULTI and EXEC / DISCARD.
    queue: Option<Queue>,
    /// Set while keys are watched.
    watch: Option<Watch>,
}

/// Commands queued since MULTI.
#[derive(Debug)]
struct Queue {
    /// `MULTI` followed by every queued request, as sent.
    block: BytesMut,
    commands: u32,
    /// An error while queueing: EXEC answers EXECABORT.
    dirty: bool,
    /// The slot every keyed command so far uses (cluster only).
    slot: Option<u16>,
}

/// The dedicated connection holding a client's WATCHes.
#[derive(Debug)]
struct Watch {
    connection: Dedicated,
    slot: Option<u16>,
}

impl Transaction {
    /// True between MULTI and EXEC / DISCARD.
    pub fn in_multi(&self) -> bool {
        self.queue.is_some()
    }

    /// Commands queued since MULTI, or `None` outside a transaction.
    pub fn queued(&self) -> Option<u32> {
        self.queue.as_ref().map(|q| q.commands)
    }

    /// True while keys are watched (a dedicated connection is held).
    pub fn is_watching(&self) -> bool {
        self.watch.is_some()
    }

    /// Marks the transaction as failed: EXEC will answer EXECABORT (a
    /// command was refused while queueing).
    pub fn mark_failed(&mut self) {
        if let Some(queue) = self.queue.as_mut() {
            queue.dirty = true;
        }
    }

    /// Forgets the transaction and the watch (RESET): the watch connection
    /// is unwatched and returned to the pool in the background.
    pub fn reset(&mut self) {
        self.queue = None;
        if let Some(watch) = self.watch.take() {
            unwatch_later(watch.connection);
        }
    }

    /// The slot the watch and the queue agree on so far.
    fn pinned_slot(&self) -> Option<u16> {
        self.queue
            .as_ref()
            .and_then(|q| q.slot)
            .or_else(|| self.watch.as_ref().and_then(|w| w.slot))
    }
}

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
    let mut block = BytesMut::with_capacity(256);
    block.extend_from_slice(MULTI);
    state.transaction.queue = Some(Queue {
        block,
        commands: 0,
        dirty: false,
        slot: None,
    });
    Frame::simple("OK")
}

/// A command sent between MULTI and EXEC: checked and queued, or refused
/// (which marks the transaction). `lower` is its name in lower case.
pub fn queue(request: &Request, lower: &[u8], state: &mut SessionState, shared: &Shared) -> Frame {
    let checked = check_queued(request, lower, state, shared);
    let limit = shared.config.query_buffer_limit;
    let Some(queue) = state.transaction.queue.as_mut() else {
        return Frame::error("ERR EXEC without MULTI");
    };
    match checked {
        Ok((_, backend)) if queue.block.len() + backend.raw().len() > limit => {
            queue.dirty = true;
            Frame::error("ERR proxy: the transaction is larger than the query buffer limit")
        }
        Ok((slot, backend)) => {
            queue.slot = queue.slot.or(slot);
            queue.block.extend_from_slice(backend.raw());
            queue.commands += 1;
            Frame::simple("QUEUED")
        }
        Err(error) => {
            queue.dirty = true;
            error
        }
    }
}

/// Whether `request` may join the transaction: its slot if it has keys,
/// and the request as the backend must get it.
fn check_queued(
    request: &Request,
    lower: &[u8],
    state: &SessionState,
    shared: &Shared,
) -> Result<(Option<u16>, Request), Frame> {
    let name = String::from_utf8_lossy(request.name());
    // Connection state the proxy keeps cannot change inside a block that
    // may run on a shared backend connection.
    let connection_state = matches!(
        lower,
        b"select" | b"hello" | b"auth" | b"client" | b"proxy" | b"readonly" | b"readwrite" | b"monitor"
    );
    if connection_state || super::pubsub::is_subscription(lower) {
        return Err(Frame::error(format!(
            "ERR proxy: {} inside MULTI is not supported",
            name.to_ascii_uppercase()
        )));
    }
    let router = &shared.stack.router;
    let Some(spec) = router.table().lookup(request).cloned() else {
        return Err(unknown_command(request));
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
    let (backend, _) = backend_form(request, state, shared);
    let mut command = command_for(&backend, state);
    command.spec = Some(spec.clone());
    let slot =
        match router.pin_target(&mut command) {
            Ok((_, slot)) => slot,
            // Sent to every node only to reach them all (PING): any node's
            // answer is the answer, so the transaction's node gives it.
            Err(router::Error::FanOutRequired)
                if matches!(
                    spec.response_policy,
                    ResponsePolicy::AllSucceeded | ResponsePolicy::OneSucceeded
                ) =>
            {
                None
            }
            Err(router::Error::FanOutRequired) => {
                return Err(Frame::error(format!(
                    "ERR proxy: {} runs on every node of a cluster and cannot be part of a transaction",
                    name.to_ascii_uppercase()
                )))
            }
            Err(router::Error::CrossSlot) => return Err(Frame::error(
                "ERR proxy: the keys of a transaction on a cluster must hash to one slot (use a hash tag)",
            )),
            Err(other) => return Err(edge::reply_for(&other)),
        };
    match (state.transaction.pinned_slot(), slot) {
        (Some(pinned), Some(slot)) if pinned != slot => Err(Frame::error(format!(
            "ERR proxy: the keys of a transaction on a cluster must hash to one slot (use a hash tag): \
             this command's keys are in slot {slot}, earlier ones in slot {pinned}"
        ))),
        _ => Ok((slot, backend)),
    }
}

/// The request as the backend must get it, and the database it runs in: on
/// a cluster with emulated databases, a client in database N has its keys
/// moved into N's namespace and runs in the backend's database 0 (as the
/// [`middleware::Namespace`] layer does for commands outside transactions).
fn backend_form(request: &Request, state: &SessionState, shared: &Shared) -> (Request, u32) {
    let db = backend_db(state, shared);
    if db == state.db {
        return (request.clone(), db);
    }
    match shared.stack.router.table().lookup(request) {
        Some(spec) => (rewrite::request(spec, request, &Space::database(state.db)), db),
        None => (request.clone(), db),
    }
}

/// The backend database a client's commands run in: its own, or 0 where
/// databases are emulated.
pub(super) fn backend_db(state: &SessionState, shared: &Shared) -> u32 {
    let topology = shared.stack.router.topology().current();
    if emulates(topology.mode(), topology.databases()) {
        0
    } else {
        state.db
    }
}

/// Valkey's error for a command it does not know.
fn unknown_command(request: &Request) -> Frame {
    let mut args = String::new();
    for arg in request.args().iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let text = String::from_utf8_lossy(arg);
        let text: String = text.chars().take(room).collect();
        args.push_str(&format!("'{text}' "));
    }
    let name: String = String::from_utf8_lossy(request.name())
        .chars()
        .take(128)
        .collect();
    Frame::error(format!(
        "ERR unknown command '{name}', with args beginning with: {args}"
    ))
}

/// `EXEC`
pub fn exec(request: &Request, state: &mut SessionState, shared: &Shared) -> Local {
    if request.len() != 1 {
        return Local::Reply(edge::wrong_arity("exec"));
    }
    let Some(mut queue) = state.transaction.queue.take() else {
        return Local::Reply(Frame::error("ERR EXEC without MULTI"));
    };
    let watch = state.transaction.watch.take();
    if queue.dirty {
        if let Some(watch) = watch {
            unwatch_later(watch.connection);
        }
        return Local::Reply(Frame::error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    queue.block.extend_from_slice(EXEC);
    let block = queue.block.freeze();
    // Replies to skip: MULTI's +OK and one +QUEUED per command.
    let skip = queue.commands + 1;
    match watch {
        Some(watch) => Local::Later(Box::pin(async move {
            let reply = watch.connection.send(&block, skip).await;
            // EXEC cleared the watch on the backend: the connection is clean.
            let reply = reply.map_err(router::Error::Backend)?;
            watch.connection.release();
            Ok(Reply::Raw(reply))
        })),
        None => {
            let target = target_for(queue.slot, state, shared);
            Local::Later(send_shared(target, block, skip, state, shared))
        }
    }
}

/// The primary a transaction without a watch runs on.
fn target_for(slot: Option<u16>, state: &SessionState, shared: &Shared) -> Result<Endpoint, router::Error> {
    let topology = shared.stack.router.topology().current();
    let shard = match slot {
        Some(slot) => topology
            .shard_for_slot(slot)
            .ok_or(router::Error::SlotUnassigned(slot))?,
        None => topology.shards().first().ok_or(router::Error::NoBackend)?,
    };
    let db = backend_db(state, shared);
    Ok(Endpoint {
        addr: shard.primary.clone(),
        protocol: state.protocol,
        db,
        readonly: false,
    })
}

/// Runs a transaction block on the client's shared connection to `target`.
fn send_shared(
    target: Result<Endpoint, router::Error>,
    block: Bytes,
    skip: u32,
    state: &SessionState,
    shared: &Shared,
) -> BoxFuture<'static, Result<Reply, router::Error>> {
    let pool = shared.stack.router.pool().clone();
    let affinity = state.affinity;
    Box::pin(async move {
        let connection = pool
            .shared_for(&target?, affinity)
            .map_err(router::Error::Backend)?;
        let reply = connection
            .send(&block, skip)
            .await
            .map_err(router::Error::Backend)?;
        Ok(Reply::Raw(reply))
    })
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
    let router = &shared.stack.router;
    let (backend, db) = backend_form(request, state, shared);
    let mut command = command_for(&backend, state);
    let (addr, slot) = match router.pin_target(&mut command) {
        Ok(target) => target,
        Err(router::Error::CrossSlot) => {
            return Local::Reply(Frame::error(
                "ERR proxy: keys watched on a cluster must hash to one slot (use a hash tag)",
            ))
        }
        Err(error) => return Local::Reply(edge::reply_for(&error)),
    };
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
        connection: router.pool().dedicated(&Endpoint {
            addr,
            protocol: state.protocol,
            db,
            readonly: false,
        }),
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

/// Clears a watch in the background and returns its connection to the pool.
fn unwatch_later(connection: Dedicated) {
    tokio::spawn(async move {
        if connection.send(&Bytes::from_static(UNWATCH), 0).await.is_ok() {
            connection.release();
        }
    });
}

/// The client's request with its connection state, for routing.
fn command_for(request: &Request, state: &SessionState) -> Command {
    Command {
        request: request.clone(),
        protocol: state.protocol,
        db: state.db,
        spec: None,
        route: None,
        affinity: state.affinity,
        received: None,
        purpose: router::Purpose::Run,
    }
}
