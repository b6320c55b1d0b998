//! The watchdog of one shared connection: the request timeout, and the
//! quiet close of a retired connection.
//!
//! One timer per connection, not one per request: every tick (a quarter
//! of the timeout, between 10 and 250 ms) it looks whether the connection
//! owes replies and whether any byte came from the node since the last
//! tick. A node that owes replies and sends nothing for the request
//! timeout is declared silent: the connection closes, the requests it
//! carried fail with [`crate::Error::Timeout`] (they may have run: the
//! router retries only reads), and those still queued fail as never sent.
//! So a silent node (stopped, partitioned, stuck) costs its clients at
//! most the timeout plus a tick, never for as long as it stays silent.
//!
//! A connection whose node left the topology is *retired*
//! ([`crate::Connection::retire`]): it takes no new requests, and the
//! watchdog closes it once every reply it owes is in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The tick when no timeout applies (a retired connection is still
/// looked at this often).
const IDLE_TICK: Duration = Duration::from_millis(250);
/// The shortest tick.
const MIN_TICK: Duration = Duration::from_millis(10);

/// The request timeout of every shared connection of a pool, changed live
/// ([`crate::Pool::set_request_timeout`]): milliseconds, 0 for none.
#[derive(Debug, Default)]
pub struct RequestTimeout(AtomicU64);

impl RequestTimeout {
    /// A setting of `limit` (`None`: no timeout).
    pub fn new(limit: Option<Duration>) -> RequestTimeout {
        let timeout = RequestTimeout::default();
        timeout.set(limit);
        timeout
    }

    /// Sets the limit (`None`: no timeout). A zero duration counts as one
    /// millisecond, not as none.
    pub fn set(&self, limit: Option<Duration>) {
        let millis = limit.map_or(0, |limit| {
            u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.0.store(millis, Ordering::Relaxed);
    }

    /// The limit now.
    pub fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(Duration::from_millis(millis)),
        }
    }
}

/// What the watchdog reads of its connection.
pub(crate) trait Watched {
    /// The timeout that applies to this connection now (`None` for a
    /// dedicated or stream connection, or when none is set).
    fn limit(&self) -> Option<Duration>;
    /// Reads from the node so far (any bytes).
    fn progress(&self) -> u64;
    /// True while requests are written or queued and not answered.
    fn owes_replies(&self) -> bool;
    /// True once the connection was retired.
    fn retired(&self) -> bool;
}

/// Why the watchdog closed its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Replies were owed and nothing came for this long.
    Silent(Duration),
    /// Retired, and nothing was owed any more.
    Retired,
}

/// Watches `connection` until it must close, and says why.
pub(crate) async fn watch(connection: &impl Watched) -> Verdict {
    let mut last_progress = connection.progress();
    let mut silent_since: Option<Instant> = None;
    loop {
        let limit = connection.limit();
        let tick = limit.map_or(IDLE_TICK, |limit| (limit / 4).clamp(MIN_TICK, IDLE_TICK));
        tokio::time::sleep(tick).await;
        let owes = connection.owes_replies();
        if !owes && connection.retired() {
            return Verdict::Retired;
        }
        let progress = connection.progress();
        if !owes || progress != last_progress {
            last_progress = progress;
            silent_since = None;
            continue;
        }
        let since = *silent_since.get_or_insert_with(Instant::now);
        if let Some(limit) = limit {
            // Counted from the first tick that saw the silence: the
            // request may have gone out up to a tick earlier.
            if since.elapsed() + tick >= limit {
                return Verdict::Silent(limit);
            }
        }
    }
}
