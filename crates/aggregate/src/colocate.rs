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
//! [`crate::moves`]). Temporary names start with [`TEMP_PREFIX`], which
//! database 0 of the proxy never shows.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use resp::{Args, Frame, Request};
use router::command::keys::for_each_key_access;
use router::command::CommandSpec;
use router::slot::key_slot;
use router::{Command, Error, Reply};
use tower::Service;

use crate::steps::{arg, Steps};

/// TTL of a temporary copy, milliseconds.
const COPY_TTL_MS: &str = "60000";

/// Runs `request` with its read-only keys outside the anchor slot copied
/// next to it. `limit` bounds the bytes copied. `stored` turns a key that
/// SORT builds from a pattern into the name it is stored under (a
/// namespace's, where the caller rewrote the request into one; else the
/// key itself).
///
/// # Errors
/// The command changes keys in several slots, its anchor key cannot carry
/// a hash tag, the copies exceed `limit`, or a backend failed.
pub async fn run<S>(
    steps: Steps<S>,
    spec: &CommandSpec,
    request: &Request,
    limit: usize,
    stored: &(dyn Fn(&[u8]) -> Bytes + Sync),
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
    let mut copier = Copier {
        steps,
        tag,
        nonce: rand::random(),
        temps: HashMap::new(),
        patterns: Vec::new(),
        copied: 0,
        limit,
    };
    let mut rewritten: Vec<Bytes> = args.to_vec();
    let outcome = async {
        for &(position, _) in &keys {
            let key = &rewritten[position];
            if key_slot(key) == anchor_slot {
                continue;
            }
            let temp = copier.temp_for(key);
            if let Some(error) = copier.copy(key, &temp).await? {
                return Ok(Reply::Frame(error));
            }
            rewritten[position] = temp;
        }
        if matches!(spec.name.as_str(), "sort" | "sort_ro") {
            if let Some(error) = sort_patterns(&mut copier, args, &mut rewritten, stored).await? {
                return Ok(Reply::Frame(error));
            }
        }
        copier.steps.call_raw(rewritten).await
    }
    .await;
    let nonce = copier.nonce;
    let temps = copier.clean_up().await;
    let outcome = outcome.map_err(|error| match error {
        Error::Unsplittable { reason, .. } => refuse(spec, reason),
        other => other,
    })?;
    // A reply that names no copy (all but XREAD's, in practice) passes on
    // as it came: a million-member SUNION is not parsed and re-encoded on
    // the event loop.
    if let Reply::Raw(raw) = &outcome {
        if memchr::memmem::find(raw, &nonce_mark(nonce)).is_none() {
            return Ok(outcome);
        }
    }
    let frame = outcome
        .into_frame()
        .map_err(|e| Error::InvalidReply(e.to_string()))?;
    let originals: HashMap<Bytes, Bytes> = temps.into_iter().map(|(k, t)| (t, k)).collect();
    Ok(Reply::Frame(restore_names(frame, &originals)))
}

/// Copies keys next to the anchor under temporary names.
struct Copier<S> {
    steps: Steps<S>,
    tag: Bytes,
    nonce: u64,
    /// Temporary name by original key.
    temps: HashMap<Bytes, Bytes>,
    /// Copies made for SORT's patterns, named by element.
    patterns: Vec<Bytes>,
    copied: usize,
    limit: usize,
}

impl<S> Copier<S>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    /// The temporary name `key` gets (the same one each time).
    fn temp_for(&self, key: &Bytes) -> Bytes {
        self.temps
            .get(key)
            .cloned()
            .unwrap_or_else(|| temp_name(&self.tag, self.nonce, self.temps.len()))
    }

    /// The prefix of the copies for SORT's pattern at argument `position`:
    /// `prefix + element` is the copy of the key the pattern names for
    /// `element`.
    fn pattern_prefix(&self, position: usize) -> Bytes {
        let mut prefix = temp_name(&self.tag, self.nonce, usize::MAX - position).to_vec();
        prefix.push(b':');
        Bytes::from(prefix)
    }

    /// Copies `key` to `temp` (once). A missing key stays missing under
    /// its temporary name. `Some(error)` is a reply to give the client.
    async fn copy(&mut self, key: &Bytes, temp: &Bytes) -> Result<Option<Frame>, Error> {
        if self.temps.contains_key(key) {
            return Ok(None);
        }
        let copied = self.dump_restore(key, temp).await?;
        if copied.is_none() {
            self.temps.insert(key.clone(), temp.clone());
        }
        Ok(copied)
    }

    /// Copies `key` to `temp` for a SORT pattern.
    async fn copy_for_pattern(&mut self, key: &Bytes, temp: Bytes) -> Result<Option<Frame>, Error> {
        let copied = self.dump_restore(key, &temp).await?;
        self.patterns.push(temp);
        Ok(copied)
    }

    /// DUMP `key`, RESTORE it as `temp`. `Some(error)` is a reply to give
    /// the client.
    async fn dump_restore(&mut self, key: &Bytes, temp: &Bytes) -> Result<Option<Frame>, Error> {
        let dump = self.steps.call(vec![arg("DUMP"), key.clone()]).await?;
        match dump {
            Frame::Bulk(payload) => {
                self.copied += payload.len();
                if self.copied > self.limit {
                    return Err(Error::Unsplittable {
                        command: String::new(),
                        reason: "its keys in other slots are larger than the proxy's copy limit",
                    });
                }
                let restore = vec![arg("RESTORE"), temp.clone(), arg(COPY_TTL_MS), payload];
                let restored = self.steps.call(restore).await?;
                if restored.is_error() {
                    return Ok(Some(restored));
                }
            }
            error if error.is_error() => return Ok(Some(error)),
            _ => {}
        }
        Ok(None)
    }

    /// Deletes the copies; returns the map of temporary names.
    async fn clean_up(mut self) -> HashMap<Bytes, Bytes> {
        if !self.temps.is_empty() || !self.patterns.is_empty() {
            let mut unlink = vec![arg("UNLINK")];
            unlink.extend(self.temps.values().cloned());
            unlink.append(&mut self.patterns);
            let _ = self.steps.call(unlink).await;
        }
        self.temps
    }
}

