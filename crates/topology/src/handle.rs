//! [`TopologyHandle`]: the current topology behind an atomic swap, and the
//! task that keeps it current.
//!
//! Readers call [`TopologyHandle::current`], which never locks. Refreshes
//! happen in one task only (single-flight): periodically, and when someone
//! calls [`TopologyHandle::request_refresh`]. Requests arriving while a
//! refresh runs or during the debounce interval after it collapse into one,
//! so a storm of MOVED replies costs at most one fetch per interval.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::{discover, DiscoveryConfig, Error, Probe, Topology};

/// How often the topology is refreshed.
#[derive(Clone, Copy, Debug)]
pub struct RefreshConfig {
    /// Refresh at least this often even when nothing asks.
    pub interval: Duration,
    /// Never refresh more often than this, however many requests arrive.
    pub min_interval: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            interval: Duration::from_secs(5),
            min_interval: Duration::from_millis(100),
        }
    }
}

/// The watched topology. Share it as `Arc<TopologyHandle>`.
pub struct TopologyHandle {
    current: ArcSwap<Topology>,
    wake: Notify,
    discovery: DiscoveryConfig,
    probe: Arc<dyn Probe>,
    refresh: RefreshConfig,
    last_error: Mutex<Option<Error>>,
    fetches: std::sync::atomic::AtomicU64,
    /// Bumped after every change is published: what [`TopologyCache`]
    /// checks instead of loading the topology.
    changes: std::sync::atomic::AtomicU64,
    /// Woken after every change is published ([`Self::next_change`]).
    published: Notify,
}

impl std::fmt::Debug for TopologyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyHandle")
            .field("current", &self.current.load().version())
            .field("seeds", &self.discovery.seeds)
            .finish()
    }
}

impl TopologyHandle {
    /// A handle with an empty topology; call [`Self::refresh_now`] or
    /// [`Self::spawn_refresher`] to fill it.
    pub fn new(discovery: DiscoveryConfig, probe: Arc<dyn Probe>, refresh: RefreshConfig) -> Arc<Self> {
        Arc::new(TopologyHandle {
            current: ArcSwap::from_pointee(Topology::empty()),
            wake: Notify::new(),
            discovery,
            probe,
            refresh,
            last_error: Mutex::new(None),
            fetches: std::sync::atomic::AtomicU64::new(0),
            changes: std::sync::atomic::AtomicU64::new(0),
            published: Notify::new(),
        })
    }

    /// A handle that always holds `topology` (tests, embedding with a known
    /// layout). Refreshes through `probe` still work if requested.
    pub fn fixed(topology: Topology, probe: Arc<dyn Probe>) -> Arc<Self> {
        let handle = TopologyHandle::new(DiscoveryConfig::default(), probe, RefreshConfig::default());
        handle.publish(Arc::new(topology.with_version(1)));
        handle
    }

    /// The current topology. Never blocks.
    pub fn current(&self) -> Arc<Topology> {
        self.current.load_full()
    }

    /// The current topology without touching its reference count: for the
    /// per-request path, where the guard lives only while a request is
    /// routed. Hold [`Self::current`] instead for anything longer.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.current.load()
    }

    /// Publishes a new topology: stored first, then announced to caches.
    fn publish(&self, topology: Arc<Topology>) {
        self.current.store(topology);
        self.changes.fetch_add(1, std::sync::atomic::Ordering::Release);
        self.published.notify_waiters();
    }

    /// Waits until a change is published after the one counted `seen`
    /// (0 before any), and returns the new count: for a task that acts on
    /// every new topology (closing connections to nodes that left, say).
    pub async fn next_change(&self, seen: u64) -> u64 {
        loop {
            let published = self.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let changes = self.changes.load(std::sync::atomic::Ordering::Acquire);
            if changes != seen {
                return changes;
            }
            published.await;
        }
    }

    /// Asks the refresh task for a new fetch soon (at most one per
    /// `min_interval`).
    pub fn request_refresh(&self) {
        self.wake.notify_one();
    }

    /// Records a MOVED reply: `slot` now lives on `addr`. Takes effect at once
    /// for later requests, and asks for a full refresh.
    pub fn note_moved(&self, slot: u16, addr: &str) {
        self.current.rcu(|current| {
            let moved = current.with_slot_moved(slot, addr);
            let version = current.version() + 1;
            moved.with_version(version)
        });
        self.changes.fetch_add(1, std::sync::atomic::Ordering::Release);
        self.published.notify_waiters();
        self.request_refresh();
    }

    /// Topology fetches done since start (for tests and `PROXY INFO`).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The error of the last failed refresh, if the last one failed.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches the topology now and publishes it if it changed.
    ///
    /// # Errors
    /// No node answered; the previous topology stays in place.
    pub async fn refresh_now(&self) -> Result<Arc<Topology>, Error> {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let current = self.current();
        let mut discovery = self.discovery.clone();
        // Nodes we know now come first: the seeds may be long gone.
        let known = current.addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let seeds = std::mem::take(&mut discovery.seeds);
        discovery.seeds = known.into_iter().chain(seeds).fold(Vec::new(), |mut all, addr| {
            if !all.contains(&addr) {
                all.push(addr);
            }
            all
        });
        let outcome = discover(&discovery, &*self.probe).await;
        let mut last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(fresh) => {
                if last_error.take().is_some() {
                    tracing::info!("topology refresh works again");
                }
                drop(last_error);
                if fresh.same_layout(&self.current()) {
                    return Ok(self.current());
                }
                let published = Arc::new(fresh.with_version(current.version() + 1));
                tracing::info!(version = published.version(), mode = %published.mode(), shards = published.shards().len(), "topology changed");
                self.publish(published.clone());
                Ok(published)
            }
            Err(error) => {
                // Warn once per outage, not once per retry.
                if last_error.is_none() {
                    tracing::warn!(%error, "topology refresh failed");
                } else {
                    tracing::debug!(%error, "topology refresh failed again");
                }
                *last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Starts the refresh task. It stops within one interval after the last
    /// other `Arc` of the handle is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<TopologyHandle> = Arc::downgrade(self);
        let refresh = self.refresh;
        tokio::spawn(async move {
            loop {
                let Some(handle) = weak.upgrade() else { return };
                // An empty topology is retried quickly: clients are waiting.
                let wait = if handle.current().is_empty() {
                    refresh.min_interval
                } else {
                    refresh.interval
                };
                // Holding the handle while waiting delays its release by one
                // interval at most.
                let _ = tokio::time::timeout(wait, handle.wake.notified()).await;
                let _ = handle.refresh_now().await;
                drop(handle);
                tokio::time::sleep(refresh.min_interval).await;
            }
        })
    }
}

