//! Places where the proxy answered differently from one server, each
//! compared with a real Valkey: SCRIPT FLUSH then EVALSHA, COMMAND GETKEYS
//! of a command whose keys move with its arguments, and COMMAND LIST with
//! its filters.

mod common;

use common::{assert_same_replies, show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

const BODY: &str = "return 'from a script'";
const SHA: &str = "566b983ad1b5305598a16c84e842175651ba7565";

fn script() -> Vec<Vec<&'static str>> {
    vec![
        vec!["SCRIPT", "LOAD", BODY],
        vec!["EVALSHA", SHA, "0"],
        vec!["SCRIPT", "FLUSH"],
        vec!["EVALSHA", SHA, "0"],
        vec!["SCRIPT", "EXISTS", SHA],
        vec!["COMMAND", "GETKEYS", "EVAL", "return 1", "0"],
        vec!["COMMAND", "GETKEYS", "EVAL", "return 1", "1", "k"],
        vec!["COMMAND", "GETKEYS", "FCALL", "f", "0"],
        vec!["COMMAND", "GETKEYS", "SORT", "a", "BY", "w_*"],
        vec!["COMMAND", "GETKEYS", "PING"],
        vec!["COMMAND", "GETKEYS", "GET"],
        vec!["COMMAND", "GETKEYS", "NOSUCH", "x"],
        vec!["COMMAND", "LIST", "foo"],
        vec!["COMMAND", "LIST", "FILTERBY"],
        vec!["COMMAND", "LIST", "FILTERBY", "FOO", "x"],
        vec!["COMMAND", "LIST", "FILTERBY", "PATTERN"],
        vec!["COMMAND", "LIST", "FILTERBY", "ACLCAT", "hyperloglog", "x"],
        vec!["COMMAND", "LIST", "FILTERBY", "MODULE", "nosuchmodule"],
        vec!["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuchcategory"],
    ]
}

/// The names a COMMAND LIST call answers, sorted (the server lists them in
/// its dictionary's order).
async fn listed(addr: &str, filter: &[&str]) -> Vec<String> {
    let mut client = RawClient::connect(addr).await;
    let mut args = vec!["COMMAND", "LIST"];
    args.extend(filter);
    let reply = client.call(&args).await;
    let resp::Frame::Array(names) = reply else {
        panic!("{args:?} answered {}", show(&reply));
    };
    let mut names: Vec<String> = names.iter().map(show).collect();
    names.sort();
    names
}

async fn same_as_one_server(proxied: &TestProxy, direct: &Server) {
    let script = script();
    let script: Vec<&[&str]> = script.iter().map(Vec::as_slice).collect();
    assert_same_replies(&direct.addr(), &proxied.addr, &script).await;
    for filter in [
        &[][..],
        &["FILTERBY", "ACLCAT", "hyperloglog"],
        &["FILTERBY", "aclcat", "HyperLogLog"],
        &["FILTERBY", "PATTERN", "xa*"],
        &["FILTERBY", "PATTERN", "CLUSTER|SL*"],
        &["FILTERBY", "PATTERN", "*"],
    ] {
        let expected = listed(&direct.addr(), filter).await;
        assert!(!expected.is_empty(), "{filter:?}");
        assert_eq!(listed(&proxied.addr, filter).await, expected, "{filter:?}");
    }
}

#[tokio::test]
async fn on_a_standalone_server() {
    let direct = Server::start(Flavor::Valkey);
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    same_as_one_server(&proxy, &direct).await;
}

#[tokio::test]
async fn on_a_cluster() {
    let direct = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    same_as_one_server(&proxy, &direct).await;
}
