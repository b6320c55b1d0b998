//! The topology snapshot.

use std::fmt;
use std::sync::Arc;

/// Number of hash slots in a Valkey cluster.
pub const SLOT_COUNT: usize = 16384;

/// Marks a slot that no shard serves.
const UNASSIGNED: u16 = u16::MAX;

/// What kind of backend the proxy fronts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// One server.
    Standalone,
    /// One primary and its replicas (one shard, no slots).
    Replicated,
    /// A cluster: shards own slots.
    Cluster,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Standalone => "standalone",
            Mode::Replicated => "replicated",
            Mode::Cluster => "cluster",
        })
    }
}

/// A primary and its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// `host:port` of the primary.
    pub primary: Arc<str>,
    /// `host:port` of each replica that is online.
    pub replicas: Vec<Arc<str>>,
}

/// An immutable picture of the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    mode: Mode,
    shards: Vec<Shard>,
    /// Shard index per slot (cluster mode), or empty.
    slots: Vec<u16>,
    /// Databases each node offers (`databases`, or `cluster-databases` on a
    /// cluster; 1 when the server has no such setting).
    databases: u32,
    /// The cluster's `cluster-node-timeout`, when a node told: how long a
    /// silent primary keeps its slots before a replica takes over.
    node_timeout: Option<std::time::Duration>,
    version: u64,
}

impl Topology {
    /// A standalone or replicated backend: one shard serving everything.
    pub fn single(mode: Mode, shard: Shard, databases: u32) -> Topology {
        Topology {
            mode,
            shards: vec![shard],
            slots: Vec::new(),
            databases,
            node_timeout: None,
            version: 0,
        }
    }

    /// A cluster from `(first_slot, last_slot, shard)` ranges. Ranges of the
    /// same primary are merged into one shard.
    pub fn cluster(ranges: Vec<(u16, u16, Shard)>, databases: u32) -> Topology {
        // Nodes list shards in no fixed order: index shards by sorted primary
        // address, so the same cluster always gives the same topology (and a
        // refresh that finds nothing new changes nothing).
        let mut shards: Vec<Shard> = Vec::new();
        for (_, _, shard) in &ranges {
            if !shards.iter().any(|s| s.primary == shard.primary) {
                let mut shard = shard.clone();
                shard.replicas.sort();
                shards.push(shard);
            }
        }
        shards.sort_by(|a, b| a.primary.cmp(&b.primary));
        let mut slots = vec![UNASSIGNED; SLOT_COUNT];
        for (first, last, shard) in &ranges {
            let Some(index) = shards.iter().position(|s| s.primary == shard.primary) else {
                continue;
            };
            for slot in *first..=(*last).min(SLOT_COUNT as u16 - 1) {
                slots[usize::from(slot)] = index as u16;
            }
        }
        Topology {
            mode: Mode::Cluster,
            shards,
            slots,
            databases,
            node_timeout: None,
            version: 0,
        }
    }

    /// A topology with nothing in it: discovery has not succeeded yet.
    pub fn empty() -> Topology {
        Topology {
            mode: Mode::Standalone,
            shards: Vec::new(),
            slots: Vec::new(),
            databases: 1,
            node_timeout: None,
            version: 0,
        }
    }

    /// The same topology with the cluster's node timeout.
    pub fn with_node_timeout(mut self, node_timeout: Option<std::time::Duration>) -> Topology {
        self.node_timeout = node_timeout;
        self
    }

    /// The cluster's `cluster-node-timeout`, when a node told (never on a
    /// standalone or replicated backend).
    pub fn node_timeout(&self) -> Option<std::time::Duration> {
        self.node_timeout
    }

    /// The same topology with another version number.
    pub fn with_version(mut self, version: u64) -> Topology {
        self.version = version;
        self
    }

    /// Increases on every change the handle publishes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The backend's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Every shard.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// True before the first successful discovery.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Databases each node offers.
    pub fn databases(&self) -> u32 {
        self.databases
    }

    /// The shard that owns `slot`. Outside cluster mode, the only shard.
    pub fn shard_for_slot(&self, slot: u16) -> Option<&Shard> {
        if self.mode != Mode::Cluster {
            return self.shards.first();
        }
        let index = *self.slots.get(usize::from(slot))?;
        self.shards.get(usize::from(index))
    }

    /// Index of the shard that owns `slot`, if any.
    pub fn shard_index_for_slot(&self, slot: u16) -> Option<usize> {
        if self.mode != Mode::Cluster {
            return (!self.shards.is_empty()).then_some(0);
        }
        match *self.slots.get(usize::from(slot))? {
            UNASSIGNED => None,
            index => Some(usize::from(index)),
        }
    }

    /// A copy where `slot` is owned by the shard whose primary is `addr`
    /// (adding that shard if unknown), as a MOVED reply says.
    pub fn with_slot_moved(&self, slot: u16, addr: &str) -> Topology {
        let mut next = self.clone();
        if next.mode != Mode::Cluster || usize::from(slot) >= SLOT_COUNT {
            return next;
        }
        let index = match next.shards.iter().position(|s| &*s.primary == addr) {
            Some(i) => i,
            None => {
                next.shards.push(Shard {
                    primary: addr.into(),
                    replicas: Vec::new(),
                });
                next.shards.len() - 1
            }
        };
        next.slots[usize::from(slot)] = index as u16;
        next
    }

    /// True when both describe the same backend (ignoring the version).
    pub fn same_layout(&self, other: &Topology) -> bool {
        self.mode == other.mode
            && self.shards == other.shards
            && self.slots == other.slots
            && self.databases == other.databases
            && self.node_timeout == other.node_timeout
    }

    /// Every node address, primaries first.
    pub fn addrs(&self) -> Vec<Arc<str>> {
        let primaries = self.shards.iter().map(|s| s.primary.clone());
        let replicas = self.shards.iter().flat_map(|s| s.replicas.iter().cloned());
        primaries.chain(replicas).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(primary: &str) -> Shard {
        Shard {
            primary: primary.into(),
            replicas: Vec::new(),
        }
    }

    #[test]
    fn cluster_maps_slots_to_shards() {
        let topology = Topology::cluster(
            vec![
                (0, 100, shard("a:1")),
                (101, 16383, shard("b:1")),
                (5000, 5000, shard("a:1")),
            ],
            1,
        );
        assert_eq!(topology.shards().len(), 2);
        assert_eq!(&*topology.shard_for_slot(50).unwrap().primary, "a:1");
        assert_eq!(&*topology.shard_for_slot(5000).unwrap().primary, "a:1");
        assert_eq!(&*topology.shard_for_slot(5001).unwrap().primary, "b:1");
    }

    #[test]
    fn moved_updates_one_slot() {
        let topology = Topology::cluster(vec![(0, 16383, shard("a:1"))], 1);
        let moved = topology.with_slot_moved(7, "c:1");
        assert_eq!(&*moved.shard_for_slot(7).unwrap().primary, "c:1");
        assert_eq!(&*moved.shard_for_slot(8).unwrap().primary, "a:1");
        assert!(!moved.same_layout(&topology));
    }

    #[test]
    fn unassigned_slots_have_no_owner() {
        let topology = Topology::cluster(vec![(0, 10, shard("a:1"))], 1);
        assert!(topology.shard_for_slot(11).is_none());
    }
}
