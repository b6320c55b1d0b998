//! Connection-scoped commands answered by the proxy, statistics, and many
//! pipelining clients whose replies never cross.

mod common;

use common::{connect, run, TestProxy};
use futures::future::join_all;
use redis::Value;
use test_util::{Cluster, Flavor, Server};

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_uses_numbered_databases() {
    let server = Server::start(Flavor::Redis);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut a = connect(&proxy.addr).await;
    assert_eq!(run(&mut a, &["SELECT", "3"]).await, Value::Okay);
    assert_eq!(run(&mut a, &["SET", "k", "three"]).await, Value::Okay);
    assert_eq!(
        run(&mut a, &["SELECT", "16"]).await.to_owned(),
        run(&mut a, &["SELECT", "99"]).await
    );
    assert!(text(&run(&mut a, &["SELECT", "16"]).await).contains("DB index is out of range"));
    assert!(text(&run(&mut a, &["SELECT", "x"]).await).contains("value is not an integer"));
    let mut b = connect(&proxy.addr).await;
    assert_eq!(run(&mut b, &["GET", "k"]).await, Value::Nil);
    assert!(!server.command(&["SELECT", "3"]).is_error());
    let direct = test_util::command(&server.addr(), &["GET", "k"]).unwrap();
    assert!(direct.as_bytes().is_none(), "db 0 on the server has no k");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_switches_protocol_per_client() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", proxy.addr)).unwrap();
    let mut resp3 = client.get_multiplexed_async_connection().await.unwrap();
    let mut resp2 = connect(&proxy.addr).await;
    run(&mut resp2, &["HSET", "h", "f", "v"]).await;
    assert!(matches!(run(&mut resp3, &["HGETALL", "h"]).await, Value::Map(_)));
    assert!(matches!(
        run(&mut resp2, &["HGETALL", "h"]).await,
        Value::Array(_)
    ));
    assert!(matches!(
        run(&mut resp3, &["ZSCORE", "nozset", "m"]).await,
        Value::Nil
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_users_authenticate_clients() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |c| {
        c.users.push(proxy::config::UserConfig {
            name: "default".into(),
            password: Some("s3cret".into()),
            ..Default::default()
        });
    })
    .await;
    let mut raw = connect_raw(&proxy.addr).await;
    assert_eq!(raw.send("GET k").await, "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        raw.send("AUTH wrong").await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(raw.send("AUTH s3cret").await, "+OK\r\n");
    assert_eq!(raw.send("GET k").await, "$-1\r\n");
    let authed = redis::Client::open(format!("redis://:s3cret@{}/", proxy.addr)).unwrap();
    let mut authed = authed.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(run(&mut authed, &["SET", "k", "v"]).await, Value::Okay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_describe_proxy_clients() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut a = connect(&proxy.addr).await;
    let mut b = connect(&proxy.addr).await;
    assert_eq!(run(&mut a, &["CLIENT", "SETNAME", "alpha"]).await, Value::Okay);
    assert_eq!(text(&run(&mut a, &["CLIENT", "GETNAME"]).await), "alpha");
    assert!(text(&run(&mut a, &["CLIENT", "SETNAME", "has space"]).await).contains("cannot contain spaces"));
    let list = text(&run(&mut b, &["CLIENT", "LIST"]).await);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("name=alpha"), "{list}");
    let Value::Int(id) = run(&mut a, &["CLIENT", "ID"]).await else {
        panic!("CLIENT ID is an integer")
    };
    assert_eq!(
        run(&mut b, &["CLIENT", "KILL", "ID", &id.to_string()]).await,
        Value::Int(1)
    );
    assert!(
        text(&run(&mut a, &["PING"]).await).contains("error")
            || run(&mut a, &["PING"]).await != Value::SimpleString("PONG".into())
    );
    assert!(text(&run(&mut b, &["CLIENT", "FOO"]).await).contains("unknown subcommand 'FOO'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_connection_modes_are_refused_clearly() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut raw = connect_raw(&proxy.addr).await;
    for command in ["SYNC", "PSYNC ? -1", "CLIENT CAPA redirect"] {
        let reply = raw.send(command).await;
        assert!(
            reply.starts_with("-ERR proxy: ") && reply.contains("not supported"),
            "{command}: {reply}"
        );
    }
    assert_eq!(raw.send("PING").await, "+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_table_and_stats() {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = connect(&proxy.addr).await;
    let Value::Int(count) = run(&mut client, &["COMMAND", "COUNT"]).await else {
        panic!()
    };
    assert!(count > 200);
    let keys = run(&mut client, &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]).await;
    assert_eq!(
        keys,
        Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"b".to_vec())
        ])
    );
    for _ in 0..10 {
        run(&mut client, &["SET", "k", "v"]).await;
    }
    run(&mut client, &["GET", "k"]).await;
    let stats = text(&run(&mut client, &["PROXY", "STATS"]).await);
    assert!(stats.contains("cmdstat_set:calls=10,errors=0,"), "{stats}");
    assert!(stats.contains("p99_usec="), "{stats}");
    let latency = text(&run(&mut client, &["PROXY", "LATENCY", "get"]).await);
    assert!(
        latency.contains("cmdstat_get:calls=1,") && !latency.contains("cmdstat_set"),
        "{latency}"
    );
    let info = text(&run(&mut client, &["PROXY", "INFO"]).await);
    assert!(
        info.contains("mode:standalone") && info.contains("connected_clients:1"),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pipelining_clients_get_their_own_replies() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(vec![cluster.addrs()[0].clone()]).await;
    let clients = (0..50).map(|c| {
        let addr = proxy.addr.clone();
        async move {
            let mut connection = connect(&addr).await;
            for round in 0..20 {
                let mut pipe = redis::pipe();
                for i in 0..20 {
                    let key = format!("c{c}:r{round}:{i}");
                    pipe.cmd("SET").arg(&key).arg(format!("{key}-value"));
                    pipe.cmd("GET").arg(&key);
                }
                let replies: Vec<Value> = pipe.query_async(&mut connection).await.unwrap();
                for (i, pair) in replies.chunks(2).enumerate() {
                    let key = format!("c{c}:r{round}:{i}");
                    assert_eq!(pair[0], Value::Okay);
                    assert_eq!(pair[1], Value::BulkString(format!("{key}-value").into_bytes()));
                }
            }
        }
    });
    join_all(clients).await;
}

/// A plain TCP client that sends inline commands and reads one reply.
struct Raw(tokio::net::TcpStream);

async fn connect_raw(addr: &str) -> Raw {
    Raw(tokio::net::TcpStream::connect(addr).await.unwrap())
}

impl Raw {
    async fn send(&mut self, line: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.0.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        let mut chunk = [0u8; 4096];
        let n = self.0.read(&mut chunk).await.unwrap();
        String::from_utf8_lossy(&chunk[..n]).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reply_pause_and_flags() {
    use common::{show, RawClient};
    use std::time::Duration;
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    // REPLY OFF / SKIP drop replies; the next reply seen is ON's.
    client.send(&["CLIENT", "REPLY", "OFF"]).await;
    client.send(&["SET", "k", "1"]).await;
    client.send(&["CLIENT", "REPLY", "ON"]).await;
    assert_eq!(show(&client.next().await), "OK");
    client.send(&["CLIENT", "REPLY", "SKIP"]).await;
    client.send(&["INCR", "k"]).await;
    assert_eq!(show(&client.call(&["GET", "k"]).await), "2");
    // Flags and session state in CLIENT INFO.
    assert_eq!(show(&client.call(&["CLIENT", "NO-EVICT", "ON"]).await), "OK");
    assert_eq!(show(&client.call(&["CLIENT", "NO-TOUCH", "ON"]).await), "OK");
    client.call(&["MULTI"]).await;
    client.call(&["GET", "k"]).await;
    client.call(&["DISCARD"]).await;
    let mut other = RawClient::connect(&proxy.addr).await;
    other.call(&["MULTI"]).await;
    other.call(&["GET", "k"]).await;
    let info = show(&client.call(&["CLIENT", "INFO"]).await);
    assert!(info.contains("flags=eT") && info.contains("multi=-1"), "{info}");
    let list = show(&client.call(&["CLIENT", "LIST"]).await);
    assert!(list.contains("flags=x") && list.contains("multi=1"), "{list}");
    other.call(&["DISCARD"]).await;
    assert_eq!(show(&client.call(&["CLIENT", "GETREDIR"]).await), "-1");
    // PAUSE WRITE holds writes only; UNPAUSE lets them go at once. The
    // pause is far longer than the reply wait below: only UNPAUSE can end it.
    assert_eq!(
        show(&client.call(&["CLIENT", "PAUSE", "60000", "WRITE"]).await),
        "OK"
    );
    other.send(&["SET", "k", "paused"]).await;
    assert_eq!(show(&client.call(&["GET", "k"]).await), "2", "reads go on");
    assert!(
        other.next_within(Duration::from_millis(300)).await.is_none(),
        "the write waits"
    );
    assert_eq!(show(&client.call(&["CLIENT", "UNPAUSE"]).await), "OK");
    assert_eq!(show(&other.next().await), "OK");
    assert_eq!(show(&client.call(&["GET", "k"]).await), "paused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_while_blocked_frees_its_connection() {
    use common::{settled_info_field, RawClient};
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut blocked = RawClient::connect(&proxy.addr).await;
    blocked.send(&["BLPOP", "nothing", "0"]).await;
    let held = settled_info_field(&proxy.addr, "backend_connections_dedicated", 1).await;
    assert_eq!(held, 1, "the blocked client holds a dedicated connection");
    drop(blocked);
    let held = settled_info_field(&proxy.addr, "backend_connections_dedicated", 0).await;
    assert_eq!(held, 0, "released when the client left");
    // The backend connection itself was closed, not kept blocked (the
    // server notices the close a moment later).
    let mut clients = String::new();
    for _ in 0..250 {
        clients = test_util::client::must(&server.addr(), &["CLIENT", "LIST"]);
        if !clients.contains("cmd=blpop") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!clients.contains("cmd=blpop"), "{clients}");
}

/// Waits until one of `nodes` counts a blocked client (CLIENT LIST's
/// `cmd` is a connection's last command, blocked or not: it would still
/// show the BLPOP of a connection that went back to the pool).
async fn until_blocked_on(nodes: &[String]) {
    for _ in 0..250 {
        if nodes
            .iter()
            .any(|node| test_util::client::must(node, &["INFO", "clients"]).contains("blocked_clients:1"))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no node counts the BLPOP as blocked");
}

/// CLIENT UNBLOCK, through the proxy in front of `nodes`, of a client
/// blocked in BLPOP: with TIMEOUT its command answers nil, with ERROR it
/// answers `-UNBLOCKED`; a client that is not blocked, or does not exist,
/// gives 0; the unblocked client goes on working.
async fn client_unblock_reaches_the_blocked_command(nodes: Vec<String>) {
    use common::{show, RawClient};
    let proxy = TestProxy::default_for(nodes.clone()).await;
    let mut blocked = RawClient::connect(&proxy.addr).await;
    let id = show(&blocked.call(&["CLIENT", "ID"]).await);
    let mut other = RawClient::connect(&proxy.addr).await;

    blocked.send(&["BLPOP", "unblock:list", "0"]).await;
    until_blocked_on(&nodes).await;
    assert_eq!(show(&other.call(&["CLIENT", "UNBLOCK", &id]).await), "1");
    assert_eq!(
        show(&blocked.next().await),
        "(nil)",
        "TIMEOUT answers as a timeout"
    );

    blocked.send(&["BLPOP", "unblock:list", "0"]).await;
    until_blocked_on(&nodes).await;
    assert_eq!(show(&other.call(&["CLIENT", "UNBLOCK", &id, "error"]).await), "1");
    let reply = show(&blocked.next().await);
    assert!(reply.starts_with("-UNBLOCKED"), "{reply}");

    assert_eq!(
        show(&other.call(&["CLIENT", "UNBLOCK", &id]).await),
        "0",
        "no longer blocked"
    );
    assert_eq!(show(&other.call(&["CLIENT", "UNBLOCK", "987654"]).await), "0");
    assert_eq!(
        show(&other.call(&["CLIENT", "UNBLOCK", "x"]).await),
        "-ERR value is not an integer or out of range"
    );
    assert_eq!(
        show(&other.call(&["CLIENT", "UNBLOCK", &id, "later"]).await),
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    );
    assert_eq!(show(&blocked.call(&["RPUSH", "unblock:list", "v"]).await), "1");
    assert_eq!(
        show(&blocked.call(&["BLPOP", "unblock:list", "0"]).await),
        "[unblock:list v]",
        "the dedicated connection went back clean"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_on_a_standalone_valkey() {
    let server = Server::start(Flavor::Valkey);
    client_unblock_reaches_the_blocked_command(vec![server.addr()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_on_a_standalone_redis() {
    let server = Server::start(Flavor::Redis);
    client_unblock_reaches_the_blocked_command(vec![server.addr()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_on_a_cluster() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    client_unblock_reaches_the_blocked_command(cluster.addrs()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_client_sees_one_node_owning_every_slot() {
    use common::{show, RawClient};
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut raw = RawClient::connect(&proxy.addr).await;
    let port = proxy.addr.rsplit(':').next().unwrap().to_string();
    let slots = show(&raw.call(&["CLUSTER", "SLOTS"]).await);
    assert!(
        slots.starts_with(&format!("[[0 16383 [127.0.0.1 {port} ")),
        "{slots}"
    );
    assert!(show(&raw.call(&["CLUSTER", "INFO"]).await).contains("cluster_state:ok"));
    assert_eq!(show(&raw.call(&["CLUSTER", "KEYSLOT", "foo"]).await), "12182");
    assert!(show(&raw.call(&["CLUSTER", "NODES"]).await).contains("myself,master - 0 0 1 connected 0-16383"));
    // A cluster client library, pointed at the proxy, just works.
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{}/", proxy.addr)]).unwrap();
    let mut connection = client
        .get_async_connection()
        .await
        .expect("cluster client connects");
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    let values: Vec<i64> = redis::cmd("MGET")
        .arg((0..50).map(|i| format!("k{i}")).collect::<Vec<_>>())
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(values, (0..50).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tracking_invalidates_what_the_client_read() {
    use common::{show, RawClient};
    use std::time::Duration;
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut cache = RawClient::connect(&proxy.addr).await;
    cache.call(&["HELLO", "3"]).await;
    assert_eq!(show(&cache.call(&["CLIENT", "TRACKING", "ON"]).await), "OK");
    let info = show(&cache.call(&["CLIENT", "TRACKINGINFO"]).await);
    assert!(info.contains("flags=[on]"), "{info}");
    let mut writer = RawClient::connect(&proxy.addr).await;
    for key in ["a", "b", "c"] {
        writer.call(&["SET", key, "1"]).await;
    }
    // Read a and b (on different primaries), not c.
    cache.call(&["GET", "a"]).await;
    cache.call(&["GET", "b"]).await;
    for key in ["c", "a", "b"] {
        writer.call(&["SET", key, "2"]).await;
    }
    let mut invalidated = Vec::new();
    while invalidated.len() < 2 {
        let push = cache.next().await;
        assert!(matches!(push, resp::Frame::Push(_)), "{push:?}");
        invalidated.push(show(&push));
    }
    invalidated.sort();
    assert_eq!(invalidated, ["[invalidate [a]]", "[invalidate [b]]"]);
    assert!(
        cache.next_within(Duration::from_millis(300)).await.is_none(),
        "nothing for c"
    );
    // BCAST with a prefix reports keys never read.
    assert_eq!(
        show(
            &cache
                .call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:"])
                .await
        ),
        "OK"
    );
    writer.call(&["SET", "user:1", "x"]).await;
    writer.call(&["SET", "other", "x"]).await;
    assert_eq!(show(&cache.next().await), "[invalidate [user:1]]");
    assert!(cache.next_within(Duration::from_millis(300)).await.is_none());
    assert_eq!(show(&cache.call(&["CLIENT", "TRACKING", "OFF"]).await), "OK");
    assert_eq!(show(&cache.call(&["CLIENT", "GETREDIR"]).await), "-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tracking_redirects_to_a_resp2_listener() {
    use common::{show, RawClient};
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut listener = RawClient::connect(&proxy.addr).await;
    let listener_id = show(&listener.call(&["CLIENT", "ID"]).await);
    assert_eq!(
        show(&listener.call(&["SUBSCRIBE", "__redis__:invalidate"]).await),
        "[subscribe __redis__:invalidate 1]"
    );
    let mut cache = RawClient::connect(&proxy.addr).await;
    let missing = show(
        &cache
            .call(&["CLIENT", "TRACKING", "ON", "REDIRECT", "99999"])
            .await,
    );
    assert_eq!(missing, "-ERR The client ID you want redirect to does not exist");
    assert_eq!(
        show(
            &cache
                .call(&["CLIENT", "TRACKING", "ON", "REDIRECT", &listener_id])
                .await
        ),
        "OK"
    );
    assert_eq!(show(&cache.call(&["CLIENT", "GETREDIR"]).await), listener_id);
    cache.call(&["GET", "k"]).await;
    let mut writer = RawClient::connect(&proxy.addr).await;
    writer.call(&["SET", "k", "v"]).await;
    assert_eq!(show(&listener.next().await), "[message __redis__:invalidate [k]]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tracking_inside_an_emulated_database() {
    use common::{show, RawClient};
    let cluster = Cluster::start(Flavor::Redis, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    let mut cache = RawClient::connect(&proxy.addr).await;
    cache.call(&["HELLO", "3"]).await;
    cache.call(&["SELECT", "3"]).await;
    assert_eq!(show(&cache.call(&["CLIENT", "TRACKING", "ON"]).await), "OK");
    cache.call(&["GET", "k"]).await;
    let mut writer = RawClient::connect(&proxy.addr).await;
    writer.call(&["SELECT", "3"]).await;
    writer.call(&["SET", "k", "v"]).await;
    assert_eq!(show(&cache.next().await), "[invalidate [k]]");
}

/// A blocking command runs after the client's earlier requests and before
/// its later ones, as on Valkey, which runs nothing else of a client it
/// has blocked: a read pipelined after BLMOVE sees what BLMOVE moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_after_a_blocking_command_wait_for_it() {
    use common::{show, RawClient};
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut blocked = RawClient::connect(&proxy.addr).await;
    blocked.send(&["DEL", "src", "dst"]).await;
    blocked
        .send(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"])
        .await;
    blocked.send(&["LRANGE", "dst", "0", "-1"]).await;
    assert_eq!(show(&blocked.next().await), "0");
    until_blocked_on(&[server.addr()]).await;
    let mut other = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&other.call(&["RPUSH", "src", "x"]).await), "1");
    assert_eq!(show(&blocked.next().await), "x", "BLMOVE moved the new element");
    assert_eq!(show(&blocked.next().await), "[x]", "LRANGE ran after BLMOVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xread_without_block_is_a_plain_read() {
    use common::{proxy_info_field, show, RawClient};
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![server.addr()]).await;
    let mut client = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&client.call(&["XADD", "s", "1-1", "f", "v"]).await), "1-1");
    assert_eq!(
        show(&client.call(&["XGROUP", "CREATE", "s", "block", "0"]).await),
        "OK"
    );
    let opened = proxy_info_field(&proxy.addr, "backend_connections_opened_total");
    // Pipelined with other requests; the group is named "block" on purpose.
    let requests: [&[&str]; 4] = [
        &["XREAD", "COUNT", "5", "STREAMS", "s", "0"],
        &["SET", "k", "after"],
        &["XREADGROUP", "GROUP", "block", "c", "STREAMS", "s", ">"],
        &["GET", "k"],
    ];
    for request in requests {
        client.send(request).await;
    }
    let mut replies = Vec::new();
    for _ in requests {
        replies.push(show(&client.next().await));
    }
    assert_eq!(
        replies,
        ["[[s [[1-1 [f v]]]]]", "OK", "[[s [[1-1 [f v]]]]]", "after"],
        "the same answers as direct"
    );
    assert_eq!(
        proxy_info_field(&proxy.addr, "backend_connections_opened_total"),
        opened,
        "no connection of its own for a read that does not block"
    );
    // With BLOCK it is a blocking command: a connection of its own.
    assert_eq!(
        show(&client.call(&["XREAD", "BLOCK", "10", "STREAMS", "s", "$"]).await),
        "(nil)"
    );
    assert_eq!(
        proxy_info_field(&proxy.addr, "backend_connections_opened_total"),
        opened + 1
    );
}
