//! One clock reading for every request completed in one pass.
//!
//! Reading the clock is a few percent of the proxy's CPU when it happens
//! once per request (about 50 ns on a virtual machine's clock). A caller
//! that collects many finished requests in one go (a session writing the
//! replies of a pipeline) wraps that in [`with_shared_clock`]: the first
//! request recorded inside reads the clock, and the others reuse that
//! reading. The replies were all in before the pass started, so the
//! latency recorded is still the time from the read of the request to the
//! moment the proxy took its reply.
//!
//! Times are kept as [`ticks`], nanoseconds since a fixed origin: taking
//! one from another is one subtraction, where subtracting two `Instant`s
//! costs some thirty instructions (it normalises seconds and nanoseconds)
//! and the statistics do it once per request.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

thread_local! {
    /// `None` outside a pass; `Some(None)` in a pass before the first
    /// reading; `Some(Some(t))` once read, in ticks.
    static PASS: Cell<Option<Option<u64>>> = const { Cell::new(None) };
}

/// `at` as nanoseconds since the origin (the first call); an instant
/// before the origin counts as the origin.
pub(crate) fn ticks(at: Instant) -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// The proxy's own work on something it answers itself, timed for one
/// in 64 per thread (the first included), as [`Stats`](super::Stats)
/// times a sample of what it passes down: for what has no `Stats`
/// service around it.
#[derive(Clone, Copy, Debug)]
pub struct WorkTimer {
    started: Instant,
}

impl WorkTimer {
    /// A started timer when this piece of work is in the sample.
    pub fn sample() -> Option<WorkTimer> {
        thread_local! {
            static UNTIL_SAMPLE: Cell<u32> = const { Cell::new(0) };
        }
        let sampled = UNTIL_SAMPLE.with(|until| {
            let left = until.get();
            until.set(
                left.checked_sub(1)
                    .unwrap_or(super::service::WORK_SAMPLE_EVERY - 1),
            );
            left == 0
        });
        sampled.then(|| WorkTimer {
            started: Instant::now(),
        })
    }

    /// The time since the timer started.
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// Runs `f` with one clock reading shared by every request whose
/// statistics are recorded inside it.
pub fn with_shared_clock<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the outer state, even if `f` panics.
    struct Restore(Option<Option<u64>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PASS.with(|pass| pass.set(self.0));
        }
    }
    let _restore = Restore(PASS.with(|pass| pass.replace(Some(None))));
    f()
}

/// The time now, in [`ticks`]: the pass's reading inside
/// [`with_shared_clock`] (taken on first use), else a fresh one.
pub(crate) fn now() -> u64 {
    PASS.with(|pass| match pass.get() {
        None => ticks(Instant::now()),
        Some(Some(read)) => read,
        Some(None) => {
            let read = ticks(Instant::now());
            pass.set(Some(Some(read)));
            read
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_per_pass_and_fresh_ones_outside() {
        let outside = now();
        let (first, second) = with_shared_clock(|| {
            let first = now();
            std::thread::sleep(std::time::Duration::from_millis(2));
            (first, now())
        });
        assert_eq!(first, second);
        assert!(first >= outside);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(now() > second, "outside a pass the clock is read again");
    }

    #[test]
    fn ticks_differ_by_the_time_between() {
        ticks(Instant::now()); // the origin is set by now
        let early = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let late = Instant::now();
        assert_eq!(ticks(late) - ticks(early), (late - early).as_nanos() as u64);
        assert!(ticks(late) <= now());
    }

    #[test]
    fn a_nested_pass_restores_the_outer_one() {
        with_shared_clock(|| {
            let outer = now();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let inner = with_shared_clock(now);
            assert!(inner > outer);
            assert_eq!(now(), outer);
        });
    }
}
