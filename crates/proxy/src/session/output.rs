//! The client's side of a session's writes: replies go into a buffer that
//! is written without waiting ([`ClientOutput::flush`]), so that a client
//! that does not read holds the session in no await. What stays unwritten
//! is what the client holds: counted against the output buffer limits
//! (Valkey's hard and soft limits) and, with a request not yet whole,
//! against `maxmemory_clients` ([`crate::memory`]).
//!
//! The buffer is allocated when there is a reply to hold, and given back
//! when it grew large or the client went quiet ([`super::input`]).

use std::io;

use bytes::{Buf, BytesMut};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::Instant;

use crate::context::{SessionState, Shared};
use crate::hooks::Gone;
use crate::memory::Held;

/// Room made for replies before the first is written into the buffer;
/// it grows for large ones.
const OUTPUT_BUFFER: usize = 16 * 1024;

/// What waits to be written to a client, and what it holds. The write
/// half of the connection stays the session's, so that waiting for it to
/// be writable and collecting replies can be polled together.
pub(super) struct ClientOutput {
    buffer: BytesMut,
    /// What was last reported as held, read buffer included.
    held: Held,
    /// Since when the unwritten replies are over the soft limit.
    soft_since: Option<Instant>,
    net_out: metrics::Counter,
}

impl ClientOutput {
    pub(super) fn new() -> Self {
        ClientOutput {
            buffer: BytesMut::new(),
            held: Held::default(),
            soft_since: None,
            // Registered once per client: counting is then one atomic add
            // per write (nothing without an exporter installed).
            net_out: metrics::counter!("redis_net_output_bytes_total"),
        }
    }

    /// The buffer to append replies to, with room made when it has none.
    pub(super) fn buffer(&mut self) -> &mut BytesMut {
        if self.buffer.capacity() == 0 {
            self.buffer.reserve(OUTPUT_BUFFER);
        }
        &mut self.buffer
    }

    /// Frees the buffer (it is empty): a quiet client holds none.
    pub(super) fn give_back(&mut self) {
        self.buffer = BytesMut::new();
    }

    /// True when everything was written.
    pub(super) fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// When the unwritten replies will have been over the soft limit for
    /// too long, if they are over it.
    pub(super) fn soft_deadline(&self, shared: &Shared) -> Option<Instant> {
        let since = self.soft_since?;
        Some(since + shared.turn_limits.output_soft().1)
    }

    /// Writes what `write` takes now, without waiting, then accounts for
    /// what is left ([`ClientOutput::account`]).
    ///
    /// # Errors
    /// Why the session ends: the connection broke, or a limit was passed.
    pub(super) fn flush(
        &mut self,
        write: &OwnedWriteHalf,
        input: &BytesMut,
        shared: &Shared,
        state: &SessionState,
    ) -> Result<(), Gone> {
        let mut written = 0;
        while !self.buffer.is_empty() {
            match write.try_write(&self.buffer) {
                Ok(0) => return Err(Gone::Client),
                Ok(bytes) => {
                    self.buffer.advance(bytes);
                    written += bytes;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Err(Gone::Client),
            }
        }
        self.net_out.increment(written as u64);
        if self.buffer.capacity() > super::input::LARGE_BUFFER && self.buffer.is_empty() {
            // Grown for large replies: given back at once.
            self.give_back();
        }
        self.account(input, shared, state)
    }

    /// Reports what the session holds (unwritten replies, `input` not yet
    /// a whole request) and checks it: over the hard limit, or over the
    /// soft limit for longer than allowed, the client is closed; when the
    /// clients' total grew past `maxmemory_clients`, the client holding
    /// the most is evicted (maybe this one: its session then ends as
    /// killed, and says evicted).
    ///
    /// # Errors
    /// [`Gone::OutputBuffer`] when this client passed its limit.
    pub(super) fn account(
        &mut self,
        input: &BytesMut,
        shared: &Shared,
        state: &SessionState,
    ) -> Result<(), Gone> {
        let output = self.buffer.len();
        let grew = self.held.report(
            &state.info,
            &shared.client_memory,
            input.len(),
            input.capacity(),
            output,
        );
        if output == 0 {
            self.soft_since = None;
            return Ok(());
        }
        let limits = &shared.turn_limits;
        let hard = limits.output_buffer();
        if hard > 0 && output > hard {
            return Err(closing(state, output, hard, "hard"));
        }
        let (soft, seconds) = limits.output_soft();
        if soft > 0 && output > soft {
            let since = *self.soft_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= seconds {
                return Err(closing(state, output, soft, "soft"));
            }
        } else {
            self.soft_since = None;
        }
        if grew {
            shared
                .client_memory
                .evict_over(limits.maxmemory_clients(), &shared.clients);
        }
        Ok(())
    }

    /// Gives back what the session held, when it ends.
    pub(super) fn release(&mut self, shared: &Shared) {
        self.held.release(&shared.client_memory);
    }
}

/// Logs why a client over an output buffer limit is closed.
fn closing(state: &SessionState, output: usize, limit: usize, which: &str) -> Gone {
    tracing::info!(
        client = state.info.id,
        addr = %state.info.addr,
        bytes = output,
        limit,
        "closing a client over the {which} output buffer limit"
    );
    Gone::OutputBuffer
}
