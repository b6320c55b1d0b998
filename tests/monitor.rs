//! MONITOR through the proxy shows what one Valkey server shows for the
//! same commands: the client's address and database, its arguments as it
//! sent them (quoted as Valkey quotes them, secrets redacted), transactions
//! as they run, and nothing of the proxy's own work or the backends'
//! namespaces. Compared line by line with a real Valkey's MONITOR.

mod common;

use std::time::Duration;

use common::{show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

/// What the client sends (`writer` lines come from a second client).
fn script() -> Vec<(bool, Vec<&'static str>)> {
    let client = |args: &[&'static str]| (false, args.to_vec());
    let writer = |args: &[&'static str]| (true, args.to_vec());
    vec![
        client(&["SET", "a", "1"]),
        client(&["SELECT", "2"]),
        client(&["SET", "spaced key", "line\nbreak \"quoted\" \x01"]),
        client(&["MGET", "a", "b", "c"]),
        client(&["PING"]),
        // A transaction across nodes: MULTI, then its commands and EXEC
        // when EXEC runs them.
        client(&["MULTI"]),
        client(&["SET", "b", "2"]),
        client(&["INCR", "c"]),
        client(&["EXEC"]),
        // A transaction with an error while queueing: only EXEC.
        client(&["MULTI"]),
        client(&["SET", "b"]),
        client(&["EXEC"]),
        client(&["MULTI"]),
        client(&["SET", "b", "3"]),
        client(&["DISCARD"]),
        // A watched key written meanwhile: EXEC runs nothing.
        client(&["WATCH", "w"]),
        writer(&["SELECT", "2"]),
        writer(&["SET", "w", "meanwhile"]),
        client(&["MULTI"]),
        client(&["SET", "w", "mine"]),
        client(&["EXEC"]),
        // Secrets, admin commands, unknown commands, wrong arity.
        client(&["AUTH", "secret"]),
        client(&["HELLO", "2", "AUTH", "default", "secret"]),
        client(&["CONFIG", "GET", "maxmemory"]),
        client(&["NOSUCHCOMMAND", "x"]),
        client(&["GET"]),
        client(&["EVAL", "return redis.call('GET', KEYS[1])", "1", "a"]),
        client(&["ECHO", "the end"]),
    ]
}

/// The client's `addr=` from CLIENT INFO.
async fn addr(client: &mut RawClient) -> String {
    let info = show(&client.call(&["CLIENT", "INFO"]).await);
    info.split(' ')
        .find_map(|field| field.strip_prefix("addr="))
        .expect("addr=")
        .to_string()
}

/// The lines a monitor of `addr` gets while `script` runs there, with the
/// time left out and the clients' addresses named.
async fn monitored(addr: &str) -> Vec<String> {
    let mut monitor = RawClient::connect(addr).await;
    let mut client = RawClient::connect(addr).await;
    let mut writer = RawClient::connect(addr).await;
    let names = [
        (self::addr(&mut client).await, "client"),
        (self::addr(&mut writer).await, "writer"),
    ];
    assert_eq!(show(&monitor.call(&["MONITOR"]).await), "OK");
    for (by_writer, args) in script() {
        let sender = if by_writer { &mut writer } else { &mut client };
        sender.call(&args).await;
    }
    let mut lines = Vec::new();
    loop {
        let line = show(
            &monitor
                .next_within(Duration::from_secs(10))
                .await
                .expect("a line"),
        );
        let (_time, rest) = line.split_once(' ').expect("a timestamp");
        let mut rest = rest.to_string();
        for (addr, name) in &names {
            rest = rest.replace(&format!(" {addr}]"), &format!(" {name}]"));
        }
        let end = rest.contains("\"ECHO\" \"the end\"");
        lines.push(rest);
        if end {
            return lines;
        }
    }
}

#[tokio::test]
async fn monitor_shows_what_one_server_shows() {
    let server = Server::start(Flavor::Valkey);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut expected = monitored(&server.addr()).await;
    // What a backend runs inside a script is not shown through the proxy.
    let lua: Vec<String> = expected
        .iter()
        .filter(|l| l.contains(" lua] "))
        .cloned()
        .collect();
    assert_eq!(lua, ["[2 lua] \"GET\" \"a\""]);
    expected.retain(|line| !line.contains(" lua] "));
    // The watched key was written: that EXEC ran nothing.
    let ran_nothing = !expected.iter().any(|l| l.contains("\"SET\" \"w\" \"mine\""));
    assert!(ran_nothing, "{expected:#?}");
    assert_eq!(monitored(&proxy.addr).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_that_left_or_reset_is_fed_no_more() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut monitor = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&monitor.call(&["MONITOR"]).await), "OK");
    let mut client = RawClient::connect(&proxy.addr).await;
    client.call(&["SET", "k", "seen"]).await;
    assert!(show(&monitor.next().await).ends_with("\"SET\" \"k\" \"seen\""));
    assert_eq!(show(&monitor.call(&["RESET"]).await), "RESET");
    client.call(&["SET", "k", "unseen"]).await;
    assert_eq!(show(&monitor.call(&["GET", "k"]).await), "unseen");
    assert!(monitor.next_within(Duration::from_millis(200)).await.is_none());
    // No monitor left: the next line finds none, and the proxy stops
    // formatting lines.
    assert_eq!(show(&monitor.call(&["MONITOR"]).await), "OK");
    assert_eq!(common::proxy_info_field(&proxy.addr, "monitors"), 1);
    drop(monitor);
    let mut left = 1;
    for _ in 0..100 {
        client.call(&["SET", "k", "again"]).await;
        left = common::proxy_info_field(&proxy.addr, "monitors");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0);
}
