//! One client connection.
//!
//! The session reads requests, answers connection-scoped commands itself
//! ([`crate::commands`]), sends everything else down the stack, and writes
//! replies in request order: many requests may be in flight at once, and
//! every reply that is ready is written in one go. A protocol error is
//! answered as Valkey answers it and then the connection closes; a backend
//! problem only ever produces an error reply. When the client goes away, its
//! in-flight requests are dropped at once (releasing anything they held).
//!
//! - [`state`]: the [`SessionState`].
//! - `io`: the read / write loop.
//! - `dispatch`: starting each request (admitted, answered, sent down or held).
//! - `reply`: a request's reply until it is written.
//! - [`lane`]: which worker a session runs on, and its backend connections.
//! - `ordered`: the queue that returns replies in request order.
//! - [`recent`]: the spec of the command looked up last.
//! - [`subscriptions`]: SUBSCRIBE and friends, MONITOR, and the links behind them.
//! - [`tracking`]: CLIENT TRACKING.
//! - [`notifications`]: keyspace notifications in emulated databases.

mod dispatch;
mod io;
pub mod lane;
pub mod notifications;
mod ordered;
pub mod recent;
mod reply;
pub mod state;
pub mod subscriptions;
pub mod tracking;

pub use io::{serve, Shared, StackService, Stacks};
pub use lane::Lane;
pub use state::SessionState;
