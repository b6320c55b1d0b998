//! Text replies: verbatim strings for RESP3 clients, bulk strings for RESP2
//! (the encoder converts), as Valkey does for INFO and CLIENT LIST.

use bytes::Bytes;
use resp::Frame;

/// A text reply.
pub fn verbatim(text: String) -> Frame {
    Frame::Verbatim {
        format: Bytes::from_static(b"txt"),
        text: Bytes::from(text),
    }
}

/// An argument as text.
pub fn arg(request: &resp::Request, i: usize) -> String {
    request
        .arg(i)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default()
}

/// A HELP reply: an array of simple strings.
pub fn help(lines: &[&'static str]) -> Frame {
    Frame::Array(lines.iter().map(|l| Frame::simple(l)).collect())
}
