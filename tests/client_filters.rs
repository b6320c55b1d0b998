//! CLIENT LIST and CLIENT KILL filters answer what Valkey answers on the
//! same clients: the same clients listed or killed, the same errors, and
//! the same survivors.

mod common;

use std::time::Duration;

use common::{show, RawClient, TestProxy};
use test_util::{Flavor, Server};

/// `field=` of a CLIENT LIST / CLIENT INFO line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|part| part.strip_prefix(&format!("{name}=")))
        .unwrap_or_default()
}

/// The names of the clients a CLIENT LIST reply lists, sorted; or the error.
fn names(reply: &resp::Frame) -> String {
    if reply.is_error() {
        return show(reply);
    }
    let text = show(reply);
    let mut names: Vec<&str> = text.lines().map(|line| field(line, "name")).collect();
    names.sort_unstable();
    names.join(",")
}

/// Connects a client named `name`.
async fn named(addr: &str, name: &str) -> RawClient {
    let mut client = RawClient::connect(addr).await;
    assert_eq!(show(&client.call(&["CLIENT", "SETNAME", name]).await), "OK");
    client
}

/// What `addr` answers to a fixed set of CLIENT LIST and KILL calls over
/// the same five clients: `a` (the caller), `b` (subscribed), `c` (in
/// database 3, with a library name), `d` (blocked in BLPOP), and `e`
/// (connected a second after the others).
async fn outcomes(addr: &str) -> Vec<String> {
    let mut a = named(addr, "a").await;
    let mut b = named(addr, "b").await;
    assert!(!b.call(&["SUBSCRIBE", "news"]).await.is_error());
    let mut c = named(addr, "c").await;
    assert_eq!(show(&c.call(&["SELECT", "3"]).await), "OK");
    assert_eq!(
        show(&c.call(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]).await),
        "OK"
    );
    let c_info = show(&c.call(&["CLIENT", "INFO"]).await);
    let mut d = named(addr, "d").await;
    d.send(&["BLPOP", "nothing", "0"]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut e = named(addr, "e").await;
    let c_id = field(&c_info, "id").to_string();
    let c_addr = field(&c_info, "addr").to_string();
    let c_ip = c_addr
        .rsplit_once(':')
        .map(|(ip, _)| ip.to_string())
        .unwrap_or_default();
    let laddr = field(&c_info, "laddr").to_string();

    let mut out = Vec::new();
    let lists: Vec<Vec<&str>> = vec![
        vec![],
        vec!["TYPE", "normal"],
        vec!["TYPE", "pubsub"],
        vec!["TYPE", "replica"],
        vec!["TYPE", "master"],
        vec!["TYPE", "foo"],
        vec!["NOT-TYPE", "pubsub"],
        vec!["USER", "default"],
        vec!["USER", "nosuchuser"],
        vec!["NOT-USER", "default"],
        vec!["ID", &c_id],
        vec!["ID", &c_id, "999999", "TYPE", "normal"],
        vec!["NOT-ID", &c_id],
        vec!["ID", "0"],
        vec!["ID", "abc"],
        vec!["ID", &c_id, "x"],
        vec!["ADDR", &c_addr],
        vec!["NOT-ADDR", &c_addr],
        vec!["IP", &c_ip],
        vec!["LADDR", &laddr],
        vec!["NAME", "c"],
        vec!["NOT-NAME", "c"],
        vec!["DB", "3"],
        vec!["NOT-DB", "3"],
        vec!["DB", "99"],
        vec!["DB", "x"],
        vec!["LIB-NAME", "mylib"],
        vec!["NOT-LIB-NAME", "mylib"],
        vec!["MAXAGE", "1"],
        vec!["MAXAGE", "0"],
        vec!["MAXAGE", "x"],
        vec!["IDLE", "1"],
        vec!["SKIPME", "yes"],
        vec!["SKIPME", "maybe"],
        vec!["NOT-MAXAGE", "1"],
        vec!["TYPE"],
        vec!["NOSUCHFILTER", "1"],
    ];
    for filter in &lists {
        let mut args = vec!["CLIENT", "LIST"];
        args.extend(filter);
        // Ids and addresses differ between the two targets: named instead.
        let label: Vec<&str> = args
            .iter()
            .enumerate()
            .map(|(i, arg)| match (i.checked_sub(1).map(|p| args[p]), *arg) {
                (Some("ID" | "NOT-ID"), arg) if arg == c_id => "<c id>",
                (Some("ADDR" | "NOT-ADDR"), _) => "<c addr>",
                (Some("IP"), _) => "<c ip>",
                (Some("LADDR"), _) => "<laddr>",
                (_, arg) => arg,
            })
            .collect();
        let label = label.join(" ");
        out.push(format!("{label} -> {}", names(&a.call(&args).await)));
    }
    let kills: Vec<Vec<&str>> = vec![
        vec!["USER", "nosuchuser"],
        vec!["TYPE", "replica"],
        vec!["NAME", "nobody"],
        vec!["MAXAGE", "0"],
        vec!["TYPE", "pubsub"],
        vec!["MAXAGE", "1"],
    ];
    for filter in &kills {
        let mut args = vec!["CLIENT", "KILL"];
        args.extend(filter);
        out.push(format!("{} -> {}", args.join(" "), show(&a.call(&args).await)));
    }
    out.push(format!("left: {}", names(&a.call(&["CLIENT", "LIST"]).await)));
    for (name, client) in [("b", &mut b), ("c", &mut c), ("d", &mut d)] {
        out.push(format!(
            "{name} closed: {}",
            client.closed_within(Duration::from_secs(5)).await
        ));
    }
    out.push(format!("e: {}", show(&e.call(&["PING"]).await)));
    out
}

#[tokio::test]
async fn client_list_and_kill_filters_match_a_standalone_valkey() {
    let server = Server::start(Flavor::Valkey);
    let expected = outcomes(&server.addr()).await;
    let backend = Server::start(Flavor::Valkey);
    let proxy = TestProxy::default_for(vec![backend.addr()]).await;
    let got = outcomes(&proxy.addr).await;
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
    assert_eq!(got.len(), expected.len());
}
