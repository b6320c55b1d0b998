//! A keyspace in memory that answers the few commands the proxy's own
//! steps send (strings, sets, lists, DUMP / RESTORE), and fails one of
//! them on demand: the way to put a fault exactly between two steps,
//! which a real server cannot be made to do. Tests only.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use resp::{Frame, Request};
use router::{Command, Error, Reply};
use tower::Service;

use crate::steps::Steps;

/// A value of the fake keyspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Text(Bytes),
    Set(BTreeSet<Bytes>),
    List(VecDeque<Bytes>),
}

/// How the chosen request fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The server answers an error (OOM): it did not run.
    Refused,
    /// The connection broke before the request was written.
    NotSent,
    /// Written, then the connection broke before the node ran it.
    LostBeforeRun,
    /// The node ran it, then the connection broke before the reply.
    LostAfterRun,
    /// The node of the request's first key dies: this request and every
    /// later one touching that key fail, the undos included.
    NodeDown,
}

/// The fake keyspace and its fault plan, shared by clones.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    keys: BTreeMap<Bytes, Value>,
    dumps: HashMap<Bytes, Value>,
    calls: usize,
    fault: Option<(usize, Fault)>,
    down: BTreeSet<Bytes>,
}

impl FakeStore {
    /// A store holding `keys`, failing request number `fault.0` (from 0).
    pub(crate) fn new(keys: &[(&str, Value)], fault: Option<(usize, Fault)>) -> FakeStore {
        let store = FakeStore::default();
        {
            let mut state = store.state.lock().unwrap();
            for (key, value) in keys {
                state
                    .keys
                    .insert(Bytes::copy_from_slice(key.as_bytes()), value.clone());
            }
            state.fault = fault;
        }
        store
    }

    /// Steps through this store for a command of the client's.
    pub(crate) fn steps(&self) -> Steps<FakeStore> {
        Steps::new(self.clone(), Command::new(Request::from_args(["PING"])))
    }

    /// Every key and its value now.
    pub(crate) fn keys(&self) -> BTreeMap<Bytes, Value> {
        self.state.lock().unwrap().keys.clone()
    }

    /// How many requests reached the store.
    pub(crate) fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }
}

/// A set value from members.
pub(crate) fn set(members: &[&str]) -> Value {
    Value::Set(
        members
            .iter()
            .map(|m| Bytes::copy_from_slice(m.as_bytes()))
            .collect(),
    )
}

/// A list value from elements, head first.
pub(crate) fn list(elements: &[&str]) -> Value {
    Value::List(
        elements
            .iter()
            .map(|e| Bytes::copy_from_slice(e.as_bytes()))
            .collect(),
    )
}

/// A string value.
pub(crate) fn text(value: &str) -> Value {
    Value::Text(Bytes::copy_from_slice(value.as_bytes()))
}

impl Service<Command> for FakeStore {
    type Response = Reply;
    type Error = Error;
    type Future = Ready<Result<Reply, Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, command: Command) -> Self::Future {
        let request = &command.request;
        let args: Vec<Bytes> = (0..request.len()).filter_map(|i| request.arg_bytes(i)).collect();
        let mut state = self.state.lock().unwrap();
        ready(state.serve(&args).map(Reply::Frame))
    }
}

fn lost(sent: bool) -> Error {
    Error::Backend(pool::Error::ConnectionLost {
        addr: "127.0.0.1:1".into(),
        sent,
    })
}

impl State {
    fn serve(&mut self, args: &[Bytes]) -> Result<Frame, Error> {
        let call = self.calls;
        self.calls += 1;
        let keys = touched(args);
        if keys.iter().any(|k| self.down.contains(*k)) {
            self.run_where_up(args);
            return Err(lost(false));
        }
        match self.fault {
            Some((at, fault)) if at == call => match fault {
                Fault::Refused => Ok(Frame::error(
                    "OOM command not allowed when used memory > 'maxmemory'.",
                )),
                Fault::NotSent => Err(lost(false)),
                Fault::LostBeforeRun => Err(lost(true)),
                Fault::LostAfterRun => {
                    self.run(args);
                    Err(lost(true))
                }
                Fault::NodeDown => {
                    self.down.extend(keys.first().map(|k| (*k).clone()));
                    self.run_where_up(args);
                    Err(lost(true))
                }
            },
            _ => Ok(self.run(args)),
        }
    }

    /// A request split across nodes runs on those that are up.
    fn run_where_up(&mut self, args: &[Bytes]) {
        let up = |key: &Bytes| !self.down.contains(key);
        let kept: Vec<Bytes> = match &args[0].to_ascii_uppercase()[..] {
            b"MSET" => args[1..]
                .chunks(2)
                .filter(|p| up(&p[0]))
                .flatten()
                .cloned()
                .collect(),
            b"DEL" => args[1..].iter().filter(|k| up(k)).cloned().collect(),
            _ => return,
        };
        if !kept.is_empty() {
            self.run(&[&args[..1], &kept[..]].concat());
        }
    }

