//! Regenerates `crates/router/data/command_info.resp`, the built-in command
//! table, from a real Valkey server's own `COMMAND INFO`.
//!
//! ```text
//! cargo run -p valkey-proxy-router --example generate_command_table
//! ```
//!
//! It starts a `valkey-server` (found as the tests find it), switches to
//! RESP3 so key specs and tips arrive as maps, and writes the raw reply. The
//! proxy parses the file at start-up with the same code that parses a live
//! server's reply, then merges in what the live backend reports.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::BytesMut;
use resp::{encode_command, Frame, ReplyDecoder};
use test_util::{Flavor, Server};

fn main() -> std::io::Result<()> {
    let server = Server::start(Flavor::Valkey);
    let mut stream = TcpStream::connect(server.addr())?;
    let mut out = BytesMut::new();
    encode_command(&["HELLO", "3"], &mut out);
    encode_command(&["COMMAND", "INFO"], &mut out);
    stream.write_all(&out)?;
    let mut decoder = ReplyDecoder::default();
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    while replies.len() < 2 {
        if let Some(reply) = decoder.decode(&mut buf).map_err(std::io::Error::other)? {
            replies.push(reply);
            continue;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let hello = Frame::parse_complete(&replies[0]).map_err(std::io::Error::other)?;
    let version = hello
        .into_pairs()
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k.as_bytes().is_some_and(|k| &k[..] == b"version"))
        })
        .and_then(|(_, v)| v.as_bytes().map(|v| String::from_utf8_lossy(v).into_owned()))
        .unwrap_or_default();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/command_info.resp");
    std::fs::write(path, &replies[1])?;
    let count = Frame::parse_complete(&replies[1])
        .ok()
        .and_then(|f| f.as_array().map(<[Frame]>::len));
    println!("wrote {path}: {count:?} commands from valkey-server {version}");
    Ok(())
}
