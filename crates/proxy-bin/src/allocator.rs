//! The allocator, and what each worker thread does for it after clients
//! gave back large buffers.
//!
//! mimalloc keeps memory a thread frees that another thread allocated (a
//! reply read by a backend connection's task, dropped by the session that
//! wrote it) until the thread that allocated it allocates again, and gives
//! freed memory back to the system only from within an allocation, a purge
//! delay after it was freed. A proxy that goes quiet after clients held
//! hundreds of megabytes would keep them resident for as long as it stays
//! quiet (measured: 500 MiB held for minutes, until the next request). So
//! each worker thread looks once a second whether clients gave back large
//! buffers ([`proxy::memory::given_back`]) and, for a few seconds after
//! they did, allocates once a second: the allocator then takes back what
//! other threads freed and returns it to the system.

use std::time::Duration;

/// The allocator: measured with callgrind and scripts/bench.sh, see docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Large enough to take the allocator's slow path, where it collects what
/// other threads freed.
const NUDGE: usize = 1 << 20;

/// How often a worker looks.
const EVERY: Duration = Duration::from_secs(1);

/// For how many looks after a give-back the worker allocates: past the
/// allocator's purge delay (one second), so that one of them returns the
/// memory to the system.
const LOOKS_AFTER: u32 = 3;

/// Runs on each worker thread's runtime for as long as it runs.
pub(crate) async fn nudge_after_give_backs() {
    let mut seen = proxy::memory::given_back();
    let mut looks_left = 0;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let given_back = proxy::memory::given_back();
        if given_back != seen {
            seen = given_back;
            looks_left = LOOKS_AFTER;
        }
        if looks_left > 0 {
            looks_left -= 1;
            std::hint::black_box(Vec::<u8>::with_capacity(NUDGE));
        }
    }
}
