//! Users with Valkey ACL rules, checked by the proxy before anything is
//! routed: commands, key patterns by read and write, channels, selectors,
//! `off` and `nopass` users, refusals inside MULTI, and the ACL commands
//! answered from the proxy's own users.

mod common;

use common::{show, RawClient, TestProxy};
use proxy::config::UserConfig;
use test_util::{Flavor, Server};

fn user(name: &str, password: Option<&str>, acl: &str) -> UserConfig {
    UserConfig {
        name: name.into(),
        password: password.map(Into::into),
        acl: Some(acl.into()),
        ..UserConfig::default()
    }
}

async fn start() -> (Server, TestProxy) {
    let server = Server::start(Flavor::Valkey);
    let proxy = TestProxy::start(vec![server.addr()], |config| {
        config.users = vec![
            user(
                "app",
                Some("a1"),
                "on +@all -@dangerous ~cache:* %R~ro:* resetchannels &news (+get ~other:*)",
            ),
            user("admin", Some("x1"), "on +@all ~* &*"),
            user("gone", Some("g1"), "off +@all ~* &*"),
            user("guest", None, "on nopass +ping +get ~*"),
        ];
    })
    .await;
    (server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_channels_and_commands_are_checked_before_routing() {
    let (server, proxy) = start().await;
    let mut app = RawClient::login(&proxy.addr, "app", "a1").await;
    assert_eq!(show(&app.call(&["SET", "cache:1", "v"]).await), "OK");
    assert_eq!(
        show(&app.call(&["SET", "plain", "v"]).await),
        "-NOPERM No permissions to access a key"
    );
    assert_eq!(show(&app.call(&["GET", "ro:1"]).await), "(nil)");
    assert_eq!(
        show(&app.call(&["SET", "ro:1", "v"]).await),
        "-NOPERM No permissions to access a key"
    );
    // The selector allows GET on other:*, nothing else there.
    assert_eq!(show(&app.call(&["GET", "other:1"]).await), "(nil)");
    assert_eq!(
        show(&app.call(&["DEL", "other:1"]).await),
        "-NOPERM No permissions to access a key"
    );
    assert_eq!(show(&app.call(&["PUBLISH", "news", "hi"]).await), "0");
    assert_eq!(
        show(&app.call(&["PUBLISH", "sport", "hi"]).await),
        "-NOPERM No permissions to access a channel"
    );
    assert_eq!(
        show(&app.call(&["KEYS", "*"]).await),
        "-NOPERM User app has no permissions to run the 'keys' command"
    );
    // Nothing refused reached the server.
    assert_eq!(show(&server.command(&["EXISTS", "plain", "ro:1"])), "0");
    // A refusal inside MULTI aborts the transaction.
    assert_eq!(show(&app.call(&["MULTI"]).await), "OK");
    assert_eq!(show(&app.call(&["SET", "cache:2", "v"]).await), "QUEUED");
    assert!(show(&app.call(&["SET", "plain", "v"]).await).starts_with("-NOPERM"));
    assert!(show(&app.call(&["EXEC"]).await).starts_with("-EXECABORT"));
    assert_eq!(show(&server.command(&["EXISTS", "cache:2"])), "0");

    let mut admin = RawClient::login(&proxy.addr, "admin", "x1").await;
    let log = admin.call(&["ACL", "LOG", "1"]).await;
    let text = show(&log);
    assert!(
        text.contains("reason key context multi object plain username app"),
        "{text}"
    );
    assert_eq!(
        show(&admin.call(&["ACL", "DRYRUN", "app", "SET", "ro:1", "v"]).await),
        "User app has no permissions to access the 'ro:1' key"
    );
    let listed = show(&admin.call(&["ACL", "LIST"]).await);
    assert!(
        listed.contains("user app on #")
            && listed.contains(
                "~cache:* %R~ro:* resetchannels &news +@all -@dangerous (~other:* resetchannels -@all +get)"
            ),
        "{listed}"
    );
    assert_eq!(
        show(&admin.call(&["ACL", "CAT", "nosuch"]).await),
        "-ERR Unknown category 'nosuch'"
    );
    assert!(show(&admin.call(&["ACL", "CAT", "hyperloglog"]).await).contains("pfadd"));
    // RESET forgets the user and its rules.
    assert_eq!(show(&app.call(&["RESET"]).await), "RESET");
    assert_eq!(
        show(&app.call(&["GET", "cache:1"]).await),
        "-NOAUTH Authentication required."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_and_nopass_users_log_in_as_on_valkey() {
    let (_server, proxy) = start().await;
    let mut client = RawClient::connect(&proxy.addr).await;
    assert!(show(&client.call(&["AUTH", "gone", "g1"]).await).starts_with("-WRONGPASS"));
    assert_eq!(show(&client.call(&["AUTH", "guest", "anything"]).await), "OK");
    assert_eq!(show(&client.call(&["GET", "k"]).await), "(nil)");
    assert!(show(&client.call(&["SET", "k", "v"]).await).starts_with("-NOPERM"));
    // HELLO ... AUTH binds the user too.
    let mut hello = RawClient::connect(&proxy.addr).await;
    let reply = show(&hello.call(&["HELLO", "2", "AUTH", "app", "a1"]).await);
    assert!(reply.contains("proto"), "{reply}");
    assert_eq!(show(&hello.call(&["ACL", "WHOAMI"]).await), "app");
    assert!(show(&hello.call(&["SET", "plain", "v"]).await).starts_with("-NOPERM"));
}
