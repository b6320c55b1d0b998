//! One client's blocking command waiting on several nodes at once (a pop
//! or a stream read whose keys span slots), until the first answer; then
//! the others are told to stop (CLIENT UNBLOCK).

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use pool::Pool;
use resp::Frame;
use router::Error;

/// How long the nodes get to answer a CLIENT UNBLOCK before the proxy asks
/// again: a command that had not reached its node when the proxy first
/// asked is blocked by the time it asks again.
const UNBLOCK_RETRY: Duration = Duration::from_millis(20);

/// How long the other nodes get, in all, to stop waiting once one has
/// answered; the client has its answer only then.
const STOP_LIMIT: Duration = Duration::from_secs(2);

/// How long unblocking waits for a dedicated connection's id on its node.
const BACKEND_ID_WAIT: Duration = Duration::from_secs(1);

/// What a command that may wait on several nodes needs besides its steps.
#[derive(Debug)]
pub struct Waiting {
    /// The pool, which registers the client's blocked connections.
    pub pool: Pool,
    /// The client's affinity, under which they are registered
    /// ([`Pool::blocked`]).
    pub owner: u64,
    /// The command's arguments, the name first.
    pub args: Vec<Bytes>,
}

/// Blocking requests of one client, started on several nodes.
pub(crate) struct Waits<F> {
    waiting: FuturesUnordered<F>,
    pool: Pool,
    owner: u64,
}

/// How the waits ended.
pub(crate) enum First {
    /// A node answered with something (or failed).
    Answer(Result<Frame, Error>),
    /// Every node's timeout passed: the nil they answered.
    TimedOut(Frame),
}

impl<F> Waits<F>
where
    F: Future<Output = Result<Frame, Error>>,
{
    /// Waits for `started`, the requests of the client whose dedicated
    /// connections the pool registers under `owner` ([`Pool::blocked`]).
    pub(crate) fn new(started: impl IntoIterator<Item = F>, pool: Pool, owner: u64) -> Self {
        Waits {
            waiting: started.into_iter().collect(),
            pool,
            owner,
        }
    }

    /// The first answer that is not a timeout's nil.
    pub(crate) async fn first(&mut self) -> First {
        let mut timed_out = Frame::NullArray;
        loop {
            match self.waiting.next().await {
                None => return First::TimedOut(timed_out),
                Some(Ok(nil @ (Frame::Null | Frame::NullArray))) => timed_out = nil,
                Some(answer) => return First::Answer(answer),
            }
        }
    }

    /// Unblocks the requests still waiting, and returns what those that
    /// answered meanwhile answered with (not a nil): for a pop, elements
    /// to put back. A node that does not answer within [`STOP_LIMIT`] is
    /// left: its request is dropped, which closes its connection, and the
    /// node stops waiting when it sees the close.
    pub(crate) async fn stop(mut self) -> Vec<Frame> {
        let mut late = Vec::new();
        let deadline = tokio::time::Instant::now() + STOP_LIMIT;
        while !self.waiting.is_empty() {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    waiting = self.waiting.len(),
                    "nodes did not stop a blocked request in time; closing its connections"
                );
                break;
            }
            // Blocking commands run alone, so every connection the client
            // still has registered is one of these.
            for connection in self.pool.blocked(self.owner) {
                let unblock = self.pool.unblock(&connection, "TIMEOUT", BACKEND_ID_WAIT);
                let _ = tokio::time::timeout_at(deadline, unblock).await;
            }
            let retry = tokio::time::sleep(UNBLOCK_RETRY);
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    reply = self.waiting.next() => match reply {
                        Some(Ok(frame)) if !is_nil_or_error(&frame) => late.push(frame),
                        Some(_) => {}
                        None => break,
                    },
                    () = &mut retry => break,
                }
            }
        }
        late
    }
}

fn is_nil_or_error(frame: &Frame) -> bool {
    matches!(frame, Frame::Null | Frame::NullArray) || frame.is_error()
}

/// Checks a timeout in seconds (the blocking pops) as Valkey does before
/// it looks at any key, with its error replies.
pub(crate) fn check_seconds(timeout: &[u8]) -> Result<(), Frame> {
    let seconds = std::str::from_utf8(timeout)
        .ok()
        .filter(|t| !t.starts_with(char::is_whitespace))
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|s| !s.is_nan())
        .ok_or_else(|| Frame::error("ERR timeout is not a float or out of range"))?;
    let millis = (seconds * 1000.0).ceil();
    if millis > i64::MAX as f64 {
        return Err(Frame::error("ERR timeout is out of range"));
    }
    // Valkey rounds up, so a tiny negative timeout is 0 (no timeout).
    check_millis_value(millis as i64)
}

/// Checks a timeout in milliseconds (XREAD's BLOCK) as Valkey does, with
/// its error replies.
pub(crate) fn check_millis(timeout: &[u8]) -> Result<(), Frame> {
    let millis = resp::number::parse_i64(timeout)
        .ok_or_else(|| Frame::error("ERR timeout is not an integer or out of range"))?;
    check_millis_value(millis)
}

fn check_millis_value(millis: i64) -> Result<(), Frame> {
    if millis < 0 {
        return Err(Frame::error("ERR timeout is negative"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if millis > 0 && millis > i64::MAX - now {
        return Err(Frame::error("ERR timeout is out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_checked_as_valkey_does() {
        assert!(check_seconds(b"0").is_ok());
        assert!(check_seconds(b"0.5").is_ok());
        assert!(
            check_seconds(b"-0.0001").is_ok(),
            "rounds to 0 ms, as Valkey's ceil does"
        );
        let error = |t: &[u8]| check_seconds(t).unwrap_err();
        assert_eq!(error(b"-1"), Frame::error("ERR timeout is negative"));
        assert_eq!(
            error(b"x"),
            Frame::error("ERR timeout is not a float or out of range")
        );
        assert_eq!(
            error(b"nan"),
            Frame::error("ERR timeout is not a float or out of range")
        );
        assert_eq!(
            error(b" 1"),
            Frame::error("ERR timeout is not a float or out of range")
        );
        assert_eq!(error(b"1e300"), Frame::error("ERR timeout is out of range"));
    }

    #[test]
    fn millisecond_timeouts_too() {
        assert!(check_millis(b"0").is_ok());
        assert!(check_millis(b"100").is_ok());
        let error = |t: &[u8]| check_millis(t).unwrap_err();
        assert_eq!(error(b"-1"), Frame::error("ERR timeout is negative"));
        assert_eq!(
            error(b"1.5"),
            Frame::error("ERR timeout is not an integer or out of range")
        );
        assert_eq!(
            error(b"9223372036854775807"),
            Frame::error("ERR timeout is out of range")
        );
    }
}