    fn run(&mut self, args: &[Bytes]) -> Frame {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let key = args.get(1).cloned().unwrap_or_default();
        let wrong_type = || Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value");
        match (name.as_str(), self.keys.get(&key)) {
            ("TYPE", value) => Frame::simple(match value {
                None => "none",
                Some(Value::Text(_)) => "string",
                Some(Value::Set(_)) => "set",
                Some(Value::List(_)) => "list",
            }),
            ("EXISTS", _) => {
                Frame::Integer(args[1..].iter().filter(|k| self.keys.contains_key(*k)).count() as i64)
            }
            ("DEL", _) => Frame::Integer(
                args[1..]
                    .iter()
                    .filter(|k| self.keys.remove(*k).is_some())
                    .count() as i64,
            ),
            ("MSET", _) => {
                for pair in args[1..].chunks(2) {
                    self.keys.insert(pair[0].clone(), Value::Text(pair[1].clone()));
                }
                Frame::simple("OK")
            }
            ("PTTL", Some(_)) => Frame::Integer(-1),
            ("PTTL", None) => Frame::Integer(-2),
            ("DUMP", None) => Frame::Null,
            ("DUMP", Some(value)) => {
                let payload = Bytes::from(format!("dump-{}", self.dumps.len()));
                self.dumps.insert(payload.clone(), value.clone());
                Frame::Bulk(payload)
            }
            ("RESTORE", _) => {
                let value = self.dumps[&args[3]].clone();
                self.keys.insert(key, value);
                Frame::simple("OK")
            }
            ("SCARD", Some(Value::Set(s))) => Frame::Integer(s.len() as i64),
            ("SCARD", None) => Frame::Integer(0),
            ("SISMEMBER" | "SADD" | "SREM" | "SCARD", Some(Value::Text(_) | Value::List(_))) => wrong_type(),
            ("SISMEMBER", value) => {
                let found = matches!(value, Some(Value::Set(s)) if s.contains(&args[2]));
                Frame::Integer(found.into())
            }
            ("SADD" | "SREM", _) => self.change_set(&name, key, &args[2]),
            ("LLEN" | "LINDEX" | "LPUSH" | "RPUSH" | "LREM", Some(Value::Text(_) | Value::Set(_))) => {
                wrong_type()
            }
            ("LLEN", value) => Frame::Integer(match value {
                Some(Value::List(l)) => l.len() as i64,
                _ => 0,
            }),
            ("LINDEX", Some(Value::List(l))) => {
                let end = if &args[2][..] == b"0" { l.front() } else { l.back() };
                end.cloned().map_or(Frame::Null, Frame::Bulk)
            }
            ("LINDEX", _) => Frame::Null,
            ("LPUSH" | "RPUSH" | "LREM" | "BLPOP" | "BRPOP", _) => self.change_list(&name, key, args),
            _ => Frame::error(format!("ERR fake store does not know {name}")),
        }
    }

    fn change_set(&mut self, name: &str, key: Bytes, member: &Bytes) -> Frame {
        let Value::Set(set) = self
            .keys
            .entry(key.clone())
            .or_insert(Value::Set(BTreeSet::new()))
        else {
            unreachable!("types are checked before")
        };
        let changed = if name == "SADD" {
            set.insert(member.clone())
        } else {
            set.remove(member)
        };
        if set.is_empty() {
            self.keys.remove(&key);
        }
        Frame::Integer(changed.into())
    }

    fn change_list(&mut self, name: &str, key: Bytes, args: &[Bytes]) -> Frame {
        let Value::List(list) = self
            .keys
            .entry(key.clone())
            .or_insert(Value::List(VecDeque::new()))
        else {
            unreachable!("types are checked before")
        };
        let reply = match name {
            "LPUSH" => {
                list.push_front(args[2].clone());
                Frame::Integer(list.len() as i64)
            }
            "RPUSH" => {
                list.push_back(args[2].clone());
                Frame::Integer(list.len() as i64)
            }
            "LREM" => {
                let found = if &args[2][..] == b"1" {
                    list.iter().position(|e| e == &args[3])
                } else {
                    list.iter().rposition(|e| e == &args[3])
                };
                Frame::Integer(found.and_then(|at| list.remove(at)).is_some().into())
            }
            _ => {
                let popped = if name == "BLPOP" {
                    list.pop_front()
                } else {
                    list.pop_back()
                };
                popped.map_or(Frame::NullArray, |e| {
                    Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Bulk(e)])
                })
            }
        };
        if list.is_empty() {
            self.keys.remove(&key);
        }
        reply
    }
}

/// The keys a request touches: every argument after the name for the
/// multi-key commands, else the first.
fn touched(args: &[Bytes]) -> Vec<&Bytes> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    match name.as_str() {
        "MSET" => args[1..].iter().step_by(2).collect(),
        "DEL" | "EXISTS" => args[1..].iter().collect(),
        _ => args.get(1).into_iter().collect(),
    }
}
