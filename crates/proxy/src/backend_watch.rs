//! Following a backend's topology for its pool: connections to nodes that
//! left are retired, and the request timeout follows the cluster's node
//! timeout unless the configuration sets one.
//!
//! The request timeout is what keeps a silent node (stopped, partitioned,
//! stuck) from holding its clients for as long as it stays silent, and it
//! must fire before the cluster replaces the node: a write held by a
//! frozen primary that resumes after a replica took over is acknowledged
//! by it and then discarded when it rejoins as a replica. Answered with a
//! timeout error instead, the write is not acknowledged (and never retried
//! blindly: the router retries reads only). So by default it is half of
//! `cluster-node-timeout`, as the cluster reports it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pool::Pool;
use router::Router;
use topology::Topology;

/// The request timeout when the backend does not say (not a cluster, or
/// one whose CONFIG is refused): below the default `cluster-node-timeout`
/// (15 s), above any sane command's run time.
pub const FALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest automatic timeout, for clusters with a tiny node timeout.
const SHORTEST_AUTOMATIC: Duration = Duration::from_millis(250);

/// `request_timeout_ms` as configured, changed by a reload: automatic,
/// none, or a fixed number of milliseconds.
#[derive(Debug)]
pub struct TimeoutSetting(AtomicU64);

/// [`TimeoutSetting`]'s value for "automatic".
const AUTOMATIC: u64 = u64::MAX;

impl TimeoutSetting {
    /// The setting of `request_timeout_ms` (`None`: automatic; 0: none).
    pub fn new(configured: Option<u64>) -> TimeoutSetting {
        TimeoutSetting(AtomicU64::new(configured.unwrap_or(AUTOMATIC)))
    }

    /// Changes the setting (a reload).
    pub fn set(&self, configured: Option<u64>) {
        self.0.store(configured.unwrap_or(AUTOMATIC), Ordering::Relaxed);
    }

    /// The timeout for a backend whose topology is `topology`.
    pub fn for_backend(&self, topology: &Topology) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            AUTOMATIC => Some(automatic(topology)),
            millis => Some(Duration::from_millis(millis)),
        }
    }
}

/// Half the cluster's node timeout, or [`FALLBACK_TIMEOUT`].
pub fn automatic(topology: &Topology) -> Duration {
    match topology.node_timeout() {
        Some(node_timeout) => (node_timeout / 2).max(SHORTEST_AUTOMATIC),
        None => FALLBACK_TIMEOUT,
    }
}

/// Applies `setting` to `router`'s pool for the current topology.
pub fn apply(router: &Router, setting: &TimeoutSetting) {
    apply_to(router.pool(), setting, &router.topology().current());
}

fn apply_to(pool: &Pool, setting: &TimeoutSetting, topology: &Topology) {
    let limit = setting.for_backend(topology);
    if pool.request_timeout() != limit {
        tracing::info!(timeout = ?limit, "backend request timeout");
        pool.set_request_timeout(limit);
    }
}

/// Starts the task that follows `router`'s topology: after every change,
/// the request timeout is applied again and the connections to nodes that
/// were in the last topology and are not in the new one are retired (they
/// close once they owe nothing). It ends with the topology handle.
pub fn spawn(router: Router, setting: Arc<TimeoutSetting>) -> tokio::task::JoinHandle<()> {
    let handle = Arc::downgrade(router.topology());
    let pool = router.pool().clone();
    tokio::spawn(async move {
        let mut seen = 0;
        let mut known: Vec<Arc<str>> = Vec::new();
        loop {
            let Some(topology) = handle.upgrade() else { return };
            // Holding the handle while waiting keeps it for as long as the
            // router lives anyway (the router holds it too).
            seen = topology.next_change(seen).await;
            let current = topology.current();
            drop(topology);
            apply_to(&pool, &setting, &current);
            if current.is_empty() {
                continue; // a failed discovery says nothing about who left
            }
            let now = current.addrs();
            for gone in known.iter().filter(|addr| !now.contains(addr)) {
                tracing::info!(node = %gone, "node left the topology: its connections close once they owe nothing");
                pool.forget(gone);
            }
            known = now;
        }
    })
}
