//! COMMAND, answered from the merged command table, so clients see what
//! the proxy routes by. COMMAND DOCS goes to a backend (the server's own docs).

use bytes::Bytes;
use middleware::namespace::glob;
use resp::{Frame, Request};
use router::command::keys::key_positions;
use router::command::Flags;
use router::CommandSpec;

use super::Local;
use crate::context::Shared;
use crate::edge::unknown_subcommand;

/// `COMMAND [COUNT | LIST [FILTERBY ...] | INFO name... | GETKEYS cmd args... | DOCS ...]`:
/// the answer, or `None` for what goes to a backend (DOCS, HELP,
/// GETKEYSANDFLAGS, LIST FILTERBY MODULE). Pure: it changes nothing.
pub fn command(request: &Request, shared: &Shared) -> Option<Local> {
    let table = shared.stack.router.table();
    let args = request.args().to_vec();
    let reply = match args.get(1).map(|s| s.to_ascii_lowercase()).as_deref() {
        None => Frame::Array(table.iter().map(|spec| spec.info.clone()).collect()),
        Some(b"count") => Frame::Integer(table.len() as i64),
        Some(b"list") => list(&args[2..], shared)?,
        Some(b"info") => Frame::Array(
            args[2..]
                .iter()
                .map(|name| table.get(name).map_or(Frame::Null, |spec| spec.info.clone()))
                .collect(),
        ),
        Some(b"getkeys") => getkeys(&args[2..], shared),
        Some(b"docs") | Some(b"help") | Some(b"getkeysandflags") => return None,
        Some(_) => unknown_subcommand("command", &args[1]),
    };
    Some(Local::Reply(reply))
}

/// `COMMAND LIST [FILTERBY ACLCAT cat | PATTERN glob | MODULE name]`, over
/// commands and subcommands; `None` for MODULE, which the server knows.
fn list(args: &[Bytes], shared: &Shared) -> Option<Frame> {
    let table = shared.stack.router.table();
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match args {
        [] => Box::new(|_| true),
        [filterby, kind, value] if filterby.eq_ignore_ascii_case(b"filterby") => {
            match kind.to_ascii_lowercase().as_slice() {
                b"aclcat" => {
                    let category = value.to_ascii_lowercase();
                    Box::new(move |spec| in_category(spec, &category))
                }
                b"pattern" => {
                    let pattern = value.to_ascii_lowercase();
                    Box::new(move |spec| glob::matches(&pattern, spec.name.as_bytes()))
                }
                b"module" => return None,
                _ => return Some(Frame::error("ERR syntax error")),
            }
        }
        _ => return Some(Frame::error("ERR syntax error")),
    };
    Some(Frame::Array(
        table
            .all()
            .iter()
            .filter(|spec| keep(spec))
            .map(|spec| Frame::Bulk(Bytes::from(spec.name.clone())))
            .collect(),
    ))
}

/// True when `spec`'s COMMAND INFO entry lists the ACL category
/// `category` (lower case, without the `@`).
fn in_category(spec: &CommandSpec, category: &[u8]) -> bool {
    let Frame::Array(fields) = &spec.info else {
        return false;
    };
    let Some(Frame::Array(categories) | Frame::Set(categories)) = fields.get(ACL_CATEGORIES) else {
        return false;
    };
    categories.iter().any(|listed| {
        listed
            .as_bytes()
            .and_then(|name| name.strip_prefix(b"@"))
            .is_some_and(|name| name.eq_ignore_ascii_case(category))
    })
}

/// Where COMMAND INFO puts a command's ACL categories.
const ACL_CATEGORIES: usize = 6;

fn getkeys(args: &[Bytes], shared: &Shared) -> Frame {
    if args.is_empty() {
        return Frame::error("ERR wrong number of arguments for 'command|getkeys' command");
    }
    let inner = Request::from_args(args.iter().cloned());
    let Some(spec) = shared.stack.router.table().lookup(&inner) else {
        return Frame::error("ERR Invalid command specified");
    };
    if !spec.arity_ok(args.len()) {
        return Frame::error("ERR Invalid number of arguments specified for command");
    }
    // Valkey's three answers: a command without key specs has no keys; a
    // command whose keys move with its arguments (EVAL ... 0) may have
    // none; any other must have some.
    if spec.key_specs.is_empty() && !spec.flags.contains(Flags::MOVABLE_KEYS) {
        return Frame::error("ERR The command has no key arguments");
    }
    let keys = key_positions(spec, inner.args());
    if keys.is_empty() && !spec.flags.contains(Flags::MOVABLE_KEYS) {
        return Frame::error("ERR Invalid arguments specified for command");
    }
    Frame::Array(
        keys.into_iter()
            .map(|i| Frame::Bulk(inner.args().bytes(i).unwrap_or_default()))
            .collect(),
    )
}
