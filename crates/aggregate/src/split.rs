//! Splitting a `multi_shard` command (MGET, MSET, DEL, EXISTS, UNLINK,
//! TOUCH, ...) into one request per slot, keeping the order of arguments,
//! and putting positional replies (MGET) back in the client's order.

use bytes::Bytes;
use resp::{Frame, Request};
use router::command::{BeginSearch, CommandSpec, FindKeys};
use router::slot::key_slot;

/// One slot's share of a split request.
#[derive(Clone, Debug)]
pub struct Part {
    /// The slot every key of this part hashes to.
    pub slot: u16,
    /// The command name followed by this part's key groups.
    pub request: Request,
    /// For each key group of this part, its index among all groups.
    pub groups: Vec<usize>,
}

/// Splits `request` by slot when its keys are laid out as Valkey's
/// `multi_shard` commands lay them out: from argument 1 to the end, one key
/// every `step` arguments (a key followed by `step - 1` values). `None` for
/// any other layout.
pub fn by_slot(spec: &CommandSpec, request: &Request) -> Option<Vec<Part>> {
    let [key_spec] = spec.key_specs.as_slice() else {
        return None;
    };
    let step = match (&key_spec.begin, &key_spec.find) {
        (
            BeginSearch::Index(1),
            FindKeys::Range {
                last_key: -1,
                key_step,
                limit: 0,
            },
        ) if *key_step > 0 => *key_step as usize,
        _ => return None,
    };
    let args = request.args();
    if args.len() < 2 || !(args.len() - 1).is_multiple_of(step) {
        return None;
    }
    let args = args.to_vec();
    let chunks: Vec<&[Bytes]> = args[1..].chunks(step).collect();
    let parts = by_slot_of(chunks.iter().map(|chunk| &chunk[0][..]))
        .into_iter()
        .map(|(slot, groups)| {
            let mut part = vec![args[0].clone()];
            for &group in &groups {
                part.extend(chunks[group].iter().cloned());
            }
            Part {
                slot,
                request: Request::from_args(part),
                groups,
            }
        })
        .collect();
    Some(parts)
}

/// The indexes of `keys` grouped by slot: each group in the order given,
/// the groups in the order of their first key.
pub fn by_slot_of<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Vec<(u16, Vec<usize>)> {
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for (index, key) in keys.into_iter().enumerate() {
        let slot = key_slot(key);
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push(index),
            None => groups.push((slot, vec![index])),
        }
    }
    groups
}

/// Puts positional replies (one array element per key group) back in the
/// client's order. An error reply from any part is the answer.
pub fn reassemble(parts: &[Part], replies: Vec<Frame>) -> Frame {
    let total: usize = parts.iter().map(|p| p.groups.len()).sum();
    let mut out = vec![Frame::Null; total];
    for (part, reply) in parts.iter().zip(replies) {
        let items = match reply {
            Frame::Array(items) if items.len() == part.groups.len() => items,
            error if error.is_error() => return error,
            _ => return Frame::error("ERR proxy got a reply of unexpected shape from a shard"),
        };
        for (group, item) in part.groups.iter().zip(items) {
            out[*group] = item;
        }
    }
    Frame::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use router::CommandTable;

    fn request(args: &[&str]) -> Request {
        Request::from_args(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())))
    }

    #[test]
    fn mset_keeps_pairs_together() {
        let table = CommandTable::builtin();
        let mset = request(&["MSET", "foo", "1", "bar", "2", "{foo}x", "3"]);
        let parts = by_slot(table.lookup(&mset).unwrap(), &mset).unwrap();
        assert_eq!(parts.len(), 2);
        let args = |p: &Part| {
            p.request
                .args()
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(args(&parts[0]), ["MSET", "foo", "1", "{foo}x", "3"]);
        assert_eq!(args(&parts[1]), ["MSET", "bar", "2"]);
        assert_eq!(parts[0].groups, [0, 2]);
    }

    #[test]
    fn mget_replies_return_in_order() {
        let table = CommandTable::builtin();
        let mget = request(&["MGET", "foo", "bar", "{foo}x"]);
        let parts = by_slot(table.lookup(&mget).unwrap(), &mget).unwrap();
        let replies = vec![
            Frame::Array(vec![Frame::bulk("f"), Frame::bulk("x")]),
            Frame::Array(vec![Frame::Null]),
        ];
        assert_eq!(
            reassemble(&parts, replies),
            Frame::Array(vec![Frame::bulk("f"), Frame::Null, Frame::bulk("x")])
        );
    }

    #[test]
    fn other_layouts_are_not_split() {
        let table = CommandTable::builtin();
        let sunion = request(&["SUNIONSTORE", "dst", "a", "b"]);
        assert!(by_slot(table.lookup(&sunion).unwrap(), &sunion).is_none());
    }
}
