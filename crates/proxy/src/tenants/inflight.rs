//! [`InFlight`]: a tenant's `max_inflight`, its requests in flight across
//! all its clients. Each session reports how many of its requests await a
//! reply ([`Reported`]); while the tenant is at its limit, its sessions
//! read nothing more (as a client at `max_pipeline` is not read), and
//! they are woken when a reply frees room.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// One tenant's requests in flight and its limit (0: none; a reload may
/// change it, [`InFlight::set_max`]).
#[derive(Debug)]
pub struct InFlight {
    max: AtomicUsize,
    count: AtomicUsize,
    room: Notify,
}

impl InFlight {
    /// A limit of `max` requests in flight (0: none).
    pub fn new(max: usize) -> InFlight {
        InFlight {
            max: AtomicUsize::new(max),
            count: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// The limit (0: none).
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the limit; clients waiting for room are woken to look
    /// again.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
        self.room.notify_waiters();
    }

    /// True when the tenant's clients are not to be read.
    pub fn full(&self) -> bool {
        let max = self.max();
        max > 0 && self.count.load(Ordering::Relaxed) >= max
    }

    /// Resolves when some room may have been freed.
    pub async fn room(&self) {
        self.room.notified().await
    }
}

/// What one session has reported to its tenant's [`InFlight`].
#[derive(Debug, Default)]
pub struct Reported {
    to: Option<(Arc<InFlight>, usize)>,
}

impl Reported {
    /// Reports `pending` requests in flight to `limit` (the session's
    /// tenant's, if it has one): the change since the last report, moved
    /// from the previous tenant's when the session changed tenants.
    pub fn sync(&mut self, limit: Option<&Arc<InFlight>>, pending: usize) {
        let same = match (&self.to, limit) {
            (Some((known, _)), Some(limit)) => Arc::ptr_eq(known, limit),
            (None, None) => return,
            _ => false,
        };
        if !same {
            self.release();
            if let Some(limit) = limit {
                limit.count.fetch_add(pending, Ordering::Relaxed);
                self.to = Some((limit.clone(), pending));
            }
            return;
        }
        if let Some((limit, reported)) = self.to.as_mut() {
            if pending > *reported {
                limit.count.fetch_add(pending - *reported, Ordering::Relaxed);
            } else if pending < *reported {
                limit.count.fetch_sub(*reported - pending, Ordering::Relaxed);
                limit.room.notify_waiters();
            }
            *reported = pending;
        }
    }

    /// The tenant's limit this session counts against, if it is full.
    pub fn blocking(&self) -> Option<&Arc<InFlight>> {
        self.to
            .as_ref()
            .map(|(limit, _)| limit)
            .filter(|limit| limit.full())
    }

    fn release(&mut self) {
        if let Some((limit, reported)) = self.to.take() {
            limit.count.fetch_sub(reported, Ordering::Relaxed);
            limit.room.notify_waiters();
        }
    }
}

impl Drop for Reported {
    /// A session that ends frees what it held at once.
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_add_up_and_give_back() {
        let limit = Arc::new(InFlight::new(3));
        let (mut a, mut b) = (Reported::default(), Reported::default());
        a.sync(Some(&limit), 2);
        assert!(!limit.full());
        b.sync(Some(&limit), 1);
        assert!(limit.full() && a.blocking().is_some());
        a.sync(Some(&limit), 0);
        assert!(!limit.full());
        // Leaving the tenant, or the session, gives back what it held.
        b.sync(None, 1);
        a.sync(Some(&limit), 3);
        assert!(limit.full());
        drop(a);
        assert_eq!(limit.count.load(Ordering::Relaxed), 0);
    }
}
