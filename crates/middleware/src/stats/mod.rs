//! Per-command statistics.
//!
//! [`Stats`] wraps the service below it. For each request it records, under
//! the command's name (`get`, `config|get`): one call, an error if the reply
//! is an error, the latency from when the proxy read the request to its
//! reply in an HDR histogram (1 µs to 1 h, 3 significant digits), and the
//! proxy CPU time the request used, measured for one request in eight as
//! the time its `call` took (the proxy's own synchronous work for it:
//! lookup, routing, fan-out, enqueueing on a backend connection) and
//! estimated for the rest from their mean. One clock read per request (two
//! more for a measured one), none per poll, and one for all the requests
//! completed inside [`with_shared_clock`]. Each thread records into its
//! own copy of a command's counters, and reading merges them, so worker
//! threads do not contend per request. Work done by shared
//! connection tasks (writing and scanning bytes for many requests at once)
//! and merging fanned-out replies is not attributed to commands; the
//! process total is in `PROXY INFO`.
//!
//! - `buckets`: latency counts in an HDR histogram's layout, recorded
//!   without a lock.
//! - `clock`: [`with_shared_clock`], one clock reading for the requests a
//!   caller completes in one pass.
//! - `command`: one command's [`CommandStats`], read as a [`Snapshot`].
//! - `info`: the same in Valkey's shapes (`INFO commandstats`,
//!   `INFO latencystats`, `LATENCY HISTOGRAM`).
//! - `registry`: the [`StatsRegistry`], every command's, and each tenant's.
//! - `service`: the [`Stats`], [`StatsLayer`] and the timing future.

mod buckets;
mod clock;
mod command;
mod info;
mod registry;
mod service;

pub use clock::{with_shared_clock, WorkTimer};
pub use command::{CommandStats, Distribution, Snapshot, WorkSnapshot};
pub use registry::StatsRegistry;
pub use service::{Stats, StatsFuture, StatsLayer};
