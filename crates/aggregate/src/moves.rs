//! Commands that change keys in two slots, done in steps with Valkey's
//! replies and errors: RENAME / RENAMENX (DUMP, RESTORE with the TTL,
//! delete), SMOVE (SREM then SADD), LMOVE / RPOPLPUSH (pop then push), and
//! MSETNX (EXISTS over every key, then MSET).
//!
//! None of them is atomic across slots: another client may see the state
//! between two steps (the key in neither place for an instant, or MSETNX's
//! keys appearing between its check and its write). Types are checked
//! before anything changes, so a WRONGTYPE leaves both keys as they were.

use bytes::Bytes;
use resp::Frame;
use router::Command;
use router::{Error, Reply};
use tower::Service;

use crate::steps::{arg, Steps};

/// Runs one of the commands above, or `None` for any other command.
pub async fn run<S>(steps: &mut Steps<S>, name: &str, args: &[Bytes]) -> Option<Result<Reply, Error>>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let frame = match name {
        "rename" | "renamenx" => rename(steps, args, name == "renamenx").await,
        "smove" => smove(steps, args).await,
        "lmove" | "rpoplpush" => lmove(steps, name, args).await,
        "msetnx" => msetnx(steps, args).await,
        _ => return None,
    };
    Some(frame.map(Reply::Frame))
}

fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

/// TYPE of a key, as text.
async fn type_of<S>(steps: &mut Steps<S>, key: &Bytes) -> Result<Bytes, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let reply = steps.call(vec![arg("TYPE"), key.clone()]).await?;
    Ok(match reply {
        Frame::Simple(t) | Frame::Bulk(t) => t,
        _ => Bytes::from_static(b"none"),
    })
}

async fn rename<S>(steps: &mut Steps<S>, args: &[Bytes], nx: bool) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let [_, from, to] = args else {
        return Ok(syntax_error());
    };
    let payload = match steps.call(vec![arg("DUMP"), from.clone()]).await? {
        Frame::Bulk(payload) => payload,
        Frame::Null | Frame::NullArray => return Ok(Frame::error("ERR no such key")),
        other => return Ok(other),
    };
    let ttl = steps
        .call(vec![arg("PTTL"), from.clone()])
        .await?
        .as_integer()
        .unwrap_or(-1)
        .max(0);
    let mut restore = vec![arg("RESTORE"), to.clone(), Bytes::from(ttl.to_string()), payload];
    if !nx {
        restore.push(arg("REPLACE"));
    }
    let restored = steps.call(restore).await?;
    match restored {
        Frame::Error(text) if nx && text.starts_with(b"BUSYKEY") => return Ok(Frame::Integer(0)),
        other if other.is_error() => return Ok(other),
        _ => {}
    }
    steps.call(vec![arg("DEL"), from.clone()]).await?;
    Ok(if nx {
        Frame::Integer(1)
    } else {
        Frame::simple("OK")
    })
}

async fn smove<S>(steps: &mut Steps<S>, args: &[Bytes]) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let [_, from, to, member] = args else {
        return Ok(syntax_error());
    };
    for key in [from, to] {
        let kind = type_of(steps, key).await?;
        if &kind[..] != b"set" && &kind[..] != b"none" {
            return Ok(wrong_type());
        }
    }
    let removed = steps
        .call(vec![arg("SREM"), from.clone(), member.clone()])
        .await?;
    if removed.as_integer() != Some(1) {
        return Ok(removed);
    }
    steps.call(vec![arg("SADD"), to.clone(), member.clone()]).await?;
    Ok(Frame::Integer(1))
}

async fn lmove<S>(steps: &mut Steps<S>, name: &str, args: &[Bytes]) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let (from, to, pop, push) = match (name, args) {
        ("rpoplpush", [_, from, to]) => (from, to, arg("RPOP"), arg("LPUSH")),
        ("lmove", [_, from, to, wherefrom, whereto]) => match (side(wherefrom), side(whereto)) {
            (Some(from_left), Some(to_left)) => {
                let pop = arg(if from_left { "LPOP" } else { "RPOP" });
                let push = arg(if to_left { "LPUSH" } else { "RPUSH" });
                (from, to, pop, push)
            }
            _ => return Ok(syntax_error()),
        },
        _ => return Ok(syntax_error()),
    };
    match list_types(steps, from, to).await? {
        ListTypes::Ready => {}
        ListTypes::NoSource => return Ok(Frame::Null),
        ListTypes::Wrong => return Ok(wrong_type()),
    }
    let element = steps.call(vec![pop, from.clone()]).await?;
    let Frame::Bulk(value) = &element else {
        return Ok(element);
    };
    steps.call(vec![push, to.clone(), value.clone()]).await?;
    Ok(element)
}

/// A list end as LMOVE and BLMOVE name it: true for LEFT, false for
/// RIGHT, `None` for anything else (a syntax error).
pub(crate) fn side(end: &Bytes) -> Option<bool> {
    if end.eq_ignore_ascii_case(b"left") {
        Some(true)
    } else if end.eq_ignore_ascii_case(b"right") {
        Some(false)
    } else {
        None
    }
}

/// What the types of a move's source and destination allow.
pub(crate) enum ListTypes {
    /// The source is a list, the destination a list or nothing.
    Ready,
    /// No source: LMOVE answers nil, BLMOVE waits for one (and Valkey
    /// looks at the destination only once there is something to move).
    NoSource,
    /// Either is another type: WRONGTYPE, and nothing moves.
    Wrong,
}

/// Checks a move's keys as Valkey does: the source first, then the
/// destination, and that only when the source exists.
pub(crate) async fn list_types<S>(steps: &mut Steps<S>, from: &Bytes, to: &Bytes) -> Result<ListTypes, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    match &type_of(steps, from).await?[..] {
        b"none" => return Ok(ListTypes::NoSource),
        b"list" => {}
        _ => return Ok(ListTypes::Wrong),
    }
    Ok(match &type_of(steps, to).await?[..] {
        b"list" | b"none" => ListTypes::Ready,
        _ => ListTypes::Wrong,
    })
}

pub(crate) fn wrong_type() -> Frame {
    Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

async fn msetnx<S>(steps: &mut Steps<S>, args: &[Bytes]) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    if args.len() < 3 || args.len().is_multiple_of(2) {
        return Ok(Frame::error("ERR wrong number of arguments for 'msetnx' command"));
    }
    let mut exists = vec![arg("EXISTS")];
    exists.extend(args[1..].iter().step_by(2).cloned());
    let found = steps.call(exists).await?;
    match found.as_integer() {
        Some(0) => {}
        Some(_) => return Ok(Frame::Integer(0)),
        None => return Ok(found),
    }
    let mut mset = vec![arg("MSET")];
    mset.extend(args[1..].iter().cloned());
    let set = steps.call(mset).await?;
    Ok(if set.is_error() { set } else { Frame::Integer(1) })
}
