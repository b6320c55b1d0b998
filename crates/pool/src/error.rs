//! The pool's errors. Each says whether the request could have run on the
//! server, which decides whether a caller may retry it.

use std::sync::Arc;
use std::time::Duration;

/// Why a request got no reply.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connect failed.
    #[error("connect to {addr} failed: {reason}")]
    Connect {
        /// Node address.
        addr: Arc<str>,
        /// The OS error text.
        reason: String,
    },
    /// Connect plus handshake took too long.
    #[error("connect to {addr} timed out after {elapsed:?}")]
    ConnectTimeout {
        /// Node address.
        addr: Arc<str>,
        /// The configured limit.
        elapsed: Duration,
    },
    /// The node refused the handshake (wrong password, unknown database...).
    #[error("handshake with {addr} failed: {reply}")]
    Handshake {
        /// Node address.
        addr: Arc<str>,
        /// The node's error reply.
        reply: String,
    },
    /// The node is in its reconnect backoff window after failed connects.
    #[error("{addr} is unreachable (last error: {last}); next attempt in {retry_in:?}")]
    Unreachable {
        /// Node address.
        addr: Arc<str>,
        /// Error of the last attempt.
        last: String,
        /// Time left in the backoff window.
        retry_in: Duration,
    },
    /// The connection broke. `sent` tells whether the request had been
    /// (possibly partly) written: if so it may have run.
    #[error("connection to {addr} lost{}", if *.sent { " after the request was sent" } else { "" })]
    ConnectionLost {
        /// Node address.
        addr: Arc<str>,
        /// Whether the request may have reached the node.
        sent: bool,
    },
    /// No reply within the request timeout; the connection was closed.
    #[error("no reply from {addr} within {elapsed:?}")]
    Timeout {
        /// Node address.
        addr: Arc<str>,
        /// The configured limit.
        elapsed: Duration,
    },
    /// The node sent bytes that are not RESP; the connection was closed.
    #[error("invalid reply from {addr}: {reason}")]
    Protocol {
        /// Node address.
        addr: Arc<str>,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// True when the request certainly never reached the node, so any
    /// request, even a write, may be sent again.
    pub fn never_sent(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::Handshake { .. }
            | Error::Unreachable { .. } => true,
            Error::ConnectionLost { sent, .. } => !sent,
            Error::Timeout { .. } | Error::Protocol { .. } => false,
        }
    }

    /// The node address the error is about.
    pub fn addr(&self) -> &str {
        match self {
            Error::Connect { addr, .. }
            | Error::ConnectTimeout { addr, .. }
            | Error::Handshake { addr, .. }
            | Error::Unreachable { addr, .. }
            | Error::ConnectionLost { addr, .. }
            | Error::Timeout { addr, .. }
            | Error::Protocol { addr, .. } => addr,
        }
    }
}
