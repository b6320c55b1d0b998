//! [`AuditConfig`]: the `[audit]` section of the proxy's configuration.

use serde::Deserialize;

/// What the audit log records, and where. Auditing is on when at least one
/// sink is configured.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The events recorded ([`EventKind`]).
    pub events: Vec<EventKind>,
    /// The commands a `command` event records, in ACL rule syntax over
    /// commands and categories: `+@write +@admin -ping`.
    pub commands: String,
    /// The share of read-only commands the rules leave out that are
    /// recorded anyway, from 0.0 (none) to 1.0 (every one): "who read
    /// what", sampled.
    pub read_sample: f64,
    /// Only these users' commands (all when empty).
    pub users: Vec<String>,
    /// Never these users' commands.
    pub users_exclude: Vec<String>,
    /// Only these tenants' commands (all when empty; `""` for clients
    /// without a tenant).
    pub tenants: Vec<String>,
    /// Never these tenants' commands.
    pub tenants_exclude: Vec<String>,
    /// Only clients from these networks (`10.0.0.0/8`; all when empty).
    pub networks: Vec<String>,
    /// Never clients from these networks.
    pub networks_exclude: Vec<String>,
    /// Only commands with a key matching one of these globs (all when
    /// empty; commands without keys are then left out).
    pub keys: Vec<String>,
    /// What a command record holds of the request.
    pub payload: Payload,
    /// With `payload = "args"`, the longest argument kept; the rest is
    /// counted (`... (123 more bytes)`), as Valkey's slow log cuts them.
    pub max_arg_bytes: usize,
    /// Records each sink's queue holds at most.
    pub queue_records: usize,
    /// What happens to a record when a sink's queue is full.
    pub on_full: OnFull,
    /// This proxy's name in every record (`node`); the listen address when
    /// not given.
    pub node: Option<String>,
    /// Where records go.
    pub sinks: Vec<SinkConfig>,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            events: vec![
                EventKind::Connect,
                EventKind::Disconnect,
                EventKind::Auth,
                EventKind::Denied,
                EventKind::Admin,
                EventKind::Command,
            ],
            commands: "+@write +@admin +@dangerous".into(),
            read_sample: 0.0,
            users: Vec::new(),
            users_exclude: Vec::new(),
            tenants: Vec::new(),
            tenants_exclude: Vec::new(),
            networks: Vec::new(),
            networks_exclude: Vec::new(),
            keys: Vec::new(),
            payload: Payload::Keys,
            max_arg_bytes: 64,
            queue_records: 65_536,
            on_full: OnFull::Block,
            node: None,
            sinks: Vec::new(),
        }
    }
}

/// A kind of audit record.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A client connected.
    Connect,
    /// A client left, with the reason.
    Disconnect,
    /// AUTH or HELLO ... AUTH, with its outcome (never the password).
    Auth,
    /// A command refused by an ACL, a tenant's limit, or the audit log.
    Denied,
    /// An administrative command: PROXY, CONFIG, CLIENT KILL / PAUSE /
    /// UNPAUSE, ACL.
    Admin,
    /// A command the `commands` rules select.
    Command,
}

impl EventKind {
    /// Its name in records.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Connect => "connect",
            EventKind::Disconnect => "disconnect",
            EventKind::Auth => "auth",
            EventKind::Denied => "denied",
            EventKind::Admin => "admin",
            EventKind::Command => "command",
        }
    }
}

/// What a command record holds of the request.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// The command name and argument count only.
    None,
    /// Its keys too (from the command table's key specs).
    #[default]
    Keys,
    /// Its keys and its arguments, each cut at `max_arg_bytes`.
    Args,
}

/// What happens to a record when a sink's queue is full.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Backpressure: while the queue is full the proxy reads nothing more
    /// from the clients the audit log records, so their requests wait;
    /// nothing is lost, latency rises. Other clients go on.
    #[default]
    Block,
    /// The record is dropped and counted; a gap record with the count and
    /// the sequence numbers left out is written as soon as there is room.
    Drop,
    /// An audited request is refused before it runs (`-ERR audit log
    /// unavailable`): what ran was logged.
    Fail,
}

/// One sink.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines appended to a file, rotated by the writer itself.
    File {
        /// The file (relative to the working directory, or absolute); its
        /// directory is made when missing.
        path: String,
        /// Rotate before a record would take the file past this many bytes
        /// (0: never).
        #[serde(default)]
        rotate_bytes: u64,
        /// Rotate a file this many seconds old (0: never).
        #[serde(default)]
        rotate_secs: u64,
        /// Rotated files kept (0: all).
        #[serde(default)]
        keep: usize,
        /// When written records are made durable.
        #[serde(default)]
        fsync: Fsync,
    },
    /// JSON lines over TCP (Vector, Fluent Bit), reconnecting with backoff;
    /// records wait in the queue while the collector is away.
    Tcp {
        /// The collector, `host:port`.
        addr: String,
    },
}

/// When a file sink makes its records durable.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every batch written, before more are taken.
    Always,
    /// At most a second after a record is written.
    #[default]
    #[serde(rename = "1s")]
    Second,
    /// When the system decides.
    Never,
}

impl AuditConfig {
    /// True when records go somewhere.
    pub fn enabled(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// What is wrong with it, checked at load.
    ///
    /// # Errors
    /// The first problem, in words.
    pub fn check(&self, table: &router::CommandTable) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.read_sample) {
            return Err("read_sample must be between 0.0 and 1.0".into());
        }
        if self.queue_records == 0 {
            return Err("queue_records must be greater than 0".into());
        }
        crate::filter::Filter::new(self, table).map(|_| ())
    }
}
