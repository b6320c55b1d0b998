//! One gate: a layer an embedder adds sees every command a client sends,
//! whatever state the client is in, so no sequence of commands walks around
//! it; and the statistics count every command, the proxy's own included.
//!
//! The layer is the one `examples/command_filter.rs` shows, run as the
//! example's own binary (cargo builds examples with the tests).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{show, RawClient, TestProxy};
use test_util::{Flavor, Server};

/// The command_filter example, serving in front of `backend` and refusing
/// `denied`; killed when dropped.
struct FilterProxy {
    child: Child,
    addr: String,
}

impl FilterProxy {
    fn start(backend: &str, denied: &[&str]) -> FilterProxy {
        let deps = std::env::current_exe().expect("the test binary's path");
        let binary = deps
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>")
            .join("examples")
            .join("command_filter");
        assert!(binary.exists(), "{} is built with the tests", binary.display());
        let mut child = Command::new(&binary)
            .arg(backend)
            .arg("127.0.0.1:0")
            .args(denied)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the example says where it listens");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        FilterProxy { child, addr }
    }
}

impl Drop for FilterProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn refused(name: &str) -> String {
    format!("-ERR {name} is disabled on this proxy")
}

#[tokio::test]
async fn a_layer_cannot_be_walked_around() {
    let server = Server::start(Flavor::Valkey);
    let proxy = FilterProxy::start(&server.addr(), &["flushall", "eval", "ping", "client"]);
    let mut client = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&client.call(&["SET", "kept", "v"]).await), "OK");

    // Plain and pipelined.
    assert_eq!(show(&client.call(&["FLUSHALL"]).await), refused("flushall"));
    client.send(&["SET", "a", "1"]).await;
    client.send(&["FLUSHALL"]).await;
    client.send(&["GET", "a"]).await;
    let pipelined: Vec<String> = [client.next().await, client.next().await, client.next().await]
        .iter()
        .map(show)
        .collect();
    assert_eq!(
        pipelined,
        ["OK".to_string(), refused("flushall"), "1".to_string()]
    );

    // Queued in MULTI: refused while queueing, and EXEC runs nothing.
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["SET", "b", "2"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["FLUSHALL"]).await), refused("flushall"));
    assert_eq!(
        show(&client.call(&["EXEC"]).await),
        "-EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(show(&client.call(&["GET", "b"]).await), "(nil)");

    // A script, and commands the proxy answers itself.
    let script = ["EVAL", "return redis.call('flushall')", "0"];
    assert_eq!(show(&client.call(&script).await), refused("eval"));
    assert_eq!(show(&client.call(&["PING"]).await), refused("ping"));
    assert_eq!(
        show(&client.call(&["CLIENT", "KILL", "TYPE", "normal"]).await),
        refused("client")
    );

    // Subscribe mode (RESP3, where other commands are allowed).
    let mut subscriber = RawClient::connect(&proxy.addr).await;
    assert!(!subscriber.call(&["HELLO", "3"]).await.is_error());
    assert_eq!(
        show(&subscriber.call(&["SUBSCRIBE", "news"]).await),
        "[subscribe news 1]"
    );
    assert_eq!(show(&subscriber.call(&["FLUSHALL"]).await), refused("flushall"));
    assert_eq!(show(&subscriber.call(&["PING"]).await), refused("ping"));

    // Nothing was flushed.
    assert_eq!(show(&server.command(&["GET", "kept"])), "v");
    assert_eq!(show(&server.command(&["GET", "a"])), "1");
}

#[tokio::test]
async fn a_refused_exec_discards_the_transaction_as_valkey_does() {
    let server = Server::start(Flavor::Valkey);
    let proxy = FilterProxy::start(&server.addr(), &["exec"]);
    let mut client = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["SET", "b", "2"]).await), "QUEUED");
    assert_eq!(
        show(&client.call(&["EXEC"]).await),
        "-EXECABORT Transaction discarded because of: ERR exec is disabled on this proxy"
    );
    assert_eq!(
        show(&client.call(&["DISCARD"]).await),
        "-ERR DISCARD without MULTI"
    );
    assert_eq!(show(&client.call(&["GET", "b"]).await), "(nil)");
}

/// `calls` of `name` in PROXY STATS.
async fn calls(client: &mut RawClient, name: &str) -> u64 {
    let stats = show(&client.call(&["PROXY", "STATS"]).await);
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn statistics_count_every_command() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    for command in [
        &["PING"][..],
        &["SELECT", "1"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["EXEC"],
        &["WATCH", "a"],
        &["UNWATCH"],
        &["CLIENT", "ID"],
    ] {
        assert!(!client.call(command).await.is_error(), "{command:?}");
    }
    for (name, expected) in [
        ("ping", 1),
        ("select", 1),
        ("multi", 1),
        ("set", 1),
        ("incr", 1),
        ("exec", 1),
        ("watch", 1),
        ("unwatch", 1),
        ("client|id", 1),
    ] {
        assert_eq!(calls(&mut client, name).await, expected, "{name}");
    }
}

/// `field` (`max_usec`, ...) of `name` in PROXY STATS.
async fn stat(client: &mut RawClient, name: &str, field: &str) -> u64 {
    let stats = show(&client.call(&["PROXY", "STATS"]).await);
    let line = stats
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
        .to_string();
    line.split(',')
        .find_map(|pair| pair.strip_prefix(&format!("{field}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {line}"))
}

#[tokio::test]
async fn the_latency_of_a_command_the_session_carries_out_is_all_of_it() {
    let server = Server::start_with(Flavor::Valkey, &[("enable-debug-command", "yes")]);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    // WAIT for a replica that does not exist: the timeout, 200 ms.
    assert_eq!(show(&client.call(&["WAIT", "1", "200"]).await), "0");
    // A transaction whose EXEC runs for 200 ms on the backend.
    assert_eq!(show(&client.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&client.call(&["DEBUG", "SLEEP", "0.2"]).await), "QUEUED");
    assert_eq!(show(&client.call(&["EXEC"]).await), "[OK]");
    for name in ["wait", "exec"] {
        assert_eq!(stat(&mut client, name, "calls").await, 1, "{name}");
        let max = stat(&mut client, name, "max_usec").await;
        assert!(max >= 200_000, "{name} took {max} µs by PROXY STATS");
    }
}
