//! What the clients' buffers hold together, against `maxmemory_clients`
//! (Valkey's setting of the same name), and the proxy's resident memory,
//! against `maxmemory`: past either, the client holding the most is
//! closed, as Valkey evicts clients.
//!
//! Each session reports what it holds (replies not yet written, a request
//! not yet whole) when that changes (`Held::report`); the total is one
//! atomic counter. The common path reports nothing: a client that reads
//! its replies holds none once they are written, and a read batch that
//! ends on a whole request leaves nothing in the read buffer. The resident
//! memory is read only while the clients hold at least a quarter of
//! `maxmemory`, never on the common path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clients::{ClientInfo, Clients};

/// The clients' buffers must hold at least this part of `maxmemory` (a
/// quarter) before a client is evicted for the resident memory: below it,
/// the memory is the proxy's own, and closing a client would not give it
/// back.
const SHARE_WORTH_EVICTING: usize = 4;

/// A client is evicted once the resident memory passes `maxmemory` less
/// this part of it (a quarter: at 384 MiB of 512), unless an earlier
/// eviction's memory is still on its way out ([`RELEASE_WAIT`]).
const NEAR: usize = 4;

/// Past `maxmemory` less this part of it (an eighth: at 448 MiB of 512), a
/// client is evicted even while an earlier eviction's memory is on its way
/// out: the allocator gives freed memory back to the system a second after
/// it is freed, and meanwhile the other clients may grow (measured: without
/// this, 543-572 MiB at the peak in two runs of ten, docs/OPERATIONS.md).
const CLOSE: usize = 8;

/// How long an eviction for the resident memory waits for the evicted
/// client's memory to leave the process before another client may be
/// evicted for it: the allocator gives freed memory back to the system a
/// little after it is freed.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

/// The two memory budgets, bytes; 0 is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// What the clients' buffers may hold together (`maxmemory_clients`).
    pub clients: usize,
    /// What the proxy may hold resident (`maxmemory`).
    pub resident: usize,
}

/// A client giving back at least this much at once counts in
/// [`given_back`].
const LARGE_GIVE_BACK: usize = 1024 * 1024;

/// How many times a client gave back [`LARGE_GIVE_BACK`] or more at once.
static GIVEN_BACK: AtomicU64 = AtomicU64::new(0);

/// How many times a client's buffers gave back 1 MiB or more at once
/// (replies written or dropped, the client gone). An embedder whose
/// allocator keeps memory freed on other threads until they allocate
/// (mimalloc does) can have its idle threads allocate once when this
/// changes, as the bundled binary does.
pub fn given_back() -> u64 {
    GIVEN_BACK.load(Ordering::Relaxed)
}

/// The bytes every client holds, and how many clients were evicted.
#[derive(Debug, Default)]
pub struct ClientMemory {
    held: AtomicUsize,
    evicted: AtomicU64,
    /// The last eviction for the resident memory, while its memory may
    /// still be on its way out.
    releasing: Mutex<Option<Release>>,
}

/// An eviction for the resident memory: what was resident then, and what
/// the evicted client held.
#[derive(Clone, Copy, Debug)]
struct Release {
    at: Instant,
    resident: usize,
    held: usize,
}

impl Release {
    /// True while the evicted client's memory has not yet left: the
    /// resident memory has not fallen by half of what it held, and not
    /// for long.
    fn pending(&self, resident: usize) -> bool {
        self.at.elapsed() < RELEASE_WAIT && resident + self.held / 2 > self.resident
    }
}

/// Why a client is evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Over {
    Clients,
    Resident(usize),
}

impl ClientMemory {
    /// Bytes held by every client's buffers together.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// What counts against `maxmemory_clients`: the clients' buffers, and
    /// the large replies arrived for them that no session took yet
    /// ([`pool::waiting`]).
    pub fn total(&self) -> usize {
        self.held() + pool::waiting::replies_waiting()
    }

