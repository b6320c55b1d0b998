//! Pops whose keys span slots: the blocking ones (BLPOP, BRPOP,
//! BZPOPMIN, BZPOPMAX, BLMPOP, BZMPOP), LMPOP and ZMPOP; BLMOVE /
//! BRPOPLPUSH between two slots are dispatched from here and done in
//! [`crate::moves`].
//!
//! Valkey pops from the first of the keys, in the order given, that has
//! something, and else (the blocking ones) waits for any of them. Across
//! slots the proxy does the same in two phases:
//! 1. It tries the keys in order with the command's non-blocking form
//!    (LPOP, ZPOPMIN, LMPOP, ...), one at a time, so the first key that
//!    has something answers, as on one server (a WRONGTYPE too). LMPOP and
//!    ZMPOP end here, with nil when no key had anything.
//! 2. When none has, it blocks on every slot at once: the command with
//!    that slot's keys, each on a dedicated connection of its own. The
//!    first element to arrive answers the client. The other nodes are
//!    told to stop waiting (CLIENT UNBLOCK), and an element one of them
//!    popped in the meantime is pushed back where it came from (LPUSH or
//!    RPUSH at the end it left, ZADD with its score): nothing is lost. When
//!    every slot times out, the client gets the nil of a timeout.
//!
//! What another client may see that it would not on one server: an
//! element pushed to an earlier key just after phase 1 tried that key, and
//! in phase 2 an element raced out and back.

use bytes::Bytes;
use pool::Pool;
use resp::Frame;
use router::{Command, Error, Reply};
use tower::Service;

use crate::moves::{self, side};
use crate::split;
use crate::steps::{arg, Steps};
use crate::waits::{check_seconds as check_timeout, First, Waiting, Waits};

/// True for the commands [`run`] carries out across slots.
pub fn handles(name: &str) -> bool {
    matches!(
        name,
        "blpop"
            | "brpop"
            | "bzpopmin"
            | "bzpopmax"
            | "blmpop"
            | "bzmpop"
            | "lmpop"
            | "zmpop"
            | "blmove"
            | "brpoplpush"
    )
}

/// Runs `waiting.args`, one of the commands of [`handles`], whose keys
/// span slots.
///
/// # Errors
/// A backend failed.
pub async fn run<S>(mut steps: Steps<S>, waiting: Waiting, name: &str) -> Result<Reply, Error>
where
    S: Service<Command, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    let Waiting { pool, owner, args } = waiting;
    let frame = match name {
        "blmove" | "brpoplpush" => moves::blocking_move(&mut steps, name, &args).await?,
        _ => match Pop::parse(name, &args) {
            Ok(pop) => pop.run(&mut steps, &pool, owner).await?,
            Err(error) => error,
        },
    };
    Ok(Reply::Frame(frame))
}

/// Which pop a command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// BLPOP: one element from the head.
    Head,
    /// BRPOP: one element from the tail.
    Tail,
    /// BZPOPMIN: the lowest score.
    Min,
    /// BZPOPMAX: the highest score.
    Max,
    /// BLMPOP / LMPOP: elements from one end, `COUNT` at most.
    Elements,
    /// BZMPOP / ZMPOP: members from one end, `COUNT` at most.
    Members,
}

/// One pop, taken apart.
#[derive(Debug)]
struct Pop {
    kind: Kind,
    keys: Vec<Bytes>,
    /// The blocking commands' timeout; none for LMPOP and ZMPOP.
    timeout: Option<Bytes>,
    /// The *MPOP commands: the direction and options after the keys.
    tail: Vec<Bytes>,
}

impl Pop {
    /// Takes `args` (the name first) apart; the error reply Valkey gives
    /// for a timeout it does not accept, or a syntax error.
    fn parse(name: &str, args: &[Bytes]) -> Result<Pop, Frame> {
        let (kind, blocks) = match name {
            "blpop" => (Kind::Head, true),
            "brpop" => (Kind::Tail, true),
            "bzpopmin" => (Kind::Min, true),
            "bzpopmax" => (Kind::Max, true),
            "blmpop" => (Kind::Elements, true),
            "lmpop" => (Kind::Elements, false),
            "bzmpop" => (Kind::Members, true),
            _ => (Kind::Members, false),
        };
        let syntax = || Frame::error("ERR syntax error");
        let (keys, timeout, tail) = match kind {
            Kind::Elements | Kind::Members => {
                // [timeout] numkeys key... direction [COUNT n]
                let at = if blocks { 2 } else { 1 };
                let numkeys = args
                    .get(at)
                    .and_then(|n| resp::number::parse_i64(n))
                    .ok_or_else(syntax)?;
                let numkeys = usize::try_from(numkeys).map_err(|_| syntax())?;
                let keys = args
                    .get(at + 1..at + 1 + numkeys)
                    .filter(|k| !k.is_empty())
                    .ok_or_else(syntax)?;
                let timeout = blocks.then(|| args[1].clone());
                (keys.to_vec(), timeout, args[at + 1 + numkeys..].to_vec())
            }
            _ => {
                let [_, keys @ .., timeout] = args else {
                    return Err(syntax());
                };
                (keys.to_vec(), Some(timeout.clone()), Vec::new())
            }
        };
        if let Some(timeout) = &timeout {
            check_timeout(timeout)?;
        }
        Ok(Pop {
            kind,
            keys,
            timeout,
            tail,
        })
    }

