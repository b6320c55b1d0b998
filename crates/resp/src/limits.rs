//! Bounds on what a decoder accepts, with Valkey's defaults.

/// The longest line a decoder waits for before giving up: an inline command,
/// or the `*<count>` / `$<len>` header of a multibulk request. Valkey's
/// `PROTO_INLINE_MAX_SIZE` (64 KiB); a client that sends more without a line
/// end is broken or hostile, and we must not buffer it forever.
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// Before authentication a multibulk request may have at most this many
/// arguments (Valkey's unauthenticated limit), so an anonymous client cannot
/// make the proxy reserve memory for a million argument slots.
pub const UNAUTHENTICATED_MAX_ARGS: i64 = 10;

/// Before authentication a bulk argument may be at most this long (Valkey's
/// unauthenticated limit).
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;

/// Limits a decoder enforces. The defaults are Valkey's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string a client may send, or a server may reply
    /// (`proto-max-bulk-len`, 512 MiB).
    pub max_bulk_len: i64,
    /// Largest multibulk argument count (`INT_MAX`, as Valkey).
    pub max_multibulk_len: i64,
    /// Most bytes a client may have buffered for one incomplete request
    /// (`client-query-buffer-limit`, 1 GiB). Past it the connection is closed,
    /// as Valkey closes it.
    pub max_query_buffer: usize,
    /// Deepest nesting of aggregates in a server reply. Replies come from our
    /// own backends, but the scanner is iterative and this keeps even a broken
    /// backend from growing the stack without bound.
    pub max_reply_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as i64,
            max_query_buffer: 1024 * 1024 * 1024,
            max_reply_depth: 1024,
        }
    }
}
