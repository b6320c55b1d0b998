//! Seeded random transactions and scripts, through the proxy in front of a
//! 3-primary Valkey cluster and direct to one standalone Valkey on the same
//! data, in RESP2 and RESP3, with and without `cluster-databases`:
//! transactions of 1-6 commands with keys in one slot, on one node and on
//! several nodes, WATCH with a concurrent writer, EXECABORT and DISCARD;
//! EVAL, EVAL_RO, EVALSHA, FCALL and FCALL_RO with keys in several slots.
//!
//! Every operation gets the standalone server's replies, or (for the shapes
//! the README says the proxy refuses) the proxy's refusal before anything
//! runs, and the test knows in advance which. At the end both hold the same
//! data in every database used.
//!
//! `RANDOM_SEED` and `RANDOM_OPERATIONS` override the seed and the number
//! of operations per cluster (10,000, half in each protocol).

mod common;

use common::{RawClient, TestProxy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use resp::Frame;
use router::slot::key_slot;
use test_util::{Cluster, Flavor, Server};

/// The keys operations draw from: `a` and `d` are in different slots of
/// one node, `b` and `c` on the two others, the tagged ones share a slot
/// with their tag.
const KEYS: &[&str] = &["a", "b", "c", "d", "{a}1", "{a}2", "{b}1", "{c}1"];

/// The databases operations run in.
const DATABASES: &[&str] = &["0", "3"];

/// Scripts, each usable with any number of keys. The last three write
/// nothing (fit for EVAL_RO).
const SCRIPTS: &[&str] = &[
    "local out = {} for i, k in ipairs(KEYS) do out[i] = redis.call('INCR', k) end return out",
    "for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1]) end return redis.call('GET', KEYS[1])",
    "return redis.call('LPUSH', KEYS[1], ARGV[1])",
    "local out = {} for i, k in ipairs(KEYS) do out[i] = redis.call('EXISTS', k) end return out",
    "return {1, 'two', {ok = 'three'}, 3.99, redis.call('TYPE', KEYS[1])}",
    "redis.setresp(3) return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
];

/// A function library: `bump` increments its keys, `peek` (no-writes)
/// names their types.
const LIBRARY: &str = "#!lua name=difflib
redis.register_function('bump', function(keys, args)
  local out = {}
  for i, k in ipairs(keys) do out[i] = redis.call('INCR', k) end
  return out
end)
redis.register_function{function_name = 'peek', flags = {'no-writes'}, callback = function(keys, args)
  local out = {}
  for i, k in ipairs(keys) do out[i] = redis.call('TYPE', k)['ok'] end
  return out
end}";

/// One side of the comparison: the client running the operations and a
/// second client writing concurrently, both in the same database.
struct Side {
    client: RawClient,
    writer: RawClient,
}

impl Side {
    async fn connect(addr: &str) -> Side {
        Side {
            client: RawClient::connect(addr).await,
            writer: RawClient::connect(addr).await,
        }
    }

    async fn call(&mut self, args: &[String]) -> Frame {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.client.call(&args).await
    }

    async fn write(&mut self, args: &[String]) -> Frame {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.writer.call(&args).await
    }
}

/// A command as strings.
fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| part.to_string()).collect()
}

fn key(rng: &mut StdRng) -> &'static str {
    KEYS[rng.random_range(0..KEYS.len())]
}

/// Keys sharing the slot of `a`.
const ONE_SLOT: &[&str] = &["a", "{a}1", "{a}2"];

/// One to `most` keys: half the time all in one slot, otherwise drawn
/// independently (so sometimes in one slot, on one node or on several).
fn keys(rng: &mut StdRng, most: usize) -> Vec<&'static str> {
    let count = rng.random_range(1..=most);
    let pool = if rng.random_bool(0.5) { ONE_SLOT } else { KEYS };
    (0..count)
        .map(|_| pool[rng.random_range(0..pool.len())])
        .collect()
}

