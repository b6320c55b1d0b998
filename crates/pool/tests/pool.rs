//! The pool against real servers: pipelining, handshake, failure and recovery.

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use resp::{Frame, Protocol, Request};
use test_util::{Flavor, Server};
use valkey_proxy_pool::{Endpoint, Error, Pool, PoolConfig};

fn req(args: &[&str]) -> Bytes {
    Request::from_args(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())))
        .raw()
        .clone()
}

fn parse(reply: Bytes) -> Frame {
    Frame::parse_complete(&reply).unwrap()
}

#[tokio::test]
async fn concurrent_requests_get_their_own_replies() {
    let server = Server::start(Flavor::Valkey);
    let pool = Pool::new(PoolConfig::default());
    let endpoint = Endpoint::new(server.addr());
    let calls = (0..2000).map(|i| {
        let (pool, endpoint) = (pool.clone(), endpoint.clone());
        async move {
            let value = format!("value-{i}");
            pool.call(&endpoint, req(&["SET", &format!("k{i}"), &value]))
                .await
                .unwrap();
            let got = parse(
                pool.call(&endpoint, req(&["GET", &format!("k{i}")]))
                    .await
                    .unwrap(),
            );
            assert_eq!(got, Frame::bulk(value));
        }
    });
    join_all(calls).await;
    assert_eq!(pool.stats().open.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test]
async fn handshake_selects_protocol_and_database() {
    let server = Server::start(Flavor::Redis);
    let pool = Pool::new(PoolConfig::default());
    let resp3_db5 = Endpoint::new(server.addr())
        .with_protocol(Protocol::Resp3)
        .with_db(5);
    pool.call(&resp3_db5, req(&["SET", "k", "five"])).await.unwrap();
    let reply = parse(pool.call(&resp3_db5, req(&["HGETALL", "nothing"])).await.unwrap());
    assert_eq!(reply, Frame::Map(vec![]), "RESP3 answers a map");
    let db0 = Endpoint::new(server.addr());
    assert_eq!(
        parse(pool.call(&db0, req(&["GET", "k"])).await.unwrap()),
        Frame::Null
    );
}

#[tokio::test]
async fn errors_while_down_then_recovers() {
    let mut server = Server::start(Flavor::Valkey);
    let pool = Pool::new(PoolConfig::default());
    let endpoint = Endpoint::new(server.addr());
    pool.call(&endpoint, req(&["PING"])).await.unwrap();
    server.kill();
    let mut errors = 0;
    for _ in 0..5 {
        if pool.call(&endpoint, req(&["PING"])).await.is_err() {
            errors += 1;
        }
    }
    assert_eq!(errors, 5);
    server.restart();
    let mut recovered = false;
    for _ in 0..100 {
        if pool.call(&endpoint, req(&["PING"])).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "pool never reconnected");
}

#[tokio::test]
async fn wrong_password_is_a_handshake_error() {
    let server = Server::start_with(Flavor::Valkey, &[("requirepass", "secret")]);
    let mut config = PoolConfig::default();
    config.handshake.password = Some("wrong".into());
    let pool = Pool::new(config);
    let error = pool
        .call(&Endpoint::new(server.addr()), req(&["PING"]))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Handshake { .. }), "{error}");
    assert!(error.to_string().contains("WRONGPASS"), "{error}");
}

#[tokio::test]
async fn request_timeout_fails_the_call_and_the_connection() {
    let server = Server::start(Flavor::Valkey);
    let config = PoolConfig {
        request_timeout: Some(Duration::from_millis(200)),
        ..PoolConfig::default()
    };
    let pool = Pool::new(config);
    let endpoint = Endpoint::new(server.addr());
    pool.call(&endpoint, req(&["PING"])).await.unwrap();
    server.pause();
    let error = pool.call(&endpoint, req(&["PING"])).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    server.resume();
}

#[tokio::test]
async fn the_request_timeout_changes_live_and_spares_dedicated_connections() {
    let server = Server::start(Flavor::Valkey);
    let pool = Pool::new(PoolConfig::default());
    let endpoint = Endpoint::new(server.addr());
    pool.call(&endpoint, req(&["PING"])).await.unwrap();
    let dedicated = pool.dedicated(&endpoint);
    dedicated.call(req(&["PING"])).await.unwrap();
    // Set while the connection is open: it applies to it at once.
    pool.set_request_timeout(Some(Duration::from_millis(300)));
    server.pause();
    let started = std::time::Instant::now();
    let shared = pool.call(&endpoint, req(&["PING"]));
    let alone = dedicated.call(req(&["PING"]));
    let error = shared.await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    assert!(!error.never_sent(), "a request written may have run");
    let waited = started.elapsed();
    // The dedicated connection's command may block on purpose: it waits
    // for the node, however long.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.resume();
    assert_eq!(parse(alone.await.unwrap()), Frame::Simple("PONG".into()));
    // A new shared connection works at once.
    assert_eq!(
        parse(pool.call(&endpoint, req(&["PING"])).await.unwrap()),
        Frame::Simple("PONG".into())
    );
    eprintln!("the silent node was declared so after {waited:?} (timeout 300 ms)");
}

