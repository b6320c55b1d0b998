//! Free ports. A port is free when we could bind it a moment ago; a server
//! that then fails to bind is restarted on another one by [`crate::Server`].
//! Ports come from a process-wide counter offset by the process id, so
//! parallel tests in one process and in several processes rarely collide.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};

/// Cluster bus ports are chosen explicitly (`cluster-port`), so both ports
/// of a node come from this range and never depend on `port + 10000`. It
/// ends below Linux's ephemeral ports (32768 and up), which the tests'
/// own client connections take: one could take a port between the check
/// and the server's bind.
const FIRST: u16 = 20_000;
const SPAN: u16 = 12_768;

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let offset = (std::process::id() % u32::from(SPAN)) as u16;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (offset.wrapping_add(n.wrapping_mul(7))) % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
