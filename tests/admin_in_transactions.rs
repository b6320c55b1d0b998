//! Keyless admin commands queued in MULTI do what they do outside it:
//! FLUSHALL, FLUSHDB, CONFIG SET, SCRIPT and FUNCTION reach every node
//! they reach outside a transaction, merged into one server's reply, and
//! where databases are emulated a command the proxy carries out in steps is
//! refused while queueing, before anything runs.

mod common;

use common::{assert_same_replies, key_per_node, owner, show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

const SCRIPT_BODY: &str = "return 'from a script'";
const LIBRARY: &str =
    "#!lua name=txlib\nredis.register_function('txfn', function() return 'from a function' end)";

/// Keys `a`, `b` and `c` hash to three different primaries of a
/// three-primary cluster (slots 15495, 3300 and 7365).
fn script() -> Vec<Vec<&'static str>> {
    vec![
        vec!["FLUSHALL"],
        vec!["SCRIPT", "FLUSH"],
        vec!["FUNCTION", "FLUSH"],
        vec!["MSET", "a", "1", "b", "2", "c", "3"],
        vec!["SELECT", "2"],
        vec!["MSET", "a", "1", "b", "2"],
        // FLUSHDB empties database 2 on every node, and nothing else.
        vec!["MULTI"],
        vec!["SET", "c", "3"],
        vec!["FLUSHDB"],
        vec!["SET", "c", "after"],
        vec!["EXEC"],
        vec!["MGET", "a", "b", "c"],
        vec!["SELECT", "0"],
        vec!["MGET", "a", "b", "c"],
        // Counts merged as the command's policy says.
        vec!["MULTI"],
        vec!["DBSIZE"],
        vec!["PING"],
        vec!["ECHO", "hi"],
        vec!["EXEC"],
        // Scripts and functions loaded on every node.
        vec!["MULTI"],
        vec!["SCRIPT", "LOAD", SCRIPT_BODY],
        vec!["FUNCTION", "LOAD", LIBRARY],
        vec!["EXEC"],
        vec!["EVALSHA", "566b983ad1b5305598a16c84e842175651ba7565", "0"],
        vec!["FCALL", "txfn", "1", "a"],
        vec!["FCALL", "txfn", "1", "b"],
        vec!["FCALL", "txfn", "1", "c"],
        vec!["MULTI"],
        vec!["SCRIPT", "FLUSH"],
        vec!["FUNCTION", "DELETE", "txlib"],
        vec!["EXEC"],
        vec!["FCALL", "txfn", "1", "a"],
        // CONFIG SET on every node.
        vec!["MULTI"],
        vec!["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        vec!["EXEC"],
        vec!["CONFIG", "GET", "maxmemory-policy"],
        vec!["MULTI"],
        vec!["CONFIG", "SET", "maxmemory-policy", "noeviction"],
        vec!["EXEC"],
        // FLUSHALL empties every node.
        vec!["MULTI"],
        vec!["FLUSHALL"],
        vec!["EXEC"],
        vec!["DBSIZE"],
        vec!["SELECT", "2"],
        vec!["DBSIZE"],
    ]
}

#[tokio::test]
async fn admin_commands_in_a_transaction_match_a_standalone_valkey() {
    let server = Server::start(Flavor::Valkey);
    let cluster = Cluster::start_with(Flavor::Valkey, 3, 0, &[("cluster-databases", "16")]);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let script = script();
    let script: Vec<&[&str]> = script.iter().map(Vec::as_slice).collect();
    assert_same_replies(&server.addr(), &proxy.addr, &script).await;
}

#[tokio::test]
async fn admin_commands_in_a_transaction_reach_every_node() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    for key in key_per_node(&cluster, "k") {
        assert_eq!(show(&client.call(&["SET", &key, "v"]).await), "OK");
    }
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    for command in [
        &["SCRIPT", "LOAD", SCRIPT_BODY][..],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        &["FLUSHALL"],
    ] {
        assert_eq!(show(&client.call(command).await), "QUEUED");
    }
    let exec = show(&client.call(&["EXEC"]).await);
    assert!(exec.ends_with(" OK OK]"), "{exec}");
    let sha = exec
        .trim_start_matches('[')
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    for node in cluster.primaries() {
        assert_eq!(show(&node.command(&["DBSIZE"])), "0", "{}", node.addr());
        assert_eq!(
            show(&node.command(&["SCRIPT", "EXISTS", &sha])),
            "[1]",
            "{}",
            node.addr()
        );
        assert_eq!(
            show(&node.command(&["CONFIG", "GET", "maxmemory-policy"])),
            "[maxmemory-policy allkeys-lru]",
            "{}",
            node.addr()
        );
    }
}

#[tokio::test]
async fn where_databases_are_emulated_a_queued_flushdb_is_refused_and_loses_nothing() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    let keys: Vec<String> = (0..30).map(|i| format!("key{i}")).collect();
    for db in ["0", "2"] {
        assert_eq!(show(&client.call(&["SELECT", db]).await), "OK");
        for key in &keys {
            assert_eq!(show(&client.call(&["SET", key, db]).await), "OK");
        }
    }
    for command in ["FLUSHDB", "KEYS", "DBSIZE", "RANDOMKEY"] {
        assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
        assert_eq!(show(&client.call(&["SET", "key0", "changed"]).await), "QUEUED");
        let args: Vec<&str> = if command == "KEYS" {
            vec![command, "*"]
        } else {
            vec![command]
        };
        let refusal = show(&client.call(&args).await);
        assert!(
            refusal.starts_with(&format!(
                "-ERR proxy: {command} inside MULTI is not supported where databases are emulated"
            )),
            "{refusal}"
        );
        assert_eq!(
            show(&client.call(&["EXEC"]).await),
            "-EXECABORT Transaction discarded because of previous errors."
        );
    }
    for db in ["0", "2"] {
        assert_eq!(show(&client.call(&["SELECT", db]).await), "OK");
        assert_eq!(show(&client.call(&["DBSIZE"]).await), "30", "database {db}");
        assert_eq!(show(&client.call(&["GET", "key0"]).await), db);
    }
    // FLUSHALL empties every database, as on one server.
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["FLUSHALL"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["EXEC"]).await), "[OK]");
    for db in ["0", "2"] {
        assert_eq!(show(&client.call(&["SELECT", db]).await), "OK");
        assert_eq!(show(&client.call(&["DBSIZE"]).await), "0", "database {db}");
    }
}

#[tokio::test]
async fn a_node_that_fails_during_exec_does_not_hide_what_ran_elsewhere() {
    let mut cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    let home = owner(&cluster, "kept");
    let lost = (home + 1) % 3;
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["SET", "kept", "v"]).await), "QUEUED");
    assert_eq!(
        show(
            &client
                .call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
                .await
        ),
        "QUEUED"
    );
    cluster.nodes[lost].kill();
    let exec = client.call(&["EXEC"]).await;
    let resp::Frame::Array(items) = &exec else {
        panic!("EXEC over several nodes answers per command: {}", show(&exec));
    };
    assert_eq!(show(&items[0]), "OK", "{}", show(&exec));
    assert!(items[1].is_error(), "{}", show(&exec));
    assert_eq!(show(&cluster.primaries()[home].command(&["GET", "kept"])), "v");
}
