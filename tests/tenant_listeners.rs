//! How a client comes to its tenant besides `AUTH user password`: a
//! `[[listeners]]` address bound to a tenant (logged in as its user at
//! once, or only the tenant's users may log in), and `password_only`
//! users, whom `AUTH <password>` alone selects.

mod common;

use common::{show, RawClient, TestProxy};
use proxy::config::UserConfig;
use proxy::listeners::ListenerConfig;
use proxy::tenants::TenantConfig;
use test_util::ports::free_port;
use test_util::{Flavor, Server};

fn tenant(name: &str) -> TenantConfig {
    TenantConfig {
        name: name.into(),
        ..TenantConfig::default()
    }
}

fn user(name: &str, password: &str, tenant: Option<&str>, password_only: bool) -> UserConfig {
    UserConfig {
        name: name.into(),
        password: Some(password.into()),
        tenant: tenant.map(Into::into),
        password_only,
        ..UserConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_binds_its_clients_to_a_tenant() {
    let server = Server::start(Flavor::Valkey);
    let (shop_addr, blog_addr) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let listeners = vec![
        ListenerConfig {
            addr: shop_addr.clone(),
            tenant: "shop".into(),
            user: Some("shop-app".into()),
        },
        ListenerConfig {
            addr: blog_addr.clone(),
            tenant: "blog".into(),
            user: None,
        },
    ];
    let proxy = TestProxy::start(vec![server.addr()], move |config| {
        config.tenants = vec![tenant("shop"), tenant("blog")];
        config.users = vec![
            user("shop-app", "s1", Some("shop"), false),
            user("blog-app", "b1", Some("blog"), true),
            user("ops", "o1", None, false),
        ];
        config.listeners = listeners;
    })
    .await;
    // On shop's listener: shop-app without AUTH, and back to it after RESET.
    let mut shop = RawClient::connect(&shop_addr).await;
    assert_eq!(show(&shop.call(&["ACL", "WHOAMI"]).await), "shop-app");
    assert_eq!(show(&shop.call(&["SET", "cart:1", "x"]).await), "OK");
    assert_eq!(show(&server.command(&["GET", "shop:cart:1"])), "x");
    assert_eq!(show(&shop.call(&["RESET"]).await), "RESET");
    assert_eq!(show(&shop.call(&["GET", "cart:1"]).await), "x");
    // On blog's listener: blog's users only.
    let mut blog = RawClient::connect(&blog_addr).await;
    assert_eq!(
        show(&blog.call(&["GET", "k"]).await),
        "-NOAUTH Authentication required."
    );
    assert!(show(&blog.call(&["AUTH", "shop-app", "s1"]).await).starts_with("-WRONGPASS"));
    assert!(show(&blog.call(&["AUTH", "ops", "o1"]).await).starts_with("-WRONGPASS"));
    assert_eq!(show(&blog.call(&["AUTH", "blog-app", "b1"]).await), "OK");
    assert_eq!(show(&blog.call(&["GET", "cart:1"]).await), "(nil)");
    // The main address is unchanged: any user, by name.
    let mut ops = RawClient::login(&proxy.addr, "ops", "o1").await;
    assert_eq!(show(&ops.call(&["GET", "shop:cart:1"]).await), "x");
    // blog-app is password_only: AUTH <password> alone selects it.
    let mut by_password = RawClient::connect(&proxy.addr).await;
    assert_eq!(show(&by_password.call(&["AUTH", "b1"]).await), "OK");
    assert_eq!(show(&by_password.call(&["ACL", "WHOAMI"]).await), "blog-app");
    // shop-app is not.
    assert!(show(&by_password.call(&["AUTH", "s1"]).await).starts_with("-WRONGPASS"));
}
