//! The same workload, direct to a server and through the proxy, gives the
//! same replies: for every command family, on a standalone Valkey 9.1 and a
//! Redis 7.0, and on a 3-primary Valkey cluster (compared against a
//! standalone server of the same version).

mod common;

use common::{connect, run, TestProxy};
use redis::Value;
use test_util::{Cluster, Flavor, Server};

/// Commands whose replies are sets (order not defined by the server).
const UNORDERED: &[&str] = &[
    "SMEMBERS", "SUNION", "SINTER", "SDIFF", "KEYS", "HKEYS", "HVALS", "HGETALL",
];

/// A workload over every family. Multi-key commands use a hash tag so they
/// are single-slot on a cluster, except the ones the proxy splits by slot.
fn workload() -> Vec<Vec<&'static str>> {
    let text = r#"
        SET s1 hello
        GET s1
        APPEND s1 _world
        GETRANGE s1 0 4
        SETRANGE s1 0 J
        STRLEN s1
        SET n 10
        INCR n
        INCRBY n 5
        DECR n
        INCRBYFLOAT n 1.5
        SET s2 v EX 1000 NX
        SET s2 v XX GET
        SETNX s2 other
        GETDEL s2
        MSET {t}a 1 {t}b 2
        MGET {t}a {t}b {t}missing
        MSET x1 1 x2 2 x3 3 x4 4
        MGET x1 x2 x3 x4 nokey
        EXISTS x1 x2 x3 nokey
        TOUCH x1 x2
        DEL x3 x4 nokey
        HSET h f1 v1 f2 v2 f3 3
        HGET h f1
        HMGET h f1 nope f2
        HINCRBY h f3 4
        HDEL h f2
        HLEN h
        HEXISTS h f1
        HGETALL h
        HKEYS h
        HVALS h
        RPUSH l a b c d
        LPUSH l z
        LRANGE l 0 -1
        LINDEX l 2
        LLEN l
        LINSERT l BEFORE c bb
        LSET l 0 zz
        LPOS l c
        LPOP l
        RPOP l 2
        LTRIM l 0 1
        LMOVE l {l}other LEFT RIGHT
        RPUSH {l}a 1 2 3
        LMOVE {l}a {l}b LEFT RIGHT
        LRANGE {l}b 0 -1
        SADD st a b c d
        SADD st a
        SISMEMBER st a
        SMISMEMBER st a zz
        SCARD st
        SMEMBERS st
        SREM st d
        SADD {s}1 a b c
        SADD {s}2 b c d
        SUNION {s}1 {s}2
        SINTER {s}1 {s}2
        SDIFF {s}1 {s}2
        SINTERCARD 2 {s}1 {s}2
        SUNIONSTORE {s}dst {s}1 {s}2
        ZADD z 1 a 2 b 3 c
        ZADD z INCR 5 a
        ZSCORE z a
        ZRANK z b
        ZRANGE z 0 -1 WITHSCORES
        ZREVRANGE z 0 1
        ZRANGEBYSCORE z 2 10 WITHSCORES
        ZCOUNT z -inf +inf
        ZINCRBY z 2.5 b
        ZREM z c
        ZPOPMIN z
        ZADD {z}1 1 a 2 b
        ZADD {z}2 3 b 4 c
        ZUNIONSTORE {z}u 2 {z}1 {z}2 WEIGHTS 1 2 AGGREGATE MAX
        ZRANGE {z}u 0 -1 WITHSCORES
        ZINTER 2 {z}1 {z}2 WITHSCORES
        XADD xs 1-1 f v
        XADD xs 2-1 f w
        XADD xs 1-0 f bad
        XLEN xs
        XRANGE xs - +
        XREVRANGE xs + - COUNT 1
        XGROUP CREATE xs g 0
        XREADGROUP GROUP g c1 COUNT 1 STREAMS xs >
        XACK xs g 1-1
        XPENDING xs g
        XDEL xs 2-1
        XTRIM xs MAXLEN 0
        SETBIT b 7 1
        GETBIT b 7
        SETBIT b 100 1
        BITCOUNT b
        BITPOS b 1
        SET {b}1 abc
        SET {b}2 xyz
        BITOP XOR {b}dst {b}1 {b}2
        GET {b}dst
        BITFIELD bf SET u8 0 200 GET u8 0 INCRBY u8 0 100
        PFADD hll a b c d e
        PFADD hll a
        PFCOUNT hll
        PFADD {p}1 a b
        PFADD {p}2 c
        PFMERGE {p}m {p}1 {p}2
        PFCOUNT {p}m
        GEOADD geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
        GEODIST geo Palermo Catania km
        GEOPOS geo Palermo nowhere
        GEOHASH geo Palermo
        GEOSEARCH geo FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHDIST
        EVAL "return redis.call('GET', KEYS[1])" 1 s1
        EVAL "return {KEYS[1], ARGV[1], 3}" 1 s1 arg
        EVAL "return redis.call('INCR', KEYS[1])" 1 n
        EVALSHA ffffffffffffffffffffffffffffffffffffffff 0
        TYPE h
        TYPE nokey
        OBJECT ENCODING l
        RENAME s1 {s1}renamed
        RENAME nokey {nokey}other
        EXPIRE {s1}renamed 1000
        PERSIST {s1}renamed
        TTL {s1}renamed
        LPUSH s1string x
        LPUSH n x
        GET h
        INCR s1string
        ECHO hi
        PING
        PING hey
        NOSUCHCOMMAND a b
        GET
        SET a
        DBSIZE
    "#;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            // Arguments are separated by spaces; a quoted one may hold spaces.
            let mut args = Vec::new();
            let mut rest = line;
            while !rest.is_empty() {
                rest = rest.trim_start();
                if let Some(stripped) = rest.strip_prefix('"') {
                    let end = stripped.find('"').expect("closing quote");
                    args.push(&stripped[..end]);
                    rest = &stripped[end + 1..];
                } else {
                    let end = rest.find(' ').unwrap_or(rest.len());
                    args.push(&rest[..end]);
                    rest = &rest[end..];
                }
            }
            args
        })
        .collect()
}