    async fn run<S>(self, steps: &mut Steps<S>, pool: &Pool, owner: u64) -> Result<Frame, Error>
    where
        S: Service<Command, Response = Reply, Error = Error>,
        S::Future: Send + 'static,
    {
        for key in &self.keys {
            if let Some(found) = self.found(key, steps.call(self.pop_now(key)).await?) {
                return Ok(found);
            }
        }
        match &self.timeout {
            Some(timeout) => self.wait(steps, pool, owner, timeout).await,
            None => Ok(Frame::NullArray),
        }
    }

    /// Phase 2: blocks on every slot at once and takes the first element.
    async fn wait<S>(
        &self,
        steps: &mut Steps<S>,
        pool: &Pool,
        owner: u64,
        timeout: &Bytes,
    ) -> Result<Frame, Error>
    where
        S: Service<Command, Response = Reply, Error = Error>,
        S::Future: Send + 'static,
    {
        let started = by_slot(&self.keys)
            .into_iter()
            .map(|keys| steps.start(self.blocking(keys, timeout)));
        let mut waits = Waits::new(started, pool.clone(), owner);
        let answer = match waits.first().await {
            First::TimedOut(nil) => return Ok(nil),
            First::Answer(answer) => answer,
        };
        for popped in waits.stop().await {
            self.push_back(steps, popped).await?;
        }
        answer
    }

    /// The non-blocking form of the command for `key` alone.
    fn pop_now(&self, key: &Bytes) -> Vec<Bytes> {
        let mut args = match self.kind {
            Kind::Head => vec![arg("LPOP")],
            Kind::Tail => vec![arg("RPOP")],
            Kind::Min => vec![arg("ZPOPMIN")],
            Kind::Max => vec![arg("ZPOPMAX")],
            Kind::Elements => vec![arg("LMPOP"), arg("1")],
            Kind::Members => vec![arg("ZMPOP"), arg("1")],
        };
        args.push(key.clone());
        args.extend(self.tail.iter().cloned());
        args
    }

    /// The blocking command's reply for what the non-blocking form found
    /// in `key`, if it found something (or failed).
    fn found(&self, key: &Bytes, reply: Frame) -> Option<Frame> {
        match (self.kind, reply) {
            (_, error) if error.is_error() => Some(error),
            (Kind::Head | Kind::Tail, Frame::Bulk(element)) => {
                Some(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Bulk(element)]))
            }
            (Kind::Min | Kind::Max, Frame::Array(member)) if !member.is_empty() => Some(Frame::Array(
                std::iter::once(Frame::Bulk(key.clone())).chain(member).collect(),
            )),
            (Kind::Elements | Kind::Members, Frame::Array(popped)) => Some(Frame::Array(popped)),
            _ => None,
        }
    }

    /// The blocking command itself, for `keys` (all in one slot).
    fn blocking(&self, keys: Vec<Bytes>, timeout: &Bytes) -> Vec<Bytes> {
        let name = match self.kind {
            Kind::Head => "BLPOP",
            Kind::Tail => "BRPOP",
            Kind::Min => "BZPOPMIN",
            Kind::Max => "BZPOPMAX",
            Kind::Elements => "BLMPOP",
            Kind::Members => "BZMPOP",
        };
        let mut args = vec![arg(name)];
        if matches!(self.kind, Kind::Elements | Kind::Members) {
            args.push(timeout.clone());
            args.push(Bytes::from(keys.len().to_string()));
            args.extend(keys);
            args.extend(self.tail.iter().cloned());
        } else {
            args.extend(keys);
            args.push(timeout.clone());
        }
        args
    }

    /// Puts back what a slot's blocking command popped after the client
    /// had its answer from another slot.
    async fn push_back<S>(&self, steps: &mut Steps<S>, popped: Frame) -> Result<(), Error>
    where
        S: Service<Command, Response = Reply, Error = Error>,
    {
        if let Some(restore) = self.restore(popped) {
            let reply = steps.call(restore).await?;
            if reply.is_error() {
                tracing::warn!(
                    ?reply,
                    "an element popped for a client already answered could not be put back"
                );
            }
        }
        Ok(())
    }

    /// The command that puts back `popped` (a reply of the blocking
    /// command), or `None` when it holds nothing.
    fn restore(&self, popped: Frame) -> Option<Vec<Bytes>> {
        let Frame::Array(mut items) = popped else {
            return None;
        };
        if items.is_empty() {
            return None;
        }
        let key = text(&items.remove(0))?;
        let restore = match self.kind {
            Kind::Head | Kind::Tail => {
                let push = if self.kind == Kind::Head { "LPUSH" } else { "RPUSH" };
                vec![arg(push), key, text(items.first()?)?]
            }
            Kind::Min | Kind::Max => {
                let [member, score] = &items[..] else {
                    return None;
                };
                vec![arg("ZADD"), key, text(score)?, text(member)?]
            }
            Kind::Elements => {
                // Popped from one end, first element first: pushed back at
                // that end, last element first.
                let left = self.tail.first().and_then(side).unwrap_or(false);
                let mut push = vec![arg(if left { "LPUSH" } else { "RPUSH" }), key];
                for element in items.first()?.as_array()?.iter().rev() {
                    push.push(text(element)?);
                }
                push
            }
            Kind::Members => {
                let mut zadd = vec![arg("ZADD"), key];
                for pair in items.first()?.as_array()? {
                    let [member, score] = pair.as_array()? else {
                        return None;
                    };
                    zadd.extend([text(score)?, text(member)?]);
                }
                zadd
            }
        };
        Some(restore)
    }
}

