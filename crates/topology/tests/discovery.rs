//! Discovery against real servers of both flavors.

use std::sync::Arc;

use test_util::{Cluster, Flavor, Replicated, Server};
use valkey_proxy_topology::{discover, DiscoveryConfig, Mode, RefreshConfig, TcpProbe, TopologyHandle};

fn auto(seeds: Vec<String>) -> DiscoveryConfig {
    DiscoveryConfig { mode: None, seeds }
}

#[tokio::test]
async fn standalone_is_found() {
    let server = Server::start(Flavor::Valkey);
    let topology = discover(&auto(vec![server.addr()]), &TcpProbe::default())
        .await
        .unwrap();
    assert_eq!(topology.mode(), Mode::Standalone);
    assert_eq!(topology.databases(), 16);
    assert_eq!(&*topology.shards()[0].primary, server.addr());
}

#[tokio::test]
async fn replicas_are_found_from_a_replica_seed() {
    for flavor in Flavor::ALL {
        let group = Replicated::start(flavor, 2);
        let seed = group.replicas[0].addr();
        let topology = discover(&auto(vec![seed]), &TcpProbe::default()).await.unwrap();
        assert_eq!(topology.mode(), Mode::Replicated);
        assert_eq!(&*topology.shards()[0].primary, group.primary.addr());
        assert_eq!(topology.shards()[0].replicas.len(), 2);
    }
}

#[tokio::test]
async fn cluster_slots_match_the_servers() {
    for (flavor, databases) in [(Flavor::Valkey, 16), (Flavor::Redis, 1)] {
        let extra: &[(&str, &str)] = if flavor == Flavor::Valkey {
            &[("cluster-databases", "16")]
        } else {
            &[]
        };
        let cluster = Cluster::start_with(flavor, 3, 1, extra);
        let topology = discover(&auto(vec![cluster.addrs()[4].clone()]), &TcpProbe::default())
            .await
            .unwrap();
        assert_eq!(topology.mode(), Mode::Cluster);
        assert_eq!(topology.shards().len(), 3);
        assert_eq!(topology.databases(), databases);
        for shard in topology.shards() {
            assert_eq!(shard.replicas.len(), 1, "{shard:?}");
        }
        let owner = topology.shard_for_slot(0).unwrap();
        assert_eq!(&*owner.primary, cluster.primaries()[0].addr());
        let owner = topology.shard_for_slot(16383).unwrap();
        assert_eq!(&*owner.primary, cluster.primaries()[2].addr());
        // Refreshing an unchanged cluster, from any node, changes nothing.
        let handle = TopologyHandle::new(
            auto(cluster.addrs()),
            Arc::new(TcpProbe::default()),
            RefreshConfig::default(),
        );
        let first = handle.refresh_now().await.unwrap().version();
        for _ in 0..5 {
            assert_eq!(handle.refresh_now().await.unwrap().version(), first);
        }
    }
}

#[tokio::test]
async fn configured_mode_must_match() {
    let server = Server::start(Flavor::Valkey);
    let config = DiscoveryConfig {
        mode: Some(Mode::Cluster),
        seeds: vec![server.addr()],
    };
    let error = discover(&config, &TcpProbe::default()).await.unwrap_err();
    assert!(error.to_string().contains("configured mode cluster"), "{error}");
}

#[tokio::test]
async fn refresh_requests_collapse_into_few_fetches() {
    let server = Server::start(Flavor::Valkey);
    let handle = TopologyHandle::new(
        auto(vec![server.addr()]),
        Arc::new(TcpProbe::default()),
        RefreshConfig {
            interval: std::time::Duration::from_secs(60),
            min_interval: std::time::Duration::from_millis(300),
        },
    );
    handle.refresh_now().await.unwrap();
    let _task = handle.spawn_refresher();
    for _ in 0..1000 {
        handle.request_refresh();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for _ in 0..1000 {
        handle.request_refresh();
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // One initial fetch, then at most one per 300 ms window.
    let fetches = handle.fetches();
    assert!((2..=4).contains(&fetches), "{fetches} fetches");
}
