//! Multi-key commands with keys in several slots, through the proxy on a
//! 3-primary cluster, give what one standalone server gives on the same
//! random data.

mod common;

use common::{show, RawClient, TestProxy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use resp::Frame;
use test_util::{Cluster, Flavor, Server};

/// Commands that fill both sides with the same random data. Key names
/// carry no hash tag, so they spread over the slots.
fn data(seed: u64) -> Vec<Vec<String>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = vec![vec!["FLUSHALL".to_string()]];
    for i in 0..6 {
        let mut sadd = vec!["SADD".to_string(), format!("set{i}")];
        let mut zadd = vec!["ZADD".to_string(), format!("zset{i}")];
        for _ in 0..rng.random_range(1..25) {
            sadd.push(format!("m{}", rng.random_range(0..30)));
            zadd.push(rng.random_range(-50..50).to_string());
            zadd.push(format!("m{}", rng.random_range(0..30)));
        }
        out.push(sadd);
        out.push(zadd);
        let mut pfadd = vec!["PFADD".to_string(), format!("hll{i}")];
        pfadd.extend((0..rng.random_range(1..200)).map(|_| format!("e{}", rng.random_range(0..300))));
        out.push(pfadd);
        let bits: String = (0..rng.random_range(1..12))
            .map(|_| rng.random_range(b'a'..=b'z') as char)
            .collect();
        out.push(vec!["SET".into(), format!("str{i}"), bits]);
        out.push(vec![
            "RPUSH".into(),
            format!("list{i}"),
            "x".into(),
            format!("y{i}"),
            "z".into(),
        ]);
        out.push(vec![
            "XADD".into(),
            format!("stream{i}"),
            format!("{}-1", i + 1),
            "f".into(),
            format!("v{i}"),
        ]);
    }
    out.push(vec![
        "SET".into(),
        "withttl".into(),
        "v".into(),
        "EX".into(),
        "1000".into(),
    ]);
    out
}

/// The commands compared, each followed by a read of what it stored.
fn commands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["SUNION", "set0", "set1", "set2"],
        vec!["SINTER", "set0", "set1"],
        vec!["SDIFF", "set0", "set1", "set3"],
        vec!["SUNIONSTORE", "dest", "set0", "set4", "set5"],
        vec!["SMEMBERS", "dest"],
        vec!["SINTERSTORE", "dest", "set1", "set2"],
        vec!["SMEMBERS", "dest"],
        vec!["SDIFFSTORE", "dest", "set2", "set0"],
        vec!["SMEMBERS", "dest"],
        vec!["SINTERCARD", "2", "set0", "set1"],
        vec!["SINTERCARD", "3", "set0", "set1", "set2", "LIMIT", "2"],
        vec!["SUNION", "set0", "nosuchset"],
        vec!["ZUNION", "3", "zset0", "zset1", "zset2", "WITHSCORES"],
        vec![
            "ZUNION",
            "2",
            "zset0",
            "zset1",
            "WEIGHTS",
            "2",
            "-1",
            "AGGREGATE",
            "MAX",
            "WITHSCORES",
        ],
        vec!["ZINTER", "2", "zset0", "zset3", "AGGREGATE", "MIN", "WITHSCORES"],
        vec!["ZDIFF", "2", "zset4", "zset5", "WITHSCORES"],
        vec!["ZUNIONSTORE", "zdest", "2", "zset1", "zset2", "WEIGHTS", "3", "1"],
        vec!["ZRANGE", "zdest", "0", "-1", "WITHSCORES"],
        vec!["ZINTERSTORE", "zdest", "2", "zset0", "zset1"],
        vec!["ZRANGE", "zdest", "0", "-1", "WITHSCORES"],
        vec!["ZDIFFSTORE", "zdest", "2", "zset2", "zset3"],
        vec!["ZRANGE", "zdest", "0", "-1", "WITHSCORES"],
        vec!["ZINTERCARD", "2", "zset0", "zset1"],
        vec!["ZRANGESTORE", "zdest", "zset4", "0", "5"],
        vec!["ZRANGE", "zdest", "0", "-1", "WITHSCORES"],
        vec!["PFCOUNT", "hll0", "hll1", "hll2"],
        vec!["PFMERGE", "hdest", "hll3", "hll4", "hll5"],
        vec!["PFCOUNT", "hdest"],
        vec!["BITOP", "AND", "bdest", "str0", "str1"],
        vec!["GET", "bdest"],
        vec!["BITOP", "XOR", "bdest", "str2", "str3", "str4"],
        vec!["GET", "bdest"],
        vec!["LCS", "str0", "str1"],
        vec![
            "XREAD", "COUNT", "10", "STREAMS", "stream0", "stream1", "stream2", "0", "0", "0",
        ],
        vec!["COPY", "set0", "setcopy"],
        vec!["SMEMBERS", "setcopy"],
        vec!["COPY", "set1", "setcopy"],
        vec!["COPY", "set1", "setcopy", "REPLACE"],
        vec!["SMEMBERS", "setcopy"],
        vec!["RENAME", "withttl", "renamed"],
        vec!["EXISTS", "withttl"],
        vec!["GET", "renamed"],
        vec!["TTL", "renamed"],
        vec!["RENAME", "nosuchkey", "other"],
        vec!["RENAMENX", "set5", "set4"],
        vec!["RENAMENX", "set5", "fresh"],
        vec!["SMEMBERS", "fresh"],
        vec!["SMOVE", "set0", "set3", "m1"],
        vec!["SMOVE", "set0", "str0", "m2"],
        vec!["SMEMBERS", "set3"],
        vec!["LMOVE", "list0", "list1", "LEFT", "RIGHT"],
        vec!["RPOPLPUSH", "list2", "list3"],
        vec!["LRANGE", "list1", "0", "-1"],
        vec!["LRANGE", "list3", "0", "-1"],
        vec!["LMOVE", "list0", "str1", "LEFT", "LEFT"],
        vec!["SORT", "sortme", "BY", "weight_*"],
        vec![
            "SORT",
            "sortme",
            "BY",
            "weight_*",
            "GET",
            "#",
            "GET",
            "obj_*->name",
        ],
        vec![
            "SORT",
            "sortme",
            "BY",
            "weight_*",
            "DESC",
            "LIMIT",
            "0",
            "3",
            "GET",
            "obj_*->name",
            "STORE",
            "sorted",
        ],
        vec!["LRANGE", "sorted", "0", "-1"],
        vec!["SORT", "sortme", "BY", "nosort", "GET", "weight_*"],
        vec!["SORT_RO", "sortme", "BY", "obj_*->name", "ALPHA"],
        vec!["MSETNX", "n1", "a", "n2", "b", "n3", "c"],
        vec!["MSETNX", "n1", "a", "n4", "b"],
        vec!["MGET", "n1", "n2", "n3", "n4"],
    ]
}