/// A random data command and the keys it names.
fn data_command(rng: &mut StdRng) -> (Vec<String>, Vec<&'static str>) {
    let k = key(rng);
    let n = rng.random_range(0..5).to_string();
    let command = match rng.random_range(0..22) {
        0 => cmd(&["SET", k, &format!("v{n}")]),
        1 => cmd(&["GET", k]),
        2 => cmd(&["INCR", k]),
        3 => cmd(&["APPEND", k, "x"]),
        4 => cmd(&["LPUSH", k, &n]),
        5 => cmd(&["RPOP", k]),
        6 => cmd(&["LLEN", k]),
        7 => cmd(&["SADD", k, &format!("m{n}")]),
        8 => cmd(&["SCARD", k]),
        9 => cmd(&["HSET", k, &format!("f{n}"), "v"]),
        10 => cmd(&["HGET", k, &format!("f{n}")]),
        11 => cmd(&["ZADD", k, &n, &format!("m{n}")]),
        12 => cmd(&["ZRANGE", k, "0", "-1", "WITHSCORES"]),
        13 => cmd(&["ZINCRBY", k, "1.5", "m1"]),
        14 => cmd(&["TYPE", k]),
        15 => cmd(&["INCRBYFLOAT", k, "0.5"]),
        16 => cmd(&["PING"]),
        17 => cmd(&["ECHO", &n]),
        _ => {
            let more = keys(rng, 3);
            let name = ["DEL", "EXISTS", "MGET", "UNLINK"][rng.random_range(0..4)];
            let mut command = cmd(&[name]);
            command.extend(more.iter().map(|k| k.to_string()));
            return (command, more);
        }
    };
    let keys = match command[0].as_str() {
        "PING" | "ECHO" => vec![],
        _ => vec![k],
    };
    (command, keys)
}

