//! [`Request`]: one client command, kept as the raw bytes it arrived in plus
//! a slice of those bytes for each argument.

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use crate::encode::encode_command;

/// A client command. `raw` is exactly what goes to a backend when the request
/// is passed through; `args` are zero-copy slices of it (argument 0 is the
/// command name, in the case the client sent it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    raw: Bytes,
    args: Args,
}

/// Argument slices, stored inline up to four (most commands), so that a
/// typical request costs no allocation of its own.
pub type Args = SmallVec<[Bytes; 4]>;

impl Request {
    /// Builds a request from raw multibulk bytes and the argument slices the
    /// decoder found in them. The caller guarantees that `args` are slices of
    /// `raw` in order; [`crate::RequestDecoder`] is the only intended caller.
    pub(crate) fn from_parts(raw: Bytes, args: Args) -> Self {
        Request { raw, args }
    }

    /// Builds a request from arguments, encoding it as a multibulk.
    pub fn from_args<I, A>(args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Bytes>,
    {
        let args: Args = args.into_iter().map(Into::into).collect();
        let mut raw = BytesMut::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        encode_command(&args, &mut raw);
        Request {
            raw: raw.freeze(),
            args,
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
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// Argument `i` (0 is the command name), if present.
    pub fn arg(&self, i: usize) -> Option<&Bytes> {
        self.args.get(i)
    }

    /// The command name as the client sent it (any case).
    pub fn name(&self) -> &[u8] {
        // A decoded request always has at least one argument.
        self.args.first().map(|a| &a[..]).unwrap_or_default()
    }

    /// True when argument 0 equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// True for a request with no arguments (never produced by the decoder).
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The raw bytes and the arguments.
    pub fn into_parts(self) -> (Bytes, Args) {
        (self.raw, self.args)
    }
}
