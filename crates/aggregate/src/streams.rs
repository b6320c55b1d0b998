//! XREAD and XREADGROUP whose streams span slots.
//!
//! Each slot's streams are read on their node, every slot at once, and the
//! replies are merged in the order the streams were named: what one
//! server answers.
//!
//! XREAD with BLOCK: when no stream has anything yet, every slot waits at
//! once; the first to answer with entries answers the client, and the
//! others are told to stop waiting. XREAD takes nothing away, so nothing
//! is lost: entries another node had found meanwhile are read by the
//! client's next XREAD, from the IDs it last saw.
//!
//! XREADGROUP hands new entries (ID `>`) to the consumer: each node moves
//! its group's cursor as it answers. So that an error on one node (no such
//! group, a wrong type, a bad ID) does not leave entries handed over on
//! another, as one server never would, every node is first asked the same
//! read with `0` for `>`, which only reads the consumer's own history;
//! the real read follows when no node objects. With BLOCK, when nothing is
//! new, the nodes are not raced with blocking group reads (one that lost
//! would still hand entries to the consumer there): every node watches
//! with an XREAD BLOCK from where the group is, which hands nothing over,
//! and the group read is done again when one sees new entries.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use pool::Pool;
use resp::Frame;
use router::{Command, Error, Reply};
use tower::Service;

use crate::split;
use crate::steps::{arg, Steps};
use crate::waits::{check_millis, First, Waiting, Waits};

/// True for the stream reads [`read`] carries out across slots: XREAD
/// and XREADGROUP, with or without BLOCK.
pub fn handles(name: &str) -> bool {
    matches!(name, "xread" | "xreadgroup")
}

/// Runs `waiting.args`, an XREAD or XREADGROUP whose streams span slots.
///
/// # Errors
/// A backend failed.
pub async fn read<S>(mut steps: Steps<S>, waiting: Waiting) -> Result<Reply, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    let Waiting { pool, owner, args } = waiting;
    let read = match StreamRead::parse(&args) {
        Ok(read) => read,
        Err(error) => return Ok(Reply::Frame(error)),
    };
    let groups = read.by_slot();
    if read.group.is_some() && read.ids.iter().any(|id| id.as_ref() == b">") {
        let checked = read.history().now(&mut steps, &groups).await?;
        if checked.is_error() {
            return Ok(Reply::Frame(checked));
        }
    }
    let now = read.now(&mut steps, &groups).await?;
    let Some(block) = &read.block else {
        return Ok(Reply::Frame(now));
    };
    if !is_nil(&now) {
        return Ok(Reply::Frame(now));
    }
    let frame = if read.group.is_some() {
        read.wait_for_group(&mut steps, &groups, (&pool, owner), block)
            .await?
    } else {
        let started = groups
            .iter()
            .map(|group| steps.start(read.command(group, Some(block))));
        wait(Waits::new(started, pool, owner)).await?
    };
    Ok(Reply::Frame(frame))
}

/// The first answer of `waits`, the others stopped; the nil of a timeout
/// when every node's passed.
async fn wait<F>(mut waits: Waits<F>) -> Result<Frame, Error>
where
    F: std::future::Future<Output = Result<Frame, Error>>,
{
    let answer = match waits.first().await {
        First::TimedOut(nil) => return Ok(nil),
        First::Answer(answer) => answer,
    };
    waits.stop().await;
    answer
}

fn is_nil(frame: &Frame) -> bool {
    matches!(frame, Frame::Null | Frame::NullArray)
}

/// One XREAD or XREADGROUP, taken apart.
#[derive(Clone, Debug)]
struct StreamRead {
    /// XREADGROUP's group and consumer.
    group: Option<(Bytes, Bytes)>,
    noack: bool,
    count: Option<Bytes>,
    block: Option<Bytes>,
    keys: Vec<Bytes>,
    ids: Vec<Bytes>,
}

