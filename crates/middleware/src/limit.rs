//! [`Rate`]: a rate limit shared by many sessions (one tenant's), kept as
//! the generic cell rate algorithm. Every unit of work (an operation, a
//! byte) gets a slot `1 / rate` after the previous one; work may start at
//! its slot, a burst of [`BURST`] may start at once, and work whose slot is
//! further away than the caller will wait is refused without taking one.
//! One atomic holds the state, so sessions on every worker share the limit
//! without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much work may start at once after a quiet spell: this long's worth
/// at the limit's rate. Small, so that a measured rate stays within a few
/// percent of the limit over a second or two.
pub const BURST: Duration = Duration::from_millis(10);

/// A limit of `per_second` units per second (0: none), which a
/// configuration reload may change ([`Rate::set`]).
#[derive(Debug)]
pub struct Rate {
    per_second: AtomicU64,
    /// How far ahead of its slot work may start, in nanoseconds.
    tolerance: AtomicU64,
    /// The theoretical arrival time: nanoseconds after `base` when the
    /// next unit's slot comes.
    next: AtomicU64,
    base: Instant,
}

/// When work may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Now.
    Now,
    /// At this instant (its slot is taken).
    At(Instant),
    /// Not within the wait the caller accepts (no slot is taken).
    Refused,
}

impl Rate {
    /// A limit of `per_second` units a second; 0 for none.
    pub fn new(per_second: u64) -> Rate {
        let rate = Rate {
            per_second: AtomicU64::new(0),
            tolerance: AtomicU64::new(0),
            next: AtomicU64::new(0),
            base: Instant::now(),
        };
        rate.set(per_second);
        rate
    }

    /// Changes the limit (0: none) from the next unit of work on; the
    /// slots already taken stay.
    pub fn set(&self, per_second: u64) {
        // The burst holds the unit that starts at its own slot.
        let unit = 1_000_000_000u64.checked_div(per_second).unwrap_or(0);
        let tolerance = (BURST.as_nanos() as u64).saturating_sub(unit);
        self.tolerance.store(tolerance, Ordering::Relaxed);
        self.per_second.store(per_second, Ordering::Release);
    }

    /// The limit, per second (0: none).
    pub fn per_second(&self) -> u64 {
        self.per_second.load(Ordering::Acquire)
    }

    /// Takes the slot of `cost` units of work arriving at `now`, if it
    /// comes within `max_wait`; with no limit, [`Admission::Now`].
    pub fn admit(&self, cost: u64, now: Instant, max_wait: Duration) -> Admission {
        let per_second = self.per_second();
        if per_second == 0 {
            return Admission::Now;
        }
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        let now_ns = now.saturating_duration_since(self.base).as_nanos() as u64;
        let length = (u128::from(cost) * 1_000_000_000 / u128::from(per_second)) as u64;
        let mut next = self.next.load(Ordering::Acquire);
        loop {
            let start = next.saturating_sub(tolerance).max(now_ns);
            let wait = start - now_ns;
            if wait > max_wait.as_nanos() as u64 {
                return Admission::Refused;
            }
            let after = next.max(now_ns).saturating_add(length);
            match self
                .next
                .compare_exchange_weak(next, after, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if wait == 0 => return Admission::Now,
                Ok(_) => return Admission::At(now + Duration::from_nanos(wait)),
                Err(current) => next = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_spread_at_the_rate_after_a_small_burst() {
        let rate = Rate::new(1000);
        let now = Instant::now();
        let forever = Duration::from_secs(60);
        // 10 ms at 1,000/s: 10 may start at once.
        let immediate = (0..100)
            .take_while(|_| rate.admit(1, now, forever) == Admission::Now)
            .count();
        assert_eq!(immediate, 10);
        // The rest are a millisecond apart.
        let Admission::At(first) = rate.admit(1, now, forever) else {
            panic!("not scheduled")
        };
        let Admission::At(second) = rate.admit(1, now, forever) else {
            panic!("not scheduled")
        };
        assert_eq!(second - first, Duration::from_millis(1));
        // Work starts at its slot whatever its size, and pushes the next
        // slot as far as its size: after 1,000 units, the next is a second
        // away, refused when only 100 ms is acceptable; the refusal takes
        // no slot.
        assert_eq!(
            rate.admit(1000, now, forever),
            Admission::At(second + Duration::from_millis(1))
        );
        let brief = Duration::from_millis(100);
        assert_eq!(rate.admit(1, now, brief), Admission::Refused);
        let next = second + Duration::from_millis(1001);
        assert_eq!(rate.admit(1, now, forever), Admission::At(next));
    }

    #[test]
    fn a_changed_limit_applies_to_the_next_work() {
        let rate = Rate::new(0);
        let now = Instant::now();
        let forever = Duration::from_secs(60);
        assert!((0..1000).all(|_| rate.admit(1, now, forever) == Admission::Now));
        rate.set(100);
        let immediate = (0..100)
            .take_while(|_| rate.admit(1, now, forever) == Admission::Now)
            .count();
        assert_eq!(immediate, 1, "10 ms at 100/s");
        rate.set(0);
        assert_eq!(rate.admit(1, now, forever), Admission::Now);
    }

    #[test]
    fn a_quiet_spell_gives_back_only_the_burst() {
        let rate = Rate::new(100);
        let start = Instant::now();
        let forever = Duration::from_secs(60);
        assert_eq!(rate.admit(1, start, forever), Admission::Now);
        let later = start + Duration::from_secs(5);
        assert_eq!(rate.admit(1, later, forever), Admission::Now);
        assert!(matches!(rate.admit(1, later, forever), Admission::At(_)));
    }
}
