//! Tower layers for valkey-proxy that users compose around the core stack.
//!
//! # Layout
//! - [`stats`]: the [`StatsLayer`] / [`Stats`], per-command calls, errors, latency
//!   percentiles (HDR histogram) and proxy CPU time, read through a
//!   [`StatsRegistry`] (what `PROXY STATS` and `PROXY LATENCY` print).
//! - [`namespace`]: the [`NamespaceLayer`] / [`Namespace`], key namespaces
//!   (numbered databases emulated on clusters that have none, tenants'
//!   prefixes).
//! - [`acl`]: Valkey's ACL rules ([`acl::User`]) checked before routing,
//!   and the [`acl::AclLog`] of refusals.
//! - [`limit`]: [`limit::Rate`], a rate limit shared by many sessions.

pub mod acl;
pub mod limit;
pub mod namespace;
pub mod stats;

pub use namespace::{Namespace, NamespaceLayer, Scope, Space};
pub use stats::{with_shared_clock, CommandStats, Snapshot, Stats, StatsLayer, StatsRegistry};