impl StreamRead {
    /// Takes `args` apart as Valkey does, with its error replies.
    fn parse(args: &[Bytes]) -> Result<StreamRead, Frame> {
        let grouped = args
            .first()
            .is_some_and(|name| name.eq_ignore_ascii_case(b"xreadgroup"));
        let mut read = StreamRead {
            group: None,
            noack: false,
            count: None,
            block: None,
            keys: Vec::new(),
            ids: Vec::new(),
        };
        let syntax = || Frame::error("ERR syntax error");
        let mut i = 1;
        loop {
            let option = args.get(i).ok_or_else(syntax)?;
            let is = |name: &[u8]| option.eq_ignore_ascii_case(name);
            let value = |at: usize| args.get(i + at).cloned().ok_or_else(syntax);
            if is(b"streams") {
                break;
            } else if is(b"count") {
                let count = value(1)?;
                if resp::number::parse_i64(&count).is_none() {
                    return Err(Frame::error("ERR value is not an integer or out of range"));
                }
                read.count = Some(count);
                i += 2;
            } else if is(b"block") {
                let block = value(1)?;
                check_millis(&block)?;
                read.block = Some(block);
                i += 2;
            } else if grouped && is(b"group") {
                read.group = Some((value(1)?, value(2)?));
                i += 3;
            } else if grouped && is(b"noack") {
                read.noack = true;
                i += 1;
            } else {
                return Err(syntax());
            }
        }
        if grouped && read.group.is_none() {
            return Err(Frame::error("ERR Missing GROUP option for XREADGROUP"));
        }
        let streams = &args[i + 1..];
        if streams.is_empty() || streams.len() % 2 == 1 {
            return Err(Frame::error(if grouped {
                "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified."
            } else {
                "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."
            }));
        }
        let (keys, ids) = streams.split_at(streams.len() / 2);
        read.keys = keys.to_vec();
        read.ids = ids.to_vec();
        Ok(read)
    }

    /// Reads every slot at once, without blocking, and merges the replies.
    async fn now<S>(&self, steps: &mut Steps<S>, groups: &[Vec<usize>]) -> Result<Frame, Error>
    where
        S: Service<Command, Response = Reply, Error = Error>,
        S::Future: Send + 'static,
    {
        let replies = join_all(groups.iter().map(|group| steps.start(self.command(group, None)))).await;
        Ok(self.merge(replies.into_iter().collect::<Result<_, _>>()?))
    }