#[tokio::test]
async fn a_forgotten_node_keeps_its_replies_then_its_connections_close() {
    let server = Server::start(Flavor::Valkey);
    let pool = Pool::new(PoolConfig::default());
    let endpoint = Endpoint::new(server.addr());
    let connection = pool.shared(&endpoint).unwrap();
    connection
        .call(req(&["CLIENT", "SETNAME", "leaving"]))
        .await
        .unwrap();
    server.pause();
    let owed = connection.send(&req(&["SET", "owed", "1"]), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    pool.forget(&server.addr());
    assert!(
        !connection.is_alive(),
        "a retired connection takes no new requests"
    );
    assert!(pool.addrs().is_empty());
    server.resume();
    // Nothing in flight failed: the write's reply still arrives.
    assert_eq!(parse(owed.await.unwrap()), Frame::Simple("OK".into()));
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let list = server.command(&["CLIENT", "LIST"]);
        if !String::from_utf8_lossy(list.as_bytes().unwrap()).contains("name=leaving") {
            closed = true;
            break;
        }
    }
    assert!(closed, "the retired connection was never closed");
}

#[tokio::test]
async fn dedicated_connections_are_counted_and_released() {
    let server = Server::start(Flavor::Valkey);
    let pool = Pool::new(PoolConfig::default());
    let endpoint = Endpoint::new(server.addr());
    let dedicated = pool.dedicated(&endpoint);
    dedicated.call(req(&["CLIENT", "SETNAME", "mine"])).await.unwrap();
    assert_eq!(
        pool.stats().dedicated.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop(dedicated);
    assert_eq!(
        pool.stats().dedicated.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let list = server.command(&["CLIENT", "LIST"]);
    assert!(!String::from_utf8_lossy(list.as_bytes().unwrap()).contains("name=mine"));
}

#[tokio::test]
async fn an_affinity_picks_its_connection_by_remainder() {
    let server = Server::start(Flavor::Valkey);
    let pool = Pool::new(PoolConfig {
        connections_per_endpoint: 3,
        ..PoolConfig::default()
    });
    let endpoint = Endpoint::new(server.addr());
    // The backend's own id for the connection each affinity gets.
    let mut ids = Vec::new();
    for affinity in 0..9u64 {
        let connection = pool.shared_for(&endpoint, affinity).unwrap();
        ids.push(parse(connection.call(req(&["CLIENT", "ID"])).await.unwrap()));
    }
    for affinity in 3..9 {
        assert_eq!(ids[affinity], ids[affinity % 3], "affinity {affinity}");
    }
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
}

#[tokio::test]
async fn a_blocking_command_is_registered_with_its_connections_node_id() {
    let server = Server::start(Flavor::Valkey);
    let pool = Pool::new(PoolConfig::default());
    let endpoint = Endpoint::new(server.addr());
    assert!(pool.blocked(7).is_empty());
    let reply = pool.send_blocking(&endpoint, &req(&["BLPOP", "nothing", "0"]), 7);
    let registered = pool.blocked(7);
    assert_eq!(registered.len(), 1, "registered under its owner");
    let blocked = registered[0].clone();
    assert!(pool.blocked(8).is_empty());
    let id = tokio::time::timeout(Duration::from_secs(5), blocked.backend_id())
        .await
        .expect("the node answers CLIENT ID")
        .expect("an id");
    // The id is the one the server shows for the connection in BLPOP.
    let mut shown = String::new();
    for _ in 0..250 {
        let list = server.command(&["CLIENT", "LIST"]);
        shown = String::from_utf8_lossy(list.as_bytes().unwrap()).into_owned();
        if shown.contains("cmd=blpop") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = shown
        .lines()
        .find(|line| line.contains("cmd=blpop"))
        .expect(&shown);
    assert!(line.starts_with(&format!("id={id} ")), "{line}");
    // Unblocked through the node, its reply arrives and the registration
    // goes with it; a connection no longer blocked is not unblocked again.
    let wait = Duration::from_secs(1);
    assert!(pool.unblock(&blocked, "TIMEOUT", wait).await.unwrap());
    assert_eq!(parse(reply.await.unwrap()), Frame::NullArray);
    assert!(pool.blocked(7).is_empty());
    assert!(!pool.unblock(&blocked, "TIMEOUT", wait).await.unwrap());
    // A reused connection keeps the id it learnt.
    let again = pool.send_blocking(&endpoint, &req(&["BLPOP", "nothing", "0"]), 7);
    let reused = pool.blocked(7).first().cloned().expect("registered again");
    assert_eq!(
        reused.backend_id().await,
        Some(id),
        "the idle connection was reused"
    );
    drop(again);
    assert!(pool.blocked(7).is_empty(), "an abandoned reply unregisters too");
}
