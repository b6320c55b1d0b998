//! Commands the proxy answers itself, because they are about the client's
//! connection to the proxy (not about data), or about the proxy.
//!
//! - [`connection`]: PING, ECHO, QUIT, RESET, SELECT, READONLY/READWRITE.
//! - [`auth`]: AUTH and HELLO.
//! - [`client`]: the CLIENT command.
//! - [`client_filter`]: the filters of CLIENT LIST and CLIENT KILL.
//! - [`command`]: COMMAND, answered from the merged command table.
//! - [`cluster`]: CLUSTER, presenting the proxy as a one-node cluster.
//! - [`acl`]: ACL, answered from the proxy's users.
//! - [`admin`]: PROXY STATS / LATENCY / INFO.
//! - [`info`]: INFO, with the proxy's own clients.
//! - [`transaction`]: MULTI / EXEC / DISCARD / WATCH / UNWATCH.
//! - [`pubsub`]: SUBSCRIBE and the rest of the subscription commands.
//! - [`wait`]: WAIT and WAITAOF, counted for the client's own writes.
//! - [`text`]: helpers for text replies.

pub mod acl;
pub mod admin;
pub mod auth;
pub mod client;
pub mod client_filter;
pub mod cluster;
pub mod command;
pub mod connection;
pub mod info;
pub mod pubsub;
pub mod slowlog;
pub mod text;
pub mod transaction;
pub mod wait;

use futures::future::BoxFuture;
use resp::{Frame, Request};
use router::Reply;

use crate::context::{SessionState, Shared};
use crate::edge;
use crate::gate::Gate;
use crate::handling::{self, is_multi_step, is_stateful, NEEDS_DEDICATED};

/// What a connection-scoped command does.
pub enum Local {
    /// Answer this.
    Reply(Frame),
    /// Answer this, then close the connection.
    Close(Frame),
    /// Answer what this future gives: a stateful command the proxy sends on
    /// a connection it chose itself (EXEC, WATCH). The session starts no
    /// later request of the client before this one has answered.
    Later(BoxFuture<'static, Result<Reply, router::Error>>),
    /// As [`Local::Later`], for an answer made of push messages
    /// (subscription confirmations), which CLIENT REPLY OFF does not
    /// silence in RESP3, as on Valkey.
    Pushes(BoxFuture<'static, Result<Reply, router::Error>>),
    /// Not yet: this stateful command must wait until every earlier reply
    /// of the client is written. Hand it over again then.
    Wait,
    /// Send it down the stack, alone: nothing of the client's is in flight
    /// and nothing after it starts before it answers (see [`is_multi_step`]).
    Alone,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Local::Reply(frame) => f.debug_tuple("Reply").field(frame).finish(),
            Local::Close(frame) => f.debug_tuple("Close").field(frame).finish(),
            Local::Later(_) => f.write_str("Later(..)"),
            Local::Pushes(_) => f.write_str("Pushes(..)"),
            Local::Wait => f.write_str("Wait"),
            Local::Alone => f.write_str("Alone"),
        }
    }
}

/// Longer than the name of any command handled here (the longest,
/// GEORADIUSBYMEMBER, has 17 letters).
const MAX_NAME: usize = 24;

