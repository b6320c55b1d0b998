//! [`Request`]: one client command, kept as the raw bytes it arrived in plus
//! where each argument lies in them, and [`Args`], a borrowed view of the
//! arguments.

use std::ops::{Index, RangeBounds};

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use crate::encode::{put_bulk, put_header};

/// A client command. `raw` is exactly what goes to a backend when the request
/// is passed through; each argument is a range of it (argument 0 is the
/// command name, in the case the client sent it).
///
/// Arguments are kept as offsets, not as `Bytes` slices: a request costs
/// one reference count however many arguments it has, and stays small
/// (72 bytes) as it moves down the stack. [`Args::bytes`] cuts a zero-copy
/// `Bytes` for an argument when a caller needs to keep one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    raw: Bytes,
    spans: Spans,
}

/// Where one argument lies in the raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// Argument spans, stored inline up to four (most commands), so that a
/// typical request costs no allocation of its own.
pub(crate) type Spans = SmallVec<[Span; 4]>;

impl Request {
    /// Builds a request from raw multibulk bytes and the spans the decoder
    /// found in them. The caller guarantees that the spans lie within `raw`
    /// in order; [`crate::RequestDecoder`] is the only intended caller.
    pub(crate) fn from_parts(raw: Bytes, spans: Spans) -> Self {
        Request { raw, spans }
    }

    /// Builds a request from arguments, encoding it as a multibulk.
    pub fn from_args<I, A>(args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: SmallVec<[A; 8]> = args.into_iter().collect();
        let size = 16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>();
        let mut raw = BytesMut::with_capacity(size);
        let mut spans = Spans::with_capacity(args.len());
        put_header(&mut raw, b'*', args.len() as i64);
        for arg in &args {
            let arg = arg.as_ref();
            put_bulk(&mut raw, arg);
            // The payload sits just before the closing CRLF.
            let end = raw.len() - 2;
            spans.push(span(end - arg.len(), end));
        }
        Request {
            raw: raw.freeze(),
            spans,
        }
    }

    /// This request with the arguments at some positions replaced
    /// (`replaced` holds each position once, in any order), encoded anew in
    /// one buffer: what a namespace does to a request's keys.
    pub fn with_replaced(&self, replaced: &[(usize, Bytes)]) -> Request {
        let extra: usize = replaced.iter().map(|(_, arg)| arg.len() + 16).sum();
        self.rebuild(extra, |i| {
            let (_, new) = replaced.iter().find(|(position, _)| *position == i)?;
            Some([&new[..], &[]])
        })
    }

    /// This request with `prefix` put in front of the arguments at
    /// `positions` (each once, in any order): a tenant's keys, written
    /// straight into the new encoding.
    pub fn with_prefixed(&self, prefix: &[u8], positions: &[usize]) -> Request {
        self.rebuild(positions.len() * (prefix.len() + 16), |i| {
            positions
                .contains(&i)
                .then(|| [prefix, self.arg(i).unwrap_or_default()])
        })
    }

