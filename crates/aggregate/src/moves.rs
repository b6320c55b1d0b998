//! Commands that change keys in two slots, done in steps with Valkey's
//! replies and errors: RENAME / RENAMENX (DUMP, RESTORE with the TTL,
//! delete), SMOVE (SADD then SREM), LMOVE / RPOPLPUSH (push a copy of the
//! end element, then remove it from the source), BLMOVE / BRPOPLPUSH (a
//! blocking pop, then the push), and MSETNX (EXISTS over every key, then
//! MSET).
//!
//! Each reads what it needs first (types, the value, the lengths), so a
//! WRONGTYPE or a missing key changes nothing, then copies before it
//! removes. A step that fails is undone with the ones before it
//! (`undo`): the command completes or leaves the keys as they
//! were. None of them is atomic across slots, though: another client may
//! see the state between two steps (the value in both places for an
//! instant, or MSETNX's keys appearing between its check and its write).

use bytes::Bytes;
use resp::Frame;
use router::Command;
use router::{Error, Reply};
use tower::Service;

use crate::steps::{arg, Steps};
use crate::undo::{Journal, Undo};
use crate::waits::check_seconds as check_timeout;

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

/// A key's value as DUMP gives it and its PTTL (0 for none), or `None`
/// when it does not exist; `Err` an error reply for the client.
async fn dump<S>(steps: &mut Steps<S>, key: &Bytes) -> Result<Result<Option<(Bytes, Bytes)>, Frame>, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let payload = match steps.call(vec![arg("DUMP"), key.clone()]).await? {
        Frame::Bulk(payload) => payload,
        Frame::Null | Frame::NullArray => return Ok(Ok(None)),
        other => return Ok(Err(other)),
    };
    let ttl = steps
        .call(vec![arg("PTTL"), key.clone()])
        .await?
        .as_integer()
        .unwrap_or(-1)
        .max(0);
    Ok(Ok(Some((payload, Bytes::from(ttl.to_string())))))
}

fn restore(key: &Bytes, (payload, ttl): &(Bytes, Bytes)) -> Vec<Bytes> {
    vec![
        arg("RESTORE"),
        key.clone(),
        ttl.clone(),
        payload.clone(),
        arg("REPLACE"),
    ]
}

async fn rename<S>(steps: &mut Steps<S>, args: &[Bytes], nx: bool) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let [_, from, to] = args else {
        return Ok(syntax_error());
    };
    let value = match dump(steps, from).await? {
        Ok(Some(value)) => value,
        Ok(None) => return Ok(Frame::error("ERR no such key")),
        Err(reply) => return Ok(reply),
    };
    let replaced = match dump(steps, to).await? {
        Ok(Some(_)) if nx => return Ok(Frame::Integer(0)),
        Ok(replaced) => replaced,
        Err(reply) => return Ok(reply),
    };
    let mut journal = Journal::new(
        if nx { "RENAMENX" } else { "RENAME" },
        "the value may be under both names; nothing was lost",
    );
    let put_back = match &replaced {
        Some(old) => restore(to, old),
        None => vec![arg("DEL"), to.clone()],
    };
    if let Err(reply) = journal
        .change(steps, restore(to, &value), Undo::Uncopy(put_back))
        .await
    {
        return Ok(reply);
    }
    let recreate = Undo::Recreate(restore(from, &value));
    if let Err(reply) = journal
        .change(steps, vec![arg("DEL"), from.clone()], recreate)
        .await
    {
        return Ok(reply);
    }
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
    // Valkey's order: no source answers 0 whatever the destination is.
    match steps.call(vec![arg("SCARD"), from.clone()]).await? {
        Frame::Integer(0) => return Ok(Frame::Integer(0)),
        Frame::Integer(_) => {}
        other => return Ok(other),
    }
    let in_destination = match steps
        .call(vec![arg("SISMEMBER"), to.clone(), member.clone()])
        .await?
    {
        Frame::Integer(found) => found == 1,
        other => return Ok(other),
    };
    let in_source = steps
        .call(vec![arg("SISMEMBER"), from.clone(), member.clone()])
        .await?;
    if in_source.as_integer() != Some(1) {
        return Ok(in_source);
    }
    let mut journal = Journal::new("SMOVE", "the member may be in both sets; nothing was lost");
    if !in_destination {
        let add = vec![arg("SADD"), to.clone(), member.clone()];
        let undo = Undo::Uncopy(vec![arg("SREM"), to.clone(), member.clone()]);
        if let Err(reply) = journal.change(steps, add, undo).await {
            return Ok(reply);
        }
    }
    let remove = vec![arg("SREM"), from.clone(), member.clone()];
    let undo = Undo::Recreate(vec![arg("SADD"), from.clone(), member.clone()]);
    match journal.change(steps, remove, undo).await {
        Ok(Frame::Integer(1)) => Ok(Frame::Integer(1)),
        // Another client removed it meanwhile: nothing to move after all.
        Ok(_) => Ok(journal.roll_back(steps).await.err().unwrap_or(Frame::Integer(0))),
        Err(reply) => Ok(reply),
    }
}

