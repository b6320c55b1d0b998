//! What a tenant's client may run and see of the proxy, with
//! `examples/config/tenants.toml` in front of a 3-primary cluster: what
//! cannot be kept inside a tenant is refused with Valkey's NOPERM text and
//! the reason, ACL rules and refusals land in the tenant's ACL LOG, and
//! PROXY STATS and CLIENT LIST / KILL show it its own only.

mod common;

use common::{show, start_tenants_example, RawClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_kept_inside_a_tenant_is_refused() {
    let (_cluster, proxy) = start_tenants_example().await;
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
    let (_cluster, proxy) = start_tenants_example().await;
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
    let (_cluster, proxy) = start_tenants_example().await;
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
    let (_cluster, proxy) = start_tenants_example().await;
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
