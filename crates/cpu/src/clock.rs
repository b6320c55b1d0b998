//! The thread's CPU clock, and what reading it costs.

use std::sync::OnceLock;

/// The CPU time the calling thread has used, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

/// What two readings back to back differ by (the least of a few tries):
/// the clock's own cost inside an interval it times, taken off each
/// interval measured.
pub(crate) fn reading_cost_ns() -> u64 {
    static COST: OnceLock<u64> = OnceLock::new();
    *COST.get_or_init(|| {
        (0..64)
            .map(|_| {
                let start = thread_cpu_ns();
                thread_cpu_ns().saturating_sub(start)
            })
            .min()
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_and_not_sleep() {
        let start = thread_cpu_ns();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let slept = thread_cpu_ns() - start;
        assert!(slept < 10_000_000, "sleeping used {slept} ns of CPU");
        let busy_start = thread_cpu_ns();
        let mut x = 1u64;
        while thread_cpu_ns() - busy_start < 20_000_000 {
            x = std::hint::black_box(x.wrapping_mul(3));
        }
        assert!(reading_cost_ns() < 1_000_000);
    }
}
