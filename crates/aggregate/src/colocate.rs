//! Commands whose keys live in several slots, computed exactly by the
//! server itself.
//!
//! The keys a command only reads that live outside the *anchor* slot (the
//! slot of the key it writes, or of its first key) are copied next to the
//! anchor: DUMP on their node, RESTORE under a temporary name that shares
//! the anchor's hash tag (with a 60 s TTL, so a crash leaves nothing
//! behind), then the command runs on the anchor's node with the temporary
//! names, and the copies are deleted. The server computes SUNIONSTORE,
//! ZINTER ... WEIGHTS ... AGGREGATE, PFCOUNT, BITOP and the rest with its
//! own code, so the result is what one server gives on the same data.
//!
//! Limits, said plainly: the copies are taken one after the other, so the
//! command sees each source as it was when copied (not one atomic
//! snapshot); the bytes copied for one command are bounded, past which it
//! is refused; a command that would change keys in several slots is not
//! done this way (RENAME, SMOVE, LMOVE and MSETNX have their own steps in
//! [`crate::moves`]). Temporary names start with `\0` followed by `0{`,
//! which database 0 of the proxy never shows.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use resp::{Frame, Request};
use router::command::keys::for_each_key_access;
use router::command::CommandSpec;
use router::slot::key_slot;
use router::{Command, Error, Reply};
use tower::Service;

use crate::steps::{arg, Steps};

/// TTL of a temporary copy, milliseconds.
const COPY_TTL_MS: &str = "60000";

/// Runs `request` with its read-only keys outside the anchor slot copied
/// next to it. `limit` bounds the bytes copied.
///
/// # Errors
/// The command changes keys in several slots, its anchor key cannot carry
/// a hash tag, the copies exceed `limit`, or a backend failed.
pub async fn run<S>(
    mut steps: Steps<S>,
    spec: &CommandSpec,
    request: &Request,
    limit: usize,
) -> Result<Reply, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let args = request.args();
    let mut keys: Vec<(usize, bool)> = Vec::new();
    for_each_key_access(spec, args, |position, writes| keys.push((position, writes)));
    // PFCOUNT only refreshes a cached count in the HyperLogLogs it reads.
    let reads_only = |writes: bool| !writes || spec.name == "pfcount";
    let Some(&(anchor, _)) = keys.iter().find(|(_, w)| !reads_only(*w)).or(keys.first()) else {
        return Err(refuse(spec, "it has no keys"));
    };
    let anchor_slot = key_slot(&args[anchor]);
    if keys
        .iter()
        .any(|&(p, w)| !reads_only(w) && key_slot(&args[p]) != anchor_slot)
    {
        return Err(refuse(spec, "it would change keys in several slots"));
    }
    let tag =
        hash_tag_for(&args[anchor]).ok_or_else(|| refuse(spec, "its anchor key cannot carry a hash tag"))?;
    let nonce: u64 = rand::random();
    let mut temps: HashMap<Bytes, Bytes> = HashMap::new();
    let mut rewritten: Vec<Bytes> = args.to_vec();
    let mut copied = 0usize;
    let outcome = async {
        for &(position, _) in &keys {
            let key = &args[position];
            if key_slot(key) == anchor_slot {
                continue;
            }
            if let Some(temp) = temps.get(key) {
                rewritten[position] = temp.clone();
                continue;
            }
            let temp = temp_name(&tag, nonce, temps.len());
            let dump = steps.call(vec![arg("DUMP"), key.clone()]).await?;
            if let Frame::Bulk(payload) = dump {
                copied += payload.len();
                if copied > limit {
                    return Err(refuse(
                        spec,
                        "its keys in other slots are larger than the proxy's copy limit",
                    ));
                }
                let restored = steps
                    .call(vec![arg("RESTORE"), temp.clone(), arg(COPY_TTL_MS), payload])
                    .await?;
                if restored.is_error() {
                    return Ok(restored);
                }
            } else if dump.is_error() {
                return Ok(dump);
            }
            // A missing source stays missing under its temporary name.
            temps.insert(key.clone(), temp.clone());
            rewritten[position] = temp;
        }
        steps.call(rewritten).await
    }
    .await;
    if !temps.is_empty() {
        let mut unlink = vec![arg("UNLINK")];
        unlink.extend(temps.values().cloned());
        let _ = steps.call(unlink).await;
    }
    let originals: HashMap<Bytes, Bytes> = temps.into_iter().map(|(k, t)| (t, k)).collect();
    Ok(Reply::Frame(restore_names(outcome?, &originals)))
}

fn refuse(spec: &CommandSpec, reason: &'static str) -> Error {
    Error::Unsplittable {
        command: spec.name.clone(),
        reason,
    }
}

/// The hash tag that puts a key in `key`'s slot: its own tag, or the whole
/// key when it has none (and no `}` that would end the tag early).
fn hash_tag_for(key: &[u8]) -> Option<Bytes> {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return Some(Bytes::copy_from_slice(&key[open + 1..open + 1 + len]));
            }
        }
    }
    (!key.contains(&b'}') && !key.is_empty()).then(|| Bytes::copy_from_slice(key))
}

/// `\0` `0{tag}:tmp:<nonce>:<n>`: in the tag's slot, hidden from database 0.
fn temp_name(tag: &[u8], nonce: u64, n: usize) -> Bytes {
    let mut name = BytesMut::with_capacity(tag.len() + 40);
    name.put_slice(b"\x000{");
    name.put_slice(tag);
    name.put_slice(format!("}}:tmp:{nonce:016x}:{n}").as_bytes());
    name.freeze()
}

/// The reply with every temporary name (XREAD echoes stream names) put
/// back to the client's key.
fn restore_names(frame: Frame, originals: &HashMap<Bytes, Bytes>) -> Frame {
    if originals.is_empty() {
        return frame;
    }
    let walk = |items: Vec<Frame>| items.into_iter().map(|f| restore_names(f, originals)).collect();
    match frame {
        Frame::Bulk(b) => Frame::Bulk(originals.get(&b).cloned().unwrap_or(b)),
        Frame::Array(items) => Frame::Array(walk(items)),
        Frame::Push(items) => Frame::Push(walk(items)),
        Frame::Set(items) => Frame::Set(walk(items)),
        Frame::Map(pairs) => Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (restore_names(k, originals), restore_names(v, originals)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_share_the_anchor_slot() {
        for anchor in [&b"dest"[..], b"{user}:dest", b"a{b"] {
            let tag = hash_tag_for(anchor).unwrap();
            let temp = temp_name(&tag, 7, 0);
            assert_eq!(key_slot(&temp), key_slot(anchor), "{anchor:?}");
        }
        assert_eq!(hash_tag_for(b"a}b"), None);
    }
}