fn normalize(command: &str, value: Value) -> Value {
    if !UNORDERED.contains(&command.to_ascii_uppercase().as_str()) {
        return value;
    }
    match value {
        Value::Array(mut items) => {
            if command.eq_ignore_ascii_case("HGETALL") {
                let mut pairs: Vec<Vec<Value>> = items.chunks(2).map(<[Value]>::to_vec).collect();
                pairs.sort_by_key(|p| format!("{p:?}"));
                return Value::Array(pairs.concat());
            }
            items.sort_by_key(|v| format!("{v:?}"));
            Value::Array(items)
        }
        Value::Set(mut items) => {
            items.sort_by_key(|v| format!("{v:?}"));
            Value::Set(items)
        }
        other => other,
    }
}

/// The workload with every hash tag taken out of key names, so that its
/// multi-key commands span slots on a cluster.
fn untagged(workload: Vec<Vec<&'static str>>) -> Vec<Vec<String>> {
    workload
        .into_iter()
        .map(|args| args.into_iter().map(strip_tags).collect())
        .collect()
}

/// `{tag}rest` -> `tagrest` (script bodies and other arguments have none).
fn strip_tags(arg: &str) -> String {
    match (arg.find('{'), arg.find('}')) {
        (Some(open), Some(close)) if close > open + 1 && !arg.contains(' ') => {
            format!("{}{}{}", &arg[..open], &arg[open + 1..close], &arg[close + 1..])
        }
        _ => arg.to_string(),
    }
}

/// Runs the workload on `direct` and through `proxied`, comparing replies.
async fn compare(direct_addr: &str, proxied_addr: &str) {
    let commands: Vec<Vec<String>> = workload()
        .into_iter()
        .map(|args| args.into_iter().map(String::from).collect())
        .collect();
    compare_with(direct_addr, proxied_addr, commands).await;
}

async fn compare_with(direct_addr: &str, proxied_addr: &str, commands: Vec<Vec<String>>) {
    let mut direct = connect(direct_addr).await;
    let mut proxied = connect(proxied_addr).await;
    let mut mismatches = Vec::new();
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let want = normalize(args[0], run(&mut direct, &args).await);
        let got = normalize(args[0], run(&mut proxied, &args).await);
        if want != got {
            mismatches.push(format!("{args:?}\n  direct: {want:?}\n  proxy:  {got:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        commands.len(),
        mismatches.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_valkey_and_redis_answer_alike() {
    for flavor in Flavor::ALL {
        let direct = Server::start(flavor);
        let behind = Server::start(flavor);
        let proxy = TestProxy::default_for(vec![behind.addr()]).await;
        compare(&direct.addr(), &proxy.addr).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_answers_like_one_server() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(vec![cluster.addrs()[0].clone()]).await;
    compare(&direct.addr(), &proxy.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_answers_like_one_server_with_keys_across_slots() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(vec![cluster.addrs()[0].clone()]).await;
    compare_with(&direct.addr(), &proxy.addr, untagged(workload())).await;
}
