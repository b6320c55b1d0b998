//! [`Frame`]: a reply parsed into a tree, for the few places that must look
//! inside a reply (topology discovery, aggregation, the proxy's own answers).
//! Pass-through replies are never turned into frames.

use bytes::Bytes;

use crate::number::{parse_i64, parse_reply_len};
use crate::reply_decoder::find_crlf;
use crate::{Error, Limits};

/// One RESP2 or RESP3 value.
///
/// Strings are zero-copy slices of the buffer they were parsed from (a
/// streamed string, which arrives in chunks, is the one exception).
/// Attributes (`|`) are dropped by [`Frame::parse`]: the proxy forwards the raw
/// bytes of replies that carry them.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(Bytes),
    /// `-ERR message`: the text without the `-`.
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`
    Bulk(Bytes),
    /// RESP3 `_`, RESP2 null bulk `$-1`.
    Null,
    /// RESP2 null array `*-1` (RESP3 has one null; it becomes `_`).
    NullArray,
    /// `*N`
    Array(Vec<Frame>),
    /// RESP3 `%N`: key-value pairs in order.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~N`
    Set(Vec<Frame>),
    /// RESP3 `>N`: an out-of-band message.
    Push(Vec<Frame>),
    /// RESP3 `,` as its text (`inf`, `-inf`, `nan` and exponents survive).
    Double(Bytes),
    /// RESP3 `#t` / `#f`
    Boolean(bool),
    /// RESP3 `(` as its decimal text.
    BigNumber(Bytes),
    /// RESP3 `=N\r\nfmt:text`
    Verbatim {
        /// The three-byte format, such as `txt` or `mkd`.
        format: Bytes,
        /// The text after `fmt:`.
        text: Bytes,
    },
    /// RESP3 `!N`: an error as a bulk string.
    BulkError(Bytes),
}

/// An aggregate being filled while parsing.
struct Open {
    kind: u8,
    /// Elements still expected; `None` for a streamed aggregate.
    remaining: Option<usize>,
    items: Vec<Frame>,
}

impl Frame {
    /// Parses one complete frame from the start of `buf`. Returns the frame
    /// and the number of bytes it took, or `Ok(None)` if `buf` holds only a
    /// prefix of a frame. Iterative, with [`Limits::max_reply_depth`] as the
    /// nesting cap.
    ///
    /// # Errors
    /// `buf` does not start with valid RESP.
    pub fn parse(buf: &Bytes) -> Result<Option<(Frame, usize)>, Error> {
        parse_with(buf, Limits::default().max_reply_depth)
    }

    /// Parses a buffer that holds exactly one frame, such as a reply returned
    /// by [`crate::ReplyDecoder`].
    ///
    /// # Errors
    /// The buffer is not one complete frame.
    pub fn parse_complete(buf: &Bytes) -> Result<Frame, Error> {
        match Frame::parse(buf)? {
            Some((frame, _)) => Ok(frame),
            None => Err(Error::InvalidReply("incomplete frame")),
        }
    }

    /// A bulk string frame.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// A simple string frame.
    pub fn simple(text: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(text.as_bytes()))
    }

    /// An error frame; `text` includes the prefix (`ERR ...`). Line
    /// breaks in it become spaces, as Valkey's `addReplyError` makes them:
    /// a simple error is one line.
    pub fn error(text: impl Into<String>) -> Frame {
        let mut text = text.into();
        if text.contains(['\r', '\n']) {
            text = text.replace(['\r', '\n'], " ");
        }
        Frame::Error(Bytes::from(text))
    }

    /// True for `-` and `!` errors.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_) | Frame::BulkError(_))
    }

    /// The bytes of a string-like frame (simple, bulk, verbatim, error).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) | Frame::BulkError(b) => Some(b),
            Frame::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value of an integer frame, or of a string frame holding one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Frame::Integer(n) => Some(*n),
            other => parse_i64(other.as_bytes()?),
        }
    }

    /// The elements of an array, set or push frame; a map flattened is not
    /// returned here (use [`Frame::into_pairs`]).
    pub fn as_array(&self) -> Option<&[Frame]> {
        match self {
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => Some(items),
            _ => None,
        }
    }

    /// Key-value pairs of a RESP3 map, or of a RESP2 array laid out as
    /// `key, value, key, value`.
    pub fn into_pairs(self) -> Option<Vec<(Frame, Frame)>> {
        match self {
            Frame::Map(pairs) => Some(pairs),
            Frame::Array(items) if items.len() % 2 == 0 => {
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Some(pairs)
            }
            _ => None,
        }
    }
}

/// The value of the field `name` (any case) among the key-value pairs of a
/// map reply (see [`Frame::into_pairs`]).
pub fn field<'a>(pairs: &'a [(Frame, Frame)], name: &str) -> Option<&'a Frame> {
    pairs
        .iter()
        .find(|(key, _)| {
            key.as_bytes()
                .is_some_and(|k| k.eq_ignore_ascii_case(name.as_bytes()))
        })
        .map(|(_, value)| value)
}

