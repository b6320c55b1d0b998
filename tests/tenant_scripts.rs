//! Scripts and functions for a prefix tenant: a script builds key names
//! the proxy cannot see, so a tenant runs them only on a backend group
//! whose user the server's own ACL confines to the tenant's keys. There
//! the server refuses what a script reaches outside; every other tenant is
//! refused with the reason before anything runs.

mod common;

use common::{show, user_of, RawClient, TestProxy};
use proxy::config::BackendGroupConfig;
use proxy::tenants::TenantConfig;
use test_util::{Cluster, Flavor};

const SET_FIRST_KEY: &str = "return redis.call('SET', KEYS[1], ARGV[1])";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_runs_scripts_only_as_a_backend_user_confined_to_its_keys() {
    let cluster = Cluster::start(Flavor::Valkey, 3, 0);
    for node in cluster.primaries() {
        let rules = [
            "ACL",
            "SETUSER",
            "shop-backend",
            "on",
            ">sb",
            "~shop:*",
            "&shop:*",
            "+@all",
        ];
        assert_eq!(show(&node.command(&rules)), "OK");
    }
    let proxy = TestProxy::start(cluster.addrs(), |config| {
        config.backend_groups = vec![BackendGroupConfig {
            name: "shop-confined".into(),
            seeds: config.backends.clone(),
            username: Some("shop-backend".into()),
            password: Some("sb".into()),
            ..BackendGroupConfig::default()
        }];
        config.tenants = vec![
            TenantConfig {
                name: "shop".into(),
                backend: Some("shop-confined".into()),
                ..TenantConfig::default()
            },
            TenantConfig {
                name: "blog".into(),
                ..TenantConfig::default()
            },
        ];
        config.users = vec![
            user_of("shop-app", Some("shop")),
            user_of("blog-app", Some("blog")),
            user_of("ops", None),
        ];
    })
    .await;
    let mut shop = RawClient::login(&proxy.addr, "shop-app", "pw").await;
    let mut blog = RawClient::login(&proxy.addr, "blog-app", "pw").await;
    let mut ops = RawClient::login(&proxy.addr, "ops", "pw").await;

    // The keys a script is given are put under the prefix, as any key.
    let eval = ["EVAL", SET_FIRST_KEY, "1", "cart:1", "x"];
    assert_eq!(show(&shop.call(&eval).await), "OK");
    assert_eq!(show(&ops.call(&["GET", "shop:cart:1"]).await), "x");
    assert_eq!(show(&shop.call(&["GET", "cart:1"]).await), "x");
    let sha = show(&shop.call(&["SCRIPT", "LOAD", SET_FIRST_KEY]).await);
    let evalsha = ["EVALSHA", sha.as_str(), "1", "cart:2", "y"];
    assert_eq!(show(&shop.call(&evalsha).await), "OK");
    assert_eq!(show(&ops.call(&["GET", "shop:cart:2"]).await), "y");

    // A key the script names by itself, outside the prefix: the server
    // refuses it, and the other tenant's key is untouched.
    assert_eq!(show(&blog.call(&["SET", "{t}post", "mine"]).await), "OK");
    let reach = ["EVAL", "return redis.call('SET', 'blog:{t}post', 'stolen')", "0"];
    let refused = show(&shop.call(&reach).await);
    assert!(
        refused.starts_with("-ERR ACL failure in script: No permissions to access a key"),
        "{refused}"
    );
    assert_eq!(show(&blog.call(&["GET", "{t}post"]).await), "mine");

    // Functions: the operator loads them (every tenant shares them), the
    // tenant calls them on its own keys.
    let library = "#!lua name=shop\nserver.register_function('stock', function(keys, args) \
                   return server.call('INCRBY', keys[1], args[1]) end)";
    assert_eq!(show(&ops.call(&["FUNCTION", "LOAD", library]).await), "shop");
    assert_eq!(
        show(&shop.call(&["FCALL", "stock", "1", "items", "5"]).await),
        "5"
    );
    assert_eq!(show(&ops.call(&["GET", "shop:items"]).await), "5");
    assert_eq!(
        show(&shop.call(&["FUNCTION", "FLUSH"]).await),
        "-NOPERM User shop-app has no permissions to run the 'function|flush' command: \
         it changes what every tenant shares"
    );
    assert_eq!(
        show(
            &shop
                .call(&["ACL", "DRYRUN", "shop-app", "EVAL", "return 1", "0"])
                .await
        ),
        "OK"
    );

    // blog's backend user is the proxy's own, which reaches every key.
    let scripts_refused = "a tenant runs scripts only on a backend group whose user the server \
                           confines to its keys";
    for (args, name) in [
        (vec!["EVAL", "return 1", "0"], "eval"),
        (vec!["FCALL", "stock", "1", "items", "1"], "fcall"),
        (vec!["SCRIPT", "LOAD", "return 1"], "script|load"),
    ] {
        assert_eq!(
            show(&blog.call(&args).await),
            format!(
                "-NOPERM User blog-app has no permissions to run the '{name}' command: {scripts_refused}"
            )
        );
    }
    assert_eq!(show(&ops.call(&["GET", "blog:items"]).await), "(nil)");
}
