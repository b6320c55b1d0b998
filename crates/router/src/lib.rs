//! Routing for valkey-proxy: the command table, key extraction, hash slots,
//! the pure routing decision, redirect handling, and the [`Router`] service
//! that sends a command to the right node through the pool.
//!
//! Redirects are followed inside the [`Router`] service rather than by a
//! separate tower layer below it: a retry must be routed again against the
//! updated slot map and enqueued the same way as the first attempt (in
//! `call`, on the client's connection for that node), which is the router's
//! own work. [`redirect`] only classifies replies.
//!
//! # Layout
//! - [`command`]: the command table from Valkey's own `COMMAND INFO`, merged
//!   at start-up with the live backend's, and key extraction by key specs.
//! - [`slot`]: CRC16 and hash tags.
//! - [`route`]: the [`Route`] and [`select`], the pure decision.
//! - [`redirect`]: MOVED / ASK / TRYAGAIN / ... classification.
//! - [`message`]: the [`Command`] and [`Reply`] every layer shares.
//! - [`service`]: the [`Router`] tower service.
//! - `last`: the shared backend connection a router clone used last.
//! - [`error`]: the [`Error`].

pub mod command;
pub mod error;
pub mod future;
mod last;
pub mod message;
pub mod redirect;
pub mod route;
pub mod service;
pub mod slot;

pub use command::{CommandSpec, CommandTable};
pub use error::Error;
pub use message::{Command, Purpose, Reply};
pub use route::{select, ReadPolicy, Route};
pub use service::{Router, RouterConfig};
