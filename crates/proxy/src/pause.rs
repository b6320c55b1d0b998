//! CLIENT PAUSE and UNPAUSE: one pause for every client of this proxy.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// CLIENT PAUSE for every client of this proxy.
#[derive(Debug, Default)]
pub struct Pause {
    /// Paused until this many milliseconds after `epoch`; 0 when not paused.
    until_ms: AtomicI64,
    /// Only write commands wait (`WRITE`), or everything (`ALL`).
    writes_only: AtomicBool,
    epoch: std::sync::OnceLock<Instant>,
    /// Wakes paused sessions on CLIENT UNPAUSE.
    resumed: Notify,
}

impl Pause {
    fn epoch(&self) -> Instant {
        *self.epoch.get_or_init(Instant::now)
    }

    /// Pauses clients for `duration` (extending, never shortening, a pause
    /// in force, as Valkey does).
    pub fn pause(&self, duration: Duration, writes_only: bool) {
        let until = (self.epoch().elapsed() + duration).as_millis() as i64;
        self.until_ms.fetch_max(until.max(1), Ordering::AcqRel);
        self.writes_only.store(writes_only, Ordering::Release);
    }

    /// Ends the pause now.
    pub fn unpause(&self) {
        self.until_ms.store(0, Ordering::Release);
        self.resumed.notify_waiters();
    }

    /// How long the pause still lasts, and whether it holds writes only;
    /// `None` when clients are not paused. One atomic load when not paused.
    pub fn remaining(&self) -> Option<(Duration, bool)> {
        let until = self.until_ms.load(Ordering::Acquire);
        if until == 0 {
            return None;
        }
        let now = self.epoch().elapsed().as_millis() as i64;
        (until > now).then(|| {
            (
                Duration::from_millis((until - now) as u64),
                self.writes_only.load(Ordering::Acquire),
            )
        })
    }

    /// Waits until the pause ends (its time runs out, or CLIENT UNPAUSE).
    pub async fn wait(&self) {
        while let Some((left, _)) = self.remaining() {
            let resumed = self.resumed.notified();
            tokio::select! {
                _ = resumed => {}
                _ = tokio::time::sleep(left) => {}
            }
        }
    }
}
