//! The valkey-proxy server: the listener, client sessions, the commands the
//! proxy answers itself, `PROXY` admin commands, and the assembly of the
//! tower stack. This is the one place where Rust errors become `-ERR` replies.
//!
//! Embed it with [`Proxy::bind`] and [`Proxy::run`] (or [`Proxy::run_on`],
//! to serve clients on several worker runtimes), or take the assembled
//! service from [`stack::build`] and drive it yourself.
//!
//! # Layout
//! - [`config`]: the [`ProxyConfig`], what the binary reads from TOML and flags.
//! - [`stack`]: the [`stack::build`], discovery plus
//!   `Stats<Namespace<FanOut<Router>>>` and its gate `Stats<AdmitAll>`.
//! - [`gate`]: how every command a session reads passes the same layers.
//! - [`door`]: how the session's own commands reach a backend.
//! - [`pubsub`]: subscriptions, MONITOR, tracking and the links behind them.
//! - [`server`]: the [`Proxy`], the listener and the drain on shutdown.
//! - [`session`]: one client connection: decode, dispatch, replies in order.
//! - [`commands`]: connection-scoped commands (HELLO, AUTH, SELECT, CLIENT,
//!   COMMAND, RESET, ...) and `PROXY`.
//! - [`clients`]: the registry behind CLIENT ID / LIST / INFO / KILL.
//! - [`buffers`]: the sizes of a client's buffers, for CLIENT LIST.
//! - [`pause`]: CLIENT PAUSE for every client.
//! - [`edge`]: errors to Valkey-style replies.
//! - [`users`]: the users clients log in as, with their ACLs.
//! - [`listeners`]: more addresses, each bound to a tenant.
//! - [`databases`]: tenants with databases of their own.
//! - [`guard`]: what a tenant's client or a user with ACL rules may run.
//! - [`slowlog`]: SLOWLOG, the proxy's own slow log.
//! - [`reload`]: live reload of the configuration.

pub mod audit;
pub mod backend_watch;
pub mod buffers;
pub mod clients;
pub mod commands;
pub mod config;
pub mod context;
pub mod databases;
pub mod door;
pub mod edge;
pub mod gate;
pub mod guard;
pub mod handling;
pub mod hooks;
pub mod listeners;
pub mod memory;
pub mod monitor;
pub mod pause;
pub mod pubsub;
pub mod reload;
pub mod server;
pub mod session;
pub mod slowlog;
pub mod stack;
pub mod tenants;
pub mod transaction;
pub mod users;

pub use config::ProxyConfig;
pub use server::Proxy;
