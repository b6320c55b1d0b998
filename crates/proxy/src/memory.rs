//! What the clients' buffers hold together, against `maxmemory_clients`
//! (Valkey's setting of the same name): past it, the client holding the
//! most is closed, as Valkey evicts clients.
//!
//! Each session reports what it holds (replies not yet written, a request
//! not yet whole) when that changes (`Held::report`); the total is one
//! atomic counter. The common path reports nothing: a client that reads
//! its replies holds none once they are written, and a read batch that
//! ends on a whole request leaves nothing in the read buffer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::clients::{ClientInfo, Clients};

/// The bytes every client holds, and how many clients were evicted.
#[derive(Debug, Default)]
pub struct ClientMemory {
    held: AtomicUsize,
    evicted: AtomicU64,
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

    /// Clients closed because the total passed `maxmemory_clients`
    /// (INFO's `evicted_clients`).
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// When the total is over `limit` (0: none): marks the client holding
    /// the most for eviction and cancels its session; the bytes of clients
    /// already killed or evicted do not count, as they are about to be
    /// freed. Returns the evicted client's id.
    pub fn evict_over(&self, limit: usize, clients: &Clients) -> Option<u64> {
        self.evict_with(limit, clients, pool::waiting::replies_waiting())
    }

    /// [`ClientMemory::evict_over`] with `waiting` bytes of replies that
    /// arrived and no session took yet.
    fn evict_with(&self, limit: usize, clients: &Clients, waiting: usize) -> Option<u64> {
        let held = self.held();
        if limit == 0 || held + waiting <= limit {
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
        if attributed + waiting <= limit || attributed <= limit / 2 {
            return None;
        }
        let victim = staying.iter().max_by_key(|client| client.buffers.held())?;
        if !victim.buffers.evict() {
            return None;
        }
        self.evicted.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            client = victim.id,
            addr = %victim.addr,
            held = victim.buffers.held(),
            total = self.total(),
            limit,
            "evicting the client holding the most memory: the clients' buffers are over maxmemory_clients"
        );
        victim.kill.cancel();
        Some(victim.id)
    }
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
            memory.held.fetch_sub(before - after, Ordering::Relaxed);
        }
        self.query = query;
        self.output = output;
        after > before
    }

    /// Gives back everything reported, when the session ends.
    pub(crate) fn release(&mut self, memory: &ClientMemory) {
        memory.held.fetch_sub(self.query + self.output, Ordering::Relaxed);
        self.query = 0;
        self.output = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(clients: &Clients, port: u16) -> std::sync::Arc<ClientInfo> {
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        clients.add(addr, addr)
    }

    #[test]
    fn the_client_holding_the_most_is_evicted_once() {
        let clients = Clients::default();
        let memory = ClientMemory::default();
        let (small, big) = (client(&clients, 1), client(&clients, 2));
        let (mut small_held, mut big_held) = (Held::default(), Held::default());
        assert!(small_held.report(&small, &memory, 0, 0, 100));
        assert!(big_held.report(&big, &memory, 50, 64, 900));
        assert_eq!(memory.held(), 1050);
        assert_eq!(memory.evict_over(2000, &clients), None);
        assert_eq!(memory.evict_over(1000, &clients), Some(big.id));
        assert!(big.kill.is_cancelled());
        // Its bytes are on their way out: nobody else goes for them.
        assert_eq!(memory.evict_over(1000, &clients), None);
        assert!(!small.kill.is_cancelled());
        big_held.release(&memory);
        assert_eq!(memory.held(), 100);
        assert_eq!(memory.evicted(), 1);
        assert_eq!(memory.evict_over(0, &clients), None, "0 is no limit");
    }

    #[test]
    fn replies_nobody_took_yet_evict_nobody_until_they_are_someones() {
        let clients = Clients::default();
        let memory = ClientMemory::default();
        let (reader, hog) = (client(&clients, 1), client(&clients, 2));
        let (mut reader_held, mut hog_held) = (Held::default(), Held::default());
        assert!(reader_held.report(&reader, &memory, 0, 16384, 10));
        assert_eq!(memory.evict_with(1000, &clients, 5000), None);
        assert!(!reader.kill.is_cancelled());
        // The hog's session took them: it goes.
        assert!(hog_held.report(&hog, &memory, 0, 0, 5000));
        assert_eq!(memory.evict_with(1000, &clients, 0), Some(hog.id));
    }

    #[test]
    fn reports_only_changes() {
        let clients = Clients::default();
        let memory = ClientMemory::default();
        let info = client(&clients, 1);
        let mut held = Held::default();
        assert!(!held.report(&info, &memory, 0, 16384, 0));
        assert!(held.report(&info, &memory, 0, 16384, 10));
        assert!(!held.report(&info, &memory, 0, 16384, 4));
        assert_eq!(memory.held(), 4);
        assert_eq!(info.buffers.held(), 4);
    }
}
