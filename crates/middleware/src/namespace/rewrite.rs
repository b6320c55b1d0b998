//! Keys into a [`Scope`] on the way in, and back out of replies that name
//! keys.

use bytes::Bytes;
use resp::{Frame, Request};
use router::command::keys::for_each_key_spec;
use router::command::CommandSpec;
use router::{Error, Reply};

use super::{channels, Scope};

/// `request` with every key (found by the command's key specs) in `space`,
/// and the channels it names among its tenant's ([`channels`]). SORT's BY
/// and GET patterns stay as they are: the server cannot build a
/// namespace's names from a pattern, so the layer copies the keys they
/// name instead ([`aggregate::colocate`]).
pub fn request(spec: &CommandSpec, request: &Request, space: &Scope) -> Request {
    let mut args: Vec<Bytes> = request.args().to_vec();
    let mut changed = false;
    for_each_key_spec(spec, request.args(), |position, key_spec| {
        // SPUBLISH's channel: not a key, not in a database.
        if !key_spec.not_key {
            args[position] = space.encode(&request.args()[position]);
            changed = true;
        }
    });
    let channels = space.channels();
    if !channels.is_root() {
        changed |= channels::request(&spec.name, &mut args, &channels);
        if let Some(pattern) = channels::missing_pattern(&spec.name, &args, &channels) {
            args.push(pattern);
            changed = true;
        }
    }
    if changed {
        Request::from_args(args)
    } else {
        request.clone()
    }
}

/// `reply` with the key (and a tenant's channel) names it carries taken
/// back out of `space`.
///
/// # Errors
/// A reply that had to be read was not valid RESP.
pub fn reply(name: &str, reply: Reply, space: &Scope) -> Result<Reply, Error> {
    let names_keys = matches!(
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
    );
    let names_channels = channels::names_channels(name) && !space.channels().is_root();
    if !(names_keys || names_channels) || reply.is_error() {
        return Ok(reply);
    }
    let frame = reply
        .into_frame()
        .map_err(|e| Error::InvalidReply(e.to_string()))?;
    Ok(Reply::Frame(match name {
        _ if names_channels => channels::reply(name, frame, &space.channels()),
        "xread" | "xreadgroup" => streams(frame, space),
        _ => first_key(frame, space),
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
