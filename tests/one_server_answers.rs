//! Places where the proxy answered differently from one server, each
//! compared with a real Valkey: SCRIPT FLUSH then EVALSHA, COMMAND GETKEYS
//! of a command whose keys move with its arguments, COMMAND LIST with its
//! filters, a script reply nested thousands deep, and PING and ECHO in
//! front of a busy node.

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

/// `args` sent on `stream`, and the first `len` bytes of the answer.
async fn raw_answer(stream: &mut tokio::net::TcpStream, args: &[&str], len: usize) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = bytes::BytesMut::new();
    resp::encode::encode_command(args, &mut request);
    stream.write_all(&request).await.expect("write");
    let mut answer = vec![0u8; len];
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_exact(&mut answer))
        .await
        .expect("the whole answer within 10 s")
        .expect("read");
    answer
}

#[tokio::test]
async fn a_deeply_nested_script_reply_passes_as_the_server_sends_it() {
    let direct = Server::start(Flavor::Valkey);
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    // 5,000 levels: deeper than the proxy's own frames go, well within
    // what a Lua script can return.
    let depth = 5000;
    let body = format!("local t = {{1}} for i = 1, {depth} do t = {{t}} end return t");
    // `{1}` wrapped `depth` times: depth + 1 arrays around the integer.
    let expected = [&b"*1\r\n".repeat(depth + 1)[..], b":1\r\n"].concat();
    let args = ["EVAL", body.as_str(), "0"];
    for addr in [direct.addr(), proxy.addr.clone()] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        assert_eq!(
            raw_answer(&mut stream, &args, expected.len()).await,
            expected,
            "{addr}"
        );
        // The connection goes on serving.
        assert_eq!(
            raw_answer(&mut stream, &["SET", "after", "1"], 5).await,
            b"+OK\r\n"
        );
    }
}

/// What a RESP3 client with CLIENT REPLY OFF receives around SUBSCRIBE:
/// every frame, in order.
async fn pushes_with_replies_off(addr: &str) -> Vec<String> {
    let wait = std::time::Duration::from_millis(300);
    let mut client = RawClient::connect(addr).await;
    assert!(!client.call(&["HELLO", "3"]).await.is_error());
    let mut publisher = RawClient::connect(addr).await;
    let mut seen = Vec::new();
    for command in [
        &["CLIENT", "REPLY", "OFF"][..],
        &["SUBSCRIBE", "a", "b"],
        &["PUBLISH", "a", "hi"],
        &["UNSUBSCRIBE"],
        &["UNSUBSCRIBE"],
        &["PING"],
        &["CLIENT", "REPLY", "ON"],
        &["PING"],
    ] {
        if command[0] == "PUBLISH" {
            assert_eq!(show(&publisher.call(command).await), "1");
        } else {
            client.send(command).await;
        }
        while let Some(frame) = client.next_within(wait).await {
            seen.push(format!("after {}: {frame:?}", command.join(" ")));
        }
    }
    seen
}

#[tokio::test]
async fn subscription_pushes_arrive_with_client_reply_off_in_resp3() {
    let direct = Server::start(Flavor::Valkey);
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    let expected = pushes_with_replies_off(&direct.addr()).await;
    assert!(
        expected.iter().any(|frame| frame.contains("subscribe")),
        "{expected:#?}"
    );
    assert_eq!(pushes_with_replies_off(&proxy.addr).await, expected);
}

#[tokio::test]
async fn script_kill_reaches_a_busy_node_past_the_script_on_its_shared_connection() {
    let backend = Server::start_with(Flavor::Valkey, &[("busy-reply-threshold", "100")]);
    // One shared connection per node: the script and everything after it
    // share it.
    let proxy = TestProxy::start(vec![backend.addr()], |config| config.connections_per_node = 1).await;
    for (load, kill, killed) in [
        (
            vec!["EVAL", "while true do end", "0"],
            vec!["SCRIPT", "KILL"],
            "-ERR Script killed by user with SCRIPT KILL",
        ),
        (
            vec!["FCALL", "spin", "0"],
            vec!["FUNCTION", "KILL"],
            "-ERR Script killed by user with FUNCTION KILL",
        ),
    ] {
        let mut setup = RawClient::connect(&proxy.addr).await;
        let library = "#!lua name=spinlib\nredis.register_function('spin', function() while true do end end)";
        assert!(!setup
            .call(&["FUNCTION", "LOAD", "REPLACE", library])
            .await
            .is_error());
        let mut busy = RawClient::connect(&proxy.addr).await;
        busy.send(&load).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut killer = RawClient::connect(&proxy.addr).await;
        killer.send(&kill).await;
        let answer = killer.next_within(std::time::Duration::from_secs(5)).await;
        assert_eq!(answer.as_ref().map(show).as_deref(), Some("OK"), "{kill:?}");
        let stopped = show(&busy.next().await);
        assert!(stopped.starts_with(killed), "{stopped}");
    }
}

/// Runs a script that never ends on `node`, from a client of its own (the
/// proxy's connections stay free); returns that client, to be answered
/// once the script is killed.
async fn keep_busy(node: &Server) -> RawClient {
    let mut spinner = RawClient::connect(&node.addr()).await;
    spinner.send(&["EVAL", "while true do end", "0"]).await;
    // Past busy-reply-threshold, the node answers BUSY.
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if node.command(&["PING"]).is_error() {
            return spinner;
        }
    }
    panic!("the node never became busy");
}

#[tokio::test]
async fn ping_and_echo_show_a_busy_backend_as_the_server_does() {
    let busy = [("busy-reply-threshold", "100")];
    let standalone = Server::start_with(Flavor::Valkey, &busy);
    let cluster = Cluster::start_with(Flavor::Valkey, 3, 0, &busy);
    // ECHO reaches any one node of a cluster: only a standalone backend's
    // BUSY is certain to show through it.
    for (backends, node, echo_reaches_it) in [
        (vec![standalone.addr()], &standalone, true),
        (cluster.addrs(), &cluster.primaries()[1], false),
    ] {
        let proxy = TestProxy::default_for(backends).await;
        let mut client = RawClient::connect(&proxy.addr).await;
        assert_eq!(show(&client.call(&["PING"]).await), "PONG");
        let mut spinner = keep_busy(node).await;
        let direct = node.command(&["PING"]);
        assert!(show(&direct).starts_with("-BUSY"), "{direct:?}");
        // PING checks every shard, as its request tip says.
        assert_eq!(client.call(&["PING"]).await, direct);
        if echo_reaches_it {
            assert_eq!(client.call(&["ECHO", "hi"]).await, node.command(&["ECHO", "hi"]));
        }
        assert_eq!(show(&node.command(&["SCRIPT", "KILL"])), "OK");
        assert!(show(&spinner.next().await).starts_with("-ERR Script killed"));
        assert_eq!(show(&client.call(&["PING"]).await), "PONG");
        assert_eq!(show(&client.call(&["PING", "hello"]).await), "hello");
        assert_eq!(show(&client.call(&["ECHO", "hi"]).await), "hi");
    }
}
