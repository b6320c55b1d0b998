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
//! Its state, and what every session shares, are [`crate::context`]'s.
//!
//! - `io`: the read / write loop.
//! - `stacks`: the services a session sends commands to.
//! - `dispatch`: starting each request (admitted, answered, sent down or held).
//! - `admission`: around a request the proxy answers: the gate, its
//!   statistics, MONITOR, CLIENT PAUSE.
//! - `start`: queuing a request's reply, the proxy's own or the stack's.
//! - `reply`: a request's reply until it is written.
//! - [`lane`]: which worker a session runs on, and its backend connections.
//! - `ordered`: the queue that returns replies in request order.
//! - `input`: reading into a buffer made when data comes; quiet clients.
//! - `output`: writing replies without waiting, and the memory a client holds.

mod admission;
mod dispatch;
mod holds;
mod input;
mod io;
pub mod lane;
mod ordered;
mod output;
mod reply;
mod stacks;
mod start;

pub use io::serve;
pub use lane::Lane;
pub use stacks::{StackService, Stacks};
