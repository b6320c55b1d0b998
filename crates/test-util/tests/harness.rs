//! The harness itself: servers, replication and clusters come up for both
//! flavors, and a killed server comes back on its port.

use valkey_proxy_test_util::{client::must, Cluster, Flavor, Replicated, Server};

#[test]
fn standalone_restart_keeps_port() {
    for flavor in Flavor::ALL {
        let mut server = Server::start(flavor);
        let port = server.port();
        assert_eq!(must(&server.addr(), &["SET", "k", "v"]), "OK");
        server.kill();
        assert!(valkey_proxy_test_util::command(&server.addr(), &["PING"]).is_err());
        server.restart();
        assert_eq!(server.port(), port);
        assert_eq!(must(&server.addr(), &["PING"]), "PONG");
    }
}

#[test]
fn replication_links_up() {
    for flavor in Flavor::ALL {
        let group = Replicated::start(flavor, 2);
        assert!(must(&group.primary.addr(), &["INFO", "replication"]).contains("connected_slaves:2"));
    }
}

#[test]
fn clusters_cover_every_slot() {
    for flavor in Flavor::ALL {
        let cluster = Cluster::start(flavor, 3, 1);
        assert_eq!(cluster.nodes.len(), 6);
        let info = must(&cluster.nodes[5].addr(), &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_size:3"), "{info}");
    }
}
