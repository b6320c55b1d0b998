//! `WAIT numreplicas timeout` and `WAITAOF numlocal numreplicas timeout`,
//! answered for the client's own writes.
//!
//! A node counts the acknowledgements of the last write of the connection
//! WAIT (or WAITAOF) arrives on. The client's writes reach each primary on
//! the shared connection of its affinity, among other clients' writes; sent
//! down the stack like other blocking commands, WAIT would run on a
//! dedicated connection that wrote nothing, and answer at once with every
//! replica. So the proxy asks each primary, on the client's own shared
//! connection and after the client's earlier requests have answered,
//! `WAIT 0 0` (`WAITAOF 0 0 0`): how many replicas acknowledged that
//! connection's last write (the client's, or a later one of another
//! client), and for WAITAOF whether the primary has it on disk, without
//! blocking the connection. While too few have, it makes the primaries
//! collect acknowledgements at once (a blocking WAIT that cannot be
//! satisfied, for a few milliseconds, on a dedicated connection: a primary
//! asks its replicas to acknowledge when a WAIT blocks) and asks again,
//! until enough have or the timeout passes. Each count of the answer is
//! the fewest over the primaries, as the commands' reply policy
//! (`agg_min`) says.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::{join_all, try_join_all};
use pool::{Endpoint, Pool};
use resp::number::parse_i64;
use resp::{encode_command, Frame, Request};
use router::Reply;
use tokio::time::Instant;

use super::Local;
use crate::context::{SessionState, Shared};
use crate::edge::wrong_arity;

/// How many replicas acknowledged the connection's last write, at once.
const WAIT_PROBE: &[u8] = b"*3\r\n$4\r\nWAIT\r\n$1\r\n0\r\n$1\r\n0\r\n";
/// Whether the primary, and how many replicas, have the connection's last
/// write on disk, at once.
const WAITAOF_PROBE: &[u8] = b"*4\r\n$7\r\nWAITAOF\r\n$1\r\n0\r\n$1\r\n0\r\n$1\r\n0\r\n";
/// `WAITAOF 1 0 1`: refused at once where appendonly is off, which the
/// probe cannot show.
const WAITAOF_LOCAL_CHECK: &[u8] = b"*4\r\n$7\r\nWAITAOF\r\n$1\r\n1\r\n$1\r\n0\r\n$1\r\n1\r\n";
/// The first pause while too few acknowledged; it doubles up to
/// [`LONGEST_NUDGE`].
const FIRST_NUDGE: Duration = Duration::from_millis(1);
const LONGEST_NUDGE: Duration = Duration::from_millis(64);

/// What the client waits for, and how its answer is shaped.
#[derive(Clone, Copy, Debug)]
enum Wanted {
    /// WAIT: this many replicas.
    Replicas(i64),
    /// WAITAOF: the primary's own fsync (0 or 1), and this many replicas'.
    Aof { local: i64, replicas: i64 },
}

impl Wanted {
    fn probe(self) -> Bytes {
        Bytes::from_static(match self {
            Wanted::Replicas(_) => WAIT_PROBE,
            Wanted::Aof { .. } => WAITAOF_PROBE,
        })
    }

    /// The counts the answer holds, in its order.
    fn counts(self) -> Vec<i64> {
        match self {
            Wanted::Replicas(replicas) => vec![replicas],
            Wanted::Aof { local, replicas } => vec![local, replicas],
        }
    }

    fn answer(self, counts: Vec<i64>) -> Frame {
        match self {
            Wanted::Replicas(_) => Frame::Integer(counts.first().copied().unwrap_or(0)),
            Wanted::Aof { .. } => Frame::Array(counts.into_iter().map(Frame::Integer).collect()),
        }
    }
}

/// `WAIT numreplicas timeout`, with Valkey's argument errors.
pub fn wait(request: &Request, state: &SessionState, shared: &Shared) -> Local {
    if request.len() != 3 {
        return Local::Reply(wrong_arity("wait"));
    }
    let Some(replicas) = request.arg(1).and_then(parse_i64) else {
        return Local::Reply(Frame::error("ERR value is not an integer or out of range"));
    };
    match timeout(request.arg(2)) {
        Ok(timeout) => start(Wanted::Replicas(replicas), timeout, state, shared),
        Err(error) => Local::Reply(error),
    }
}

/// `WAITAOF numlocal numreplicas timeout`, with Valkey's argument errors.
pub fn waitaof(request: &Request, state: &SessionState, shared: &Shared) -> Local {
    if request.len() != 4 {
        return Local::Reply(wrong_arity("waitaof"));
    }
    let local = match request.arg(1).and_then(parse_i64) {
        None => return Local::Reply(Frame::error("ERR value is not an integer or out of range")),
        Some(local @ 0..=1) => local,
        Some(_) => {
            return Local::Reply(Frame::error(
                "ERR value is out of range, value must between 0 and 1",
            ))
        }
    };
    let Some(replicas) = request.arg(2).and_then(parse_i64).filter(|n| *n >= 0) else {
        return Local::Reply(Frame::error("ERR value is out of range, must be positive"));
    };
    match timeout(request.arg(3)) {
        Ok(timeout) => start(Wanted::Aof { local, replicas }, timeout, state, shared),
        Err(error) => Local::Reply(error),
    }
}

/// A timeout argument in milliseconds; `None` for 0 (no limit).
fn timeout(arg: Option<&[u8]>) -> Result<Option<Duration>, Frame> {
    match arg.and_then(parse_i64) {
        None => Err(Frame::error("ERR timeout is not an integer or out of range")),
        Some(ms) if ms < 0 => Err(Frame::error("ERR timeout is negative")),
        Some(0) => Ok(None),
        Some(ms) => Ok(Some(Duration::from_millis(ms.unsigned_abs()))),
    }
}

