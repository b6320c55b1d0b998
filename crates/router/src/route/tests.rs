use super::*;
use crate::command::CommandTable;
use topology::Shard;

fn request(args: &[&str]) -> Request {
    Request::from_args(args)
}

fn shard(addr: &str) -> Shard {
    Shard {
        primary: addr.into(),
        replicas: vec![],
    }
}

fn three_shards() -> Topology {
    Topology::cluster(
        vec![
            (0, 5460, shard("a:1")),
            (5461, 10922, shard("b:1")),
            (10923, 16383, shard("c:1")),
        ],
        1,
    )
}

fn route(table: &CommandTable, topology: &Topology, args: &[&str]) -> Result<Route, Error> {
    let request = request(args);
    select(&request, table.lookup(&request).map(|s| &**s), topology)
}

#[test]
fn cluster_routes() {
    let table = CommandTable::builtin();
    let topology = three_shards();
    // "foo" hashes to 12182 (shard 2), "bar" to 5061 (shard 0).
    let cases: Vec<(&[&str], Route)> = vec![
        (
            &["GET", "foo"],
            Route::Shard {
                shard: 2,
                slot: Some(12182),
                read_only: true,
            },
        ),
        (
            &["SET", "bar", "1"],
            Route::Shard {
                shard: 0,
                slot: Some(5061),
                read_only: false,
            },
        ),
        (
            &["MGET", "{foo}a", "{foo}b"],
            Route::Shard {
                shard: 2,
                slot: Some(12182),
                read_only: true,
            },
        ),
        (&["MGET", "foo", "bar"], Route::MultiSlot),
        (&["DBSIZE"], Route::AllShards(ResponsePolicy::AggSum)),
        (&["ECHO", "hi"], Route::Any { read_only: false }),
        // PING checks every shard, as its tips say.
        (&["PING"], Route::AllShards(ResponsePolicy::AllSucceeded)),
        (&["NOSUCHCOMMAND", "x"], Route::Any { read_only: false }),
        (&["GET"], Route::Any { read_only: true }),
        (&["EVAL", "return 1", "0"], Route::Any { read_only: false }),
        (
            &["SCRIPT", "FLUSH"],
            Route::AllNodes(ResponsePolicy::AllSucceeded),
        ),
    ];
    for (args, want) in cases {
        assert_eq!(route(&table, &topology, args).unwrap(), want, "{args:?}");
    }
}

#[test]
fn scan_is_refused_on_a_cluster_not_sent_anywhere() {
    let table = CommandTable::builtin();
    let error = route(&table, &three_shards(), &["SCAN", "0"]).unwrap_err();
    assert!(
        matches!(error, Error::NotSupportedOnCluster(ref name) if name == "scan"),
        "{error}"
    );
    let standalone = Topology::single(topology::Mode::Standalone, shard("a:1"), 16);
    assert!(route(&table, &standalone, &["SCAN", "0"]).is_ok());
}

#[test]
fn standalone_sends_everything_to_the_primary() {
    let table = CommandTable::builtin();
    let topology = Topology::single(topology::Mode::Standalone, shard("a:1"), 16);
    assert_eq!(
        route(&table, &topology, &["MGET", "foo", "bar"]).unwrap(),
        Route::Shard {
            shard: 0,
            slot: None,
            read_only: true
        }
    );
}

#[test]
fn unassigned_and_empty() {
    let table = CommandTable::builtin();
    let partial = Topology::cluster(vec![(0, 100, shard("a:1"))], 1);
    assert!(matches!(
        route(&table, &partial, &["GET", "foo"]),
        Err(Error::SlotUnassigned(12182))
    ));
    assert!(matches!(
        route(&table, &Topology::empty(), &["GET", "foo"]),
        Err(Error::NoBackend)
    ));
}
