//! Writing RESP: commands (always multibulk) and frames in the protocol the
//! client speaks. Encoding a RESP3 frame for a RESP2 client converts it the
//! way Valkey does for RESP2 connections: maps and sets become flat arrays,
//! doubles and big numbers become bulk strings, booleans become 1/0,
//! verbatim strings become bulk strings, bulk errors become simple errors.

use bytes::{BufMut, BytesMut};

use crate::Frame;

/// The protocol a connection speaks, chosen with `HELLO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// RESP2, the default for a new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The number `HELLO` uses for this protocol.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// Appends `args` to `dst` as a multibulk command.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], dst: &mut BytesMut) {
    put_header(dst, b'*', args.len() as i64);
    for arg in args {
        put_bulk(dst, arg.as_ref());
    }
}

/// Appends `$<len>\r\n<data>\r\n`.
pub fn put_bulk(dst: &mut BytesMut, data: &[u8]) {
    put_header(dst, b'$', data.len() as i64);
    dst.put_slice(data);
    dst.put_slice(b"\r\n");
}

/// Appends `<kind><n>\r\n`, the header of a bulk or aggregate or an integer.
pub fn put_header(dst: &mut BytesMut, kind: u8, n: i64) {
    dst.reserve(24);
    dst.put_u8(kind);
    put_decimal(dst, n);
    dst.put_slice(b"\r\n");
}

fn put_decimal(dst: &mut BytesMut, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        dst.put_u8(b'-');
    }
    dst.put_slice(&digits[i..]);
}

fn put_line(dst: &mut BytesMut, kind: u8, text: &[u8]) {
    dst.put_u8(kind);
    dst.put_slice(text);
    dst.put_slice(b"\r\n");
}

impl Frame {
    /// Appends this frame to `dst` as `protocol` expresses it.
    pub fn encode(&self, protocol: Protocol, dst: &mut BytesMut) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Frame::Simple(text) => put_line(dst, b'+', text),
            Frame::Error(text) => put_line(dst, b'-', text),
            Frame::Integer(n) => put_header(dst, b':', *n),
            Frame::Bulk(data) => put_bulk(dst, data),
            Frame::Null | Frame::NullArray if resp3 => dst.put_slice(b"_\r\n"),
            Frame::Null => dst.put_slice(b"$-1\r\n"),
            Frame::NullArray => dst.put_slice(b"*-1\r\n"),
            Frame::Array(items) => encode_items(dst, b'*', items, protocol),
            Frame::Set(items) => encode_items(dst, if resp3 { b'~' } else { b'*' }, items, protocol),
            Frame::Push(items) => encode_items(dst, if resp3 { b'>' } else { b'*' }, items, protocol),
            Frame::Map(pairs) => {
                if resp3 {
                    put_header(dst, b'%', pairs.len() as i64);
                } else {
                    put_header(dst, b'*', 2 * pairs.len() as i64);
                }
                for (key, value) in pairs {
                    key.encode(protocol, dst);
                    value.encode(protocol, dst);
                }
            }
            Frame::Double(text) if resp3 => put_line(dst, b',', text),
            Frame::BigNumber(text) if resp3 => put_line(dst, b'(', text),
            Frame::Double(text) | Frame::BigNumber(text) => put_bulk(dst, text),
            Frame::Boolean(b) if resp3 => dst.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => put_header(dst, b':', i64::from(*b)),
            Frame::Verbatim { format, text } if resp3 => {
                put_header(dst, b'=', (format.len() + 1 + text.len()) as i64);
                dst.put_slice(format);
                dst.put_u8(b':');
                dst.put_slice(text);
                dst.put_slice(b"\r\n");
            }
            Frame::Verbatim { text, .. } => put_bulk(dst, text),
            Frame::BulkError(text) if resp3 => {
                put_header(dst, b'!', text.len() as i64);
                dst.put_slice(text);
                dst.put_slice(b"\r\n");
            }
            Frame::BulkError(text) => {
                let flat: Vec<u8> = text
                    .iter()
                    .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                    .collect();
                put_line(dst, b'-', &flat);
            }
        }
    }

    /// This frame encoded as `protocol` expresses it.
    pub fn to_bytes(&self, protocol: Protocol) -> bytes::Bytes {
        let mut dst = BytesMut::new();
        self.encode(protocol, &mut dst);
        dst.freeze()
    }
}

fn encode_items(dst: &mut BytesMut, kind: u8, items: &[Frame], protocol: Protocol) {
    put_header(dst, kind, items.len() as i64);
    for item in items {
        item.encode(protocol, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn converts_resp3_for_resp2_clients() {
        let frame = Frame::Map(vec![(
            Frame::bulk("a"),
            Frame::Double(Bytes::from_static(b"1.5")),
        )]);
        assert_eq!(
            &frame.to_bytes(Protocol::Resp2)[..],
            b"*2\r\n$1\r\na\r\n$3\r\n1.5\r\n"
        );
        assert_eq!(&frame.to_bytes(Protocol::Resp3)[..], b"%1\r\n$1\r\na\r\n,1.5\r\n");
        assert_eq!(&Frame::Boolean(true).to_bytes(Protocol::Resp2)[..], b":1\r\n");
        assert_eq!(&Frame::Null.to_bytes(Protocol::Resp2)[..], b"$-1\r\n");
        assert_eq!(&Frame::NullArray.to_bytes(Protocol::Resp3)[..], b"_\r\n");
    }

    #[test]
    fn writes_commands() {
        let mut out = BytesMut::new();
        encode_command(&["SET", "k", "v"], &mut out);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
        let mut out = BytesMut::new();
        put_header(&mut out, b':', i64::MIN);
        assert_eq!(&out[..], b":-9223372036854775808\r\n");
    }
}