    /// XREADGROUP with BLOCK once nothing is new: every slot watches its
    /// streams with an XREAD BLOCK from the IDs the group has handed out
    /// up to (XINFO GROUPS), which hands nothing to anyone. When one node
    /// sees new entries, the group read is done again without blocking;
    /// should another consumer have taken them first, the watch starts
    /// over with what is left of the timeout.
    async fn wait_for_group<S>(
        &self,
        steps: &mut Steps<S>,
        groups: &[Vec<usize>],
        (pool, owner): (&Pool, u64),
        block: &Bytes,
    ) -> Result<Frame, Error>
    where
        S: Service<Command, Response = Reply, Error = Error>,
        S::Future: Send + 'static,
    {
        let millis = resp::number::parse_i64(block).unwrap_or(0);
        let deadline = (millis > 0).then(|| Instant::now() + Duration::from_millis(millis as u64));
        loop {
            let left = match deadline {
                None => 0,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.as_millis().max(1),
                    _ => return Ok(Frame::NullArray),
                },
            };
            let Some(watch) = self.watch(steps).await? else {
                // The stream or the group went away: the read says how.
                return self.now(steps, groups).await;
            };
            let left = Bytes::from(left.to_string());
            let started = groups
                .iter()
                .map(|group| steps.start(watch.command(group, Some(&left))));
            match wait(Waits::new(started, pool.clone(), owner)).await? {
                nil if is_nil(&nil) => return Ok(nil),
                error if error.is_error() => return Ok(error),
                _ => {}
            }
            let now = self.now(steps, groups).await?;
            if !is_nil(&now) {
                return Ok(now);
            }
        }
    }

    /// An XREAD of the streams from the IDs the group has handed out up
    /// to; `None` when a stream or the group is gone.
    async fn watch<S>(&self, steps: &mut Steps<S>) -> Result<Option<StreamRead>, Error>
    where
        S: Service<Command, Response = Reply, Error = Error>,
        S::Future: Send + 'static,
    {
        let Some((group, _)) = &self.group else {
            return Ok(None);
        };
        let infos = self
            .keys
            .iter()
            .map(|key| steps.start(vec![arg("XINFO"), arg("GROUPS"), key.clone()]));
        let mut ids = Vec::with_capacity(self.keys.len());
        for info in join_all(infos).await {
            let Some(id) = last_delivered(info?, group) else {
                return Ok(None);
            };
            ids.push(id);
        }
        Ok(Some(StreamRead {
            group: None,
            noack: false,
            count: Some(arg("1")),
            block: None,
            keys: self.keys.clone(),
            ids,
        }))
    }

    /// The same read of the consumer's own history: `0` for every `>`,
    /// one entry at most. It hands nothing new to the consumer, and fails
    /// where the read itself would.
    fn history(&self) -> StreamRead {
        let mut history = self.clone();
        history.count = Some(arg("1"));
        history.noack = false;
        for id in &mut history.ids {
            if id.as_ref() == b">" {
                *id = arg("0");
            }
        }
        history
    }

    /// The indexes of the streams of each slot ([`split::by_slot_of`]).
    fn by_slot(&self) -> Vec<Vec<usize>> {
        split::by_slot_of(self.keys.iter().map(|key| &key[..]))
            .into_iter()
            .map(|(_, group)| group)
            .collect()
    }

    /// The read of the streams at `group`, with `block` if given.
    fn command(&self, group: &[usize], block: Option<&Bytes>) -> Vec<Bytes> {
        let mut args = Vec::new();
        match &self.group {
            Some((group, consumer)) => {
                args.extend([arg("XREADGROUP"), arg("GROUP"), group.clone(), consumer.clone()])
            }
            None => args.push(arg("XREAD")),
        }
        if let Some(count) = &self.count {
            args.extend([arg("COUNT"), count.clone()]);
        }
        if let Some(block) = block {
            args.extend([arg("BLOCK"), block.clone()]);
        }
        if self.noack {
            args.push(arg("NOACK"));
        }
        args.push(arg("STREAMS"));
        args.extend(group.iter().map(|&i| self.keys[i].clone()));
        args.extend(group.iter().map(|&i| self.ids[i].clone()));
        args
    }
    /// One reply from the slots' replies: the first error if any, else
    /// every stream that has entries, in the order the streams were named
    /// (a map for RESP3, as the nodes answer), else the nil they answered.
    fn merge(&self, replies: Vec<Frame>) -> Frame {
        let mut nil = Frame::NullArray;
        let mut map = false;
        let mut found: Vec<(usize, Frame, Frame)> = Vec::new();
        for reply in replies {
            let pairs = match reply {
                error if error.is_error() => return error,
                Frame::Map(pairs) => {
                    map = true;
                    pairs
                }
                Frame::Array(items) => items
                    .into_iter()
                    .filter_map(|item| match item {
                        Frame::Array(pair) => <[Frame; 2]>::try_from(pair).ok().map(|[k, v]| (k, v)),
                        _ => None,
                    })
                    .collect(),
                other => {
                    nil = other;
                    continue;
                }
            };
            for (key, entries) in pairs {
                let named = key.as_bytes().and_then(|k| self.keys.iter().position(|n| n == k));
                found.push((named.unwrap_or(usize::MAX), key, entries));
            }
        }
        if found.is_empty() {
            return nil;
        }
        found.sort_by_key(|(index, ..)| *index);
        if map {
            Frame::Map(
                found
                    .into_iter()
                    .map(|(_, key, entries)| (key, entries))
                    .collect(),
            )
        } else {
            Frame::Array(
                found
                    .into_iter()
                    .map(|(_, key, entries)| Frame::Array(vec![key, entries]))
                    .collect(),
            )
        }
    }
}

