//! Whole-keyspace commands on a cluster: SCAN with one cursor over every
//! primary, INFO's keyspace summed, KEYS, DBSIZE and RANDOMKEY.

mod common;

use std::collections::BTreeSet;

use common::{show, RawClient, TestProxy};
use resp::Frame;
use test_util::{Cluster, Flavor};

const KEYS: usize = 3000;

async fn load(client: &mut RawClient) {
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(100) {
        let mut mset = vec!["MSET".to_string()];
        for i in chunk {
            mset.push(format!("key:{i}"));
            mset.push(i.to_string());
        }
        let args: Vec<&str> = mset.iter().map(String::as_str).collect();
        assert_eq!(show(&client.call(&args).await), "OK");
    }
    for i in 0..10 {
        client.call(&["HSET", &format!("hash:{i}"), "f", "v"]).await;
    }
}

/// Every key a full SCAN returns, in order, with the extra arguments given.
async fn scan_all(client: &mut RawClient, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let Frame::Array(parts) = client.call(&args).await else {
            panic!("SCAN answers [cursor, keys]")
        };
        let next = show(&parts[0]);
        let Frame::Array(page) = &parts[1] else {
            panic!("keys")
        };
        keys.extend(page.iter().map(show));
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_walks_every_primary_once() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    load(&mut client).await;

    let keys = scan_all(&mut client, &["COUNT", "100"]).await;
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), unique.len(), "no key twice");
    assert_eq!(unique.len(), KEYS + 10, "every key");

    let matched = scan_all(&mut client, &["MATCH", "key:1*", "COUNT", "500"]).await;
    let expected: BTreeSet<String> = (0..KEYS)
        .map(|i| format!("key:{i}"))
        .filter(|k| k.starts_with("key:1"))
        .collect();
    assert_eq!(matched.iter().cloned().collect::<BTreeSet<_>>(), expected);

    let hashes = scan_all(&mut client, &["TYPE", "hash"]).await;
    assert_eq!(hashes.len(), 10);
    assert!(show(&client.call(&["SCAN", "abc"]).await).starts_with("-ERR invalid cursor"));

    assert_eq!(show(&client.call(&["DBSIZE"]).await), (KEYS + 10).to_string());
    let Frame::Array(all) = client.call(&["KEYS", "hash:*"]).await else {
        panic!()
    };
    assert_eq!(all.len(), 10);
    assert!(show(&client.call(&["RANDOMKEY"]).await).contains(':'));
    let info = show(&client.call(&["INFO", "keyspace"]).await);
    assert!(info.contains(&format!("db0:keys={}", KEYS + 10)), "{info}");
}

/// SCAN 0 with `extra` on `addr`: the cursor, and the keys sorted.
async fn first_page(addr: &str, extra: &[&str]) -> (String, Vec<String>) {
    let mut client = RawClient::connect(addr).await;
    let mut args = vec!["SCAN", "0"];
    args.extend_from_slice(extra);
    let Frame::Array(parts) = client.call(&args).await else {
        panic!("SCAN answers [cursor, keys]")
    };
    let Frame::Array(page) = &parts[1] else {
        panic!("keys")
    };
    let mut keys: Vec<String> = page.iter().map(show).collect();
    keys.sort();
    (show(&parts[0]), keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_keyspace_comes_back_in_one_call_as_from_one_server() {
    let server = test_util::Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    for addr in [server.addr(), proxy.addr.clone()] {
        let mut client = RawClient::connect(&addr).await;
        // a, b and c live on three different primaries.
        assert_eq!(
            show(&client.call(&["MSET", "a", "1", "b", "2", "c", "3"]).await),
            "OK"
        );
        assert_eq!(show(&client.call(&["SELECT", "2"]).await), "OK");
        assert_eq!(
            show(&client.call(&["MSET", "x", "1", "y", "2", "z", "3"]).await),
            "OK"
        );
    }
    for extra in [&[][..], &["COUNT", "5"], &["MATCH", "[ab]"]] {
        let expected = first_page(&server.addr(), extra).await;
        assert_eq!(expected.0, "0", "{extra:?}");
        assert_eq!(first_page(&proxy.addr, extra).await, expected, "{extra:?}");
    }
    // An emulated database, in one call too.
    let mut client = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&client.call(&["SELECT", "2"]).await), "OK");
    let Frame::Array(parts) = client.call(&["SCAN", "0"]).await else {
        panic!("SCAN answers [cursor, keys]")
    };
    assert_eq!(show(&parts[0]), "0");
    assert_eq!(show(&parts[1]).len(), "[x y z]".len(), "{}", show(&parts[1]));
    // COUNT still bounds a call that crosses nodes.
    let (cursor, keys) = first_page(&proxy.addr, &["COUNT", "1"]).await;
    assert_ne!(cursor, "0");
    assert_eq!(keys.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_stays_inside_an_emulated_database() {
    let cluster = Cluster::start(Flavor::Redis, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    client.call(&["SET", "zero", "0"]).await;
    client.call(&["SELECT", "4"]).await;
    load(&mut client).await;
    let keys = scan_all(&mut client, &["MATCH", "hash:*", "COUNT", "1000"]).await;
    let expected: BTreeSet<String> = (0..10).map(|i| format!("hash:{i}")).collect();
    assert_eq!(keys.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(keys.len(), 10);
    client.call(&["SELECT", "0"]).await;
    assert_eq!(scan_all(&mut client, &[]).await, ["zero"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evalsha_survives_a_node_that_forgot_the_script() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    let sha = show(&client.call(&["SCRIPT", "LOAD", "return KEYS[1]"]).await);
    assert_eq!(show(&client.call(&["SCRIPT", "EXISTS", &sha]).await), "[1]");
    let eval_sha = show(&client.call(&["EVAL", "return 'from eval'", "0"]).await);
    assert_eq!(eval_sha, "from eval");
    // Every node forgets every script (as a restart would).
    for node in cluster.primaries() {
        test_util::client::must(&node.addr(), &["SCRIPT", "FLUSH"]);
    }
    assert_eq!(show(&client.call(&["SCRIPT", "EXISTS", &sha]).await), "[0]");
    for key in ["a", "b", "c", "d"] {
        assert_eq!(show(&client.call(&["EVALSHA", &sha, "1", key]).await), key);
    }
    let eval_script_sha = "1e0a8a8a0b5d2d6ae0f4d0ed7ed4ee7a3d0ea6e0";
    let unknown = show(&client.call(&["EVALSHA", eval_script_sha, "0"]).await);
    assert!(
        unknown.starts_with("-NOSCRIPT"),
        "an unknown script stays unknown: {unknown}"
    );
    let from_eval = sha1_of("return 'from eval'");
    assert_eq!(
        show(&client.call(&["EVALSHA", &from_eval, "0"]).await),
        "from eval"
    );
}

/// The script id Valkey gives `body`, through SCRIPT LOAD on a server.
fn sha1_of(body: &str) -> String {
    let server = test_util::Server::start(Flavor::Valkey);
    test_util::client::must(&server.addr(), &["SCRIPT", "LOAD", body])
}
