//! [`TcpSink`]: JSON lines to a collector over TCP (Vector, Fluent Bit),
//! connecting again with backoff when it goes away.

use std::io::{self, Write};
use std::net::TcpStream;

use crate::writer::Sink;

/// A TCP sink.
#[derive(Debug)]
pub struct TcpSink {
    addr: String,
    stream: Option<TcpStream>,
}

impl TcpSink {
    /// A sink for the collector at `addr`; it connects when it first
    /// writes.
    pub fn new(addr: &str) -> TcpSink {
        TcpSink {
            addr: addr.to_string(),
            stream: None,
        }
    }
}

impl Sink for TcpSink {
    fn write(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        let stream = match self.stream.as_mut() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.addr)?;
                stream.set_nodelay(true)?;
                self.stream.insert(stream)
            }
        };
        let mut batch = Vec::with_capacity(lines.iter().map(Vec::len).sum());
        for line in lines {
            batch.extend_from_slice(line);
        }
        let written = stream.write_all(&batch);
        if written.is_err() {
            // Part of the batch may have reached the collector: it is sent
            // again whole on a new connection, so a collector may see a
            // record twice (same seq), never lose one.
            self.stream = None;
        }
        written
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.addr)
    }
}
