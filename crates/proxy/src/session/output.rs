//! The client's side of a session's writes: replies are queued and written
//! without waiting ([`ClientOutput::flush`]), so that a client that does
//! not read holds the session in no await. What stays unwritten is what
//! the client holds: counted against the output buffer limits (Valkey's
//! hard and soft limits) and, with a request not yet whole, against
//! `maxmemory_clients` ([`crate::memory`]).
//!
//! Small replies are copied into one buffer, so that a pipeline's replies
//! go out in few writes; a large reply as it came from the backend is
//! queued as it is, never copied: a 4 MiB value is held once, and a
//! client that reads nothing holds its replies, not a contiguous buffer
//! that doubles (and copies) as it grows. The buffer is allocated when
//! there is a reply to hold, and given back when it grew large or the
//! client went quiet ([`super::input`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::Instant;

use crate::context::{SessionState, Shared};
use crate::hooks::Gone;
use crate::memory::Held;

/// Room made for replies before the first is written into the buffer;
/// it grows for large ones.
const OUTPUT_BUFFER: usize = 16 * 1024;

/// A reply at least this large is queued as it came instead of copied:
/// above it, the copy costs more than the extra write.
const QUEUED_AS_IS: usize = 64 * 1024;

/// Most pieces handed to one vectored write.
const WRITE_PIECES: usize = 64;

/// What waits to be written to a client, and what it holds. The write
/// half of the connection stays the session's, so that waiting for it to
/// be writable and collecting replies can be polled together.
pub(super) struct ClientOutput {
    /// What waits, oldest first, before `buffer`: large replies as they
    /// came, and the buffer's earlier contents.
    queued: VecDeque<Bytes>,
    /// Bytes in `queued`.
    queued_len: usize,
    /// The newest small replies.
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
            queued: VecDeque::new(),
            queued_len: 0,
            buffer: BytesMut::new(),
            held: Held::default(),
            soft_since: None,
            // Registered once per client: counting is then one atomic add
            // per write (nothing without an exporter installed).
            net_out: metrics::counter!("redis_net_output_bytes_total"),
        }
    }

    /// The buffer to append small replies to (after everything queued),
    /// with room made when it has none.
    pub(super) fn buffer(&mut self) -> &mut BytesMut {
        if self.buffer.capacity() == 0 {
            self.buffer.reserve(OUTPUT_BUFFER);
        }
        &mut self.buffer
    }

    /// Adds a reply as the backend sent it: queued as it is when large,
    /// else copied into the buffer.
    pub(super) fn push(&mut self, raw: Bytes) {
        if raw.len() < QUEUED_AS_IS {
            self.buffer().extend_from_slice(&raw);
            return;
        }
        self.queue_buffer();
        self.queued_len += raw.len();
        self.queued.push_back(raw);
    }

    /// Moves what the buffer holds to the end of the queue.
    fn queue_buffer(&mut self) {
        if !self.buffer.is_empty() {
            let held = self.buffer.split().freeze();
            self.queued_len += held.len();
            self.queued.push_back(held);
        }
    }

    /// Bytes waiting to be written.
    pub(super) fn len(&self) -> usize {
        self.queued_len + self.buffer.len()
    }

    /// Frees the buffer (it is empty): a quiet client holds none.
    pub(super) fn give_back(&mut self) {
        self.buffer = BytesMut::new();
        self.queued = VecDeque::new();
    }

    /// True when everything was written.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
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
        while !self.is_empty() {
            let wrote = if self.queued.is_empty() {
                write.try_write(&self.buffer)
            } else {
                self.write_queued(write)
            };
            match wrote {
                Ok(0) => return Err(Gone::Client),
                Ok(bytes) => {
                    self.advance(bytes);
                    written += bytes;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Err(Gone::Client),
            }
        }
        self.net_out.increment(written as u64);
        if self.buffer.capacity() > super::input::LARGE_BUFFER && self.buffer.is_empty() {
            // Grown for large replies: given back at once.
            self.buffer = BytesMut::new();
        }
        self.account(input, shared, state)
    }

    /// One vectored write of the queue's first pieces, then the buffer.
    fn write_queued(&self, write: &OwnedWriteHalf) -> io::Result<usize> {
        let mut pieces: Vec<IoSlice<'_>> = self
            .queued
            .iter()
            .take(WRITE_PIECES)
            .map(|piece| IoSlice::new(piece))
            .collect();
        if pieces.len() < WRITE_PIECES && !self.buffer.is_empty() {
            pieces.push(IoSlice::new(&self.buffer));
        }
        write.try_write_vectored(&pieces)
    }

    /// Drops `bytes` written from the front: whole pieces first.
    fn advance(&mut self, mut bytes: usize) {
        while bytes > 0 {
            let Some(front) = self.queued.front_mut() else {
                self.buffer.advance(bytes);
                return;
            };
            let taken = bytes.min(front.len());
            front.advance(taken);
            self.queued_len -= taken;
            bytes -= taken;
            if front.is_empty() {
                self.queued.pop_front();
            }
        }
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
        let output = self.len();
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
                .evict_over(limits.memory_budget(), &shared.clients);
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
