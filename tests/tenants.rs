//! Tenants through the proxy, with `examples/config/tenants.toml` (two
//! prefix tenants, `shop` and `blog`, and an operator) in front of a
//! 3-primary Valkey cluster: each tenant's keys are its own, keyless
//! commands see only them, what cannot be scoped yet is refused with
//! Valkey's NOPERM text, and `max_clients` holds for one tenant only.

mod common;

use common::{show, RawClient, TestProxy};
use config::{Config, File, FileFormat};
use proxy::ProxyConfig;
use std::time::Duration;

use test_util::{Cluster, Flavor};

const KEYS: usize = 1000;

fn example() -> ProxyConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config/tenants.toml");
    Config::builder()
        .add_source(File::new(path, FileFormat::Toml))
        .build()
        .and_then(Config::try_deserialize)
        .expect("the example parses")
}

async fn start() -> (Cluster, TestProxy) {
    let cluster = Cluster::start_with(Flavor::Valkey, 3, 0, &[("notify-keyspace-events", "KEA")]);
    let example = example();
    let proxy = TestProxy::start(cluster.addrs(), move |config| {
        config.users = example.users;
        config.tenants = example.tenants;
    })
    .await;
    (cluster, proxy)
}

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
    let (cluster, proxy) = start().await;
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
async fn what_cannot_be_kept_inside_a_tenant_is_refused() {
    let (_cluster, proxy) = start().await;
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let refused = [
        (
            vec!["CONFIG", "SET", "maxmemory", "1"],
            "config|set",
            "server administration is for operator users",
        ),
        (
            vec!["EVAL", "return 1", "0"],
            "eval",
            "a tenant runs scripts only on a backend group whose user the server confines to its keys",
        ),
        (
            vec!["CLUSTER", "GETKEYSINSLOT", "0", "10"],
            "cluster|getkeysinslot",
            "it would show other tenants' keys",
        ),
        (
            vec!["CLIENT", "TRACKING", "ON", "BCAST"],
            "client|tracking",
            "it would show other tenants' keys",
        ),
    ];
    for (args, name, why) in refused {
        assert_eq!(
            show(&shop.call(&args).await),
            format!("-NOPERM User shop-app has no permissions to run the '{name}' command: {why}"),
        );
    }
    // A command the proxy does not know could carry keys it cannot put
    // under the prefix: answered as unknown, as the server would.
    let unknown = show(&shop.call(&["NOSUCHCMD", "k"]).await);
    assert!(
        unknown.starts_with("-ERR unknown command 'NOSUCHCMD'"),
        "{unknown}"
    );
    // Inside MULTI, a refusal makes EXEC abort, as on Valkey; so does a
    // command the proxy would carry out in several steps.
    assert_eq!(show(&shop.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&shop.call(&["SET", "a", "1"]).await), "QUEUED");
    assert!(show(&shop.call(&["KEYS", "*"]).await).starts_with("-NOPERM"));
    assert!(show(&shop.call(&["SORT", "l", "BY", "w_*"]).await).starts_with("-NOPERM"));
    assert!(show(&shop.call(&["EXEC"]).await).starts_with("-EXECABORT"));
    assert_eq!(show(&shop.call(&["EXISTS", "a"]).await), "0");
    // The operator may.
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    assert_eq!(show(&ops.call(&["PUBLISH", "news", "hi"]).await), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_its_own_channels_and_notifications() {
    let (_cluster, proxy) = start().await;
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

/// The ACL LOG entries `client` sees, as (reason, context, object,
/// username).
async fn acl_log(client: &mut RawClient) -> Vec<[String; 4]> {
    let reply = client.call(&["ACL", "LOG"]).await;
    let entries = reply.as_array().expect("entries").to_vec();
    entries
        .into_iter()
        .map(|entry| {
            let fields = entry.as_array().expect("RESP2 map as pairs").to_vec();
            let field = |name: &str| {
                let at = fields
                    .iter()
                    .position(|f| f.as_bytes().is_some_and(|b| b == name.as_bytes()));
                show(&fields[at.expect(name) + 1])
            };
            [
                field("reason"),
                field("context"),
                field("object"),
                field("username"),
            ]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_rules_and_refusals_show_in_the_acl_log() {
    let (_cluster, proxy) = start().await;
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let mut blog = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    assert_eq!(show(&shop.call(&["ACL", "WHOAMI"]).await), "shop-app");
    assert_eq!(
        show(&shop.call(&["CONFIG", "SET", "maxmemory", "1"]).await),
        "-NOPERM User shop-app has no permissions to run the 'config|set' command: \
         server administration is for operator users"
    );
    let expected = [["command", "toplevel", "config|set", "shop-app"].map(String::from)];
    assert_eq!(acl_log(&mut ops).await, expected);
    assert_eq!(acl_log(&mut shop).await, expected);
    // Another tenant sees none of it.
    assert_eq!(acl_log(&mut blog).await, Vec::<[String; 4]>::new());

    // shop-reader's rules (`+@read +@connection`) are checked by the proxy.
    let mut reader = RawClient::login(&proxy.addr, "shop-reader", "r1").await;
    assert_eq!(show(&shop.call(&["SET", "cart:1", "x"]).await), "OK");
    assert_eq!(show(&reader.call(&["GET", "cart:1"]).await), "x");
    assert_eq!(
        show(&reader.call(&["SET", "cart:1", "y"]).await),
        "-NOPERM User shop-reader has no permissions to run the 'set' command"
    );
    assert_eq!(
        show(
            &shop
                .call(&["ACL", "DRYRUN", "shop-reader", "SET", "k", "v"])
                .await
        ),
        "User shop-reader has no permissions to run the 'set' command"
    );
    assert_eq!(
        show(&shop.call(&["ACL", "DRYRUN", "shop-reader", "GET", "k"]).await),
        "OK"
    );
    assert_eq!(show(&shop.call(&["GET", "cart:1"]).await), "x");
    // A refusal inside MULTI is logged so.
    assert_eq!(show(&shop.call(&["MULTI"]).await), "OK");
    assert!(show(&shop.call(&["CONFIG", "GET", "x"]).await).starts_with("-NOPERM"));
    assert!(show(&shop.call(&["EXEC"]).await).starts_with("-EXECABORT"));
    // A failed login is logged with the name tried.
    let mut stranger = RawClient::connect(&proxy.addr).await;
    assert!(show(&stranger.call(&["AUTH", "shop-app", "nope"]).await).starts_with("-WRONGPASS"));
    let newest = acl_log(&mut shop).await;
    assert_eq!(
        newest[0],
        ["auth", "toplevel", "AUTH", "shop-app"].map(String::from)
    );
    assert_eq!(
        newest[1],
        ["command", "multi", "config|get", "shop-app"].map(String::from)
    );
    assert_eq!(
        newest[2],
        ["command", "toplevel", "set", "shop-reader"].map(String::from)
    );
    // Users are listed for their own tenant only.
    assert_eq!(
        show(&shop.call(&["ACL", "USERS"]).await),
        "[shop-app shop-reader]"
    );
    assert_eq!(
        show(&ops.call(&["ACL", "USERS"]).await),
        "[blog-app ops shop-app shop-reader]"
    );
    assert_eq!(show(&blog.call(&["ACL", "GETUSER", "shop-app"]).await), "(nil)");
    assert!(show(&ops.call(&["ACL", "SETUSER", "x", "on"]).await).contains("configuration file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_its_own_statistics() {
    let (_cluster, proxy) = start().await;
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let mut blog = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    for _ in 0..3 {
        shop.call(&["INCR", "n"]).await;
    }
    blog.call(&["HSET", "h", "f", "v"]).await;
    let calls = |text: &str, command: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next().map(str::to_string))
    };
    // A tenant's client sees its tenant's counters only.
    let mine = show(&shop.call(&["PROXY", "STATS"]).await);
    assert_eq!(calls(&mine, "incr").as_deref(), Some("3"), "{mine}");
    assert_eq!(calls(&mine, "hset"), None, "{mine}");
    assert!(show(&shop.call(&["PROXY", "INFO"]).await).starts_with("-NOPERM"));
    // The operator sees every tenant's, and each one's.
    let every = show(&ops.call(&["PROXY", "STATS"]).await);
    assert_eq!(calls(&every, "incr").as_deref(), Some("3"));
    assert_eq!(calls(&every, "hset").as_deref(), Some("1"));
    let blogs = show(&ops.call(&["PROXY", "STATS", "TENANT", "blog"]).await);
    assert_eq!(calls(&blogs, "hset").as_deref(), Some("1"));
    assert_eq!(calls(&blogs, "incr"), None);
    assert!(show(&ops.call(&["PROXY", "STATS", "TENANT", "nobody"]).await).starts_with("-ERR no tenant"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_lists_and_kills_its_own_clients_only() {
    let (_cluster, proxy) = start().await;
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    let mut shop_reader = RawClient::login(&proxy.addr, "shop-reader", "r1").await;
    let mut blog = RawClient::login(&proxy.addr, "blog-app", "b1").await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    let list = |text: String| -> Vec<(String, String)> {
        text.lines()
            .map(|line| {
                let field = |name: &str| {
                    line.split(' ')
                        .find_map(|f| f.strip_prefix(&format!("{name}=")))
                        .unwrap_or_default()
                        .to_string()
                };
                (field("user"), field("tenant"))
            })
            .collect()
    };
    let mut seen = list(show(&shop.call(&["CLIENT", "LIST"]).await));
    seen.sort();
    assert_eq!(
        seen,
        [
            ("shop-app".into(), "shop".into()),
            ("shop-reader".into(), "shop".into())
        ]
    );
    assert_eq!(list(show(&ops.call(&["CLIENT", "LIST"]).await)).len(), 4);
    // blog's client is out of shop's reach; its own are not.
    let blog_id = show(&blog.call(&["CLIENT", "ID"]).await);
    assert_eq!(show(&shop.call(&["CLIENT", "KILL", "ID", &blog_id]).await), "0");
    assert_eq!(show(&blog.call(&["PING"]).await), "PONG");
    let reader_id = show(&shop_reader.call(&["CLIENT", "ID"]).await);
    // INFO: the server, and shop's clients, nothing of the shared server.
    let info = show(&shop.call(&["INFO"]).await);
    assert!(
        info.contains("# Server") && info.contains("valkey_version:"),
        "{info}"
    );
    assert!(
        info.contains("connected_clients:2\r\n") && info.contains("maxclients:50\r\n"),
        "{info}"
    );
    assert!(
        !info.contains("# Memory") && !info.contains("# Keyspace"),
        "{info}"
    );
    assert_eq!(show(&shop.call(&["INFO", "memory"]).await), "");
    assert!(show(&ops.call(&["INFO", "memory"]).await).contains("# Memory"));
    assert_eq!(show(&shop.call(&["CLIENT", "KILL", "ID", &reader_id]).await), "1");

    // MONITOR: shop's clients' commands, as they sent them; not blog's.
    let mut monitor = RawClient::login(&proxy.addr, "shop-app", "s1").await;
    assert_eq!(show(&monitor.call(&["MONITOR"]).await), "OK");
    assert_eq!(show(&blog.call(&["SET", "secret", "1"]).await), "OK");
    assert_eq!(show(&shop.call(&["SET", "cart:9", "1"]).await), "OK");
    let line = show(&monitor.next().await);
    assert!(line.ends_with("\"SET\" \"cart:9\" \"1\""), "{line}");
    assert!(monitor
        .next_within(std::time::Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_holds_for_its_tenant_only() {
    let (_cluster, proxy) = start().await;
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
