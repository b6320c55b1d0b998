//! What a timed poll's CPU time is shared among: the requests it touched,
//! kept per thread while the poll runs.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// Something CPU time is charged to (a command's statistics).
pub trait Account: Send + Sync {
    /// Adds `ns` nanoseconds of CPU time.
    fn charge(&self, ns: u64);
}

thread_local! {
    /// True while a session's timed poll runs.
    static TIMING: Cell<bool> = const { Cell::new(false) };
    /// The requests the timed poll touched.
    static TOUCHED: RefCell<Vec<Arc<dyn Account>>> = const { RefCell::new(Vec::new()) };
    /// Requests sent to backends from this thread.
    static EXCHANGES: Cell<u64> = const { Cell::new(0) };
    /// Backend connections' CPU time on this thread (estimated from the
    /// timed polls) and the requests sent when it was last updated.
    static CONNECTIONS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Notes that the poll running now worked for a request of `account`'s
/// command (started it, or finished it). `account` is only made when the
/// poll is timed: otherwise this is one thread-local read.
pub fn touch(account: impl FnOnce() -> Arc<dyn Account>) {
    if TIMING.with(Cell::get) {
        TOUCHED.with(|touched| touched.borrow_mut().push(account()));
    }
}

/// Counts one request sent to a backend from this thread.
pub fn note_exchange() {
    EXCHANGES.with(|count| count.set(count.get() + 1));
}

/// Requests sent to backends from this thread so far: the difference
/// across a call is the backend requests it made.
pub fn exchanges() -> u64 {
    EXCHANGES.with(Cell::get)
}

/// The backend connections' CPU time per request sent, on this thread, in
/// nanoseconds (0 before any was timed).
pub fn connection_cost() -> u64 {
    let (ns, sent) = CONNECTIONS.with(Cell::get);
    ns.checked_div(sent).unwrap_or(0)
}

/// Starts sharing a session poll's time: what [`touch`] notes from now on.
pub(crate) fn begin() -> bool {
    TIMING.with(|timing| timing.replace(true))
}

/// Ends it: `ns` shared equally among the touched requests (if none was,
/// it goes nowhere: a poll that only waited, or answered no request).
pub(crate) fn end(outer: bool, ns: u64) {
    TIMING.with(|timing| timing.set(outer));
    let touched: Vec<Arc<dyn Account>> = TOUCHED.with(|touched| std::mem::take(&mut *touched.borrow_mut()));
    if let Some(share) = ns.checked_div(touched.len() as u64) {
        for account in &touched {
            account.charge(share);
        }
    }
    // Keep the vector's memory for the next timed poll.
    TOUCHED.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.is_empty() {
            let mut touched = touched;
            touched.clear();
            *kept = touched;
        }
    });
}

/// Adds a connection poll's (estimated) time to this thread's.
pub(crate) fn add_connection_time(ns: u64) {
    let sent = exchanges();
    CONNECTIONS.with(|connections| {
        let (total, _) = connections.get();
        connections.set((total + ns, sent.max(1)));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Spent(AtomicU64);

    impl Account for Spent {
        fn charge(&self, ns: u64) {
            self.0.fetch_add(ns, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_timed_polls_time_is_shared_by_the_requests_it_touched() {
        let (get, mget) = (Arc::new(Spent::default()), Arc::new(Spent::default()));
        touch(|| get.clone());
        assert_eq!(
            get.0.load(Ordering::Relaxed),
            0,
            "outside a timed poll nothing is noted"
        );
        let outer = begin();
        touch(|| get.clone());
        touch(|| mget.clone());
        touch(|| mget.clone());
        end(outer, 900);
        assert_eq!(get.0.load(Ordering::Relaxed), 300);
        assert_eq!(mget.0.load(Ordering::Relaxed), 600);
        let outer = begin();
        end(outer, 500);
        assert_eq!(
            get.0.load(Ordering::Relaxed) + mget.0.load(Ordering::Relaxed),
            900
        );
    }

    #[test]
    fn connection_time_is_averaged_over_the_requests_sent() {
        assert_eq!(connection_cost(), 0);
        for _ in 0..4 {
            note_exchange();
        }
        add_connection_time(2_000);
        assert_eq!(connection_cost(), 500);
        for _ in 0..4 {
            note_exchange();
        }
        add_connection_time(2_000);
        assert_eq!(connection_cost(), 500);
    }
}
