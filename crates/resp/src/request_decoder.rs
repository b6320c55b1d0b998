//! [`RequestDecoder`]: client requests, multibulk or inline, decoded the way
//! Valkey's `processMultibulkBuffer` / `processInlineBuffer` do, with the same
//! limits and error texts.
//!
//! The decoder is resumable: for a multibulk request it remembers how far it
//! has scanned and which arguments it has found, so each byte is looked at
//! once however the request is split into reads. Bulk payloads are skipped by
//! length, never scanned. A complete request is cut out of the buffer with
//! `split_to(..).freeze()` and its arguments are slices of that one `Bytes`.

use bytes::{Buf, BytesMut};

use crate::inline::split_args;
use crate::limits::{INLINE_MAX_SIZE, UNAUTHENTICATED_MAX_ARGS, UNAUTHENTICATED_MAX_BULK};
use crate::number::{parse_i64, plain_header};
use crate::request::{span, Span, Spans};
use crate::{Error, Limits, Request};

/// Bulk arguments at least this long make the decoder reserve room for the
/// whole payload at once instead of growing the buffer read by read.
const BIG_ARG: usize = 32 * 1024;

/// Decodes client requests from a buffer the caller keeps filling.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    limits: Limits,
    authenticated: bool,
    partial: Option<Partial>,
    /// Offsets of the arguments of the request being read, relative to its
    /// start. Kept between requests so that decoding allocates nothing.
    offsets: Vec<Span>,
}

/// A multibulk request that is not complete yet.
#[derive(Debug)]
struct Partial {
    /// Arguments announced by the `*<count>` header.
    expected: usize,
    /// Offset of the first byte not yet consumed.
    pos: usize,
    /// Length of the bulk whose header was read but whose payload was not.
    bulk: Option<usize>,
}

