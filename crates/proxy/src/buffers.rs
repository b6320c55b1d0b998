//! [`Buffers`]: the memory a client's connection holds, as CLIENT LIST
//! reports it (`qbuf`, `rbs`, `omem`, `multi-mem`, `tot-mem`, ...). The
//! session records its buffers' sizes once per read and per write, with
//! relaxed stores; CLIENT LIST reads them from any session.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The sizes of one client's buffers.
#[derive(Debug, Default)]
pub struct Buffers {
    /// Bytes read but not yet a whole request.
    query: AtomicUsize,
    /// What the read buffer holds allocated.
    query_capacity: AtomicUsize,
    /// Replies waiting to be written.
    output: AtomicUsize,
    /// Chosen to be closed for holding the most when the clients' buffers
    /// passed `maxmemory_clients` ([`crate::memory`]).
    evicted: AtomicBool,
}

impl Buffers {
    /// Records the read buffer: `len` bytes waiting, `capacity` allocated.
    pub fn set_query(&self, len: usize, capacity: usize) {
        self.query.store(len, Ordering::Relaxed);
        self.query_capacity.store(capacity, Ordering::Relaxed);
    }

    /// Records the replies waiting to be written.
    pub fn set_output(&self, len: usize) {
        self.output.store(len, Ordering::Relaxed);
    }

    /// Bytes held: replies waiting and a request not yet whole.
    pub fn held(&self) -> usize {
        self.query.load(Ordering::Relaxed) + self.output.load(Ordering::Relaxed)
    }

    /// Marks the client evicted; false when it already was.
    pub fn evict(&self) -> bool {
        !self.evicted.swap(true, Ordering::Relaxed)
    }

    /// True once the client was chosen for eviction.
    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }

    /// CLIENT LIST's memory fields, from `qbuf` to `tot-mem`, with
    /// `multi_mem` bytes queued in MULTI.
    pub fn fields(&self, multi_mem: usize) -> String {
        let query = self.query.load(Ordering::Relaxed);
        let capacity = self.query_capacity.load(Ordering::Relaxed).max(query);
        let output = self.output.load(Ordering::Relaxed);
        format!(
            "qbuf={query} qbuf-free={} argv-mem=0 multi-mem={multi_mem} rbs={capacity} rbp={capacity} \
             obl={output} oll=0 omem={output} tot-mem={}",
            capacity - query,
            capacity + output + multi_mem,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_add_up() {
        let buffers = Buffers::default();
        buffers.set_query(10, 100);
        buffers.set_output(7);
        assert_eq!(
            buffers.fields(5),
            "qbuf=10 qbuf-free=90 argv-mem=0 multi-mem=5 rbs=100 rbp=100 obl=7 oll=0 omem=7 tot-mem=112"
        );
    }
}