fn slots(keys: &[&str]) -> Vec<u16> {
    let mut slots: Vec<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// What an operation is, and what the proxy must do with it.
struct Operation {
    /// The commands, in order: `Writer` ones go to the second client.
    steps: Vec<Step>,
    /// The proxy refuses it (as the README documents) before anything
    /// runs: the reply of step `refused_at` is an `ERR proxy:` error.
    refused_at: Option<usize>,
    /// The keys the client's commands name.
    keys: Vec<&'static str>,
}

enum Step {
    Client(Vec<String>),
    Writer(Vec<String>),
}

/// A random transaction: maybe WATCH (and a concurrent write), MULTI, 1-6
/// commands (maybe one with the wrong arity), EXEC or DISCARD.
fn transaction(rng: &mut StdRng) -> Operation {
    let mut steps = Vec::new();
    let mut refused_at = None;
    let mut watched: Option<u16> = None;
    if rng.random_bool(0.3) {
        let watch = keys(rng, 2);
        let watch_slots = slots(&watch);
        if watch_slots.len() > 1 {
            refused_at = Some(0);
        }
        watched = Some(watch_slots[0]);
        let mut command = cmd(&["WATCH"]);
        command.extend(watch.iter().map(|k| k.to_string()));
        steps.push(Step::Client(command));
        if refused_at.is_some() {
            return Operation {
                steps,
                refused_at,
                keys: watch,
            };
        }
        if rng.random_bool(0.5) {
            let target = if rng.random_bool(0.6) { watch[0] } else { key(rng) };
            steps.push(Step::Writer(cmd(&["SET", target, "written"])));
        }
    }
    steps.push(Step::Client(cmd(&["MULTI"])));
    let count = rng.random_range(1..=6);
    let write_at = watched.map(|_| rng.random_range(0..=count));
    let mut first_slot: Option<u16> = watched;
    let mut touched = Vec::new();
    for i in 0..count {
        if write_at == Some(i) && rng.random_bool(0.3) {
            steps.push(Step::Writer(cmd(&["SET", key(rng), "meanwhile"])));
        }
        if rng.random_bool(0.05) {
            // A wrong arity: EXECABORT on both.
            steps.push(Step::Client(cmd(&["SET", key(rng)])));
            continue;
        }
        let (command, keys) = data_command(rng);
        let command_slots = slots(&keys);
        let refused = command_slots.len() > 1
            || (watched.is_some() && command_slots.first().is_some_and(|s| Some(*s) != first_slot));
        first_slot = first_slot.or(command_slots.first().copied());
        touched.extend(&keys);
        if refused && refused_at.is_none() {
            refused_at = Some(steps.len());
        }
        steps.push(Step::Client(command));
    }
    let end = if rng.random_bool(0.1) { "DISCARD" } else { "EXEC" };
    steps.push(Step::Client(cmd(&[end])));
    Operation {
        steps,
        refused_at,
        keys: touched,
    }
}

/// A random script or function call with 0-3 keys.
fn script(rng: &mut StdRng, shas: &[String]) -> Operation {
    let keys = if rng.random_bool(0.1) {
        vec![]
    } else {
        keys(rng, 3)
    };
    let count = keys.len();
    let which = rng.random_range(0..SCRIPTS.len());
    let mut command = match rng.random_range(0..6) {
        0 | 1 => cmd(&["EVAL", SCRIPTS[which]]),
        2 => cmd(&["EVAL_RO", SCRIPTS[which]]),
        3 => cmd(&["EVALSHA", &shas[which]]),
        4 => cmd(&["FCALL", "bump"]),
        _ => cmd(&["FCALL_RO", "peek"]),
    };
    command.push(count.to_string());
    command.extend(keys.iter().map(|k| k.to_string()));
    command.push("arg".into());
    let refused_at = (slots(&keys).len() > 1).then_some(0);
    Operation {
        steps: vec![Step::Client(command)],
        refused_at,
        keys,
    }
}

/// A plain command outside a transaction, to move the data around.
fn plain(rng: &mut StdRng) -> Operation {
    let (command, keys) = data_command(rng);
    Operation {
        steps: vec![Step::Client(command)],
        refused_at: None,
        keys,
    }
}

fn show(step: &Step) -> String {
    match step {
        Step::Client(args) => args.join(" "),
        Step::Writer(args) => format!("(writer) {}", args.join(" ")),
    }
}

/// Runs `operation` on both sides and compares, or checks the proxy's
/// refusal and leaves the server alone (but for the concurrent writes,
/// which happen on both).
async fn run(operation: &Operation, proxy: &mut Side, server: &mut Side, context: &str, tally: &mut Tally) {
    let shown: Vec<String> = operation.steps.iter().map(show).collect();
    let mut refused = false;
    for (i, step) in operation.steps.iter().enumerate() {
        match step {
            Step::Writer(args) => {
                let got = proxy.write(args).await;
                let expected = server.write(args).await;
                assert_eq!(got, expected, "{context}: {shown:?} step {i}");
            }
            Step::Client(args) if operation.refused_at.is_some() => {
                let got = proxy.call(args).await;
                if operation.refused_at == Some(i) {
                    let text = format!("{got:?}");
                    assert!(
                        text.contains("ERR proxy:"),
                        "{context}: {shown:?} step {i} must be refused, got {text}"
                    );
                    refused = true;
                } else if refused && args[0] == "EXEC" {
                    assert!(
                        format!("{got:?}").contains("EXECABORT"),
                        "{context}: {shown:?}: EXEC after a refusal answered {got:?}"
                    );
                }
            }
            Step::Client(args) => {
                let got = proxy.call(args).await;
                let expected = server.call(args).await;
                assert!(
                    !format!("{got:?}").contains("ERR proxy:"),
                    "{context}: {shown:?} step {i} refused unexpectedly: {got:?}"
                );
                assert_eq!(got, expected, "{context}: {shown:?} step {i}");
                tally.count(args, &got);
            }
        }
    }
    tally.refused += usize::from(refused);
}

/// What the operations came to, to show the shapes were all exercised.
#[derive(Debug, Default)]
struct Tally {
    /// Transactions that ran with keys on more than one node.
    across_nodes: usize,
    /// EXECs that ran.
    executed: usize,
    /// EXECs that answered nil (a watched key was written).
    watch_aborted: usize,
    /// EXECs that answered EXECABORT (an error while queueing).
    exec_aborted: usize,
    /// DISCARDs.
    discarded: usize,
    /// Script and function calls that ran (errors included).
    scripts: usize,
    /// Operations the proxy refused.
    refused: usize,
}

impl Tally {
    fn count(&mut self, args: &[String], reply: &Frame) {
        match args[0].as_str() {
            "EXEC" if matches!(reply, Frame::Null | Frame::NullArray) => self.watch_aborted += 1,
            "EXEC" if reply.is_error() => self.exec_aborted += 1,
            "EXEC" => self.executed += 1,
            "DISCARD" => self.discarded += 1,
            "EVAL" | "EVAL_RO" | "EVALSHA" | "FCALL" | "FCALL_RO" => self.scripts += 1,
            _ => {}
        }
    }
}

/// The data in `KEYS` of the current database, by type, sets and hashes
/// sorted.
async fn contents(side: &mut Side) -> Vec<String> {
    let mut out = Vec::new();
    for k in KEYS {
        let kind = side.call(&cmd(&["TYPE", k])).await;
        let kind = common::show(&kind);
        let value = match kind.as_str() {
            "string" => common::show(&side.call(&cmd(&["GET", k])).await),
            "list" => common::show(&side.call(&cmd(&["LRANGE", k, "0", "-1"])).await),
            "set" => common::show(&side.call(&cmd(&["SORT", k, "ALPHA"])).await),
            "zset" => common::show(&side.call(&cmd(&["ZRANGE", k, "0", "-1", "WITHSCORES"])).await),
            "hash" => {
                let mut fields = common::show(&side.call(&cmd(&["HKEYS", k])).await);
                fields.push_str(&common::show(&side.call(&cmd(&["HLEN", k])).await));
                fields
            }
            _ => String::new(),
        };
        out.push(format!("{k}: {kind} {value}"));
    }
    out.push(common::show(&side.call(&cmd(&["DBSIZE"])).await));
    out
}

async fn select(side: &mut Side, db: &str) {
    let select = cmd(&["SELECT", db]);
    assert_eq!(side.call(&select).await, Frame::simple("OK"));
    assert_eq!(side.write(&select).await, Frame::simple("OK"));
}

/// Loads the scripts and the library on one side; the scripts' SHA1s.
async fn prepare(side: &mut Side) -> Vec<String> {
    let mut shas = Vec::new();
    for script in SCRIPTS {
        let sha = side.call(&cmd(&["SCRIPT", "LOAD", script])).await;
        shas.push(common::show(&sha));
    }
    let loaded = side.call(&cmd(&["FUNCTION", "LOAD", "REPLACE", LIBRARY])).await;
    assert_eq!(common::show(&loaded), "difflib");
    shas
}

async fn same_as_one_server(cluster: &Cluster) {
    let seed: u64 = std::env::var("RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let operations: usize = std::env::var("RANDOM_OPERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let reference = Server::start(Flavor::Valkey);
    let proxy_node = TestProxy::default_for(cluster.addrs()).await;
    let mut proxy = Side::connect(&proxy_node.addr).await;
    let mut server = Side::connect(&reference.addr()).await;
    let shas = prepare(&mut proxy).await;
    assert_eq!(prepare(&mut server).await, shas);
    let node_of: std::collections::HashMap<&str, usize> =
        KEYS.iter().map(|k| (*k, common::owner(cluster, k))).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    for protocol in ["2", "3"] {
        let hello = cmd(&["HELLO", protocol]);
        assert!(!proxy.call(&hello).await.is_error());
        assert!(!server.call(&hello).await.is_error());
        for n in 0..operations / 2 {
            if n % 50 == 0 {
                let db = DATABASES[rng.random_range(0..DATABASES.len())];
                select(&mut proxy, db).await;
                select(&mut server, db).await;
            }
            let operation = match rng.random_range(0..10) {
                0..=4 => transaction(&mut rng),
                5..=7 => script(&mut rng, &shas),
                _ => plain(&mut rng),
            };
            let context = format!("seed {seed}, RESP{protocol}, operation {n}");
            let mut nodes: Vec<usize> = operation.keys.iter().map(|k| node_of[k]).collect();
            nodes.sort_unstable();
            nodes.dedup();
            let transaction = matches!(operation.steps.last(), Some(Step::Client(end)) if end[0] == "EXEC");
            tally.across_nodes +=
                usize::from(transaction && nodes.len() > 1 && operation.refused_at.is_none());
            run(&operation, &mut proxy, &mut server, &context, &mut tally).await;
        }
    }
    for db in DATABASES {
        select(&mut proxy, db).await;
        select(&mut server, db).await;
        assert_eq!(
            contents(&mut proxy).await,
            contents(&mut server).await,
            "database {db}"
        );
    }
    // Every shape was exercised, and most ran.
    println!("seed {seed}: {tally:?}");
    let Tally {
        across_nodes,
        executed,
        watch_aborted,
        exec_aborted,
        discarded,
        scripts,
        refused,
    } = tally;
    assert!(across_nodes > operations / 20, "{tally:?}");
    assert!(executed > operations / 5 && scripts > operations / 5, "{tally:?}");
    assert!(
        watch_aborted > 0 && exec_aborted > 0 && discarded > 0,
        "{tally:?}"
    );
    assert!(refused < operations / 3, "{tally:?}");
}

#[tokio::test]
async fn random_transactions_and_scripts_on_a_cluster_with_emulated_databases() {
    same_as_one_server(&Cluster::start(Flavor::Valkey, 3, 0)).await;
}

#[tokio::test]
async fn random_transactions_and_scripts_on_a_cluster_with_databases() {
    same_as_one_server(&Cluster::start_with(
        Flavor::Valkey,
        3,
        0,
        &[("cluster-databases", "16")],
    ))
    .await;
}
