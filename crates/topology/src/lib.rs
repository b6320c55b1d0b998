//! What the backend looks like, and keeping that knowledge current.
//!
//! A [`Topology`] is an immutable snapshot: the mode (standalone, primary
//! with replicas, cluster), the shards with their primary and replicas, and
//! the owner of each of the 16384 slots. A [`TopologyHandle`] holds the current
//! snapshot behind an atomic swap (readers never lock) and refreshes it
//! periodically and on demand, single-flight and debounced, through a
//! [`Probe`]: a small trait for asking a node one question, so this crate
//! never depends on the connection pool.
//!
//! # Layout
//! - [`model`]: the [`Topology`], [`Shard`], [`Mode`].
//! - [`probe`]: the [`Probe`] trait and [`TcpProbe`], its plain TCP implementation.
//! - [`mod@discover`]: building a topology from seed nodes (ROLE, INFO, CLUSTER SHARDS / SLOTS).
//! - [`parse`]: reading the replies of those commands.
//! - [`handle`]: the [`TopologyHandle`], the watched snapshot and its refresh task.
//! - [`error`]: the [`Error`].

pub mod discover;
pub mod error;
pub mod handle;
pub mod model;
pub mod parse;
pub mod probe;

pub use discover::{discover, DiscoveryConfig};
pub use error::Error;
pub use handle::{RefreshConfig, TopologyCache, TopologyHandle};
pub use model::{Mode, Shard, Topology, SLOT_COUNT};
pub use probe::{Probe, TcpProbe};
