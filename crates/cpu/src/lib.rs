//! Where the proxy's CPU goes, per command, measured with the thread's CPU
//! clock (`CLOCK_THREAD_CPUTIME_ID`).
//!
//! Reading that clock is a system call (about 0.5 µs on a virtual
//! machine, measured: docs/PERFORMANCE.md), so it cannot be read around
//! every request. Instead, one poll in [`SAMPLE_ONE_IN`] of each task
//! wrapped in [`metered`] is timed on the thread's CPU clock, and that
//! CPU time, times [`SAMPLE_ONE_IN`] (an unbiased estimate of every poll's,
//! as polls are picked at random), is shared:
//!
//! - a client session's poll (reading and decoding requests, routing them,
//!   merging and encoding replies, writing them, the system calls on the
//!   client's socket): equally among the requests it started or finished,
//!   each [`touch`]ed by whoever knows the request's command;
//! - a backend connection's poll (writing batches of requests, reading and
//!   parsing replies, the system calls on its socket): into the thread's
//!   [`connection_cost`], an average per request sent to a backend, which
//!   each command is charged for every backend request it made
//!   ([`exchanges`] counts them on the thread).
//!
//! Each worker thread runs its sessions and their backend connections on
//! one event loop, so a thread's own figures describe its own requests.
//! What no task poll covers (the runtime waiting for events, timers) is
//! not charged to any command.

mod clock;
mod ledger;
mod metered;

pub use clock::thread_cpu_ns;
pub use ledger::{connection_cost, exchanges, note_exchange, touch, Account};
pub use metered::{metered, Metered, Task};

/// One poll in this many is timed, at random: with two clock reads of
/// about 0.5 µs, that is about 30 ns per poll, under 1% of the CPU time a
/// poll takes even for one request (measured with scripts/bench.sh).
pub const SAMPLE_ONE_IN: u64 = 32;
