//! Another client's task on the same worker, for tests that show a long
//! piece of work lets the worker serve others meanwhile: it counts the
//! times it got to run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A task that yields and counts its turns until dropped.
#[derive(Debug)]
pub struct OtherTask {
    turns: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl OtherTask {
    /// Spawns it on the current runtime (a current-thread one, so that it
    /// runs only when the task under test yields).
    pub fn spawn() -> OtherTask {
        let turns = Arc::new(AtomicUsize::new(0));
        let counted = turns.clone();
        let task = tokio::spawn(async move {
            loop {
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        OtherTask { turns, task }
    }

    /// The turns it had so far.
    pub fn turns(&self) -> usize {
        self.turns.load(Ordering::Relaxed)
    }
}

impl Drop for OtherTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}
