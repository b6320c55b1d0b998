//! Keys into a [`Scope`] on the way in, and back out of replies that name
//! keys.

use bytes::Bytes;
use resp::{Frame, Request};
use router::command::keys::for_each_key_spec;
use router::command::CommandSpec;
use router::{Error, Reply};
use smallvec::SmallVec;

use super::{channels, Scope};

/// `request` with every key (found by the command's key specs) in `space`,
/// and the channels it names among its tenant's ([`channels`]). SORT's BY
/// and GET patterns stay as they are: the server cannot build a
/// namespace's names from a pattern, so the layer copies the keys they
/// name instead ([`aggregate::colocate`]).
pub fn request(spec: &CommandSpec, request: &Request, space: &Scope) -> Request {
    if !space.channels_are_root() && channels::names_channels_in_request(&spec.name) {
        return with_channels(spec, request, space, &space.channels());
    }
    if space.is_root() {
        return request.clone();
    }
    // Key positions, each once (a key spec may find a key another found).
    let mut positions: SmallVec<[usize; 4]> = SmallVec::new();
    for_each_key_spec(spec, request.args(), |position, key_spec| {
        // SPUBLISH's channel: not a key, not in a database.
        if !key_spec.not_key && !positions.contains(&position) {
            positions.push(position);
        }
    });
    if positions.is_empty() {
        return request.clone();
    }
    if let Some(prefix) = space.plain_prefix() {
        return request.with_prefixed(prefix, &positions);
    }
    let replaced: SmallVec<[(usize, Bytes); 4]> = positions
        .iter()
        .map(|&position| (position, space.encode(&request.args()[position])))
        .collect();
    request.with_replaced(&replaced)
}

/// The rare commands that name a tenant's channels: PUBLISH, SPUBLISH
/// and PUBSUB's.
fn with_channels(spec: &CommandSpec, request: &Request, space: &Scope, channels: &Scope) -> Request {
    let mut args: Vec<Bytes> = request.args().to_vec();
    for_each_key_spec(spec, request.args(), |position, key_spec| {
        if !key_spec.not_key {
            args[position] = space.encode(&request.args()[position]);
        }
    });
    channels::request(&spec.name, &mut args, channels);
    if let Some(pattern) = channels::missing_pattern(&spec.name, &args, channels) {
        args.push(pattern);
    }
    Request::from_args(args)
}

/// True when [`reply`] may change the reply of command `name`: replies
/// that name keys, and (for a tenant) PUBSUB's that name channels.
pub fn rewrites_reply(name: &str, space: &Scope) -> bool {
    names_keys(name) || (channels::names_channels(name) && !space.channels_are_root())
}

fn names_keys(name: &str) -> bool {
    matches!(
        name,
        "blpop"
            | "brpop"
            | "bzpopmin"
            | "bzpopmax"
            | "blmpop"
            | "lmpop"
            | "zmpop"
            | "bzmpop"
            | "xread"
            | "xreadgroup"
    )
}

/// `reply` with the key (and a tenant's channel) names it carries taken
/// back out of `space`.
///
/// # Errors
/// A reply that had to be read was not valid RESP.
pub fn reply(name: &str, reply: Reply, space: &Scope) -> Result<Reply, Error> {
    if !rewrites_reply(name, space) || reply.is_error() {
        return Ok(reply);
    }
    let frame = reply
        .into_frame()
        .map_err(|e| Error::InvalidReply(e.to_string()))?;
    Ok(Reply::Frame(match name {
        "xread" | "xreadgroup" => streams(frame, space),
        _ if names_keys(name) => first_key(frame, space),
        _ => channels::reply(name, frame, &space.channels()),
    }))
}

/// `[key, ...]` (the pops): the first element is a key.
fn first_key(frame: Frame, space: &Scope) -> Frame {
    match frame {
        Frame::Array(mut items) => {
            if let Some(first) = items.first_mut() {
                decode_in_place(first, space);
            }
            Frame::Array(items)
        }
        other => other,
    }
}

/// XREAD's reply: `[[key, entries], ...]` in RESP2, `{key: entries}` in RESP3.
fn streams(frame: Frame, space: &Scope) -> Frame {
    match frame {
        Frame::Array(items) => Frame::Array(items.into_iter().map(|item| first_key(item, space)).collect()),
        Frame::Map(pairs) => Frame::Map(
            pairs
                .into_iter()
                .map(|(mut key, value)| {
                    decode_in_place(&mut key, space);
                    (key, value)
                })
                .collect(),
        ),
        other => other,
    }
}

fn decode_in_place(frame: &mut Frame, space: &Scope) {
    if let Frame::Bulk(stored) = frame {
        if let Some(key) = space.decode(stored) {
            *stored = key;
        }
    }
}
