//! ACL, answered from the proxy's own users ([`crate::users`]), not the
//! backend's: WHOAMI, CAT, LIST, USERS, GETUSER, DRYRUN, LOG, GENPASS and
//! HELP, as Valkey answers them. A tenant's client sees only its tenant's
//! users and log entries. Users live in the configuration, so SETUSER,
//! DELUSER, LOAD and SAVE are refused with the reason.

use bytes::Bytes;
use middleware::acl::Denied;
use resp::number::parse_i64;
use resp::{Frame, Request};
use router::command::category::NAMES;

use super::text::{arg, help};
use crate::context::{SessionState, Shared};
use crate::edge::{not_an_integer, unknown_subcommand, wrong_arity};
use crate::users::{Account, Users};

/// Most bits ACL GENPASS gives (Valkey's `GENPASS_MAX_BITS`).
const GENPASS_MAX_BITS: i64 = 4096;

/// `ACL <subcommand> ...`
pub fn acl(request: &Request, state: &SessionState, shared: &Shared) -> Frame {
    let Some(sub) = request.arg(1) else {
        return wrong_arity("acl");
    };
    if let Some(spec) = shared.stack.router.table().lookup(request) {
        if !spec.arity_ok(request.len()) {
            return wrong_arity(&spec.name);
        }
    }
    let sub = sub.to_ascii_lowercase();
    let argc = request.len();
    let users = shared.users();
    let visible = || visible(state, &users);
    match (&sub[..], argc) {
        (b"whoami", 2) => Frame::Bulk(Bytes::from(state.user.clone())),
        (b"cat", 2) => Frame::Array(NAMES.iter().map(|name| bulk(name)).collect()),
        (b"cat", 3) => category(&arg(request, 2), shared),
        (b"users", 2) => Frame::Array(visible().map(|a| bulk(a.acl.name())).collect()),
        (b"list", 2) => Frame::Array(
            visible()
                .map(|a| bulk(&format!("user {} {}", a.acl.name(), a.acl.describe())))
                .collect(),
        ),
        (b"getuser", 3) => match find(&arg(request, 2), state, &users) {
            Some(account) => account.acl.details(),
            None => Frame::Null,
        },
        (b"dryrun", n) if n >= 4 => dryrun(request, state, shared),
        (b"log", 2 | 3) => log(request, state, shared),
        (b"genpass", 2 | 3) => genpass(request),
        (b"setuser" | b"deluser", n) if n >= 3 => from_configuration(&sub),
        (b"load" | b"save", 2) => from_configuration(&sub),
        (b"help", 2) => help(&[
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
            "HELP",
            "    Print this help.",
        ]),
        (
            b"whoami" | b"cat" | b"users" | b"list" | b"getuser" | b"dryrun" | b"log" | b"genpass"
            | b"setuser" | b"deluser" | b"load" | b"save" | b"help",
            _,
        ) => Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&request.args()[1])
        )),
        _ => unknown_subcommand("acl", &request.args()[1]),
    }
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::from(text.to_string()))
}

/// The users the session may see: all for an operator, its tenant's for
/// a tenant's client.
fn visible<'a>(state: &'a SessionState, users: &'a Users) -> impl Iterator<Item = &'a Account> {
    users
        .iter()
        .filter(move |account| state.tenant == 0 || account.tenant == state.tenant)
}

fn find<'a>(name: &str, state: &'a SessionState, users: &'a Users) -> Option<&'a Account> {
    visible(state, users).find(|account| account.acl.name() == name)
}

/// `ACL CAT category`: the commands and subcommands in it.
fn category(name: &str, shared: &Shared) -> Frame {
    let Some(bits) = router::command::Categories::named(name.as_bytes()).filter(|_| !name.starts_with('@'))
    else {
        return Frame::error(format!("ERR Unknown category '{name:.128}'"));
    };
    let table = shared.stack.router.table();
    let mut names = Vec::new();
    for spec in table.iter() {
        if spec.categories.intersects(bits) {
            names.push(bulk(&spec.name));
        }
        for sub in &spec.subcommands {
            if sub.categories.intersects(bits) {
                names.push(bulk(&sub.name));
            }
        }
    }
    Frame::Array(names)
}

/// `ACL DRYRUN user command [arg ...]`: what the guard would answer that
/// user, tenant refusals included, with the key or channel named.
fn dryrun(request: &Request, state: &SessionState, shared: &Shared) -> Frame {
    let name = arg(request, 2);
    let users = shared.users();
    let Some(account) = find(&name, state, &users) else {
        return Frame::error(format!("ERR User '{name}' not found"));
    };
    let command = Request::from_args(request.args().iter().skip(3).collect::<Vec<_>>());
    let Some(spec) = shared.stack.router.table().lookup(&command) else {
        return Frame::error(format!("ERR Command '{}' not found", arg(request, 3)));
    };
    if !spec.arity_ok(command.len()) {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        ));
    }
    if let Some(refused) = shared.tenants.refusal(account.tenant, spec, false) {
        let message = Denied::Command.message(&name, spec, &[], true);
        return bulk(&format!("{message}: {}", refused.reason()));
    }
    match account.acl.check(spec, command.args()).err() {
        None => Frame::simple("OK"),
        Some(denied) => bulk(&denied.message(&name, spec, &command.args()[denied.position()], true)),
    }
}

/// `ACL LOG [count | RESET]`.
fn log(request: &Request, state: &SessionState, shared: &Shared) -> Frame {
    let tenant = state.tenant;
    let shown = |event: &middleware::acl::Event| tenant == 0 || event.tenant == tenant;
    let count = match request.arg(2) {
        None => 10,
        Some(word) if word.eq_ignore_ascii_case(b"reset") => {
            shared.acl_log.reset(shown);
            return Frame::simple("OK");
        }
        Some(number) => match parse_i64(number) {
            Some(count) => count.max(0) as usize,
            None => return not_an_integer(),
        },
    };
    shared.acl_log.reply(count, crate::guard::now_ms(), shown)
}

/// `ACL GENPASS [bits]`: random hex digits, 4 bits each.
fn genpass(request: &Request) -> Frame {
    let bits = match request.arg(2) {
        None => 256,
        Some(number) => match parse_i64(number) {
            Some(bits) => bits,
            None => return not_an_integer(),
        },
    };
    if !(1..=GENPASS_MAX_BITS).contains(&bits) {
        return Frame::error(format!(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to \
             {GENPASS_MAX_BITS}"
        ));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::fill(&mut bytes[..]);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    bulk(&hex[..chars])
}

fn from_configuration(sub: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR ACL {} is not available through the proxy: its users are defined in its configuration file",
        String::from_utf8_lossy(sub).to_ascii_uppercase()
    ))
}
