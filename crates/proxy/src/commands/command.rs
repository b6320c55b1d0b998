//! COMMAND, answered from the merged command table, so clients see what
//! the proxy routes by. COMMAND DOCS goes to a backend (the server's own docs).

use bytes::Bytes;
use resp::{Frame, Request};
use router::command::keys::key_positions;

use super::Local;
use crate::edge::unknown_subcommand;
use crate::session::Shared;

/// `COMMAND [COUNT | LIST | INFO name... | GETKEYS cmd args... | DOCS ...]`
pub fn command(request: &Request, shared: &Shared) -> Option<Local> {
    let table = shared.stack.router.table();
    let args = request.args().to_vec();
    let reply = match args.get(1).map(|s| s.to_ascii_lowercase()).as_deref() {
        None => Frame::Array(table.iter().map(|spec| spec.info.clone()).collect()),
        Some(b"count") => Frame::Integer(table.len() as i64),
        Some(b"list") => Frame::Array(
            table
                .iter()
                .map(|spec| Frame::Bulk(Bytes::from(spec.name.clone())))
                .collect(),
        ),
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
    let keys = key_positions(spec, inner.args());
    if keys.is_empty() {
        return Frame::error("ERR The command has no key arguments");
    }
    Frame::Array(
        keys.into_iter()
            .map(|i| Frame::Bulk(inner.args().bytes(i).unwrap_or_default()))
            .collect(),
    )
}