async fn lmove<S>(steps: &mut Steps<S>, name: &str, args: &[Bytes]) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let (from, to, from_left, to_left) = match (name, args) {
        ("rpoplpush", [_, from, to]) => (from, to, false, true),
        ("lmove", [_, from, to, wherefrom, whereto]) => match (side(wherefrom), side(whereto)) {
            (Some(from_left), Some(to_left)) => (from, to, from_left, to_left),
            _ => return Ok(syntax_error()),
        },
        _ => return Ok(syntax_error()),
    };
    // Valkey's order: no source answers nil whatever the destination is.
    let source_length = match steps.call(vec![arg("LLEN"), from.clone()]).await? {
        Frame::Integer(0) => return Ok(Frame::Null),
        Frame::Integer(length) => length,
        other => return Ok(other),
    };
    let destination_length = match steps.call(vec![arg("LLEN"), to.clone()]).await? {
        Frame::Integer(length) => length,
        other => return Ok(other),
    };
    let end = arg(if from_left { "0" } else { "-1" });
    let element = match steps.call(vec![arg("LINDEX"), from.clone(), end]).await? {
        Frame::Bulk(element) => element,
        other => return Ok(other),
    };
    let mut journal = Journal::new(
        if name == "lmove" { "LMOVE" } else { "RPOPLPUSH" },
        "the element may be in both lists; nothing was lost",
    );
    if let Err(reply) = journal
        .push(steps, to, &element, to_left, destination_length)
        .await
    {
        return Ok(reply);
    }
    // LREM takes the occurrence nearest that end: the end element unless
    // another client changed the list meanwhile, and the same value.
    let count = arg(if from_left { "1" } else { "-1" });
    let remove = vec![arg("LREM"), from.clone(), count, element.clone()];
    let repush = Undo::Repush {
        key: from.clone(),
        element: element.clone(),
        left: from_left,
        length: Some(source_length),
    };
    match journal.change(steps, remove, repush).await {
        Ok(Frame::Integer(1)) => Ok(Frame::Bulk(element)),
        // Another client took the element meanwhile.
        Ok(_) => Ok(journal.roll_back(steps).await.err().unwrap_or(Frame::Null)),
        Err(reply) => Ok(reply),
    }
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

/// TYPE of a key, as text; `Err` the server's error reply.
async fn type_of<S>(steps: &mut Steps<S>, key: &Bytes) -> Result<Result<Bytes, Frame>, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    Ok(match steps.call(vec![arg("TYPE"), key.clone()]).await? {
        Frame::Simple(kind) | Frame::Bulk(kind) => Ok(kind),
        other => Err(other),
    })
}