/// Replies as text; set replies (unordered on any server) sorted.
async fn replies(addr: &str, seed: u64) -> Vec<String> {
    let mut client = RawClient::connect(addr).await;
    for command in data(seed) {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let reply = client.call(&args).await;
        assert!(!reply.is_error(), "{args:?}: {reply:?}");
    }
    let mut out = Vec::new();
    for command in commands() {
        let unordered = matches!(command[0], "SUNION" | "SINTER" | "SDIFF" | "SMEMBERS");
        let reply = match client.call(&command).await {
            Frame::Array(mut items) | Frame::Set(mut items) if unordered => {
                items.sort_by_key(show);
                Frame::Array(items)
            }
            other => other,
        };
        out.push(format!("{} -> {}", command.join(" "), show(&reply)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_slot_commands_match_one_server() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    for seed in [1, 2, 3] {
        let expected = replies(&direct.addr(), seed).await;
        let got = replies(&proxy.addr, seed).await;
        for (got, expected) in got.iter().zip(&expected) {
            assert_eq!(got, expected, "seed {seed}");
        }
    }
    // No temporary copy is left behind, and database 0 never showed one.
    let mut client = RawClient::connect(&proxy.addr).await;
    let Frame::Array(keys) = client.call(&["KEYS", "*tmp*"]).await else {
        panic!()
    };
    assert!(keys.is_empty(), "{keys:?}");
    for node in cluster.primaries() {
        let mut direct = RawClient::connect(&node.addr()).await;
        let Frame::Array(keys) = direct.call(&["KEYS", "*:tmp:*"]).await else {
            panic!()
        };
        assert!(keys.is_empty(), "copies left on {}: {keys:?}", node.addr());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_span_slots_says_why() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    let eval = show(&client.call(&["EVAL", "return 1", "2", "a", "b"]).await);
    assert!(
        eval.starts_with("-ERR proxy: EVAL with keys in several slots is not supported: a script"),
        "{eval}"
    );
    // The same commands within one slot work.
    assert_eq!(
        show(&client.call(&["EVAL", "return #KEYS", "2", "{t}a", "{t}b"]).await),
        "2"
    );
}
