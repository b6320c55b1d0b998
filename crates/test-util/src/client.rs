//! A tiny blocking client for setting servers up (CLUSTER MEET, REPLICAOF,
//! CONFIG SET). Tests talk to the proxy through real client libraries; this
//! is only for the harness.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use resp::{encode_command, Frame, ReplyDecoder};

/// Sends one command to `addr` and returns its reply.
///
/// # Errors
/// The connection failed or the reply was not RESP.
pub fn command<A: AsRef<[u8]>>(addr: &str, args: &[A]) -> std::io::Result<Frame> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = BytesMut::new();
    encode_command(args, &mut out);
    stream.write_all(&out)?;
    let mut decoder = ReplyDecoder::default();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some(raw) = decoder.decode(&mut buf).map_err(std::io::Error::other)? {
            return Frame::parse_complete(&raw).map_err(std::io::Error::other);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Like [`command`], but returns a string-like reply as text and panics on
/// anything else: for setup steps that must succeed.
///
/// # Panics
/// The command failed.
pub fn must(addr: &str, args: &[&str]) -> String {
    match command(addr, args) {
        Ok(Frame::Error(e)) => panic!("{args:?} on {addr}: {}", String::from_utf8_lossy(&e)),
        Ok(frame) => match frame.as_bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => format!("{frame:?}"),
        },
        Err(e) => panic!("{args:?} on {addr}: {e}"),
    }
}
