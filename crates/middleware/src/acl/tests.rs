use std::sync::OnceLock;

use bytes::Bytes;
use resp::Request;
use router::CommandTable;

use super::*;

fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(CommandTable::builtin)
}

fn user(rules: &str) -> User {
    let mut user = User::new("app");
    user.apply(rules, table()).expect("valid rules");
    user
}

fn check(user: &User, command: &str) -> Result<(), Denied> {
    let args: Vec<Bytes> = command.split(' ').map(|a| Bytes::from(a.to_string())).collect();
    let request = Request::from_args(args);
    let spec = table().lookup(&request).expect("known command");
    user.check(spec, request.args())
}

#[test]
fn the_last_rule_about_a_command_decides() {
    let app = user("on +@all -@admin -@dangerous +config|get ~* &*");
    assert_eq!(check(&app, "GET k"), Ok(()));
    assert_eq!(check(&app, "CONFIG SET maxmemory 1"), Err(Denied::Command));
    assert_eq!(check(&app, "CONFIG GET maxmemory"), Ok(()));
    assert_eq!(check(&app, "FLUSHALL"), Err(Denied::Command));
    assert!(!app.is_unrestricted());

    let reader = user("on -@all +@read +select|0 ~*");
    assert_eq!(check(&reader, "GET k"), Ok(()));
    assert_eq!(check(&reader, "SET k v"), Err(Denied::Command));
    assert_eq!(check(&reader, "SELECT 0"), Ok(()));
    assert_eq!(check(&reader, "SELECT 1"), Err(Denied::Command));
    // AUTH and HELLO are never refused.
    assert_eq!(check(&reader, "AUTH app secret"), Ok(()));

    let container = user("on +config -config|set ~*");
    assert_eq!(check(&container, "CONFIG GET x"), Ok(()));
    assert_eq!(check(&container, "CONFIG SET x y"), Err(Denied::Command));
}

#[test]
fn keys_need_the_permission_their_use_asks_for() {
    let app = user("on +@all %R~src:* %W~dst:* ~own:*");
    assert_eq!(check(&app, "GET src:1"), Ok(()));
    assert_eq!(check(&app, "SET src:1 v"), Err(Denied::Key(1)));
    assert_eq!(check(&app, "SET dst:1 v"), Ok(()));
    assert_eq!(check(&app, "GET dst:1"), Err(Denied::Key(1)));
    // COPY reads its source and writes its destination.
    assert_eq!(check(&app, "COPY src:1 dst:1"), Ok(()));
    assert_eq!(check(&app, "COPY dst:1 src:1"), Err(Denied::Key(1)));
    assert_eq!(check(&app, "MSET own:1 a own:2 b other c"), Err(Denied::Key(5)));
    assert_eq!(check(&app, "SORT own:1 STORE dst:2"), Ok(()));
    assert_eq!(check(&app, "SORT own:1 STORE src:2"), Err(Denied::Key(3)));
}

#[test]
fn channels_are_matched_and_patterns_compared_literally() {
    let app = user("on +@all ~* resetchannels &news.* &alerts");
    assert_eq!(check(&app, "PUBLISH news.sport hi"), Ok(()));
    assert_eq!(check(&app, "PUBLISH weather hi"), Err(Denied::Channel(1)));
    assert_eq!(check(&app, "SUBSCRIBE alerts weather"), Err(Denied::Channel(2)));
    assert_eq!(check(&app, "PSUBSCRIBE news.*"), Ok(()));
    assert_eq!(check(&app, "PSUBSCRIBE news.s*"), Err(Denied::Channel(1)));
    // A user created without channel rules has none (acl-pubsub-default).
    assert_eq!(
        check(&user("on +@all ~*"), "PUBLISH news hi"),
        Err(Denied::Channel(1))
    );
}

#[test]
fn a_selector_allows_what_the_root_does_not() {
    let app = user("on -@all +get ~app:* (+set ~cache:*) &*");
    assert_eq!(check(&app, "GET app:1"), Ok(()));
    assert_eq!(check(&app, "SET cache:1 v"), Ok(()));
    // Denied by both: the key refusal outranks the command refusal.
    assert_eq!(check(&app, "SET app:1 v"), Err(Denied::Key(1)));
    assert_eq!(check(&app, "DEL x"), Err(Denied::Command));
}

