//! Large replies that arrived and wait for their caller to collect them,
//! counted process-wide: memory the proxy holds for its clients before any
//! session has taken it, which its client memory budget counts too.
//!
//! Only replies of [`COUNTED_FROM`] bytes or more are counted, so that the
//! common reply costs one comparison; what smaller ones can hold is bounded
//! by the callers' pipelines.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Replies this large or larger are counted.
pub const COUNTED_FROM: usize = 64 * 1024;

static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Bytes of large replies arrived and not yet collected, across every
/// connection of the process.
pub fn replies_waiting() -> usize {
    WAITING.load(Ordering::Relaxed)
}

/// A reply of `len` bytes arrived in a slot.
pub(crate) fn arrived(len: usize) {
    if len >= COUNTED_FROM {
        WAITING.fetch_add(len, Ordering::Relaxed);
    }
}

/// A reply of `len` bytes left its slot (collected or dropped).
pub(crate) fn left(len: usize) {
    if len >= COUNTED_FROM {
        WAITING.fetch_sub(len, Ordering::Relaxed);
    }
}