/// SORT's BY and GET patterns name keys the server builds from each
/// element (`weight_*` -> `weight_3`), which may live in any slot (or, in
/// an emulated database, under names the server cannot build: they start
/// with a NUL byte, where the server's pattern matching stops). For each
/// pattern and element, the key is copied to `prefix + element`, and the
/// pattern becomes `prefix + *` (with its `->field`), so the server builds
/// the copies' names itself.
async fn sort_patterns<S>(
    copier: &mut Copier<S>,
    args: Args<'_>,
    rewritten: &mut [Bytes],
    stored: &(dyn Fn(&[u8]) -> Bytes + Sync),
) -> Result<Option<Frame>, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
{
    let positions = pattern_positions(args);
    if positions.is_empty() {
        return Ok(None);
    }
    // The elements, as the server holds them (SORT ... BY nosort).
    let source = rewritten[1].clone();
    let elements = match copier
        .steps
        .call(vec![arg("SORT"), source, arg("BY"), arg("NOSORT")])
        .await?
    {
        Frame::Array(items) | Frame::Set(items) => items,
        other => return Ok(Some(other)),
    };
    for position in positions {
        let pattern = &args[position];
        let (key_part, field) = split_field(pattern);
        let prefix = copier.pattern_prefix(position);
        for element in elements.iter().filter_map(Frame::as_bytes) {
            let key = stored(&substitute(key_part, element));
            let mut temp = prefix.to_vec();
            temp.extend_from_slice(element);
            if let Some(error) = copier.copy_for_pattern(&key, Bytes::from(temp)).await? {
                return Ok(Some(error));
            }
        }
        let mut moved = prefix.to_vec();
        moved.push(b'*');
        if let Some(field) = field {
            moved.extend_from_slice(b"->");
            moved.extend_from_slice(field);
        }
        rewritten[position] = Bytes::from(moved);
    }
    Ok(None)
}

/// A pattern's key part and hash field, split as Valkey splits them: at the
/// first `->` after the `*`, when a field name follows it.
fn split_field(pattern: &[u8]) -> (&[u8], Option<&[u8]>) {
    let star = pattern.iter().position(|&b| b == b'*').unwrap_or(0);
    match pattern[star..].windows(2).position(|w| w == b"->") {
        Some(at) if star + at + 2 < pattern.len() => (&pattern[..star + at], Some(&pattern[star + at + 2..])),
        _ => (pattern, None),
    }
}

/// True for a SORT whose BY or GET patterns name keys, which a cluster
/// refuses unless they share the sorted key's slot: the proxy copies them.
pub fn sort_has_key_patterns(args: Args<'_>) -> bool {
    !pattern_positions(args).is_empty()
}

/// Positions of SORT's BY and GET patterns that name keys (not `#`, not
/// `nosort`).
fn pattern_positions(args: Args<'_>) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut i = 2;
    while i + 1 < args.len() {
        let keyword = &args[i];
        if keyword.eq_ignore_ascii_case(b"limit") {
            i += 3;
        } else if keyword.eq_ignore_ascii_case(b"by") || keyword.eq_ignore_ascii_case(b"get") {
            let pattern = &args[i + 1];
            // A pattern already moved next to the anchor starts with the
            // temporary names' prefix: the proxy's own second pass.
            let ours = pattern.starts_with(TEMP_PREFIX);
            // Without `*` a pattern names no key (the server sorts nothing
            // by it and GETs nil), and `#` is the element itself.
            if pattern.contains(&b'*') && !ours {
                positions.push(i + 1);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    positions
}

/// Valkey's substitution: the first `*` of the pattern becomes the element.
fn substitute(pattern: &[u8], element: &[u8]) -> Bytes {
    match pattern.iter().position(|&b| b == b'*') {
        Some(at) => {
            let mut key = pattern[..at].to_vec();
            key.extend_from_slice(element);
            key.extend_from_slice(&pattern[at + 1..]);
            Bytes::from(key)
        }
        None => Bytes::copy_from_slice(pattern),
    }
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

/// How every temporary name starts: a byte no application key starts
/// with in practice, then the tag's brace. Database 0 of the proxy never
/// shows such keys (the namespace layer hides them). Not a NUL byte, as
/// emulated databases' keys start with: SORT's patterns must name copies,
/// and the server's pattern matching stops at a NUL.
pub const TEMP_PREFIX: &[u8] = b"\x01tmp{";

/// [`TEMP_PREFIX`] `tag}:<nonce>:<n>`: in the tag's slot, hidden from
/// database 0.
fn temp_name(tag: &[u8], nonce: u64, n: usize) -> Bytes {
    let mut name = BytesMut::with_capacity(tag.len() + 40);
    name.put_slice(TEMP_PREFIX);
    name.put_slice(tag);
    name.put_slice(b"}");
    name.put_slice(&nonce_mark(nonce));
    name.put_slice(n.to_string().as_bytes());
    name.freeze()
}

/// The part of every temporary name of one command that carries its
/// nonce: what a reply must hold to name one of them.
fn nonce_mark(nonce: u64) -> Vec<u8> {
    format!(":{nonce:016x}:").into_bytes()
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
