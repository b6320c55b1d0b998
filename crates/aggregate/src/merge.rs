//! Combining the replies of several nodes by `response_policy`.

use bytes::{BufMut, Bytes, BytesMut};
use resp::Frame;
use router::command::ResponsePolicy;

/// Merges one reply per node into the reply one server would give.
/// Error replies win where the policy says every node must succeed.
pub fn by_policy(policy: ResponsePolicy, replies: Vec<Frame>) -> Frame {
    let first_error = replies.iter().find(|r| r.is_error()).cloned();
    match policy {
        ResponsePolicy::OneSucceeded => replies
            .iter()
            .find(|r| !r.is_error())
            .cloned()
            .or(first_error)
            .unwrap_or(Frame::Null),
        _ if first_error.is_some() => first_error.unwrap_or(Frame::Null),
        ResponsePolicy::AllSucceeded | ResponsePolicy::Special => {
            replies.into_iter().next().unwrap_or(Frame::Null)
        }
        ResponsePolicy::AggSum => fold(replies, |a, b| a.saturating_add(b)),
        ResponsePolicy::AggMin => fold(replies, i64::min),
        ResponsePolicy::AggMax => fold(replies, i64::max),
        ResponsePolicy::AggLogicalAnd => fold(replies, |a, b| i64::from(a != 0 && b != 0)),
        ResponsePolicy::AggLogicalOr => fold(replies, |a, b| i64::from(a != 0 || b != 0)),
        ResponsePolicy::Default => concatenate(replies),
        ResponsePolicy::Union => union(replies),
        ResponsePolicy::SumPairs => sum_pairs(replies),
    }
}

/// Every element of every array once, in order of first appearance.
fn union(replies: Vec<Frame>) -> Frame {
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for reply in replies {
        let (Frame::Array(list) | Frame::Set(list)) = reply else {
            return Frame::error("ERR proxy cannot combine these replies");
        };
        for item in list {
            if seen.insert(item.as_bytes().cloned()) {
                items.push(item);
            }
        }
    }
    Frame::Array(items)
}

/// `[name, count, ...]` replies summed by name, in the first reply's order.
fn sum_pairs(replies: Vec<Frame>) -> Frame {
    let mut order: Vec<Frame> = Vec::new();
    let mut totals: Vec<i64> = Vec::new();
    for reply in replies {
        let pairs: Vec<(Frame, Frame)> = match reply {
            Frame::Array(list) if list.len() % 2 == 0 => {
                let mut iter = list.into_iter();
                std::iter::from_fn(|| Some((iter.next()?, iter.next()?))).collect()
            }
            Frame::Map(pairs) => pairs,
            _ => return Frame::error("ERR proxy cannot combine these replies"),
        };
        for (name, count) in pairs {
            let count = count.as_integer().unwrap_or(0);
            match order.iter().position(|n| n == &name) {
                Some(at) => totals[at] = totals[at].saturating_add(count),
                None => {
                    order.push(name);
                    totals.push(count);
                }
            }
        }
    }
    let mut items = Vec::with_capacity(order.len() * 2);
    for (name, total) in order.into_iter().zip(totals) {
        items.push(name);
        items.push(Frame::Integer(total));
    }
    Frame::Array(items)
}

/// Merges one reply per node for `spec`'s command, sent to every node as
/// its route said: by `policy`, or by the command's own rule for a
/// `special` one.
pub fn for_command(policy: ResponsePolicy, spec: Option<&router::CommandSpec>, replies: Vec<Frame>) -> Frame {
    match (policy, spec) {
        (ResponsePolicy::Special, Some(spec)) => special(&spec.name, replies),
        _ => by_policy(policy, replies),
    }
}

/// Merges replies for a command whose policy is `special`: by the
/// command's own rule where the proxy has one, else the first reply.
pub fn special(name: &str, replies: Vec<Frame>) -> Frame {
    match name {
        // A key from any node that has one.
        "randomkey" => {
            let keys: Vec<Frame> = replies
                .iter()
                .filter(|r| r.as_bytes().is_some())
                .cloned()
                .collect();
            match keys.len() {
                0 => replies.into_iter().find(Frame::is_error).unwrap_or(Frame::Null),
                n => keys[rand::random_range(0..n)].clone(),
            }
        }
        "info" => crate::info::merge(replies),
        _ => by_policy(ResponsePolicy::Special, replies),
    }
}

/// Combines integers, or arrays of integers element by element (as
/// `SCRIPT EXISTS` needs).
fn fold(replies: Vec<Frame>, op: impl Fn(i64, i64) -> i64 + Copy) -> Frame {
    let mut iter = replies.into_iter();
    let Some(first) = iter.next() else {
        return Frame::Null;
    };
    iter.fold(first, |acc, next| combine(acc, next, op))
}

fn combine(acc: Frame, next: Frame, op: impl Fn(i64, i64) -> i64 + Copy) -> Frame {
    match (acc, next) {
        (Frame::Array(a), Frame::Array(b)) if a.len() == b.len() => {
            Frame::Array(a.into_iter().zip(b).map(|(x, y)| combine(x, y, op)).collect())
        }
        (a, b) => match (a.as_integer(), b.as_integer()) {
            (Some(x), Some(y)) => Frame::Integer(op(x, y)),
            _ => Frame::error("ERR proxy cannot combine these replies"),
        },
    }
}