/// `keys` grouped by slot ([`split::by_slot_of`]).
fn by_slot(keys: &[Bytes]) -> Vec<Vec<Bytes>> {
    split::by_slot_of(keys.iter().map(|key| &key[..]))
        .into_iter()
        .map(|(_, group)| group.into_iter().map(|i| keys[i].clone()).collect())
        .collect()
}

/// The bytes of a string, number or double frame.
fn text(frame: &Frame) -> Option<Bytes> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Double(b) => Some(b.clone()),
        Frame::Integer(n) => Some(Bytes::from(n.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::steps::args;

    fn shown(args: Vec<Bytes>) -> Vec<String> {
        args.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn each_slot_gets_its_own_keys_in_order() {
        let keys = args(&["{a}1", "{b}1", "{a}2", "{c}1", "{b}2"]);
        let groups: Vec<Vec<String>> = by_slot(&keys).into_iter().map(shown).collect();
        assert_eq!(groups, [vec!["{a}1", "{a}2"], vec!["{b}1", "{b}2"], vec!["{c}1"]]);
        let pop = Pop::parse(
            "blmpop",
            &args(&["BLMPOP", "0.5", "3", "x", "y", "z", "RIGHT", "COUNT", "2"]),
        )
        .unwrap();
        assert_eq!(
            shown(pop.blocking(args(&["x", "z"]), &Bytes::from("0.5"))),
            ["BLMPOP", "0.5", "2", "x", "z", "RIGHT", "COUNT", "2"]
        );
        assert_eq!(
            shown(pop.pop_now(&Bytes::from("y"))),
            ["LMPOP", "1", "y", "RIGHT", "COUNT", "2"]
        );
        let pop = Pop::parse("bzpopmax", &args(&["BZPOPMAX", "x", "y", "1"])).unwrap();
        assert_eq!(
            shown(pop.blocking(args(&["y"]), &Bytes::from("1"))),
            ["BZPOPMAX", "y", "1"]
        );
        let pop = Pop::parse("zmpop", &args(&["ZMPOP", "2", "x", "y", "MIN"])).unwrap();
        assert_eq!(shown(pop.pop_now(&Bytes::from("y"))), ["ZMPOP", "1", "y", "MIN"]);
        assert!(pop.timeout.is_none());
    }

    #[test]
    fn what_was_popped_goes_back_where_it_came_from() {
        let bulk = |t: &str| Frame::Bulk(Bytes::copy_from_slice(t.as_bytes()));
        let restore = |name: &str, request: &[&str], popped: Frame| {
            shown(Pop::parse(name, &args(request)).unwrap().restore(popped).unwrap())
        };
        assert_eq!(
            restore(
                "brpop",
                &["BRPOP", "k", "j", "0"],
                Frame::Array(vec![bulk("k"), bulk("v")])
            ),
            ["RPUSH", "k", "v"]
        );
        assert_eq!(
            restore(
                "bzpopmin",
                &["BZPOPMIN", "z", "y", "0"],
                Frame::Array(vec![bulk("z"), bulk("m"), Frame::Double(Bytes::from("1.5"))])
            ),
            ["ZADD", "z", "1.5", "m"]
        );
        let elements = Frame::Array(vec![bulk("k"), Frame::Array(vec![bulk("a"), bulk("b")])]);
        assert_eq!(
            restore(
                "blmpop",
                &["BLMPOP", "0", "2", "k", "j", "LEFT", "COUNT", "2"],
                elements
            ),
            ["LPUSH", "k", "b", "a"]
        );
        let members = Frame::Array(vec![
            bulk("z"),
            Frame::Array(vec![
                Frame::Array(vec![bulk("m"), bulk("1")]),
                Frame::Array(vec![bulk("n"), bulk("2")]),
            ]),
        ]);
        assert_eq!(
            restore("bzmpop", &["BZMPOP", "0", "2", "z", "y", "MAX"], members),
            ["ZADD", "z", "1", "m", "2", "n"]
        );
        let pop = Pop::parse("blpop", &args(&["BLPOP", "k", "j", "0"])).unwrap();
        assert!(pop.restore(Frame::NullArray).is_none());
    }
}