/// Checks a blocking move's keys as Valkey does: the source must be a
/// list or nothing, and the destination a list or nothing, looked at only
/// when the source exists. `Some` is the client's answer (WRONGTYPE, or
/// the server's error).
async fn refuse_types<S>(steps: &mut Steps<S>, from: &Bytes, to: &Bytes) -> Result<Option<Frame>, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    match type_of(steps, from).await? {
        Ok(kind) if &kind[..] == b"none" => return Ok(None),
        Ok(kind) if &kind[..] == b"list" => {}
        Ok(_) => return Ok(Some(wrong_type())),
        Err(reply) => return Ok(Some(reply)),
    }
    Ok(match type_of(steps, to).await? {
        Ok(kind) if &kind[..] == b"list" || &kind[..] == b"none" => None,
        Ok(_) => Some(wrong_type()),
        Err(reply) => Some(reply),
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
    let mut keys = vec![arg("EXISTS")];
    keys.extend(args[1..].iter().step_by(2).cloned());
    let found = steps.call(keys.clone()).await?;
    match found.as_integer() {
        Some(0) => {}
        Some(_) => return Ok(Frame::Integer(0)),
        None => return Ok(found),
    }
    let mut mset = vec![arg("MSET")];
    mset.extend(args[1..].iter().cloned());
    // None of the keys existed: deleting them all puts things back.
    keys[0] = arg("DEL");
    let mut journal = Journal::new("MSETNX", "some of the keys may be set; none existed before");
    Ok(match journal.change(steps, mset, Undo::Uncopy(keys)).await {
        Ok(_) => Frame::Integer(1),
        Err(reply) => reply,
    })
}

/// BLMOVE / BRPOPLPUSH with the source and destination in two slots: the
/// types checked first (as LMOVE across slots does), then a blocking pop
/// on the source's node, then the push to the destination. Should the
/// push fail (the destination is not a list: Valkey looks at it only once
/// the source has something; or its node fails), the element goes back to
/// the end of the source it left (`undo`) and the client gets the
/// error.
pub(crate) async fn blocking_move<S>(steps: &mut Steps<S>, name: &str, args: &[Bytes]) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let syntax = || Ok(Frame::error("ERR syntax error"));
    let (from, to, from_left, to_left, timeout) = match (name, args) {
        ("brpoplpush", [_, from, to, timeout]) => (from, to, false, true, timeout),
        ("blmove", [_, from, to, wherefrom, whereto, timeout]) => match (side(wherefrom), side(whereto)) {
            (Some(from_left), Some(to_left)) => (from, to, from_left, to_left, timeout),
            _ => return syntax(),
        },
        _ => return syntax(),
    };
    if let Err(error) = check_timeout(timeout) {
        return Ok(error);
    }
    if let Some(refused) = refuse_types(steps, from, to).await? {
        return Ok(refused);
    }
    let pop = if from_left { "BLPOP" } else { "BRPOP" };
    let popped = steps.call(vec![arg(pop), from.clone(), timeout.clone()]).await?;
    let Some(element) = popped.as_array().and_then(|p| p.get(1)?.as_bytes().cloned()) else {
        return Ok(popped);
    };
    let mut journal = Journal::new(
        if name == "blmove" { "BLMOVE" } else { "BRPOPLPUSH" },
        "the element may be in both lists; nothing was lost",
    );
    journal.ran(Undo::Repush {
        key: from.clone(),
        element: element.clone(),
        left: from_left,
        length: None,
    });
    let destination_length = match steps.call(vec![arg("LLEN"), to.clone()]).await {
        Ok(Frame::Integer(length)) => length,
        Ok(other) => return Ok(journal.abandon(steps, Ok(other)).await),
        Err(error) => return Ok(journal.abandon(steps, Err(error)).await),
    };
    Ok(
        match journal
            .push(steps, to, &element, to_left, destination_length)
            .await
        {
            Ok(_) => Frame::Bulk(element),
            Err(reply) => reply,
        },
    )
}
