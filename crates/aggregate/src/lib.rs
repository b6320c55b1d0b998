//! Requests that touch more than one slot or node: fan them out and merge
//! the replies so the client sees one server's answer.
//!
//! The general mechanism follows the tips Valkey publishes in `COMMAND INFO`:
//! `request_policy` says where a command goes (`all_shards`, `all_nodes`,
//! `multi_shard`) and `response_policy` says how replies combine
//! (`agg_sum`, `all_succeeded`, `agg_logical_and`, ...); `special` ones
//! (SCAN, RANDOMKEY, INFO) have their own rules. Commands without a tip
//! that need more than one slot are refused with an error that says why
//! until the proxy learns to compute them.
//!
//! # Layout
//! - [`fanout`]: the [`FanOut`], the tower service, and [`FanOutLayer`].
//! - [`pops`]: pops whose keys span slots, blocking (BLPOP, BZPOPMIN,
//!   BLMPOP, BLMOVE, ...) or not (LMPOP, ZMPOP).
//! - [`split`]: splitting `multi_shard` commands (MGET, MSET, DEL, ...) by slot.
//! - [`merge`]: combining replies by response policy.
//! - [`scan`]: SCAN over every primary with one cursor.
//! - [`info`]: INFO with the keyspace of every primary.
//! - [`steps`]: commands the proxy carries out as several requests.
//! - [`colocate`]: multi-key commands across slots, run by the server on
//!   copies of the keys brought next to each other.
//! - [`moves`]: RENAME, SMOVE, LMOVE, BLMOVE and MSETNX across slots, each
//!   undone if a node fails between its steps (`undo`).
//! - [`streams`]: XREAD (with or without BLOCK) and XREADGROUP whose
//!   streams span slots.
//! - [`scripts`]: the script cache that lets EVALSHA survive NOSCRIPT.
//! - [`waits`]: a blocking command waiting on several nodes at once.

pub mod colocate;
pub mod fanout;
pub mod info;
pub mod merge;
pub mod moves;
pub mod pops;
pub mod scan;
pub mod scripts;
pub mod split;
pub mod steps;
pub mod streams;
mod undo;
pub mod waits;

#[cfg(test)]
mod fake_store;
#[cfg(test)]
mod faults;

pub use fanout::{FanOut, FanOutLayer};
