//! The proxy's ACL engine ([`middleware::acl::User`]) against Valkey's
//! own: the same rules set on a real `valkey-server` with ACL SETUSER, the
//! same commands asked with ACL DRYRUN there and checked here, and the
//! same `ACL LIST` line. Any difference is a bug in the proxy.

use bytes::Bytes;
use middleware::acl::User;
use resp::{Frame, Request};
use router::CommandTable;
use test_util::{Flavor, Server};

const RULES: &[&str] = &[
    "on +@all -@admin -@dangerous +config|get ~* &*",
    "on -@all +@read +select|0 ~*",
    "on +config -config|set ~* &*",
    "on +@all %R~src:* %W~dst:* ~own:*",
    "on +@all ~* resetchannels &news.* &alerts",
    "on -@all +get ~app:* (+set ~cache:*) &*",
    "on nopass +@all -@write +set ~*",
    "on >pw +@hash +@string -hset %RW~k* &* skip-sanitize-payload",
    "off -@all +@pubsub resetchannels &chan",
    "on +@all -@keyspace +del ~* (~x* %R~y* +@read) (-@all +bitfield %W~b*)",
];

const COMMANDS: &[&str] = &[
    "GET src:1",
    "SET src:1 v",
    "SET dst:1 v",
    "SET dst:1 v GET",
    "GET dst:1",
    "COPY src:1 dst:1",
    "COPY dst:1 src:1",
    "MSET own:1 a other c",
    "SORT own:1 STORE dst:2",
    "LMOVE src:1 dst:1 LEFT RIGHT",
    "CONFIG SET maxmemory 1",
    "CONFIG GET maxmemory",
    "FLUSHALL",
    "SELECT 0",
    "SELECT 1",
    "PUBLISH news.sport hi",
    "PUBLISH weather hi",
    "SUBSCRIBE alerts weather",
    "PSUBSCRIBE news.*",
    "PSUBSCRIBE news.s*",
    "SPUBLISH chan hi",
    "SET cache:1 v",
    "SET app:1 v",
    "GET app:1",
    "DEL x",
    "HSET k f v",
    "HGET k f",
    "BITFIELD b GET u8 0",
    "BITFIELD b SET u8 0 1",
    "BITFIELD y GET u8 0",
    "EXISTS y1 x1",
    "TYPE src:1",
    "OBJECT ENCODING y",
    "XREAD STREAMS y1 0",
    "KEYS *",
    "CLIENT LIST",
    "PING",
    "AUTH a b",
    "EVAL x 1 k",
];

fn dryrun_here(user: &User, table: &CommandTable, command: &str) -> String {
    let args: Vec<Bytes> = command.split(' ').map(|a| Bytes::from(a.to_string())).collect();
    let request = Request::from_args(args);
    let spec = table.lookup(&request).expect("known command");
    match user.check(spec, request.args()) {
        Ok(()) => "OK".into(),
        Err(denied) => denied.message(user.name(), spec, &request.args()[denied.position()], true),
    }
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Simple(s) | Frame::Bulk(s) | Frame::Error(s) => String::from_utf8_lossy(s).into_owned(),
        other => format!("{other:?}"),
    }
}

#[test]
fn rules_decide_as_on_valkey() {
    let server = Server::start(Flavor::Valkey);
    let table = CommandTable::builtin();
    let mut differences = Vec::new();
    for (i, rules) in RULES.iter().enumerate() {
        let name = format!("u{i}");
        let mut args = vec!["ACL", "SETUSER", &name, "reset"];
        args.extend(rules.split(' '));
        assert_eq!(text(&server.command(&args)), "OK", "{rules}");
        let mut user = User::new(&name);
        user.apply(&format!("reset {rules}"), &table)
            .expect("rules the server took");

        let listed = server.command(&["ACL", "LIST"]);
        let line = listed
            .as_array()
            .unwrap()
            .iter()
            .map(text)
            .find(|line| line.starts_with(&format!("user {name} ")))
            .unwrap();
        if line != format!("user {name} {}", user.describe()) {
            differences.push(format!(
                "ACL LIST for {rules:?}:\n  valkey: {line}\n  proxy:  user {name} {}",
                user.describe()
            ));
        }
        for command in COMMANDS {
            let mut args = vec!["ACL", "DRYRUN", &name];
            args.extend(command.split(' '));
            let theirs = text(&server.command(&args));
            let ours = dryrun_here(&user, &table, command);
            if theirs != ours {
                differences.push(format!(
                    "{rules:?} / {command}:\n  valkey: {theirs}\n  proxy:  {ours}"
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn bad_rules_are_refused_in_valkeys_words() {
    let server = Server::start(Flavor::Valkey);
    let table = CommandTable::builtin();
    for rules in [
        "+nosuchcommand",
        "+@nosuch",
        "+config|get|x",
        "-select|0",
        "bogus",
        "~* ~foo",
        "&* &foo",
        "#ABC",
        "%X~k",
        "<nopassword",
        "(+get ~x",
    ] {
        let mut args = vec!["ACL", "SETUSER", "bad"];
        args.extend(rules.split(' '));
        let theirs = text(&server.command(&args));
        let theirs = theirs.strip_prefix("ERR ").unwrap_or(&theirs);
        let ours = User::new("bad").apply(rules, &table).unwrap_err();
        assert_eq!(theirs, ours, "{rules}");
    }
}
