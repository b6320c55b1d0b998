//! [`Endpoint`]: what a backend connection is keyed by.

use std::fmt;
use std::sync::Arc;

use resp::Protocol;

/// A node address plus the connection state that changes reply shapes or
/// meaning: the protocol (RESP2 and RESP3 replies differ), the database, and
/// whether reads are allowed on a cluster replica (`READONLY`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// `host:port`
    pub addr: Arc<str>,
    /// Protocol negotiated with `HELLO`.
    pub protocol: Protocol,
    /// Database selected with `SELECT` (0 sends nothing).
    pub db: u32,
    /// Send `READONLY` (cluster replicas serving reads).
    pub readonly: bool,
}

impl Endpoint {
    /// RESP2, database 0, on `addr`.
    pub fn new(addr: impl Into<Arc<str>>) -> Self {
        Endpoint {
            addr: addr.into(),
            protocol: Protocol::Resp2,
            db: 0,
            readonly: false,
        }
    }

    /// The same endpoint with another protocol.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The same endpoint with another database.
    pub fn with_db(mut self, db: u32) -> Self {
        self.db = db;
        self
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (RESP{}, db {})",
            self.addr,
            self.protocol.version(),
            self.db
        )
    }
}
