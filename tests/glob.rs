//! Where the proxy matches glob patterns itself (KEYS and SCAN MATCH in a
//! database emulated on a cluster, ACL key patterns, PSUBSCRIBE in a
//! tenant), it matches as the server does, and a pattern built to make a
//! backtracking matcher run for hours ends at once without holding up
//! other clients.

mod common;

use std::time::Duration;

use common::{show, RawClient, TestProxy};
use middleware::namespace::glob;
use resp::Frame;
use test_util::{Cluster, Flavor, Server};

/// A tiny deterministic generator: the same keys and patterns every run.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }

    /// Up to `longest` bytes from `alphabet`.
    fn text(&mut self, alphabet: &[u8], longest: usize) -> Vec<u8> {
        let len = self.below(longest + 1);
        (0..len).map(|_| alphabet[self.below(alphabet.len())]).collect()
    }
}

fn keys_of(reply: Frame) -> Vec<Vec<u8>> {
    let Frame::Array(items) = reply else {
        panic!("KEYS gave {}", show(&reply))
    };
    let mut keys: Vec<Vec<u8>> = items
        .iter()
        .map(|item| item.as_bytes().expect("a key").to_vec())
        .collect();
    keys.sort();
    keys
}

#[test]
fn the_matcher_agrees_with_the_server_on_random_patterns() {
    let server = Server::start(Flavor::Valkey);
    let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
    // Keys and patterns from a small alphabet with every special byte, so
    // that classes, ranges, escapes and stars meet often; 0xc3 and 0x7f
    // for the signed comparison of ranges.
    let key_bytes = b"ab-]^\\*?[\xc3\x7f";
    let pattern_bytes = b"ab-]^\\*?[\xc3";
    let mut keys = std::collections::BTreeSet::new();
    while keys.len() < 300 {
        let key = random.text(key_bytes, 6);
        if !key.is_empty() {
            keys.insert(key);
        }
    }
    for key in &keys {
        let args: [&[u8]; 3] = [b"SET", key, b"1"];
        test_util::client::command(&server.addr(), &args).expect("SET");
    }
    let mut matched_some = 0;
    for _ in 0..600 {
        let pattern = random.text(pattern_bytes, 7);
        let args: [&[u8]; 2] = [b"KEYS", &pattern];
        let from_server = keys_of(test_util::client::command(&server.addr(), &args).expect("KEYS"));
        let ours: Vec<Vec<u8>> = keys
            .iter()
            .filter(|key| glob::matches(&pattern, key))
            .cloned()
            .collect();
        assert_eq!(
            ours,
            from_server,
            "pattern {:?}",
            String::from_utf8_lossy(&pattern)
        );
        matched_some += usize::from(!ours.is_empty());
    }
    // Not a test of empty sets only.
    assert!(matched_some > 100, "only {matched_some} patterns matched a key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abusive_pattern_in_an_emulated_database_ends_at_once() {
    // No `cluster-databases`: database 1 is emulated, and the proxy
    // matches its keys itself.
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&client.call(&["SELECT", "1"]).await), "OK");
    let key = "a".repeat(40);
    assert_eq!(show(&client.call(&["SET", &key, "1"]).await), "OK");
    let abusive = format!("{}b", "a*".repeat(20));
    client.send(&["KEYS", &abusive]).await;
    // Meanwhile another client is served.
    let mut other = RawClient::connect(&proxy.addr).await;
    for _ in 0..20 {
        assert_eq!(show(&other.call(&["PING"]).await), "PONG");
    }
    // A backtracking matcher tries 2^20 placements of the stars for the
    // one key: minutes, where the server's matcher takes microseconds.
    let reply = client
        .next_within(Duration::from_secs(10))
        .await
        .expect("KEYS answered");
    assert_eq!(show(&reply), "[]");
    let matching = format!("{}a", "a*".repeat(20));
    assert_eq!(show(&client.call(&["KEYS", &matching]).await), format!("[{key}]"));
}
