//! A session's buffers while nothing comes: the read buffer is allocated
//! only once the socket has data ([`poll_read`]), and both buffers are
//! given back when the client has been quiet for [`QUIET`] ([`Quiet`]), so
//! that an idle client holds none.
//!
//! Giving them back after every exchange would cost an allocation and a
//! free per read batch (measured: 51 instructions per request at pipeline
//! 16, docs/PERFORMANCE.md); the quiet timer costs a branch per read and
//! one timer reset per second of activity.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{Instant, Sleep};

/// Room made in the read buffer before a read when it has less than
/// [`READ_SPARE`]; it grows for large requests.
const READ_BUFFER: usize = 16 * 1024;
/// Less room than this left in the read buffer: more is made first.
const READ_SPARE: usize = 1024;
/// A buffer grown past this (a large request or reply) is given back as
/// soon as it is empty, not only when the client is quiet.
pub(super) const LARGE_BUFFER: usize = 64 * 1024;
/// How long a client sends nothing before its buffers are given back.
pub(super) const QUIET: Duration = Duration::from_secs(2);

/// Reads what the client sent into `input`, making room only once the
/// socket is readable. Ready with the bytes read (0: the client closed).
pub(super) fn poll_read(
    read: &OwnedReadHalf,
    input: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(read.as_ref().poll_read_ready(cx))?;
        if input.capacity() - input.len() < READ_SPARE {
            input.reserve(READ_BUFFER);
        }
        match read.try_read_buf(input) {
            // The readiness was stale; it is cleared, so the next poll
            // waits for the socket.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// Gives the read buffer back if it is empty and grew large.
pub(super) fn shrink_if_large(input: &mut BytesMut) {
    if input.is_empty() && input.capacity() > LARGE_BUFFER {
        *input = BytesMut::new();
    }
}

/// The timer that notices a quiet client. Armed at the first read after
/// it last fired; when it fires, it is set again from the last read if
/// the client sent something since, so an active client resets it about
/// once per [`QUIET`], not per request.
pub(super) struct Quiet {
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl Quiet {
    pub(super) fn new() -> Self {
        Quiet {
            timer: Box::pin(tokio::time::sleep_until(Instant::now() + QUIET)),
            armed: false,
        }
    }

    /// True while the timer runs.
    pub(super) fn is_armed(&self) -> bool {
        self.armed
    }

    /// After a read at `last_read`: starts the timer if it is not running.
    pub(super) fn read_at(&mut self, last_read: Instant) {
        if !self.armed {
            self.timer.as_mut().reset(last_read + QUIET);
            self.armed = true;
        }
    }

    /// Completes when the timer fires.
    pub(super) async fn fired(&mut self) {
        self.timer.as_mut().await;
    }

    /// The timer fired: true when the client has been quiet for [`QUIET`]
    /// since `last_read` and `idle` (nothing in flight, nothing buffered):
    /// the caller gives the buffers back, and the timer stops until the
    /// next read. Otherwise it is set again.
    pub(super) fn settle(&mut self, last_read: Instant, idle: bool) -> bool {
        let now = Instant::now();
        if last_read + QUIET > now {
            self.timer.as_mut().reset(last_read + QUIET);
            false
        } else if !idle {
            self.timer.as_mut().reset(now + QUIET);
            false
        } else {
            self.armed = false;
            true
        }
    }
}
