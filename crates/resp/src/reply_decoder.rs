//! [`ReplyDecoder`]: finds where each complete server reply ends, for every
//! RESP2 and RESP3 type, and hands it out as its raw bytes.
//!
//! A pass-through reply is never parsed into a tree: the proxy only needs to
//! know where it ends (to match it with its request) and its first byte (to
//! spot errors and push messages). The scan is resumable and iterative: an
//! explicit stack of "elements still expected" per open aggregate, capped by
//! [`Limits::max_reply_depth`], and the position reached so far, so a large
//! reply arriving in many reads is scanned once. Use [`crate::Frame::parse`]
//! on the returned bytes when a tree is needed.

use bytes::{Bytes, BytesMut};

use crate::number::{parse_i64, parse_reply_len, plain_header};
use crate::{Error, Limits};

/// An open aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// Elements still expected.
    Counted(u64),
    /// Elements of an attribute (`|`) still expected. An attribute precedes
    /// the value it describes and is not an element of its parent.
    Attribute(u64),
    /// A streamed aggregate (`*?`, `~?`, `>?`), which ends at `.`.
    Streamed,
    /// A streamed map (`%?`); `odd` while a key waits for its value.
    StreamedMap {
        /// A key has been read without its value.
        odd: bool,
    },
}

/// Scans server replies out of a buffer the caller keeps filling.
#[derive(Debug, Default)]
pub struct ReplyDecoder {
    limits: Limits,
    /// Offset of the first byte of the current reply not yet scanned.
    pos: usize,
    /// The open aggregates, outermost first.
    stack: Vec<Level>,
    /// Inside a streamed string (`$?`), reading `;<len>` chunks.
    in_streamed_string: bool,
}

