//! INFO clients and CLIENT LIST describe the proxy's own clients as one
//! server describes its own: a client blocked in BLPOP through the proxy
//! counts in `blocked_clients` (tools and test harnesses wait on it), a
//! subscriber in `pubsub_clients`, a watcher in `watching_clients`.

mod common;

use std::time::Duration;

use common::{show, RawClient, TestProxy};
use test_util::{Cluster, Flavor, Server};

const FIELDS: &[&str] = &[
    "connected_clients",
    "blocked_clients",
    "pubsub_clients",
    "watching_clients",
    "tracking_clients",
    "paused_reason",
    "paused_actions",
];

/// The `FIELDS` of INFO clients on `client`, as `name:value` lines.
async fn clients_info(client: &mut RawClient) -> Vec<String> {
    let text = show(&client.call(&["INFO", "clients"]).await);
    FIELDS
        .iter()
        .map(|field| {
            text.lines()
                .find(|line| line.starts_with(&format!("{field}:")))
                .unwrap_or_else(|| panic!("INFO clients has no {field}: {text}"))
                .to_string()
        })
        .collect()
}

/// Flags of the client named `name` in CLIENT LIST.
async fn flags_of(client: &mut RawClient, name: &str) -> String {
    let list = show(&client.call(&["CLIENT", "LIST"]).await);
    list.lines()
        .find(|line| line.contains(&format!(" name={name} ")))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("flags=")))
        .unwrap_or_default()
        .to_string()
}

/// INFO clients and flags over the same clients on `addr`: the caller, one
/// blocked in BLPOP, one subscribed, one watching, one tracking; then after
/// the blocked one is served.
async fn outcomes(addr: &str) -> Vec<String> {
    let mut caller = RawClient::connect(addr).await;
    let mut out = clients_info(&mut caller).await;
    let mut blocked = RawClient::connect(addr).await;
    assert_eq!(show(&blocked.call(&["CLIENT", "SETNAME", "blocked"]).await), "OK");
    blocked.send(&["BLPOP", "queue", "0"]).await;
    let mut subscriber = RawClient::connect(addr).await;
    assert!(!subscriber.call(&["SUBSCRIBE", "news"]).await.is_error());
    let mut watcher = RawClient::connect(addr).await;
    assert_eq!(show(&watcher.call(&["WATCH", "k"]).await), "OK");
    let mut tracker = RawClient::connect(addr).await;
    assert!(!tracker.call(&["HELLO", "3"]).await.is_error());
    assert_eq!(show(&tracker.call(&["CLIENT", "TRACKING", "ON"]).await), "OK");
    // The BLPOP reaches the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    out.extend(clients_info(&mut caller).await);
    out.push(format!(
        "blocked flags: {}",
        flags_of(&mut caller, "blocked").await
    ));
    assert_eq!(show(&caller.call(&["RPUSH", "queue", "job"]).await), "1");
    assert_eq!(show(&blocked.next().await), "[queue job]");
    out.extend(clients_info(&mut caller).await);
    out.push(format!(
        "served flags: {}",
        flags_of(&mut caller, "blocked").await
    ));
    out
}

#[tokio::test]
async fn info_clients_counts_the_proxys_clients_as_one_server_counts_its_own() {
    let direct = Server::start(Flavor::Valkey);
    let expected = outcomes(&direct.addr()).await;
    assert!(
        expected.contains(&"blocked_clients:1".to_string()),
        "{expected:?}"
    );
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    assert_eq!(outcomes(&proxy.addr).await, expected);
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    let proxy = TestProxy::default_for(cluster.addrs()).await;
    assert_eq!(outcomes(&proxy.addr).await, expected);
}

/// `field` of the CLIENT LIST line of the client named `name`.
async fn list_field(client: &mut RawClient, name: &str, field: &str) -> u64 {
    let list = show(&client.call(&["CLIENT", "LIST"]).await);
    list.lines()
        .find(|line| line.contains(&format!(" name={name} ")))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix(&format!("{field}="))))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {field} for {name} in {list}"))
}

#[tokio::test]
async fn client_list_measures_the_buffers_a_client_holds() {
    use tokio::io::AsyncWriteExt;
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    let mut caller = RawClient::connect(&proxy.addr).await;
    // Half a request, waiting for the rest.
    let mut partial = tokio::net::TcpStream::connect(&proxy.addr)
        .await
        .expect("connect");
    let half = b"*3\r\n$7\r\nCLIENT\r\n";
    partial.write_all(half).await.expect("write");
    let mut named = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&named.call(&["CLIENT", "SETNAME", "queued"]).await), "OK");
    assert_eq!(show(&named.call(&["MULTI"]).await), "OK");
    let value = "v".repeat(1000);
    assert_eq!(show(&named.call(&["SET", "k", &value]).await), "QUEUED");
    assert!(list_field(&mut caller, "queued", "multi-mem").await >= 1000);
    assert!(list_field(&mut caller, "queued", "tot-mem").await >= 1000);
    // The half request: its bytes wait in the query buffer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let list = show(&caller.call(&["CLIENT", "LIST"]).await);
    let qbufs: Vec<u64> = list
        .lines()
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("qbuf=")))
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(qbufs.contains(&(half.len() as u64)), "{list}");
}
