//! [`Lane`]: which worker runtime a session runs on, and so which of the
//! pool's shared backend connections it uses.
//!
//! With several worker runtimes (`--threads N`), each worker has its own
//! shared connections to every node: a session's requests then never wake a
//! connection task on another thread, and no task moves between threads.
//! The pool keeps `connections_per_node x N` shared connections per node
//! and picks one by the request's affinity modulo that count, so an
//! affinity that is `lane` modulo `N` always picks one of lane's own.

/// A session's worker, out of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lane {
    /// This worker, from 0.
    pub index: u64,
    /// How many workers there are (at least 1).
    pub count: u64,
}

impl Default for Lane {
    /// The only lane: every session on one runtime.
    fn default() -> Self {
        Lane { index: 0, count: 1 }
    }
}

impl Lane {
    /// The affinity of client `id` ([`router::Command::affinity`]): the
    /// same for all its requests, so they keep their order on each node,
    /// and equal to this lane's index modulo the lane count.
    pub fn affinity(self, id: u64) -> u64 {
        id.wrapping_mul(self.count).wrapping_add(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_keeps_to_its_own_connections() {
        let connections_per_node = 2;
        for count in 1..=4u64 {
            let slots = connections_per_node * count;
            for index in 0..count {
                let lane = Lane { index, count };
                let picked: std::collections::BTreeSet<u64> =
                    (1..100).map(|id| lane.affinity(id) % slots).collect();
                assert!(
                    picked.iter().all(|slot| slot % count == index),
                    "{lane:?}: {picked:?}"
                );
                assert_eq!(
                    picked.len() as u64,
                    connections_per_node,
                    "{lane:?} uses all of its own"
                );
            }
        }
    }
}
