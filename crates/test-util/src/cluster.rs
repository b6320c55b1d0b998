//! A cluster of N primaries with R replicas each, created the way
//! `redis-cli --cluster create` would (slots split evenly, every node met,
//! replicas attached) but without needing `redis-cli`.

use std::time::{Duration, Instant};

use crate::client::must;
use crate::{Flavor, Relay, Server};

/// The number of hash slots.
const SLOTS: usize = 16384;

/// A running cluster. Nodes `0..primaries` start as primaries; replicas of
/// primary `i` follow in [`Cluster::replicas_of`].
#[derive(Debug)]
pub struct Cluster {
    /// Every node, primaries first, then replicas in primary order.
    pub nodes: Vec<Server>,
    primaries: usize,
    replicas: usize,
}

impl Cluster {
    /// Starts `primaries` x (1 + `replicas`) nodes and waits until every node
    /// reports `cluster_state:ok` with all slots covered and all nodes known.
    pub fn start(flavor: Flavor, primaries: usize, replicas: usize) -> Cluster {
        Cluster::start_with(flavor, primaries, replicas, &[])
    }

    /// Like [`Cluster::start`], with extra configuration for every node
    /// (`("cluster-databases", "16")`, ...).
    ///
    /// # Panics
    /// The cluster does not become healthy within 30 seconds.
    pub fn start_with(flavor: Flavor, primaries: usize, replicas: usize, extra: &[(&str, &str)]) -> Cluster {
        let mut config = vec![("cluster-enabled", "yes"), ("cluster-node-timeout", "2000")];
        config.extend_from_slice(extra);
        let total = primaries * (1 + replicas);
        let nodes: Vec<Server> = (0..total).map(|_| Server::start_with(flavor, &config)).collect();
        let cluster = Cluster {
            nodes,
            primaries,
            replicas,
        };
        cluster.assign_slots();
        cluster.meet_all();
        cluster.attach_replicas();
        cluster.wait_healthy();
        cluster
    }

    fn assign_slots(&self) {
        for (i, node) in self.primaries().iter().enumerate() {
            let first = i * SLOTS / self.primaries;
            let last = (i + 1) * SLOTS / self.primaries - 1;
            must(
                &node.addr(),
                &["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()],
            );
        }
    }

    fn meet_all(&self) {
        let first = self.nodes[0].addr();
        for node in &self.nodes[1..] {
            let bus = node.bus_port().unwrap_or(node.port() + 10_000).to_string();
            must(
                &first,
                &["CLUSTER", "MEET", "127.0.0.1", &node.port().to_string(), &bus],
            );
        }
    }

    fn attach_replicas(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in 0..self.primaries {
            let primary_id = must(&self.nodes[p].addr(), &["CLUSTER", "MYID"]);
            for replica in self.replicas_of(p) {
                // A replica can only follow a node it has heard of.
                while !must(&replica.addr(), &["CLUSTER", "NODES"]).contains(&primary_id) {
                    assert!(
                        Instant::now() < deadline,
                        "{} never learned of {primary_id}",
                        replica.addr()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                must(&replica.addr(), &["CLUSTER", "REPLICATE", &primary_id]);
            }
        }
    }

    /// Waits until every node sees a healthy cluster with every node in it.
    ///
    /// # Panics
    /// Not healthy within 30 seconds.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        for node in &self.nodes {
            loop {
                let info = must(&node.addr(), &["CLUSTER", "INFO"]);
                let linked = !self.is_replica(node)
                    || must(&node.addr(), &["INFO", "replication"]).contains("master_link_status:up");
                if info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && info.contains(&known)
                    && linked
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster not healthy at {}: {info}",
                    node.addr()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn is_replica(&self, node: &Server) -> bool {
        self.nodes[self.primaries..]
            .iter()
            .any(|r| r.port() == node.port())
    }

    /// The nodes that started as primaries.
    pub fn primaries(&self) -> &[Server] {
        &self.nodes[..self.primaries]
    }

    /// The replicas that started under primary `index`.
    pub fn replicas_of(&self, index: usize) -> &[Server] {
        let start = self.primaries + index * self.replicas;
        &self.nodes[start..start + self.replicas]
    }

    /// Puts node `index` behind a fault [`Relay`]: the node announces the
    /// relay's port, so clients (the proxy among them) reach it through
    /// the relay, while the cluster bus does not (its peers keep seeing it
    /// healthy). Returns once every node shows the relay's port.
    ///
    /// # Panics
    /// The port did not spread within 20 seconds.
    pub fn relay_for(&self, index: usize) -> Relay {
        let node = &self.nodes[index];
        let relay = Relay::start(&node.addr());
        let port = relay.port().to_string();
        must(&node.addr(), &["CONFIG", "SET", "cluster-announce-port", &port]);
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &self.nodes {
            while !must(&node.addr(), &["CLUSTER", "SHARDS"]).contains(&port) {
                assert!(Instant::now() < deadline, "the relay's port never spread");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        relay
    }

    /// Every node's address, primaries first.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(Server::addr).collect()
    }
}

/// The cluster node id of the node at `addr`.
///
/// # Panics
/// The node does not answer `CLUSTER MYID`.
pub fn node_id(addr: &str) -> String {
    must(addr, &["CLUSTER", "MYID"])
}

/// Starts Valkey 9's atomic migration of slots `first..=last` from the
/// node at `from` to the node whose id is `target`; returns at once.
///
/// # Panics
/// The node refuses it.
pub fn migrate_slots(from: &str, (first, last): (&str, &str), target: &str) {
    let reply = must(
        from,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            first,
            last,
            "NODE",
            target,
        ],
    );
    assert_eq!(reply, "OK", "CLUSTER MIGRATESLOTS on {from}");
}