/// Answers `request` if it is connection-scoped; `None` sends it down the
/// stack. `idle` says whether the client has no reply outstanding: a
/// stateful command (EXEC, WATCH, SUBSCRIBE, ...) runs only then, so that
/// it sees the effects of everything the client sent before it. Every
/// command answered here is first admitted by `gate` ([`crate::gate`]); a
/// command queued in MULTI that the gate refuses makes EXEC answer
/// EXECABORT.
pub fn handle(
    request: &Request,
    state: &mut SessionState,
    shared: &Shared,
    idle: bool,
    gate: &mut dyn Gate,
) -> Option<Local> {
    let name = request.name();
    let mut buffer = [0u8; MAX_NAME];
    let lower: &[u8] = if name.len() <= MAX_NAME {
        let lower = &mut buffer[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        lower
    } else if state.transaction.in_multi() {
        // No command of its own: queued (or refused) as any other.
        b""
    } else {
        return unauthenticated(state);
    };
    if !state.authenticated && !matches!(lower, b"auth" | b"hello" | b"quit" | b"reset") {
        return unauthenticated(state);
    }
    if !idle && is_stateful(lower) {
        return Some(Local::Wait);
    }
    let in_multi = state.transaction.in_multi();
    if in_multi || is_stateful(lower) || matches!(lower, b"multi" | b"discard" | b"reset") {
        if let Some(refusal) = gate.admit(request) {
            return Some(Local::Reply(match (in_multi, lower) {
                (true, b"exec") => transaction::abort(refusal, state),
                (true, _) => {
                    state.transaction.mark_failed();
                    refusal
                }
                _ => refusal,
            }));
        }
        // Rare: what CLIENT LIST shows of the session may change.
        let local = stateful(request, lower, state, shared);
        state.publish_view();
        return local;
    }
    if state.pubsub.restricts(state.protocol) && !pubsub::allowed_while_subscribed(lower) {
        return Some(Local::Reply(pubsub::not_allowed(request)));
    }
    if is_multi_step(lower)
        && shared.stack_of(state.group).router.topology().snapshot().mode() == topology::Mode::Cluster
    {
        return Some(if idle { Local::Alone } else { Local::Wait });
    }
    if !answers(lower, state) {
        return None;
    }
    // CLUSTER and COMMAND are answered here or sent to a backend by
    // subcommand. Their answers change nothing, so they are worked out
    // before admission: one sent down passes the gate there, once.
    let known = match lower {
        b"cluster" => Some(Local::Reply(cluster::cluster(request, state, shared)?)),
        b"command" => Some(command::command(request, shared)?),
        _ => None,
    };
    if let Some(refusal) = gate.admit(request) {
        return Some(Local::Reply(refusal));
    }
    let local = known.or_else(|| plain(request, lower, state, shared));
    if lower == b"client" {
        // CLIENT TRACKING shows in CLIENT LIST and INFO.
        state.publish_view();
    }
    local
}

/// True for the commands [`plain`] answers. PING and ECHO go to the
/// backends (PING to every shard, as its request tip says), so that a
/// node that cannot serve (BUSY, LOADING, MASTERDOWN) shows through; PING
/// is answered here only in RESP2 subscribe mode, where the subscribed
/// connection answers it.
fn answers(lower: &[u8], state: &SessionState) -> bool {
    handling::answers(lower) || (lower == b"ping" && state.pubsub.restricts(state.protocol))
}

/// Commands that change the session's transaction or subscriptions, and
/// anything sent inside MULTI.
fn stateful(request: &Request, lower: &[u8], state: &mut SessionState, shared: &Shared) -> Option<Local> {
    if state.transaction.in_multi() && !matches!(lower, b"exec" | b"discard" | b"quit" | b"reset") {
        return Some(Local::Reply(transaction::queue(request, lower, state, shared)));
    }
    if state.pubsub.restricts(state.protocol) && !pubsub::allowed_while_subscribed(lower) {
        return Some(Local::Reply(pubsub::not_allowed(request)));
    }
    plain(request, lower, state, shared)
}

/// The connection-scoped commands, by name.
fn plain(request: &Request, lower: &[u8], state: &mut SessionState, shared: &Shared) -> Option<Local> {
    let reply = match lower {
        b"multi" => transaction::multi(request, state),
        b"exec" => return Some(transaction::exec(request, state, shared)),
        b"discard" => transaction::discard(request, state),
        b"watch" => return Some(transaction::watch(request, state, shared)),
        b"unwatch" => return Some(transaction::unwatch(request, state)),
        b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe" | b"sunsubscribe" => {
            return Some(pubsub::command(request, lower, state, shared))
        }
        b"monitor" if request.len() != 1 => edge::wrong_arity("monitor"),
        b"monitor" => {
            state
                .pubsub
                .monitor(&shared.monitors, state.info.id, state.tenant);
            Frame::simple("OK")
        }
        b"ping" => pubsub::ping(request),
        b"quit" => return Some(Local::Close(Frame::simple("OK"))),
        b"reset" => connection::reset(state, shared),
        b"select" => connection::select(request, state, shared),
        b"readonly" | b"readwrite" => connection::readonly(request),
        b"auth" => auth::auth(request, state, shared),
        b"hello" => auth::hello(request, state, shared),
        b"client" => return client::client(request, state, shared),
        b"proxy" => return admin::proxy(request, state, shared),
        b"slowlog" => slowlog::slowlog(request, shared),
        b"latency"
            if request
                .arg(1)
                .is_some_and(|sub| sub.eq_ignore_ascii_case(b"histogram")) =>
        {
            let named: Vec<String> = request
                .args()
                .iter()
                .skip(2)
                .map(|name| String::from_utf8_lossy(name).into_owned())
                .collect();
            shared.stack.stats.latency_histogram(&named)
        }
        b"acl" => acl::acl(request, state, shared),
        b"info" => return Some(info::info(request, state, shared)),
        b"wait" => return Some(wait::wait(request, state, shared)),
        b"waitaof" => return Some(wait::waitaof(request, state, shared)),
        other if NEEDS_DEDICATED.contains(&other) => {
            edge::not_supported(&String::from_utf8_lossy(request.name()))
        }
        _ => return None,
    };
    Some(Local::Reply(reply))
}

fn unauthenticated(state: &SessionState) -> Option<Local> {
    if state.authenticated {
        None
    } else {
        Some(Local::Reply(Frame::error("NOAUTH Authentication required.")))
    }
}