/// `concatenate` on the replies as they came, unparsed, when every one
/// is an array (or every one a RESP3 set): the elements are copied after
/// one new header, never decoded, so a million keys from KEYS cost one
/// copy instead of a parse and an encode on the event loop. `None` for
/// anything else (an error, a null), which the parsed path handles.
pub fn concatenate_raw(replies: &[Bytes]) -> Option<Bytes> {
    let kind = *replies.first()?.first()?;
    if kind != b'*' && kind != b'~' {
        return None;
    }
    let mut count: u64 = 0;
    let mut bodies = Vec::with_capacity(replies.len());
    for reply in replies {
        let end = memchr::memchr(b'\n', reply)?;
        let header = reply.get(1..end.checked_sub(1)?)?;
        if reply[0] != kind || reply[end - 1] != b'\r' {
            return None;
        }
        count += std::str::from_utf8(header).ok()?.parse::<u64>().ok()?;
        bodies.push(&reply[end + 1..]);
    }
    let size = bodies.iter().map(|b| b.len()).sum::<usize>() + 24;
    let mut merged = BytesMut::with_capacity(size);
    merged.put_u8(kind);
    merged.put_slice(count.to_string().as_bytes());
    merged.put_slice(b"\r\n");
    for body in bodies {
        merged.put_slice(body);
    }
    Some(merged.freeze())
}

/// The default for keyless commands sent to every shard (KEYS): arrays are
/// concatenated; anything else is taken from the first node.
fn concatenate(replies: Vec<Frame>) -> Frame {
    if !replies
        .iter()
        .all(|r| matches!(r, Frame::Array(_) | Frame::Set(_)))
    {
        return replies.into_iter().next().unwrap_or(Frame::Null);
    }
    let set = matches!(replies.first(), Some(Frame::Set(_)));
    let items: Vec<Frame> = replies
        .into_iter()
        .flat_map(|r| match r {
            Frame::Array(items) | Frame::Set(items) => items,
            _ => Vec::new(),
        })
        .collect();
    if set {
        Frame::Set(items)
    } else {
        Frame::Array(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let ints = || vec![Frame::Integer(3), Frame::Integer(5), Frame::Integer(0)];
        assert_eq!(by_policy(ResponsePolicy::AggSum, ints()), Frame::Integer(8));
        assert_eq!(by_policy(ResponsePolicy::AggMin, ints()), Frame::Integer(0));
        assert_eq!(by_policy(ResponsePolicy::AggMax, ints()), Frame::Integer(5));
        assert_eq!(
            by_policy(ResponsePolicy::AggLogicalAnd, ints()),
            Frame::Integer(0)
        );
        assert_eq!(by_policy(ResponsePolicy::AggLogicalOr, ints()), Frame::Integer(1));
        let exists = vec![
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)]),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(1)]),
        ];
        assert_eq!(
            by_policy(ResponsePolicy::AggLogicalAnd, exists),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)])
        );
        let with_error = vec![Frame::simple("OK"), Frame::error("ERR no")];
        assert_eq!(
            by_policy(ResponsePolicy::AllSucceeded, with_error.clone()),
            Frame::error("ERR no")
        );
        assert_eq!(
            by_policy(ResponsePolicy::OneSucceeded, with_error),
            Frame::simple("OK")
        );
        let keys = vec![
            Frame::Array(vec![Frame::bulk("a")]),
            Frame::Array(vec![Frame::bulk("b")]),
        ];
        assert_eq!(
            by_policy(ResponsePolicy::Default, keys),
            Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")])
        );
    }

    fn encoded(frame: &Frame) -> Bytes {
        let mut out = BytesMut::new();
        frame.encode(resp::Protocol::Resp3, &mut out);
        out.freeze()
    }

    #[test]
    fn unparsed_concatenation_gives_the_parsed_one() {
        let keys = |names: &[&str]| {
            Frame::Array(
                names
                    .iter()
                    .map(|n| Frame::Bulk(Bytes::from(n.to_string())))
                    .collect(),
            )
        };
        let cases = vec![
            vec![keys(&["a", "b"]), keys(&[]), keys(&["c\r\n*1"])],
            vec![Frame::Set(vec![Frame::Integer(1)]), Frame::Set(vec![Frame::Null])],
            vec![keys(&["only"])],
        ];
        for replies in cases {
            let raw: Vec<Bytes> = replies.iter().map(encoded).collect();
            let merged = concatenate_raw(&raw).expect("arrays");
            assert_eq!(Frame::parse_complete(&merged).unwrap(), concatenate(replies));
        }
        // Not arrays of one kind: left to the parsed path.
        for replies in [
            vec![keys(&["a"]), Frame::error("ERR no")],
            vec![keys(&["a"]), Frame::NullArray],
            vec![keys(&["a"]), Frame::Set(vec![])],
            vec![Frame::Integer(1)],
        ] {
            let raw: Vec<Bytes> = replies.iter().map(encoded).collect();
            assert_eq!(concatenate_raw(&raw), None, "{replies:?}");
        }
    }
}