fn parse_with(buf: &Bytes, max_depth: usize) -> Result<Option<(Frame, usize)>, Error> {
    let mut stack: Vec<Open> = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &buf[pos..];
        let Some(cr) = find_crlf(rest) else {
            return Ok(None);
        };
        if cr == 0 {
            return Err(Error::InvalidReply("empty line"));
        }
        let kind = rest[0];
        let line = buf.slice(pos + 1..pos + cr);
        let body = pos + cr + 2;
        pos = body;
        let mut value = match kind {
            b'+' => Some(Frame::Simple(line)),
            b'-' => Some(Frame::Error(line)),
            b':' => Some(Frame::Integer(
                parse_i64(&line).ok_or(Error::InvalidReply("integer"))?,
            )),
            b'_' => Some(Frame::Null),
            b'#' => Some(Frame::Boolean(match &line[..] {
                b"t" => true,
                b"f" => false,
                _ => return Err(Error::InvalidReply("boolean")),
            })),
            b',' => Some(Frame::Double(line)),
            b'(' => Some(Frame::BigNumber(line)),
            b'$' if &line[..] == b"?" => {
                let Some((data, end)) = streamed_string(buf, body)? else {
                    return Ok(None);
                };
                pos = end;
                Some(Frame::Bulk(data))
            }
            b'$' | b'!' | b'=' => {
                let len = parse_reply_len(&line).ok_or(Error::InvalidReply("bulk length"))?;
                if len < 0 {
                    Some(Frame::Null)
                } else {
                    let end = body + len as usize;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    let data = buf.slice(body..end);
                    pos = end + 2;
                    Some(match kind {
                        b'$' => Frame::Bulk(data),
                        b'!' => Frame::BulkError(data),
                        _ if data.len() >= 4 && data[3] == b':' => Frame::Verbatim {
                            format: data.slice(..3),
                            text: data.slice(4..),
                        },
                        _ => return Err(Error::InvalidReply("verbatim string")),
                    })
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                if stack.len() >= max_depth {
                    return Err(Error::ReplyTooDeep(max_depth));
                }
                let per_entry = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
                if &line[..] == b"?" {
                    stack.push(Open {
                        kind,
                        remaining: None,
                        items: Vec::new(),
                    });
                    None
                } else {
                    match parse_reply_len(&line).ok_or(Error::InvalidReply("aggregate length"))? {
                        // An empty attribute describes nothing and counts for
                        // nothing, as in the reply scanner.
                        ..=0 if kind == b'|' => None,
                        -1 => Some(Frame::NullArray),
                        0 => Some(close(kind, Vec::new())?),
                        n => {
                            let remaining = n as usize * per_entry;
                            let items = Vec::with_capacity(remaining.min(1024));
                            stack.push(Open {
                                kind,
                                remaining: Some(remaining),
                                items,
                            });
                            None
                        }
                    }
                }
            }
            b'.' => match stack.pop() {
                Some(open) if open.remaining.is_none() => Some(close(open.kind, open.items)?),
                _ => return Err(Error::InvalidReply("end of a streamed aggregate")),
            },
            other => return Err(Error::InvalidReplyType(other)),
        };
        // Close every aggregate that is now complete, innermost first.
        while let Some(top) = stack.last_mut() {
            if let Some(frame) = value.take() {
                top.items.push(frame);
                if let Some(remaining) = top.remaining.as_mut() {
                    *remaining -= 1;
                }
            }
            if top.remaining != Some(0) {
                break;
            }
            let Some(open) = stack.pop() else { break };
            value = if open.kind == b'|' {
                None
            } else {
                Some(close(open.kind, open.items)?)
            };
            if value.is_none() {
                // An attribute was dropped; its value is still to come.
                break;
            }
        }
        if stack.is_empty() {
            if let Some(frame) = value {
                return Ok(Some((frame, pos)));
            }
        }
    }
}

fn close(kind: u8, items: Vec<Frame>) -> Result<Frame, Error> {
    Ok(match kind {
        b'*' => Frame::Array(items),
        b'~' => Frame::Set(items),
        b'>' => Frame::Push(items),
        b'%' => Frame::Array(items)
            .into_pairs()
            .map(Frame::Map)
            .ok_or(Error::InvalidReply("map"))?,
        _ => return Err(Error::InvalidReply("aggregate")),
    })
}

/// Reads the `;len` chunks of a streamed string starting at `pos`.
fn streamed_string(buf: &Bytes, mut pos: usize) -> Result<Option<(Bytes, usize)>, Error> {
    let mut data = Vec::new();
    loop {
        let rest = &buf[pos..];
        let Some(cr) = find_crlf(rest) else {
            return Ok(None);
        };
        if rest[0] != b';' {
            return Err(Error::InvalidReply("streamed string chunk"));
        }
        let len = match parse_reply_len(&rest[1..cr]) {
            Some(n) if n >= 0 => n as usize,
            _ => return Err(Error::InvalidReply("streamed string chunk length")),
        };
        pos += cr + 2;
        if len == 0 {
            return Ok(Some((Bytes::from(data), pos)));
        }
        if buf.len() < pos + len + 2 {
            return Ok(None);
        }
        data.extend_from_slice(&buf[pos..pos + len]);
        pos += len + 2;
    }
}

#[cfg(test)]
mod tests;