    /// Encodes the request anew, argument `i` becoming the concatenation of
    /// what `replace(i)` gives, or staying as it is for `None`. The bytes of
    /// a multibulk request's unchanged arguments, headers included, are
    /// copied as they are.
    fn rebuild<'s>(
        &'s self,
        extra: usize,
        mut replace: impl FnMut(usize) -> Option<[&'s [u8]; 2]>,
    ) -> Request {
        let mut raw = BytesMut::with_capacity(self.raw.len() + extra);
        let mut spans = Spans::with_capacity(self.spans.len());
        let multibulk = self.raw.first() == Some(&b'*');
        // The original bytes up to `copied` are in `raw` already, or are
        // replaced there; the argument headers of an inline request are
        // written anew.
        let mut copied = 0;
        if !multibulk {
            put_header(&mut raw, b'*', self.spans.len() as i64);
        }
        for (i, old) in self.spans.iter().enumerate() {
            let (start, end) = (old.start as usize, old.end as usize);
            let parts = replace(i);
            if multibulk {
                // The argument's header ends where its payload starts.
                let header = self.raw[..start]
                    .iter()
                    .rposition(|&b| b == b'$')
                    .unwrap_or(start);
                match parts {
                    None => {
                        raw.extend_from_slice(&self.raw[copied..end + 2]);
                        let new_end = raw.len() - 2;
                        spans.push(span(new_end - (end - start), new_end));
                        copied = end + 2;
                        continue;
                    }
                    Some(_) => {
                        raw.extend_from_slice(&self.raw[copied..header]);
                        copied = end + 2;
                    }
                }
            }
            let [head, tail] = parts.unwrap_or([&self.raw[start..end], &[]]);
            let len = head.len() + tail.len();
            put_header(&mut raw, b'$', len as i64);
            let payload = raw.len();
            raw.extend_from_slice(head);
            raw.extend_from_slice(tail);
            raw.extend_from_slice(b"\r\n");
            spans.push(span(payload, payload + len));
        }
        Request {
            raw: raw.freeze(),
            spans,
        }
    }

    /// The request whose multibulk bytes are `raw` (what [`Request::raw`]
    /// returned), decoded again; `None` if `raw` is not one complete
    /// multibulk request.
    pub fn from_raw(raw: &Bytes) -> Option<Request> {
        let mut buffer = BytesMut::from(&raw[..]);
        let mut decoder = crate::RequestDecoder::new(crate::Limits::default());
        decoder.set_authenticated(true);
        decoder.decode(&mut buffer).ok().flatten()
    }

    /// The bytes to forward to a backend.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// All arguments, the command name first.
    pub fn args(&self) -> Args<'_> {
        Args {
            raw: &self.raw,
            spans: &self.spans,
        }
    }

    /// Argument `i` (0 is the command name), if present.
    pub fn arg(&self, i: usize) -> Option<&[u8]> {
        self.args().get(i)
    }

    /// Argument `i` as a zero-copy `Bytes`, if present.
    pub fn arg_bytes(&self, i: usize) -> Option<Bytes> {
        self.args().bytes(i)
    }

    /// The command name as the client sent it (any case).
    pub fn name(&self) -> &[u8] {
        // A decoded request always has at least one argument.
        self.arg(0).unwrap_or_default()
    }

    /// True when argument 0 equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for a request with no arguments (never produced by the decoder).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The raw bytes, giving up the argument offsets.
    pub fn into_raw(self) -> Bytes {
        self.raw
    }
}

/// A span from `usize` offsets. Requests are bounded by the query-buffer
/// limit, which [`crate::Limits`] keeps below 4 GiB.
pub(crate) fn span(start: usize, end: usize) -> Span {
    Span {
        start: start as u32,
        end: end as u32,
    }
}

/// The arguments of a [`Request`] (or a range of them), borrowed. Indexing
/// gives an argument's bytes; [`Args::bytes`] a zero-copy `Bytes` of it.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    raw: &'a Bytes,
    spans: &'a [Span],
}

