//! A primary with replicas, replication established before it is returned.

use std::time::{Duration, Instant};

use crate::client::must;
use crate::{Flavor, Server};

/// One primary and its replicas.
#[derive(Debug)]
pub struct Replicated {
    /// The primary.
    pub primary: Server,
    /// The replicas, each replicating the primary.
    pub replicas: Vec<Server>,
}

impl Replicated {
    /// Starts a primary and `replicas` replicas and waits until every replica
    /// reports `master_link_status:up` and the primary counts them all.
    ///
    /// # Panics
    /// Replication does not come up within 20 seconds.
    pub fn start(flavor: Flavor, replicas: usize) -> Replicated {
        let primary = Server::start(flavor);
        let replicas: Vec<Server> = (0..replicas).map(|_| Server::start(flavor)).collect();
        for replica in &replicas {
            must(
                &replica.addr(),
                &["REPLICAOF", "127.0.0.1", &primary.port().to_string()],
            );
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for replica in &replicas {
            while !must(&replica.addr(), &["INFO", "replication"]).contains("master_link_status:up") {
                assert!(
                    Instant::now() < deadline,
                    "replica {} never linked",
                    replica.addr()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // A replica may report its link up a moment before the primary's
        // ROLE (what discovery reads) lists it.
        let listed = || {
            let role = crate::client::command(&primary.addr(), &["ROLE"]).ok();
            let ports: Vec<String> = role
                .as_ref()
                .and_then(|role| role.as_array()?.get(2)?.as_array())
                .unwrap_or_default()
                .iter()
                .filter_map(|entry| {
                    let port = entry.as_array()?.get(1)?;
                    Some(String::from_utf8_lossy(port.as_bytes()?).into_owned())
                })
                .collect();
            replicas
                .iter()
                .all(|replica| ports.contains(&replica.port().to_string()))
        };
        while !listed() {
            assert!(
                Instant::now() < deadline,
                "the primary's ROLE never listed every replica"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Replicated { primary, replicas }
    }

    /// Every address, the primary first.
    pub fn addrs(&self) -> Vec<String> {
        std::iter::once(&self.primary)
            .chain(&self.replicas)
            .map(Server::addr)
            .collect()
    }
}