/// Waits for `wanted` on every primary, on the client's connections.
fn start(wanted: Wanted, timeout: Option<Duration>, state: &SessionState, shared: &Shared) -> Local {
    let router = &shared.stack_of(state.group).router;
    let topology = router.topology().current();
    // The endpoints the client's writes use: in its protocol and database.
    let primaries: Vec<Endpoint> = topology
        .shards()
        .iter()
        .map(|shard| crate::door::endpoint(&shard.primary, state, shared))
        .collect();
    let pool = router.pool().clone();
    let affinity = state.affinity;
    Local::Later(Box::pin(async move {
        if primaries.is_empty() {
            // Not discovered yet: nothing to count on, and nothing to wait
            // for between two probes.
            return Err(router::Error::NoBackend);
        }
        if let Wanted::Aof { local: 1, .. } = wanted {
            if let Some(refusal) = refused_locally(&pool, &primaries).await {
                return Ok(Reply::Raw(refusal));
            }
        }
        let outcome = acknowledged_by(&pool, &primaries, affinity, wanted, timeout).await?;
        Ok(match outcome {
            Ok(counts) => Reply::Frame(wanted.answer(counts)),
            Err(refusal) => Reply::Raw(refusal),
        })
    }))
}

/// A primary's refusal of `WAITAOF 1 ...` (appendonly is off), asked on a
/// dedicated connection.
async fn refused_locally(pool: &Pool, primaries: &[Endpoint]) -> Option<Bytes> {
    for primary in primaries {
        let connection = pool.dedicated(primary);
        let reply = connection
            .call(Bytes::from_static(WAITAOF_LOCAL_CHECK))
            .await
            .ok()?;
        connection.release();
        if reply.first() == Some(&b'-') {
            return Some(reply);
        }
    }
    None
}

/// The acknowledgements of the last write of `affinity`'s shared
/// connections, each count the fewest over `primaries`, once they reach
/// `wanted` or `timeout` (none: no limit) passed; or the first error a
/// primary answers (an ACL that forbids WAIT, say), as it answered it.
async fn acknowledged_by(
    pool: &Pool,
    primaries: &[Endpoint],
    affinity: u64,
    wanted: Wanted,
    timeout: Option<Duration>,
) -> Result<Result<Vec<i64>, Bytes>, router::Error> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let wanted_counts = wanted.counts();
    let len = wanted_counts.len();
    let mut nudge = FIRST_NUDGE;
    loop {
        let probes = primaries.iter().map(|primary| async move {
            let reply = pool.shared_for(primary, affinity)?.call(wanted.probe()).await?;
            Ok::<_, router::Error>(counts_in(&reply, len).ok_or(reply))
        });
        let answers: Result<Vec<Vec<i64>>, Bytes> = try_join_all(probes).await?.into_iter().collect();
        let fewest = match answers {
            Ok(answers) => fewest_of(&answers, len),
            Err(refusal) => return Ok(Err(refusal)),
        };
        let now = Instant::now();
        let enough = fewest
            .iter()
            .zip(&wanted_counts)
            .all(|(got, wanted)| got >= wanted);
        if enough || deadline.is_some_and(|deadline| now >= deadline) {
            return Ok(Ok(fewest));
        }
        let pause = deadline.map_or(nudge, |deadline| nudge.min(deadline - now));
        join_all(primaries.iter().map(|primary| collect_acks(pool, primary, pause))).await;
        nudge = (nudge * 2).min(LONGEST_NUDGE);
    }
}

/// Makes `primary` ask its replicas for acknowledgements now: a WAIT for
/// more replicas than any primary has blocks for `pause`, on a dedicated
/// connection, and a blocked WAIT makes the primary ask.
async fn collect_acks(pool: &Pool, primary: &Endpoint, pause: Duration) {
    let millis = pause.as_millis().max(1).to_string();
    let mut command = BytesMut::new();
    encode_command(&[&b"WAIT"[..], b"1000000", millis.as_bytes()], &mut command);
    let connection = pool.dedicated(primary);
    if connection.call(command.freeze()).await.is_ok() {
        connection.release();
    }
}

/// The `len` integers of a probe's reply (one integer, or an array of
/// them); `None` for anything else (an error).
fn counts_in(reply: &Bytes, len: usize) -> Option<Vec<i64>> {
    let counts = match Frame::parse_complete(reply).ok()? {
        Frame::Integer(n) => vec![n],
        Frame::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Frame::Integer(n) => Some(n),
                _ => None,
            })
            .collect::<Option<Vec<i64>>>()?,
        _ => return None,
    };
    (counts.len() == len).then_some(counts)
}

/// Each count's lowest value over the answers (0 without any answer).
fn fewest_of(answers: &[Vec<i64>], len: usize) -> Vec<i64> {
    (0..len)
        .map(|i| answers.iter().map(|counts| counts[i]).min().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_replies_are_read_as_counts() {
        let reply = |text: &'static [u8]| Bytes::from_static(text);
        assert_eq!(counts_in(&reply(b":2\r\n"), 1), Some(vec![2]));
        assert_eq!(counts_in(&reply(b"*2\r\n:1\r\n:0\r\n"), 2), Some(vec![1, 0]));
        assert_eq!(counts_in(&reply(b"-NOPERM no\r\n"), 1), None);
        assert_eq!(
            counts_in(&reply(b"*1\r\n:1\r\n"), 2),
            None,
            "WAITAOF answers two counts"
        );
    }

    #[test]
    fn each_count_is_the_fewest_over_the_primaries() {
        assert_eq!(fewest_of(&[vec![1, 2], vec![0, 3]], 2), vec![0, 2]);
        assert_eq!(fewest_of(&[], 1), vec![0]);
    }
}