#[test]
fn passwords_and_flags() {
    let mut app = user("on >s1 >s2 <s1");
    assert!(app.accepts(b"s2") && !app.accepts(b"s1"));
    app.apply("off", table()).unwrap();
    assert!(!app.accepts(b"s2"), "a user that is off cannot log in");
    assert!(user("on nopass").accepts(b"anything"));
    let digest = "4b1f5bd5ad1c9fd8a88c4bdcaa4dd1a7b9e6c6fc1c6e1bf4f5ac0d3d2ae8b1c7";
    assert!(user(&format!("on #{digest}")).describe().contains(digest));
}

#[test]
fn bad_rules_get_valkeys_errors_and_change_nothing() {
    let mut app = user("on +@all ~*");
    let before = app.clone();
    let error = |app: &mut User, rules: &str| app.apply(rules, table()).unwrap_err();
    assert_eq!(
        error(&mut app, "-get +nosuchcommand"),
        "Error in ACL SETUSER modifier '+nosuchcommand': Unknown command or category name in ACL"
    );
    assert_eq!(
        error(&mut app, "+@nosuch"),
        "Error in ACL SETUSER modifier '+@nosuch': Unknown command or category name in ACL"
    );
    assert_eq!(
        error(&mut app, "+config|get|x"),
        "Error in ACL SETUSER modifier '+config|get|x': Allowing first-arg of a subcommand is not supported"
    );
    assert_eq!(
        error(&mut app, "bogus"),
        "Error in ACL SETUSER modifier 'bogus': Syntax error"
    );
    assert_eq!(
        error(&mut app, "(+get ~x"),
        "Unmatched parenthesis in acl selector starting at '(+get'."
    );
    assert!(error(&mut app, "~foo").contains("Try 'resetkeys'"));
    assert!(error(&mut app, "#ABC").contains("64 characters"));
    assert_eq!(app, before);
}

#[test]
fn acl_list_shows_the_rules_as_valkey_does() {
    let app = user("on >s1 +@all -@admin +get -get ~a:* %R~b:* (+set ~c:*)");
    let described = app.describe();
    assert!(described.starts_with("on #"), "{described}");
    assert!(
        described.ends_with("~a:* %R~b:* resetchannels +@all -@admin -get (~c:* resetchannels -@all +set)"),
        "{described}"
    );
    assert_eq!(User::new("x").describe(), "off resetchannels -@all");
    // What ACL LIST shows gives the same user again.
    let mut again = User::new("app");
    again.apply(&described, table()).unwrap();
    assert_eq!(again, app);
}

#[test]
fn the_log_groups_repeats_and_keeps_the_newest() {
    let log = AclLog::default();
    let event = |object: &str| Event {
        reason: Reason::Command,
        context: Context::TopLevel,
        object: object.into(),
        username: "app".into(),
        tenant: 1,
        client_info: "id=1".into(),
    };
    log.record(event("config|set"), 1_000);
    log.record(event("config|set"), 2_000);
    log.record(event("flushall"), 3_000);
    let reply = log.reply(10, 4_000, |_| true);
    let entries = reply.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let field = |entry: &resp::Frame, name: &str| {
        let pairs = entry.clone().into_pairs().unwrap();
        pairs
            .into_iter()
            .find(|(k, _)| k.as_bytes().map(|b| &b[..]) == Some(name.as_bytes()))
            .unwrap()
            .1
    };
    assert_eq!(field(&entries[0], "object").as_bytes().unwrap(), "flushall");
    assert_eq!(field(&entries[1], "count"), resp::Frame::Integer(2));
    // A minute later the same refusal starts a new entry.
    log.record(event("config|set"), 70_000);
    assert_eq!(log.reply(10, 70_000, |_| true).as_array().unwrap().len(), 3);
    assert_eq!(
        log.reply(10, 70_000, |event| event.tenant == 2)
            .as_array()
            .unwrap()
            .len(),
        0
    );
    for i in 0..200 {
        log.record(event(&format!("c{i}")), 100_000);
    }
    assert_eq!(
        log.reply(1000, 100_000, |_| true).as_array().unwrap().len(),
        log::MAX_ENTRIES
    );
    log.reset(|_| true);
    assert_eq!(log.reply(10, 100_000, |_| true).as_array().unwrap().len(), 0);
}
