//! Keys into a [`Space`] on the way in, and back out of replies that name
//! keys.

use bytes::Bytes;
use resp::{Frame, Request};
use router::command::keys::for_each_key;
use router::command::CommandSpec;
use router::{Error, Reply};

use super::Space;

/// `request` with every key (found by the command's key specs) in `space`.
/// SORT's BY and GET patterns name keys too and are moved along.
pub fn request(spec: &CommandSpec, request: &Request, space: &Space) -> Request {
    let mut args: Vec<Bytes> = request.args().to_vec();
    let mut changed = false;
    for_each_key(spec, request.args(), |position| {
        args[position] = space.encode(&request.args()[position]);
        changed = true;
    });
    if matches!(spec.name.as_str(), "sort" | "sort_ro") {
        changed |= sort_patterns(&mut args, space);
    }
    if changed {
        Request::from_args(args)
    } else {
        request.clone()
    }
}

/// Moves SORT's `BY pattern` and `GET pattern` into `space` (`#` and
/// `nosort` stay). A `key->field` pattern moves its key part.
fn sort_patterns(args: &mut [Bytes], space: &Space) -> bool {
    let mut changed = false;
    let mut i = 2;
    while i + 1 < args.len() {
        let keyword = &args[i];
        if keyword.eq_ignore_ascii_case(b"limit") {
            i += 3;
            continue;
        }
        if keyword.eq_ignore_ascii_case(b"by") || keyword.eq_ignore_ascii_case(b"get") {
            let pattern = &args[i + 1];
            if &pattern[..] != b"#" && !pattern.eq_ignore_ascii_case(b"nosort") {
                args[i + 1] = encode_pattern(pattern, space);
                changed = true;
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    changed
}

fn encode_pattern(pattern: &[u8], space: &Space) -> Bytes {
    match pattern.windows(2).position(|w| w == b"->") {
        Some(at) => {
            let mut out = space.encode(&pattern[..at]).to_vec();
            out.extend_from_slice(&pattern[at..]);
            out.into()
        }
        None => space.encode(pattern),
    }
}

/// `reply` with the key names it carries taken back out of `space`.
///
/// # Errors
/// A reply that had to be read was not valid RESP.
pub fn reply(name: &str, reply: Reply, space: &Space) -> Result<Reply, Error> {
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
    if !names_keys || reply.is_error() {
        return Ok(reply);
    }
    let frame = reply
        .into_frame()
        .map_err(|e| Error::InvalidReply(e.to_string()))?;
    Ok(Reply::Frame(match name {
        "xread" | "xreadgroup" => streams(frame, space),
        _ => first_key(frame, space),
    }))
}

/// `[key, ...]` (the pops): the first element is a key.
fn first_key(frame: Frame, space: &Space) -> Frame {
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
fn streams(frame: Frame, space: &Space) -> Frame {
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

fn decode_in_place(frame: &mut Frame, space: &Space) {
    if let Frame::Bulk(stored) = frame {
        if let Some(key) = space.decode(stored) {
            *stored = key;
        }
    }
}