impl ReplyDecoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        ReplyDecoder {
            limits,
            ..ReplyDecoder::default()
        }
    }

    /// Returns the raw bytes of the next complete reply, removing them from
    /// `src`, or `Ok(None)` when more input is needed.
    ///
    /// # Errors
    /// The input is not RESP; the connection it came from cannot be trusted
    /// any more.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        if self.stack.is_empty() && !self.in_streamed_string {
            if let Some(end) = simple_reply_end(src, self.limits.max_bulk_len) {
                return Ok(Some(src.split_to(end).freeze()));
            }
        }
        if self.stack.is_empty() {
            self.stack.push(Level::Counted(1));
        }
        while !self.stack.is_empty() {
            let rest = &src[self.pos..];
            let Some(cr) = find_crlf(rest) else {
                return Ok(None);
            };
            if cr == 0 {
                return Err(Error::InvalidReply("empty line"));
            }
            let line = &rest[1..cr];
            let after_line = cr + 2;
            if self.in_streamed_string {
                if rest[0] != b';' {
                    return Err(Error::InvalidReply("streamed string chunk"));
                }
                let len = parse_len(line, "streamed string chunk length")?;
                if len as i64 > self.limits.max_bulk_len {
                    return Err(Error::InvalidReply("streamed string chunk over the limit"));
                }
                if len == 0 {
                    self.in_streamed_string = false;
                    self.pos += after_line;
                    self.element_done();
                } else {
                    let Some(end) = self.payload_end(src, after_line, len) else {
                        return Ok(None);
                    };
                    self.pos = end;
                }
                continue;
            }
            match rest[0] {
                b':' if parse_i64(line).is_none() => return Err(Error::InvalidReply("integer")),
                b'#' if line != b"t" && line != b"f" => return Err(Error::InvalidReply("boolean")),
                b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
                    self.pos += after_line;
                    self.element_done();
                }
                b'$' | b'!' | b'=' => {
                    if rest[0] == b'$' && line == b"?" {
                        self.in_streamed_string = true;
                        self.pos += after_line;
                        continue;
                    }
                    let len = parse_reply_len(line).ok_or(Error::InvalidReply("bulk length"))?;
                    if len > self.limits.max_bulk_len {
                        return Err(Error::InvalidReply("bulk length over the limit"));
                    }
                    if len < 0 {
                        self.pos += after_line;
                    } else {
                        let kind = rest[0];
                        let Some(end) = self.payload_end(src, after_line, len as usize) else {
                            return Ok(None);
                        };
                        // A verbatim string is `fmt:text`, with a 3-byte format.
                        if kind == b'=' && (len < 4 || src[self.pos + after_line + 3] != b':') {
                            return Err(Error::InvalidReply("verbatim string"));
                        }
                        self.pos = end;
                    }
                    self.element_done();
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let per_entry = if matches!(rest[0], b'%' | b'|') { 2 } else { 1 };
                    let is_attribute = rest[0] == b'|';
                    self.pos += after_line;
                    if line == b"?" && !is_attribute {
                        let level = if rest[0] == b'%' {
                            Level::StreamedMap { odd: false }
                        } else {
                            Level::Streamed
                        };
                        self.open(level)?;
                        continue;
                    }
                    let count = parse_reply_len(line).ok_or(Error::InvalidReply("aggregate length"))?;
                    match (count, is_attribute) {
                        // An empty attribute describes nothing and counts for nothing.
                        (..=0, true) => {}
                        (..=0, false) => self.element_done(),
                        (n, true) => self.open(Level::Attribute(n as u64 * per_entry))?,
                        (n, false) => self.open(Level::Counted(n as u64 * per_entry))?,
                    }
                }
                b'.' => {
                    if !matches!(
                        self.stack.last(),
                        Some(Level::Streamed | Level::StreamedMap { odd: false })
                    ) {
                        return Err(Error::InvalidReply("end of a streamed aggregate"));
                    }
                    self.pos += after_line;
                    self.stack.pop();
                    self.element_done();
                }
                other => return Err(Error::InvalidReplyType(other)),
            }
        }
        let end = std::mem::take(&mut self.pos);
        Ok(Some(src.split_to(end).freeze()))
    }

    /// Where a payload of `len` bytes (plus CRLF) that starts `after_line`
    /// bytes past `pos` ends, or `None` if it has not fully arrived (in which
    /// case room for it is reserved).
    fn payload_end(&self, src: &mut BytesMut, after_line: usize, len: usize) -> Option<usize> {
        let end = self.pos + after_line + len + 2;
        if src.len() < end {
            src.reserve(end - src.len());
            return None;
        }
        Some(end)
    }

    fn open(&mut self, level: Level) -> Result<(), Error> {
        if self.stack.len() > self.limits.max_reply_depth {
            return Err(Error::ReplyTooDeep(self.limits.max_reply_depth));
        }
        self.stack.push(level);
        Ok(())
    }

    /// One element of the innermost aggregate is complete; close every
    /// aggregate this completes.
    fn element_done(&mut self) {
        while let Some(top) = self.stack.last_mut() {
            match top {
                Level::Streamed => return,
                Level::StreamedMap { odd } => {
                    *odd = !*odd;
                    return;
                }
                Level::Counted(remaining) | Level::Attribute(remaining) => {
                    *remaining -= 1;
                    if *remaining > 0 {
                        return;
                    }
                }
            }
            if let Some(Level::Attribute(_)) = self.stack.pop() {
                // The value the attribute describes is still to come.
                return;
            }
        }
    }
}

/// Where a reply that is whole in `src` and simple ends: a status, an
/// error, an integer, or a bulk string with a plain length. The common
/// replies, found without the scan's state; `None` leaves anything else
/// (aggregates, incomplete or malformed input) to the full scan.
fn simple_reply_end(src: &[u8], max_bulk: i64) -> Option<usize> {
    match src.first()? {
        b'+' | b'-' => find_crlf(src).map(|cr| cr + 2),
        b':' => {
            let cr = find_crlf(src)?;
            parse_i64(&src[1..cr]).map(|_| cr + 2)
        }
        b'$' => {
            let (len, header) = plain_header(src, b'$', max_bulk)?;
            let end = header + len + 2;
            (src[header - 1] == b'\n' && end <= src.len()).then_some(end)
        }
        _ => None,
    }
}

fn parse_len(line: &[u8], what: &'static str) -> Result<usize, Error> {
    match parse_reply_len(line) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(Error::InvalidReply(what)),
    }
}

/// Offset of the `\r` of the first `\r\n` in `buf`.
pub(crate) fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\r') {
        let cr = from + i;
        match buf.get(cr + 1) {
            Some(b'\n') => return Some(cr),
            Some(_) => from = cr + 1,
            None => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests;
