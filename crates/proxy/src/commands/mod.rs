//! Commands the proxy answers itself, because they are about the client's
//! connection to the proxy (not about data), or about the proxy.
//!
//! - [`connection`]: PING, ECHO, QUIT, RESET, SELECT, READONLY/READWRITE.
//! - [`auth`]: AUTH and HELLO.
//! - [`client`]: the CLIENT command.
//! - [`command`]: COMMAND, answered from the merged command table.
//! - [`admin`]: PROXY STATS / LATENCY / INFO.
//! - [`text`]: helpers for text replies.

pub mod admin;
pub mod auth;
pub mod client;
pub mod command;
pub mod connection;
pub mod text;

use resp::{Frame, Request};

use crate::edge;
use crate::session::{SessionState, Shared};

/// What a connection-scoped command does.
#[derive(Debug)]
pub enum Local {
    /// Answer this.
    Reply(Frame),
    /// Answer this, then close the connection.
    Close(Frame),
}

/// Longest name of a command handled here.
const MAX_NAME: usize = 16;

/// Stateful commands that would corrupt a shared backend connection and
/// need a dedicated one, which the proxy does not give them yet.
const NEEDS_DEDICATED: &[&[u8]] = &[
    b"multi",
    b"exec",
    b"discard",
    b"watch",
    b"unwatch",
    b"subscribe",
    b"psubscribe",
    b"ssubscribe",
    b"unsubscribe",
    b"punsubscribe",
    b"sunsubscribe",
    b"monitor",
    b"sync",
    b"psync",
    b"replconf",
];

/// Answers `request` if it is connection-scoped; `None` sends it down the stack.
pub fn handle(request: &Request, state: &mut SessionState, shared: &Shared) -> Option<Local> {
    let name = request.name();
    if name.len() > MAX_NAME {
        return unauthenticated(state);
    }
    let mut lower = [0u8; MAX_NAME];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let lower: &[u8] = lower;
    if !state.authenticated && !matches!(lower, b"auth" | b"hello" | b"quit" | b"reset") {
        return unauthenticated(state);
    }
    let reply = match lower {
        b"ping" => connection::ping(request),
        b"echo" => connection::echo(request),
        b"quit" => return Some(Local::Close(Frame::simple("OK"))),
        b"reset" => connection::reset(state, shared),
        b"select" => connection::select(request, state, shared),
        b"readonly" | b"readwrite" => connection::readonly(request),
        b"auth" => auth::auth(request, state, shared),
        b"hello" => auth::hello(request, state, shared),
        b"client" => return client::client(request, state, shared),
        b"command" => return command::command(request, shared),
        b"proxy" => admin::proxy(request, shared),
        other if NEEDS_DEDICATED.contains(&other) => edge::not_supported(&String::from_utf8_lossy(name)),
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