impl<'a> Args<'a> {
    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`, if present.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let span = self.spans.get(i)?;
        Some(&self.raw[span.start as usize..span.end as usize])
    }

    /// The first argument.
    pub fn first(&self) -> Option<&'a [u8]> {
        self.get(0)
    }

    /// The last argument.
    pub fn last(&self) -> Option<&'a [u8]> {
        self.get(self.len().checked_sub(1)?)
    }

    /// Argument `i` as a zero-copy `Bytes` (a slice of the request's raw
    /// bytes), if present.
    pub fn bytes(&self, i: usize) -> Option<Bytes> {
        let span = self.spans.get(i)?;
        Some(self.raw.slice(span.start as usize..span.end as usize))
    }

    /// The arguments in `range`.
    ///
    /// # Panics
    /// When the range is out of bounds, as slicing does.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Args<'a> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        Args {
            raw: self.raw,
            spans: &self.spans[range],
        }
    }

    /// The arguments, in order.
    pub fn iter(&self) -> ArgsIter<'a> {
        ArgsIter {
            raw: self.raw,
            spans: self.spans.iter(),
        }
    }

    /// Every argument as a zero-copy `Bytes`.
    pub fn to_vec(&self) -> Vec<Bytes> {
        (0..self.len()).filter_map(|i| self.bytes(i)).collect()
    }
}

impl Index<usize> for Args<'_> {
    type Output = [u8];

    fn index(&self, i: usize) -> &[u8] {
        let span = self.spans[i];
        &self.raw[span.start as usize..span.end as usize]
    }
}

impl<'a> IntoIterator for Args<'a> {
    type Item = &'a [u8];
    type IntoIter = ArgsIter<'a>;

    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

/// The arguments of [`Args`], in order.
#[derive(Clone, Debug)]
pub struct ArgsIter<'a> {
    raw: &'a Bytes,
    spans: std::slice::Iter<'a, Span>,
}

impl<'a> ArgsIter<'a> {
    fn cut(&self, span: &Span) -> &'a [u8] {
        &self.raw[span.start as usize..span.end as usize]
    }
}

impl<'a> Iterator for ArgsIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let span = self.spans.next()?;
        Some(self.cut(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl DoubleEndedIterator for ArgsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let span = self.spans.next_back()?;
        Some(self.cut(span))
    }
}

impl ExactSizeIterator for ArgsIter<'_> {}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|arg| String::from_utf8_lossy(arg)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_built_from_parts_are_slices_of_the_encoding() {
        let request = Request::from_args(["SET", "key", "", "value"]);
        assert_eq!(
            &request.raw()[..],
            b"*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n$5\r\nvalue\r\n"
        );
        let args = request.args();
        assert_eq!(args.len(), 4);
        assert_eq!(&args[0], b"SET");
        assert_eq!(args.get(2), Some(&b""[..]));
        assert_eq!(args.last(), Some(&b"value"[..]));
        assert_eq!(args.bytes(1), Some(Bytes::from_static(b"key")));
        assert_eq!(args.slice(1..3).iter().collect::<Vec<_>>(), [&b"key"[..], b""]);
        assert_eq!(args.get(4), None);
        assert_eq!(Request::from_raw(request.raw()), Some(request));
    }

    #[test]
    fn replaced_arguments_are_encoded_as_built_from_scratch() {
        let request = Request::from_args(["MSET", "a", "1", "b", "2"]);
        let replaced =
            request.with_replaced(&[(3, Bytes::from_static(b"ns:b")), (1, Bytes::from_static(b"ns:a"))]);
        assert_eq!(replaced, Request::from_args(["MSET", "ns:a", "1", "ns:b", "2"]));
        assert_eq!(request.with_replaced(&[]), request);
        assert_eq!(
            request.with_prefixed(b"ns:", &[3, 1]),
            Request::from_args(["MSET", "ns:a", "1", "ns:b", "2"])
        );
        // Decoded requests, multibulk or inline, come out the same.
        for wire in [
            &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n"[..],
            b"SET k 0123456789\r\n",
        ] {
            let mut buffer = BytesMut::from(wire);
            let mut decoder = crate::RequestDecoder::new(crate::Limits::default());
            decoder.set_authenticated(true);
            let decoded = decoder.decode(&mut buffer).unwrap().unwrap();
            let prefixed = decoded.with_prefixed(b"shop:", &[1]);
            assert_eq!(prefixed, Request::from_args(["SET", "shop:k", "0123456789"]));
            assert_eq!(
                prefixed.args().iter().collect::<Vec<_>>(),
                [&b"SET"[..], b"shop:k", b"0123456789"]
            );
        }
    }
}
