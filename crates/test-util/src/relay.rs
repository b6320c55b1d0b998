//! A fault relay: a TCP forwarder placed between the proxy and a node,
//! which can delay, stall, cut, or cut in the middle of a reply what
//! passes through it, on demand. For faults a real server cannot be made
//! to show (a partition between the proxy and one node only, a reply cut
//! half-way); the node behind it is real.
//!
//! To put a cluster node behind a relay, make the node announce the
//! relay's port (`CONFIG SET cluster-announce-port`): clients, the proxy
//! among them, then reach it through the relay, while the cluster bus
//! does not pass through it (the node stays healthy to its peers).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the relay does to the bytes passing through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Everything passes.
    Pass,
    /// Every chunk waits this long before it passes, both ways.
    Latency(Duration),
    /// Nothing passes either way, and new connections are accepted but
    /// not connected to the node (their handshake hangs), until the fault
    /// is lifted: what was sent meanwhile then passes, as TCP delivers
    /// after a partition heals.
    BlackHole,
    /// The next chunk from the node is cut in half: its first half passes,
    /// then the connection is closed both ways. The relay passes
    /// everything again afterwards.
    CutMidReply,
    /// The next chunk to the node that holds these bytes (a command's
    /// name) is dropped and the connection closed both ways: the proxy
    /// wrote the request, the node never ran it. Then everything passes.
    DropRequest(&'static [u8]),
    /// The next chunk to the node that holds these bytes passes, and the
    /// connection to the proxy is closed at once: the node runs the
    /// request, its reply is lost. Then everything passes.
    DropReplyTo(&'static [u8]),
}

/// A running relay to one node.
#[derive(Clone, Debug)]
pub struct Relay {
    addr: String,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    fault: Mutex<Fault>,
    /// A copy of each open client-side socket, to cut them all at once.
    open: Mutex<Vec<TcpStream>>,
}

/// How often a held chunk looks whether its fault was lifted.
const HOLD_POLL: Duration = Duration::from_millis(10);

impl Relay {
    /// Starts a relay to `target` on a free port, letting everything pass.
    ///
    /// # Panics
    /// No port could be bound.
    pub fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a relay");
        let addr = listener.local_addr().expect("local address").to_string();
        let state = Arc::new(State {
            fault: Mutex::new(Fault::Pass),
            open: Mutex::new(Vec::new()),
        });
        let relay = Relay {
            addr,
            state: state.clone(),
        };
        let target = target.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (state, target) = (state.clone(), target.clone());
                std::thread::spawn(move || connect(client, &target, &state));
            }
        });
        relay
    }

    /// `127.0.0.1:<port>` of the relay.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .expect("a port")
    }

    /// Applies `fault` from now on.
    pub fn set(&self, fault: Fault) {
        *lock(&self.state.fault) = fault;
    }

    /// Closes every connection open through the relay now (both ways), as
    /// a node's crash or a reset would; new ones are accepted as before.
    pub fn cut_all(&self) {
        for client in lock(&self.state.open).drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects an accepted client to the node (once no black hole holds new
/// connections) and pumps both ways.
fn connect(client: TcpStream, target: &str, state: &Arc<State>) {
    while *lock(&state.fault) == Fault::BlackHole {
        std::thread::sleep(HOLD_POLL);
    }
    let Ok(node) = TcpStream::connect(target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = node.set_nodelay(true);
    let _ = client.set_nodelay(true);
    if let Ok(copy) = client.try_clone() {
        lock(&state.open).push(copy);
    }
    let (Ok(client_reader), Ok(node_reader)) = (client.try_clone(), node.try_clone()) else {
        return;
    };
    let upstream_state = state.clone();
    let cut = Arc::new(AtomicBool::new(false));
    let upstream_cut = cut.clone();
    std::thread::spawn(move || pump(client_reader, node, &upstream_state, &upstream_cut, false));
    pump(node_reader, client, state, &cut, true);
}

fn holds(chunk: &[u8], bytes: &[u8]) -> bool {
    chunk.windows(bytes.len()).any(|window| window == bytes)
}

/// Copies `from` to `to` until either closes, applying the fault to each
/// chunk; `from_node` for the direction of replies. `cut` is shared by the
/// two directions of one connection: once set, no reply passes.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &State, cut: &AtomicBool, from_node: bool) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut.load(Ordering::SeqCst) {
            break;
        }
        let chunk = &buffer[..n];
        let fault = loop {
            let fault = *lock(&state.fault);
            if fault != Fault::BlackHole {
                break fault;
            }
            std::thread::sleep(HOLD_POLL);
        };
        let written = match fault {
            Fault::Latency(delay) => {
                std::thread::sleep(delay);
                to.write_all(chunk)
            }
            Fault::CutMidReply if from_node => {
                *lock(&state.fault) = Fault::Pass;
                let _ = to.write_all(&chunk[..n / 2]);
                break;
            }
            Fault::DropRequest(bytes) if !from_node && holds(chunk, bytes) => {
                *lock(&state.fault) = Fault::Pass;
                break;
            }
            Fault::DropReplyTo(bytes) if !from_node && holds(chunk, bytes) => {
                *lock(&state.fault) = Fault::Pass;
                cut.store(true, Ordering::SeqCst);
                let _ = to.write_all(chunk);
                // The proxy's side first, so no reply reaches it; the
                // node's side a moment later, once it has read the request.
                let _ = from.shutdown(Shutdown::Both);
                std::thread::sleep(Duration::from_millis(100));
                break;
            }
            _ => to.write_all(chunk),
        };
        if written.is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
