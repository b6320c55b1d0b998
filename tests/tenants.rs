//! Tenants through the proxy, with `examples/config/tenants.toml` (two
//! prefix tenants, `shop` and `blog`, and an operator) in front of a
//! 3-primary Valkey cluster: each tenant's keys, channels and keyspace
//! notifications are its own, keyless commands see only them, and
//! `max_clients` holds for one tenant only. What a tenant may run and see
//! of the proxy is tests/tenant_policies.rs.

mod common;

use common::{show, start_tenants_example, RawClient};
use std::time::Duration;

const KEYS: usize = 1000;

async fn scan_all(client: &mut RawClient) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut all = Vec::new();
    loop {
        let reply = client.call(&["SCAN", &cursor, "COUNT", "10000"]).await;
        let parts = reply.as_array().expect("[cursor, keys]").to_vec();
        cursor = String::from_utf8_lossy(parts[0].as_bytes().unwrap()).into_owned();
        for key in parts[1].as_array().expect("keys") {
            all.push(String::from_utf8_lossy(key.as_bytes().unwrap()).into_owned());
        }
        if cursor == "0" {
            all.sort();
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_its_own_keys() {
    let (cluster, proxy) = start_tenants_example().await;
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let mut blog = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    assert_eq!(show(&shop.call(&["SET", "cart:1", "x"]).await), "OK");
    assert_eq!(show(&blog.call(&["GET", "cart:1"]).await), "(nil)");
    // On the backend node, the key is shop:cart:1; the operator sees it so.
    let owner = common::owner(&cluster, "shop:cart:1");
    assert_eq!(
        show(&cluster.primaries()[owner].command(&["GET", "shop:cart:1"])),
        "x"
    );
    assert_eq!(show(&ops.call(&["GET", "shop:cart:1"]).await), "x");
    assert_eq!(show(&shop.call(&["DEL", "cart:1"]).await), "1");

    for client in [&mut shop, &mut blog] {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(100) {
            let mut mset = vec!["MSET".to_string()];
            for i in chunk {
                mset.extend([format!("k{i}"), "v".into()]);
            }
            let args: Vec<&str> = mset.iter().map(String::as_str).collect();
            assert_eq!(show(&client.call(&args).await), "OK");
        }
    }
    let mut expected: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    expected.sort();
    assert_eq!(show(&shop.call(&["DBSIZE"]).await), KEYS.to_string());
    assert_eq!(scan_all(&mut shop).await, expected);
    let keys = shop.call(&["KEYS", "*"]).await;
    assert_eq!(keys.as_array().map(|keys| keys.len()), Some(KEYS));
    let random = show(&blog.call(&["RANDOMKEY"]).await);
    assert!(expected.contains(&random), "{random}");
    assert_eq!(show(&shop.call(&["FLUSHDB"]).await), "OK");
    assert_eq!(show(&shop.call(&["DBSIZE"]).await), "0");
    assert_eq!(show(&blog.call(&["DBSIZE"]).await), KEYS.to_string());
    // The operator sees every tenant's keys as stored.
    assert_eq!(show(&ops.call(&["EXISTS", "blog:k1", "shop:k1"]).await), "1");
    // FLUSHALL empties every database of the tenant, and no other's.
    assert_eq!(show(&shop.call(&["SET", "zero", "0"]).await), "OK");
    assert_eq!(show(&shop.call(&["SELECT", "2"]).await), "OK");
    assert_eq!(show(&shop.call(&["SET", "two", "2"]).await), "OK");
    assert_eq!(show(&shop.call(&["FLUSHALL"]).await), "OK");
    assert_eq!(show(&shop.call(&["DBSIZE"]).await), "0");
    assert_eq!(show(&shop.call(&["SELECT", "0"]).await), "OK");
    assert_eq!(show(&shop.call(&["DBSIZE"]).await), "0");
    assert_eq!(show(&blog.call(&["DBSIZE"]).await), KEYS.to_string());

    // A transaction keeps to the tenant too.
    assert_eq!(show(&shop.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&shop.call(&["SET", "t", "1"]).await), "QUEUED");
    assert_eq!(show(&shop.call(&["INCR", "t"]).await), "QUEUED");
    assert_eq!(show(&shop.call(&["EXEC"]).await), "[OK 2]");
    assert_eq!(show(&ops.call(&["GET", "shop:t"]).await), "2");
    assert_eq!(show(&blog.call(&["EXISTS", "t"]).await), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_its_own_channels_and_notifications() {
    let (_cluster, proxy) = start_tenants_example().await;
    let quiet = Duration::from_millis(300);
    let mut shop_sub = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let mut blog_sub = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    assert_eq!(
        show(&shop_sub.call(&["SUBSCRIBE", "news"]).await),
        "[subscribe news 1]"
    );
    assert_eq!(
        show(&shop_sub.call(&["PSUBSCRIBE", "n*"]).await),
        "[psubscribe n* 2]"
    );
    assert_eq!(
        show(&shop_sub.call(&["SUBSCRIBE", "__keyspace@0__:cart:2"]).await),
        "[subscribe __keyspace@0__:cart:2 3]"
    );
    assert_eq!(
        show(&blog_sub.call(&["SUBSCRIBE", "news"]).await),
        "[subscribe news 1]"
    );
    assert_eq!(
        show(&blog_sub.call(&["PSUBSCRIBE", "*"]).await),
        "[psubscribe * 2]"
    );

    // Counted and listed within the tenant.
    assert_eq!(show(&shop.call(&["PUBSUB", "CHANNELS"]).await), "[news]");
    assert_eq!(show(&shop.call(&["PUBSUB", "NUMSUB", "news"]).await), "[news 1]");
    let everything = show(&ops.call(&["PUBSUB", "CHANNELS", "*news"]).await);
    assert!(
        everything.contains("shop:news") && everything.contains("blog:news"),
        "{everything}"
    );

    // Shop's channel and pattern subscriptions, not blog's `*`.
    assert_eq!(show(&shop.call(&["PUBLISH", "news", "hi"]).await), "2");
    assert_eq!(show(&shop_sub.next().await), "[message news hi]");
    assert_eq!(show(&shop_sub.next().await), "[pmessage n* news hi]");
    assert!(
        blog_sub.next_within(quiet).await.is_none(),
        "blog heard shop's message"
    );

    // Keyspace notifications of shop's own keys, without the prefix.
    assert_eq!(show(&shop.call(&["SET", "cart:2", "x"]).await), "OK");
    assert_eq!(
        show(&shop_sub.next().await),
        "[message __keyspace@0__:cart:2 set]"
    );
    let mut blog = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    assert_eq!(show(&blog.call(&["SET", "cart:2", "x"]).await), "OK");
    assert!(
        shop_sub.next_within(quiet).await.is_none(),
        "shop heard of blog's key"
    );

    // Shard channels too.
    let mut shop_shard = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let mut blog_shard = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    assert_eq!(
        show(&shop_shard.call(&["SSUBSCRIBE", "orders"]).await),
        "[ssubscribe orders 1]"
    );
    assert_eq!(
        show(&blog_shard.call(&["SSUBSCRIBE", "orders"]).await),
        "[ssubscribe orders 1]"
    );
    assert_eq!(show(&shop.call(&["SPUBLISH", "orders", "o1"]).await), "1");
    assert_eq!(show(&shop_shard.next().await), "[smessage orders o1]");
    assert!(
        blog_shard.next_within(quiet).await.is_none(),
        "blog heard shop's shard message"
    );
    assert_eq!(
        show(&shop_shard.call(&["SUNSUBSCRIBE"]).await),
        "[sunsubscribe orders 0]"
    );
    // What every tenant shares stays refused.
    assert!(show(&shop.call(&["PUBSUB", "NUMPAT"]).await).starts_with("-NOPERM"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_holds_for_its_tenant_only() {
    let (_cluster, proxy) = start_tenants_example().await;
    let mut shops = Vec::new();
    for _ in 0..50 {
        shops.push(RawClient::login(&proxy.addr, "shop-app", "s1").await);
    }
    let mut extra = RawClient::connect(&proxy.addr).await;
    assert_eq!(
        show(&extra.call(&["AUTH", "shop-app", "s1"]).await),
        "-ERR max number of clients reached"
    );
    // Not authenticated, so nothing runs.
    assert!(show(&extra.call(&["GET", "k"]).await).starts_with("-NOAUTH"));
    let mut blog = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    assert_eq!(show(&blog.call(&["PING"]).await), "PONG");
    // A shop client that leaves frees its place at once.
    drop(shops.pop());
    let mut seated = false;
    for _ in 0..50 {
        if show(&extra.call(&["AUTH", "shop-app", "s1"]).await) == "OK" {
            seated = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seated, "the freed place was not given back");
}