/// The `last-delivered-id` of `group` in an XINFO GROUPS reply.
fn last_delivered(info: Frame, group: &Bytes) -> Option<Bytes> {
    let Frame::Array(groups) = info else {
        return None;
    };
    groups.into_iter().find_map(|entry| {
        let fields = entry.into_pairs()?;
        let field = |name: &[u8]| {
            fields
                .iter()
                .find(|(key, _)| key.as_bytes().is_some_and(|k| k.as_ref() == name))
                .and_then(|(_, value)| value.as_bytes().cloned())
        };
        (field(b"name").as_ref() == Some(group)).then(|| field(b"last-delivered-id"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::steps::args;

    fn bulk(text: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn options_and_streams_are_read_as_valkey_reads_them() {
        let read = StreamRead::parse(&args(&[
            "XREAD", "count", "2", "BLOCK", "0", "STREAMS", "a", "b", "0", "$",
        ]))
        .unwrap();
        assert_eq!(read.count, Some(Bytes::from("2")));
        assert_eq!(read.block, Some(Bytes::from("0")));
        assert_eq!(read.keys, args(&["a", "b"]));
        assert_eq!(read.ids, args(&["0", "$"]));
        let error = |request: &[&str]| StreamRead::parse(&args(request)).unwrap_err();
        assert_eq!(
            error(&["XREAD", "BLOCK", "x", "STREAMS", "a", "0"]),
            Frame::error("ERR timeout is not an integer or out of range")
        );
        assert_eq!(
            error(&["XREAD", "COUNT", "x", "STREAMS", "a", "0"]),
            Frame::error("ERR value is not an integer or out of range")
        );
        assert_eq!(
            error(&["XREAD", "FOO", "STREAMS", "a", "0"]),
            Frame::error("ERR syntax error")
        );
        assert!(error(&["XREAD", "STREAMS", "a", "b", "0"]).is_error());
    }

    #[test]
    fn a_group_read_is_checked_first_on_the_consumers_history() {
        let read = StreamRead::parse(&args(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "NOACK",
            "COUNT",
            "5",
            "STREAMS",
            "a",
            "b",
            ">",
            "7-1",
        ]))
        .unwrap();
        let shown = |command: Vec<Bytes>| {
            command
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown(read.command(&[0, 1], None)),
            [
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "5",
                "NOACK",
                "STREAMS",
                "a",
                "b",
                ">",
                "7-1"
            ]
        );
        assert_eq!(
            shown(read.history().command(&[1, 0], None)),
            [
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "1",
                "STREAMS",
                "b",
                "a",
                "7-1",
                "0"
            ]
        );
        let missing = StreamRead::parse(&args(&["XREADGROUP", "STREAMS", "a", ">"])).unwrap_err();
        assert_eq!(missing, Frame::error("ERR Missing GROUP option for XREADGROUP"));
        let xread_group = StreamRead::parse(&args(&["XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"]));
        assert_eq!(xread_group.unwrap_err(), Frame::error("ERR syntax error"));
    }

    #[test]
    fn where_a_group_is_comes_from_xinfo_groups() {
        let info = |group: &str, id: &str| {
            vec![
                bulk("name"),
                bulk(group),
                bulk("consumers"),
                Frame::Integer(0),
                bulk("last-delivered-id"),
                bulk(id),
            ]
        };
        let resp2 = Frame::Array(vec![
            Frame::Array(info("a", "1-1")),
            Frame::Array(info("g", "7-3")),
        ]);
        assert_eq!(last_delivered(resp2, &Bytes::from("g")), Some(Bytes::from("7-3")));
        let pairs = |fields: Vec<Frame>| {
            let mut fields = fields.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
                pairs.push((k, v));
            }
            Frame::Map(pairs)
        };
        let resp3 = Frame::Array(vec![pairs(info("g", "0-0"))]);
        assert_eq!(last_delivered(resp3, &Bytes::from("g")), Some(Bytes::from("0-0")));
        let missing = Frame::Array(vec![Frame::Array(info("a", "1-1"))]);
        assert_eq!(last_delivered(missing, &Bytes::from("g")), None);
        assert_eq!(
            last_delivered(Frame::error("ERR no such key"), &Bytes::from("g")),
            None
        );
    }

    #[test]
    fn replies_merge_in_the_order_the_streams_were_named() {
        let read = StreamRead::parse(&args(&["XREAD", "STREAMS", "a", "b", "c", "0", "0", "0"])).unwrap();
        let stream = |key: &str| Frame::Array(vec![bulk(key), Frame::Array(vec![bulk("1-1")])]);
        let merged = read.merge(vec![
            Frame::Array(vec![stream("c"), stream("a")]),
            Frame::NullArray,
        ]);
        assert_eq!(merged, Frame::Array(vec![stream("a"), stream("c")]));
        assert_eq!(read.merge(vec![Frame::Null, Frame::Null]), Frame::Null);
        let error = Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(
            read.merge(vec![Frame::Array(vec![stream("a")]), error.clone()]),
            error
        );
        let map = read.merge(vec![
            Frame::Map(vec![(bulk("b"), Frame::Array(vec![]))]),
            Frame::Map(vec![(bulk("a"), Frame::Array(vec![]))]),
        ]);
        assert_eq!(
            map,
            Frame::Map(vec![
                (bulk("a"), Frame::Array(vec![])),
                (bulk("b"), Frame::Array(vec![]))
            ])
        );
    }
}
