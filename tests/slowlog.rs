//! SLOWLOG is the proxy's own: what took long through the proxy, shaped
//! as Valkey shapes its entries and with its errors; the backends' slow
//! logs stay reachable through PROXY SLOWLOG BACKENDS.

mod common;

use common::{assert_same_replies, show, RawClient, TestProxy};
use resp::Frame;
use test_util::{Flavor, Server};

/// The entries of a SLOWLOG GET reply, each as its six fields.
fn entries(reply: &Frame) -> Vec<Vec<Frame>> {
    let Frame::Array(entries) = reply else {
        panic!("not an array: {}", show(reply))
    };
    entries
        .iter()
        .map(|entry| match entry {
            Frame::Array(fields) => fields.clone(),
            other => panic!("not an entry: {}", show(other)),
        })
        .collect()
}

fn args(entry: &[Frame]) -> Vec<String> {
    let Frame::Array(args) = &entry[3] else {
        panic!("no arguments: {entry:?}")
    };
    args.iter()
        .map(|arg| match arg {
            Frame::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => panic!("not a bulk string: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_over_the_threshold_is_logged_as_valkey_logs_it() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |config| {
        config.slowlog_log_slower_than = 0;
        config.slowlog_max_len = 5;
    })
    .await;
    let mut client = RawClient::connect(&proxy.addr).await;
    client.call(&["CLIENT", "SETNAME", "reporter"]).await;
    client.call(&["SLOWLOG", "RESET"]).await;
    let long = "v".repeat(300);
    client.call(&["SET", "key", &long]).await;
    let mut many = vec!["RPUSH".to_string(), "list".to_string()];
    many.extend((0..40).map(|i| i.to_string()));
    client
        .call(&many.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    client.call(&["AUTH", "nobody", "secret"]).await;
    client.call(&["CONFIG", "SET", "requirepass", ""]).await;
    let reply = client.call(&["SLOWLOG", "GET", "-1"]).await;
    let got = entries(&reply);
    // Newest first: CONFIG SET (its secret redacted), RPUSH, SET, the
    // RESET; AUTH is never logged. Five at most are kept.
    let names: Vec<String> = got
        .iter()
        .map(|entry| args(entry)[0].to_ascii_lowercase())
        .collect();
    assert_eq!(names, ["config", "rpush", "set", "slowlog"], "{}", show(&reply));
    assert_eq!(args(&got[0]), ["CONFIG", "SET", "requirepass", "(redacted)"]);
    let rpush = args(&got[1]);
    assert_eq!(rpush.len(), 32);
    assert_eq!(rpush[31], "... (11 more arguments)");
    let set = args(&got[2]);
    assert_eq!(set[2], format!("{}... (172 more bytes)", "v".repeat(128)));
    for entry in &got {
        assert_eq!(entry.len(), 6);
        assert!(matches!(
            (&entry[0], &entry[1], &entry[2]),
            (Frame::Integer(_), Frame::Integer(_), Frame::Integer(_))
        ));
        assert_eq!(entry[5], Frame::Bulk("reporter".into()));
        let Frame::Bulk(addr) = &entry[4] else { panic!() };
        assert!(addr.starts_with(b"127.0.0.1:"), "{entry:?}");
    }
    // Ids grow with each entry.
    let ids: Vec<i64> = got
        .iter()
        .map(|entry| match entry[0] {
            Frame::Integer(id) => id,
            _ => -1,
        })
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "{ids:?}");
    for _ in 0..10 {
        client.call(&["PING"]).await;
    }
    assert_eq!(client.call(&["SLOWLOG", "LEN"]).await, Frame::Integer(5));
    assert_eq!(entries(&client.call(&["SLOWLOG", "GET", "2"]).await).len(), 2);
    assert_eq!(entries(&client.call(&["SLOWLOG", "GET"]).await).len(), 5);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_slow_requests_are_logged_and_backends_keep_their_own() {
    let server = Server::start_with(Flavor::Valkey, &[("enable-debug-command", "yes")]);
    let proxy = TestProxy::start(vec![server.addr()], |config| {
        config.slowlog_log_slower_than = 50_000;
    })
    .await;
    let mut client = RawClient::connect(&proxy.addr).await;
    for i in 0..100 {
        client.call(&["SET", &format!("k{i}"), "v"]).await;
    }
    client.call(&["DEBUG", "SLEEP", "0.1"]).await;
    let got = entries(&client.call(&["SLOWLOG", "GET"]).await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(args(&got[0]), ["DEBUG", "SLEEP", "0.1"]);
    let Frame::Integer(micros) = got[0][2] else {
        panic!()
    };
    assert!(micros >= 100_000, "{micros}");
    // The backend's own log, with its default threshold (10 ms), has the
    // same command as the backend saw it, from the proxy's connection.
    let backends = client.call(&["PROXY", "SLOWLOG", "BACKENDS", "GET", "1"]).await;
    let backend = entries(&backends);
    assert_eq!(
        args(&backend[0]),
        ["DEBUG", "SLEEP", "0.1"],
        "{}",
        show(&backends)
    );
    assert_eq!(backend[0][5], Frame::Bulk("valkey-proxy".into()));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_errors_match_a_servers() {
    let server = Server::start_with(Flavor::Valkey, &[("slowlog-log-slower-than", "-1")]);
    let proxy = TestProxy::start(vec![Server::start(Flavor::Valkey).addr()], |config| {
        config.slowlog_log_slower_than = -1;
    })
    .await;
    assert_same_replies(
        &server.addr(),
        &proxy.addr,
        &[
            &["SLOWLOG", "RESET"],
            &["SLOWLOG", "LEN"],
            &["SLOWLOG", "GET"],
            &["SLOWLOG", "GET", "-1"],
            &["SLOWLOG", "GET", "-2"],
            &["SLOWLOG", "GET", "x"],
            &["SLOWLOG", "GET", "1", "2"],
            &["SLOWLOG", "LEN", "x"],
            &["SLOWLOG", "NOSUCH"],
            &["SLOWLOG"],
            &["SLOWLOG", "HELP"],
        ],
    )
    .await;
}
