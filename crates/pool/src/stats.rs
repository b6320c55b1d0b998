//! Counters the pool keeps for `PROXY INFO`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every connection of a pool.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Connections currently open (shared and dedicated).
    pub open: AtomicU64,
    /// Dedicated connections currently handed out to clients (including
    /// subscription streams).
    pub dedicated: AtomicU64,
    /// Dedicated connections idle, kept for the next client that needs one.
    pub dedicated_idle: AtomicU64,
    /// Connections opened since start.
    pub opened_total: AtomicU64,
    /// Connect attempts that failed since start.
    pub connect_failures: AtomicU64,
    /// Requests written to backends since start.
    pub requests: AtomicU64,
}

impl PoolStats {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }
}
