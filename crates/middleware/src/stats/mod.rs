//! Per-command statistics.
//!
//! [`Stats`] wraps the service below it. For each request it records, under
//! the command's name (`get`, `config|get`): one call, an error if the reply
//! is an error, the latency from call to reply in an HDR histogram (1 µs to
//! 1 h, 3 significant digits), and the proxy CPU time the request used,
//! measured as the time spent inside `poll` of the request's future: the
//! proxy's own work for it (routing, fan-out, merging), not the time waiting
//! for the backend. Work done by shared connection tasks (writing and
//! scanning bytes for many requests at once) is not attributed to commands;
//! the process total is in `PROXY INFO`.
//!
//! - [`registry`]: [`StatsRegistry`], [`CommandStats`], [`Snapshot`].
//! - [`service`]: [`Stats`], [`StatsLayer`] and the timing future.

mod registry;
mod service;

pub use registry::{CommandStats, Snapshot, StatsRegistry};
pub use service::{Stats, StatsFuture, StatsLayer};