    /// Clients closed because the total passed `maxmemory_clients` or the
    /// resident memory `maxmemory` (INFO's `evicted_clients`).
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Takes `bytes` a client gave back off the total.
    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
        if bytes >= LARGE_GIVE_BACK {
            GIVEN_BACK.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// When the clients' total is over `budget.clients`, or the resident
    /// memory is near `budget.resident` while the clients hold a good share
    /// of it: marks the client holding the most for eviction and cancels
    /// its session; the bytes of clients already killed or evicted do not
    /// count, as they are about to be freed. Returns the evicted client's
    /// id.
    pub fn evict_over(&self, budget: Budget, clients: &Clients) -> Option<u64> {
        self.evict_with(budget, clients, pool::waiting::replies_waiting(), resident_bytes)
    }

    /// [`ClientMemory::evict_over`] with `waiting` bytes of replies that
    /// arrived and no session took yet, and the resident memory as
    /// `resident` reads it.
    fn evict_with(
        &self,
        budget: Budget,
        clients: &Clients,
        waiting: usize,
        resident: impl FnOnce() -> Option<usize>,
    ) -> Option<u64> {
        let held = self.held();
        let share = budget.resident / SHARE_WORTH_EVICTING;
        let over_clients = budget.clients > 0 && held + waiting > budget.clients;
        let over_resident = if budget.resident > 0 && held + waiting >= share {
            self.over_resident(budget.resident, resident)
        } else {
            None
        };
        if !over_clients && over_resident.is_none() {
            return None;
        }
        // Clients killed or evicted already are on their way out.
        let (leaving, staying): (Vec<_>, Vec<_>) = clients
            .list_all()
            .into_iter()
            .partition(|client| client.kill.is_cancelled());
        let leaving: usize = leaving.iter().map(|client| client.buffers.held()).sum();
        let attributed = held.saturating_sub(leaving);
        // While the replies nobody took yet are most of the total, whose
        // they are is unknown, and the client holding the most may hold
        // next to nothing. Sessions take their replies at once (even for a
        // client that does not read), so a report soon names the client.
        let over = if over_clients && attributed + waiting > budget.clients && attributed > budget.clients / 2
        {
            Over::Clients
        } else {
            over_resident.filter(|_| attributed >= share)?
        };
        let victim = staying.iter().max_by_key(|client| client.buffers.held())?;
        if !victim.buffers.evict() {
            return None;
        }
        self.evicted.fetch_add(1, Ordering::Relaxed);
        let victim_held = victim.buffers.held();
        match over {
            Over::Clients => tracing::warn!(
                client = victim.id,
                addr = %victim.addr,
                held = victim_held,
                total = held + waiting,
                limit = budget.clients,
                "evicting the client holding the most memory: the clients' buffers are over maxmemory_clients"
            ),
            Over::Resident(resident) => {
                *lock(&self.releasing) = Some(Release {
                    at: Instant::now(),
                    resident,
                    held: victim_held,
                });
                tracing::warn!(
                    client = victim.id,
                    addr = %victim.addr,
                    held = victim_held,
                    total = held + waiting,
                    resident,
                    limit = budget.resident,
                    "evicting the client holding the most memory: the proxy's resident memory is near maxmemory"
                );
            }
        }
        victim.kill.cancel();
        Some(victim.id)
    }

    /// `Some` when the resident memory is near `limit` ([`NEAR`], no
    /// earlier eviction's memory still on its way out) or close to it
    /// ([`CLOSE`]).
    fn over_resident(&self, limit: usize, resident: impl FnOnce() -> Option<usize>) -> Option<Over> {
        let resident = resident()?;
        let mut releasing = lock(&self.releasing);
        let released = !releasing.is_some_and(|release| release.pending(resident));
        if released {
            *releasing = None;
        }
        let over = resident > limit - limit / CLOSE || (released && resident > limit - limit / NEAR);
        over.then_some(Over::Resident(resident))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The process's resident memory, from `/proc/self/statm` (pages of 4 KiB
/// on every platform the proxy runs on); `None` where there is no such
/// file.
pub fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// What one session last reported to [`ClientMemory`]: reports are made
/// only when a figure changes.
#[derive(Debug, Default)]
pub(crate) struct Held {
    query: usize,
    output: usize,
}

impl Held {
    /// Records that the session holds `query` bytes of requests not yet
    /// whole (`capacity` allocated for them) and `output` bytes of replies
    /// not yet written. Returns true when the total changed (then the
    /// caller checks the budget).
    pub(crate) fn report(
        &mut self,
        info: &ClientInfo,
        memory: &ClientMemory,
        query: usize,
        capacity: usize,
        output: usize,
    ) -> bool {
        info.buffers.set_query(query, capacity);
        if query == self.query && output == self.output {
            return false;
        }
        info.buffers.set_output(output);
        let (before, after) = (self.query + self.output, query + output);
        if after > before {
            memory.held.fetch_add(after - before, Ordering::Relaxed);
        } else {
            memory.give_back(before - after);
        }
        self.query = query;
        self.output = output;
        after > before
    }

    /// Gives back everything reported, when the session ends.
    pub(crate) fn release(&mut self, memory: &ClientMemory) {
        memory.give_back(self.query + self.output);
        self.query = 0;
        self.output = 0;
    }
}

#[cfg(test)]
mod tests;
