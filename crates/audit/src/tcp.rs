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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn a_collector_that_comes_back_gets_the_records_that_waited() {
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut sink = TcpSink::new(&addr.to_string());
        let lines = vec![b"{\"seq\":1}\n".to_vec(), b"{\"seq\":2}\n".to_vec()];
        // Nobody listens: the writer keeps the lines and tries again.
        assert!(sink.write(&lines).is_err());
        let listener = TcpListener::bind(addr).unwrap();
        sink.write(&lines).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = vec![0u8; 20];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(got, b"{\"seq\":1}\n{\"seq\":2}\n");
    }
}
