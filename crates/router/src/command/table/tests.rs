use super::*;
use crate::command::keys::key_positions;
use crate::command::{RequestPolicy, ResponsePolicy};

fn request(args: &[&str]) -> Request {
    Request::from_args(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())))
}

fn keys(table: &CommandTable, args: &[&str]) -> Vec<String> {
    let request = request(args);
    let spec = table.lookup(&request).expect("known command");
    key_positions(spec, request.args())
        .into_iter()
        .map(|i| args[i].to_string())
        .collect()
}

#[test]
fn builtin_table_knows_valkey() {
    let table = CommandTable::builtin();
    assert!(table.len() > 200, "{}", table.len());
    let mget = table.get(b"MGET").unwrap();
    assert_eq!(mget.request_policy, RequestPolicy::MultiShard);
    let dbsize = table.get(b"dbsize").unwrap();
    assert_eq!(dbsize.request_policy, RequestPolicy::AllShards);
    assert_eq!(dbsize.response_policy, ResponsePolicy::AggSum);
    let config_get = table.lookup(&request(&["config", "GET", "x"])).unwrap();
    assert_eq!(config_get.name, "config|get");
}

#[test]
fn keys_through_key_specs() {
    let table = CommandTable::builtin();
    let cases: &[(&[&str], &[&str])] = &[
        (&["GET", "a"], &["a"]),
        (&["SET", "a", "1", "EX", "10"], &["a"]),
        (&["MGET", "a", "b", "c"], &["a", "b", "c"]),
        (&["MSET", "a", "1", "b", "2"], &["a", "b"]),
        (&["EVAL", "return 1", "2", "k1", "k2", "arg"], &["k1", "k2"]),
        (&["EVAL", "return 1", "0", "arg"], &[]),
        (
            &["ZUNIONSTORE", "dst", "2", "s1", "s2", "WEIGHTS", "1", "2"],
            &["dst", "s1", "s2"],
        ),
        (
            &["XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
            &["s1", "s2"],
        ),
        (&["SORT", "src", "BY", "w_*", "STORE", "dst"], &["src", "dst"]),
        (
            &["MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b"],
            &["a", "b"],
        ),
        (&["LMOVE", "a", "b", "LEFT", "RIGHT"], &["a", "b"]),
        (&["BLPOP", "a", "b", "0"], &["a", "b"]),
        (&["OBJECT", "ENCODING", "k"], &["k"]),
        (&["PING"], &[]),
        (&["SPUBLISH", "chan", "msg"], &["chan"]),
        (
            &["GEORADIUS", "src", "1", "2", "3", "km", "STORE", "dst"],
            &["src", "dst"],
        ),
    ];
    for (args, want) in cases {
        assert_eq!(keys(&table, args), *want, "{args:?}");
    }
}

#[test]
fn arity() {
    let table = CommandTable::builtin();
    let get = table.get(b"get").unwrap();
    assert!(get.arity_ok(2));
    assert!(!get.arity_ok(3));
    let mget = table.get(b"mget").unwrap();
    assert!(mget.arity_ok(5));
    assert!(!mget.arity_ok(1));
}

#[test]
fn which_calls_block() {
    let table = CommandTable::builtin();
    let blocks = |args: &[&str]| {
        let request = request(args);
        table
            .lookup(&request)
            .expect("known command")
            .blocks(request.args())
    };
    assert!(blocks(&["BLPOP", "l", "0"]));
    assert!(blocks(&["BLMOVE", "a", "b", "LEFT", "RIGHT", "1"]));
    assert!(!blocks(&["LPOP", "l"]));
    assert!(!blocks(&["XREAD", "STREAMS", "s", "0"]));
    assert!(!blocks(&["xread", "count", "5", "streams", "block", "0"]));
    assert!(blocks(&[
        "XREAD", "COUNT", "5", "BLOCK", "100", "STREAMS", "s", "$"
    ]));
    assert!(blocks(&["xread", "block", "0", "streams", "s", "$"]));
    assert!(!blocks(&[
        "XREADGROUP",
        "GROUP",
        "block",
        "c",
        "NOACK",
        "STREAMS",
        "s",
        ">"
    ]));
    assert!(blocks(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">"
    ]));
    // An option the proxy does not know: blocking, the safe side.
    assert!(blocks(&["XREAD", "SOMEDAY", "STREAMS", "s", "0"]));
}