/// One user's copy of the current topology (a session's router, say),
/// renewed only when the handle has published a change since: checking is
/// one atomic load, where loading the topology is a reference-count
/// round trip through [`ArcSwap`]. A cache serves one handle.
#[derive(Debug)]
pub struct TopologyCache {
    /// The handle's change count when `topology` was loaded.
    seen: u64,
    topology: Arc<Topology>,
}

impl Default for TopologyCache {
    /// A cache holding what every handle holds before its first change:
    /// the empty topology.
    fn default() -> Self {
        static EMPTY: OnceLock<Arc<Topology>> = OnceLock::new();
        TopologyCache {
            seen: 0,
            topology: EMPTY.get_or_init(|| Arc::new(Topology::empty())).clone(),
        }
    }
}

impl TopologyCache {
    /// The current topology of `handle` (at most as old as the last change
    /// this call could see).
    pub fn get(&mut self, handle: &TopologyHandle) -> &Arc<Topology> {
        self.get_stamped(handle).0
    }

    /// [`TopologyCache::get`], and a stamp that differs whenever the
    /// topology returned does: a key for what a user works out from the
    /// topology and keeps (one cache never gives one stamp to two
    /// topologies).
    pub fn get_stamped(&mut self, handle: &TopologyHandle) -> (&Arc<Topology>, u64) {
        let changes = handle.changes.load(std::sync::atomic::Ordering::Acquire);
        if changes != self.seen {
            // Published before the count was raised: at least as new.
            self.seen = changes;
            self.topology = handle.current();
        }
        (&self.topology, self.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Shard, TcpProbe};

    fn one_shard_cluster() -> Topology {
        let shard = Shard {
            primary: "a:1".into(),
            replicas: Vec::new(),
        };
        Topology::cluster(vec![(0, 16383, shard)], 1)
    }

    #[test]
    fn a_cache_renews_its_copy_and_its_stamp_on_changes_only() {
        let handle = TopologyHandle::fixed(one_shard_cluster(), Arc::new(TcpProbe::default()));
        let mut cache = TopologyCache::default();
        let (first, stamp) = cache.get_stamped(&handle);
        let first = first.clone();
        assert_eq!(&*first.shard_for_slot(7).unwrap().primary, "a:1");
        assert_eq!(cache.get_stamped(&handle).1, stamp);
        assert!(Arc::ptr_eq(cache.get(&handle), &first));

        handle.note_moved(7, "b:1");
        let (moved, moved_stamp) = cache.get_stamped(&handle);
        assert_ne!(moved_stamp, stamp);
        assert_eq!(&*moved.shard_for_slot(7).unwrap().primary, "b:1");
    }

    #[test]
    fn a_new_cache_agrees_with_a_new_handle() {
        let handle = TopologyHandle::new(
            DiscoveryConfig::default(),
            Arc::new(TcpProbe::default()),
            RefreshConfig::default(),
        );
        let mut cache = TopologyCache::default();
        assert!(cache.get(&handle).is_empty());
        handle.publish(Arc::new(one_shard_cluster()));
        assert_eq!(cache.get(&handle).shards().len(), 1);
    }
}
