//! SCAN over a whole cluster with one cursor.
//!
//! The proxy's cursor packs the primary being walked (its index among the
//! topology's shards, which are sorted by address) and that node's own
//! cursor: `node_cursor * MAX_SHARDS + shard`. A scan walks the first
//! primary to its end, then the next, and so on; cursor 0 ends it. MATCH,
//! COUNT and TYPE go to every node as given. When a node's walk ends with
//! fewer keys than COUNT, the same call goes on to the next node, so a small
//! keyspace comes back in one call with cursor 0, as one server answers. On a stable keyspace and
//! topology every key is returned, and none twice, as SCAN promises on one
//! server; when shards are added or removed during a scan, keys may be
//! missed or repeated (a client can tell by nothing; it is documented).

use bytes::Bytes;
use resp::{Frame, Request};
use router::{Command, Error, Reply, Route};

/// Shards a cursor can address.
pub const MAX_SHARDS: u64 = 1024;

/// Where a proxy cursor points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Index of the primary in the topology's shards.
    pub shard: usize,
    /// That node's own SCAN cursor.
    pub node_cursor: u64,
}

/// Reads a client's cursor (Valkey's error for anything but an unsigned
/// number).
///
/// # Errors
/// `ERR invalid cursor`.
pub fn parse_cursor(cursor: &[u8]) -> Result<Position, Frame> {
    let invalid = || Frame::error("ERR invalid cursor");
    let text = std::str::from_utf8(cursor).map_err(|_| invalid())?;
    let value: u64 = text.parse().map_err(|_| invalid())?;
    Ok(Position {
        shard: (value % MAX_SHARDS) as usize,
        node_cursor: value / MAX_SHARDS,
    })
}

/// The client's cursor after `shard` answered `node_next`; 0 when the
/// last shard is done.
///
/// # Errors
/// The node's cursor is too large to pack.
pub fn next_cursor(shard: usize, node_next: u64, shards: usize) -> Result<u64, Error> {
    if node_next == 0 {
        return Ok(if shard + 1 < shards { shard as u64 + 1 } else { 0 });
    }
    node_next
        .checked_mul(MAX_SHARDS)
        .map(|c| c + shard as u64)
        .ok_or_else(|| Error::InvalidReply("a node's SCAN cursor is too large for the proxy's cursor".into()))
}

/// The request to send to the node and where to send it, or the reply to
/// give at once (a bad cursor, or one past the last shard).
pub fn start(command: &Command, shards: usize) -> Result<(Command, Position), Frame> {
    let args = command.request.args();
    let Some(cursor) = args.get(1) else {
        return Err(Frame::error("ERR wrong number of arguments for 'scan' command"));
    };
    let position = parse_cursor(cursor)?;
    if position.shard >= shards {
        // A cursor from a bigger topology: the scan is over.
        return Err(Frame::Array(vec![Frame::bulk("0"), Frame::Array(Vec::new())]));
    }
    let mut node_args: Vec<Bytes> = args.to_vec();
    node_args[1] = Bytes::from(position.node_cursor.to_string());
    let route = Route::Node {
        shard: position.shard as u32,
        replica: None,
    };
    Ok((
        command.with_request(Request::from_args(node_args), Some(route)),
        position,
    ))
}

/// What one node's SCAN answered.
#[derive(Debug)]
pub enum Page {
    /// The client's next cursor, and the keys.
    Keys(u64, Vec<Frame>),
    /// An error reply, for the client as it is.
    Refused(Reply),
}

/// COUNT of a SCAN call (the server's default, 10, when not given or not
/// a number: the node answers a bad one with its own error).
pub fn count(args: resp::Args<'_>) -> usize {
    (2..args.len())
        .find(|&i| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"count")))
        .and_then(|i| args.get(i + 1))
        .and_then(resp::number::parse_i64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(10)
}

/// The client's cursor and keys from the node's reply.
///
/// # Errors
/// A reply that is not `[cursor, keys]`.
pub fn finish(reply: Reply, position: Position, shards: usize) -> Result<Page, Error> {
    if reply.is_error() {
        return Ok(Page::Refused(reply));
    }
    let frame = reply
        .into_frame()
        .map_err(|e| Error::InvalidReply(e.to_string()))?;
    let invalid = || Error::InvalidReply("SCAN did not answer [cursor, keys]".into());
    let Frame::Array(mut parts) = frame else {
        return Err(invalid());
    };
    if parts.len() != 2 {
        return Err(invalid());
    }
    let keys = parts.pop().ok_or_else(invalid)?;
    let node_next = parts
        .pop()
        .and_then(|c| {
            c.as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok()?.parse::<u64>().ok())
        })
        .ok_or_else(invalid)?;
    let next = next_cursor(position.shard, node_next, shards)?;
    let (Frame::Array(keys) | Frame::Set(keys)) = keys else {
        return Err(invalid());
    };
    Ok(Page::Keys(next, keys))
}

/// True when `cursor` points at the start of a node's walk (the one before
/// ended), rather than into a walk or past the last node.
pub fn at_node_start(cursor: u64) -> bool {
    cursor != 0 && cursor / MAX_SHARDS == 0
}

/// The request for the node at the client's cursor `cursor`, as `command`
/// with that cursor.
pub fn with_cursor(command: &Command, cursor: u64) -> Command {
    let mut args: Vec<Bytes> = command.request.args().to_vec();
    if let Some(first) = args.get_mut(1) {
        *first = Bytes::from(cursor.to_string());
    }
    command.with_request(Request::from_args(args), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_walk_every_shard_in_turn() {
        assert_eq!(
            parse_cursor(b"0").unwrap(),
            Position {
                shard: 0,
                node_cursor: 0
            }
        );
        assert_eq!(next_cursor(0, 0, 3).unwrap(), 1);
        assert_eq!(
            parse_cursor(b"1").unwrap(),
            Position {
                shard: 1,
                node_cursor: 0
            }
        );
        let c = next_cursor(1, 17, 3).unwrap();
        assert_eq!(
            parse_cursor(c.to_string().as_bytes()).unwrap(),
            Position {
                shard: 1,
                node_cursor: 17
            }
        );
        assert_eq!(next_cursor(2, 0, 3).unwrap(), 0);
        assert!(parse_cursor(b"-1").is_err());
        assert!(parse_cursor(b"abc").is_err());
        assert!(next_cursor(0, u64::MAX / 2, 3).is_err());
    }
}
