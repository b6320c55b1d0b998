//! The request and reply types every layer of the stack shares: the
//! [`Command`] going down, with its [`Purpose`], and the [`Reply`] coming up.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use resp::{Frame, Protocol, Request};

use crate::command::CommandSpec;
use crate::route::Route;

/// A request on its way down the stack, with the connection state that
/// decides which backend connection may carry it.
#[derive(Clone, Debug)]
pub struct Command {
    /// The client's request.
    pub request: Request,
    /// The client's protocol: shared backend connections are per protocol.
    pub protocol: Protocol,
    /// The client's database.
    pub db: u32,
    /// The command's spec, when a layer above already looked it up.
    pub spec: Option<Arc<CommandSpec>>,
    /// The route, when a layer above already decided it.
    pub route: Option<Route>,
    /// Which shared backend connection this client uses (its client id):
    /// one client's requests to one node share a connection, so they run
    /// in the order the client sent them. Unique to the client: the
    /// connection a blocking command holds is registered under it, for
    /// CLIENT UNBLOCK ([`pool::Pool::blocked`]).
    pub affinity: u64,
    /// When the proxy read the request, if the reader says (a session reads
    /// the clock once per read, not once per request); latency is measured
    /// from here.
    pub received: Option<Instant>,
    /// Whether the stack carries the command out or only admits it.
    pub purpose: Purpose,
    /// The client's tenant: 0 for none, else its number (from 1) in the
    /// proxy's list of tenants, whose key namespace the
    /// `middleware::Namespace` layer applies. Two bytes, in what was
    /// padding: a command stays within `COMMAND_SIZE_LIMIT`.
    pub tenant: u16,
}

/// What the stack is asked to do with a [`Command`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Purpose {
    /// Carry the command out.
    #[default]
    Run,
    /// Only let it through or refuse it: the session carries it out
    /// itself. It is a command the proxy answers (PING, SELECT, CLIENT,
    /// EXEC, SUBSCRIBE, ...) or one queued in MULTI (it runs with EXEC).
    /// Every layer of the gate sees it as it sees any command (to check,
    /// count or record it); the bottom of the gate answers
    /// [`Reply::Admitted`], and nothing reaches a backend. A layer decides
    /// about such a command at once: the session polls its future once,
    /// and a future that is not ready then counts as a refusal.
    Admit,
}

/// The most a [`Command`] may weigh. Every layer moves it by value, and
/// past 128 bytes the compiler moves it with a call to `memcpy`: one more
/// 8-byte field cost 130 instructions per request (docs/PERFORMANCE.md,
/// "The size of a command").
const COMMAND_SIZE_LIMIT: usize = 128;

const _: () = assert!(std::mem::size_of::<Command>() <= COMMAND_SIZE_LIMIT);

impl Command {
    /// A command for a RESP2 client in database 0.
    pub fn new(request: Request) -> Command {
        Command {
            request,
            protocol: Protocol::Resp2,
            db: 0,
            spec: None,
            route: None,
            affinity: 0,
            received: None,
            purpose: Purpose::Run,
            tenant: 0,
        }
    }

    /// The same connection state with another request (for split requests).
    pub fn with_request(&self, request: Request, route: Option<Route>) -> Command {
        Command {
            request,
            protocol: self.protocol,
            db: self.db,
            spec: self.spec.clone(),
            route,
            affinity: self.affinity,
            received: self.received,
            purpose: self.purpose,
            tenant: self.tenant,
        }
    }
}

/// A reply on its way up.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A backend's reply, byte for byte, already in the client's protocol.
    Raw(Bytes),
    /// A reply the proxy built; the session encodes it for the client.
    Frame(Frame),
    /// The gate lets a [`Purpose::Admit`] command through; the session
    /// answers it. Never written to a client.
    Admitted,
}

impl Reply {
    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        match self {
            Reply::Raw(raw) => matches!(raw.first(), Some(b'-' | b'!')),
            Reply::Frame(frame) => frame.is_error(),
            Reply::Admitted => false,
        }
    }

    /// The reply as a frame (parsing raw bytes).
    ///
    /// # Errors
    /// Raw bytes that are not one RESP frame.
    pub fn into_frame(self) -> Result<Frame, resp::Error> {
        match self {
            Reply::Raw(raw) => Frame::parse_complete(&raw),
            Reply::Frame(frame) => Ok(frame),
            Reply::Admitted => Ok(Frame::error(NOT_RUN)),
        }
    }
}

/// What stands for an admitted command's reply where a reply is needed:
/// an error, so that a command only admitted never passes for one that ran.
const NOT_RUN: &str = "ERR proxy: the command was admitted but not run";
