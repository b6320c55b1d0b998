//! The crate's error type. A protocol error knows the exact reply Valkey
//! sends for it, so the proxy answers a broken client the way the server would.

use bytes::{BufMut, Bytes, BytesMut};

/// Everything that can go wrong while decoding RESP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `*<count>` that is not a number or is too large.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// More than ten arguments before the client authenticated.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A `*<count>` header longer than 64 KiB without a line end.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$<len>` header longer than 64 KiB without a line end.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// A multibulk element that does not start with `$`.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    /// `$<len>` that is not a number, is negative or exceeds `proto-max-bulk-len`.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A bulk argument over 16 KiB before the client authenticated.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// An inline command longer than 64 KiB without a line end.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline command with an unterminated quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// The client buffered more than the query-buffer limit for one request.
    #[error("client reached the query buffer limit of {limit} bytes")]
    QueryBufferLimit {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A server reply starting with a byte that is no RESP type.
    #[error("invalid reply: unexpected type byte {0:#04x}")]
    InvalidReplyType(u8),
    /// A server reply with a malformed length, count or number.
    #[error("invalid reply: malformed {0}")]
    InvalidReply(&'static str),
    /// A server reply nested deeper than the configured limit.
    #[error("invalid reply: nested deeper than {0} levels")]
    ReplyTooDeep(usize),
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The error reply Valkey would send for this error before closing the
    /// connection, as raw RESP (`-ERR Protocol error: ...\r\n`). `None` when
    /// Valkey closes the connection without a reply (query-buffer limit) or
    /// when the error is not the client's (I/O, bad server reply).
    pub fn client_reply(&self) -> Option<Bytes> {
        let mut out = BytesMut::with_capacity(64);
        out.put_slice(b"-ERR ");
        match self {
            Error::ExpectedDollar(byte) => {
                // Valkey prints the offending byte as is (`%c`), not as UTF-8.
                out.put_slice(b"Protocol error: expected '$', got '");
                out.put_u8(*byte);
                out.put_slice(b"'");
            }
            Error::InvalidMultibulkLength
            | Error::UnauthenticatedMultibulkLength
            | Error::TooBigMultibulkCount
            | Error::TooBigBulkCount
            | Error::InvalidBulkLength
            | Error::UnauthenticatedBulkLength
            | Error::TooBigInlineRequest
            | Error::UnbalancedQuotes => out.put_slice(self.to_string().as_bytes()),
            _ => return None,
        }
        out.put_slice(b"\r\n");
        Some(out.freeze())
    }

    /// True when the error is the peer's fault (bad protocol), false for I/O.
    pub fn is_protocol(&self) -> bool {
        !matches!(self, Error::Io(_))
    }
}