impl RequestDecoder {
    /// A decoder with the given limits. Until [`Self::set_authenticated`] is
    /// called the lower pre-authentication limits apply.
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            authenticated: false,
            partial: None,
            offsets: Vec::new(),
        }
    }

    /// Whether the client has authenticated (or no authentication is
    /// required). Authenticated clients get the full limits.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.authenticated = authenticated;
    }

    /// True while a multibulk request has been started but not finished.
    pub fn is_mid_request(&self) -> bool {
        self.partial.is_some()
    }

    /// Decodes the next request from `src`, removing its bytes. Returns
    /// `Ok(None)` when more input is needed; empty requests (an empty line,
    /// `*0`, `*-1`) are skipped as Valkey skips them.
    ///
    /// # Errors
    /// A protocol error, whose [`Error::client_reply`] is what Valkey answers
    /// before closing the connection.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, Error> {
        loop {
            // Arguments are kept as 32-bit offsets, so no request may reach
            // 4 GiB whatever the configured limit.
            let limit = self.limits.max_query_buffer.min(u32::MAX as usize);
            if src.len() > limit {
                return Err(Error::QueryBufferLimit { limit });
            }
            if self.partial.is_none() {
                match src.first() {
                    None => return Ok(None),
                    Some(b'*') => {
                        if let Some(request) = self.complete_request(src) {
                            return Ok(Some(request));
                        }
                        match self.multibulk_header(src)? {
                            Header::Incomplete => return Ok(None),
                            Header::Empty => continue,
                            Header::Started => {}
                        }
                    }
                    Some(_) => match decode_inline(src)? {
                        Inline::Incomplete => return Ok(None),
                        Inline::Empty => continue,
                        Inline::Request(request) => return Ok(Some(request)),
                    },
                }
            }
            return self.multibulk_body(src);
        }
    }

    /// The common case in one pass: a whole multibulk request already in
    /// `src`, every header plain (see [`plain_header`]) and within the
    /// limits. Reads without changing any state, so `None` leaves the
    /// request to the resumable path, which also gives the errors.
    fn complete_request(&mut self, src: &mut BytesMut) -> Option<Request> {
        let (count, mut pos) = plain_header(src, b'*', self.limits.max_multibulk_len)?;
        if count == 0 || (count > UNAUTHENTICATED_MAX_ARGS as usize && !self.authenticated) {
            return None;
        }
        let mut spans = Spans::with_capacity(count.min(1024));
        for _ in 0..count {
            let (len, header) = plain_header(src.get(pos..)?, b'$', self.limits.max_bulk_len)?;
            if len > UNAUTHENTICATED_MAX_BULK as usize && !self.authenticated {
                return None;
            }
            let start = pos + header;
            let end = start + len;
            // Valkey does not check the two bytes after the payload.
            if end + 2 > src.len() {
                return None;
            }
            spans.push(span(start, end));
            pos = end + 2;
        }
        let raw = src.split_to(pos).freeze();
        Some(Request::from_parts(raw, spans))
    }

    /// Reads `*<count>\r\n`.
    fn multibulk_header(&mut self, src: &mut BytesMut) -> Result<Header, Error> {
        if let Some((count, header)) = plain_header(src, b'*', self.limits.max_multibulk_len) {
            if count > 0 && (count <= UNAUTHENTICATED_MAX_ARGS as usize || self.authenticated) {
                self.start(count, header);
                return Ok(Header::Started);
            }
        }
        let Some(cr) = memchr(b'\r', src) else {
            if src.len() > INLINE_MAX_SIZE {
                return Err(Error::TooBigMultibulkCount);
            }
            return Ok(Header::Incomplete);
        };
        if cr + 2 > src.len() {
            return Ok(Header::Incomplete);
        }
        let count = match parse_i64(&src[1..cr]) {
            Some(n) if n <= self.limits.max_multibulk_len => n,
            _ => return Err(Error::InvalidMultibulkLength),
        };
        if count > UNAUTHENTICATED_MAX_ARGS && !self.authenticated {
            return Err(Error::UnauthenticatedMultibulkLength);
        }
        if count <= 0 {
            src.advance(cr + 2);
            return Ok(Header::Empty);
        }
        self.start(count as usize, cr + 2);
        Ok(Header::Started)
    }

    /// Begins a request of `expected` arguments whose header is `header`
    /// bytes long.
    fn start(&mut self, expected: usize, header: usize) {
        self.offsets.clear();
        // Like Valkey, trust a huge count only as far as 1024 slots.
        self.offsets.reserve(expected.min(1024));
        self.partial = Some(Partial {
            expected,
            pos: header,
            bulk: None,
        });
    }

    /// Reads `$<len>\r\n<payload>\r\n` elements until the request is complete.
    fn multibulk_body(&mut self, src: &mut BytesMut) -> Result<Option<Request>, Error> {
        let Some(partial) = self.partial.as_mut() else {
            return Ok(None);
        };
        while self.offsets.len() < partial.expected {
            match partial.bulk {
                None => {
                    let rest = &src[partial.pos..];
                    if let Some((len, header)) = plain_header(rest, b'$', self.limits.max_bulk_len) {
                        if len > UNAUTHENTICATED_MAX_BULK as usize && !self.authenticated {
                            return Err(Error::UnauthenticatedBulkLength);
                        }
                        partial.pos += header;
                        partial.bulk = Some(len);
                        continue;
                    }
                    let Some(cr) = memchr(b'\r', rest) else {
                        if rest.len() > INLINE_MAX_SIZE {
                            return Err(Error::TooBigBulkCount);
                        }
                        return Ok(None);
                    };
                    if cr + 2 > rest.len() {
                        return Ok(None);
                    }
                    if rest[0] != b'$' {
                        return Err(Error::ExpectedDollar(rest[0]));
                    }
                    let len = match parse_i64(&rest[1..cr]) {
                        Some(n) if (0..=self.limits.max_bulk_len).contains(&n) => n,
                        _ => return Err(Error::InvalidBulkLength),
                    };
                    if len > UNAUTHENTICATED_MAX_BULK && !self.authenticated {
                        return Err(Error::UnauthenticatedBulkLength);
                    }
                    partial.pos += cr + 2;
                    partial.bulk = Some(len as usize);
                }
                Some(len) => {
                    let available = src.len() - partial.pos;
                    if available < len + 2 {
                        if len >= BIG_ARG {
                            src.reserve(len + 2 - available);
                        }
                        return Ok(None);
                    }
                    // Valkey does not check the two bytes after the payload.
                    self.offsets.push(span(partial.pos, partial.pos + len));
                    partial.pos += len + 2;
                    partial.bulk = None;
                }
            }
        }
        let Some(partial) = self.partial.take() else {
            return Ok(None);
        };
        let raw = src.split_to(partial.pos).freeze();
        Ok(Some(Request::from_parts(raw, Spans::from_slice(&self.offsets))))
    }
}

enum Header {
    Incomplete,
    Empty,
    Started,
}

enum Inline {
    Incomplete,
    Empty,
    Request(Request),
}

/// Reads one inline command: a line of blank-separated arguments.
fn decode_inline(src: &mut BytesMut) -> Result<Inline, Error> {
    let Some(newline) = memchr(b'\n', src) else {
        if src.len() > INLINE_MAX_SIZE {
            return Err(Error::TooBigInlineRequest);
        }
        return Ok(Inline::Incomplete);
    };
    let line = src.split_to(newline + 1);
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let args = split_args(text)?;
    if args.is_empty() {
        return Ok(Inline::Empty);
    }
    Ok(Inline::Request(Request::from_args(args)))
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Convenience for tests and tools: decodes every complete request in `input`.
///
/// # Errors
/// The first protocol error.
pub fn decode_all(input: &[u8]) -> Result<Vec<Request>, Error> {
    let mut decoder = RequestDecoder::new(Limits::default());
    decoder.set_authenticated(true);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(request) = decoder.decode(&mut buf)? {
        out.push(request);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
