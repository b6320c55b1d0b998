//! Commands over a whole emulated database or a tenant's keys, done by
//! scanning every primary: KEYS, DBSIZE, FLUSHDB, RANDOMKEY, a tenant's
//! FLUSHALL; and (their steps in `between`) SWAPDB, MOVE, and COPY ... DB.

use aggregate::steps::Steps;
use bytes::{Buf, Bytes, BytesMut};
use futures::future::BoxFuture;
use rand::seq::{IndexedRandom, SliceRandom};
use resp::encode::{put_bulk, put_header};
use resp::Frame;
use router::{Command, Error, Reply};
use tower::Service;

use super::glob;
use super::scope::Scope;
use super::space::{is_database_key, is_hidden_from_root};

/// Bytes kept before KEYS' reply for its header: `*`, up to 20 digits,
/// CRLF.
const HEADER_ROOM: usize = 24;

/// Keys asked for per SCAN call and deleted per UNLINK.
const BATCH: usize = 1000;

/// True for the commands this module carries out in an emulated database
/// (by scanning every primary) rather than passing them on rewritten:
/// `name` is the command's table name, `args` its arguments (the name
/// first), for COPY's DB option.
pub fn is_own(name: &str, args: resp::Args<'_>) -> bool {
    scoped_by_scan(name) || moves_between_databases(name, args)
}

/// True for the commands over a whole database that a tenant's scope
/// needs carried out by scanning, on any backend: KEYS, DBSIZE, FLUSHDB
/// and RANDOMKEY.
pub fn scoped_by_scan(name: &str) -> bool {
    matches!(name, "keys" | "dbsize" | "flushdb" | "randomkey")
}

/// True for the commands that move keys between emulated databases.
fn moves_between_databases(name: &str, args: resp::Args<'_>) -> bool {
    let has_db_option =
        || (3..args.len()).any(|i| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"db")));
    matches!(name, "swapdb" | "move") || (name == "copy" && has_db_option())
}

/// The layer's own answer for a whole-keyspace command of a client whose
/// keys are in `scope`, or `None` when the command is an ordinary one.
/// `emulated`: the backend has no databases, so every step runs in its
/// database 0 (else in the client's database).
pub fn handle<S>(
    name: &str,
    command: &Command,
    inner: &S,
    (databases, shards): (u32, usize),
    scope: &Scope,
    emulated: bool,
) -> Option<BoxFuture<'static, Result<Reply, Error>>>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let own = match emulated {
        true => is_own(name, command.request.args()),
        false => scoped_by_scan(name),
    } || (name == "flushall" && scope.whole_tenant().is_some());
    if !own {
        return None;
    }
    let args = command.request.args().to_vec();
    let mut base = command.clone();
    if emulated {
        base.db = 0;
    }
    let mut node = Node {
        steps: Steps::new(inner.clone(), base),
        shards,
    };
    let current = command.db;
    let database = scope.clone();
    // A tenant's FLUSHALL: its keys in every backend database (one, where
    // databases are emulated: the tenant's spaces are all in it).
    let backend_dbs = if emulated { 1 } else { databases };
    let per_db: Vec<Node<S>> = match name {
        "flushall" => (0..backend_dbs)
            .map(|db| {
                let mut base = command.clone();
                base.db = db;
                Node {
                    steps: Steps::new(inner.clone(), base),
                    shards,
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let name = name.to_string();
    Some(Box::pin(async move {
        let frame = match name.as_str() {
            "keys" => return node.keys(&database, &args).await,
            "dbsize" => node.dbsize(&database, &args).await?,
            "flushdb" => node.flushdb(&database, &args).await?,
            "flushall" => flushall(per_db, &database, &args).await?,
            "randomkey" => node.randomkey(&database, &args).await?,
            "swapdb" => node.swapdb(&database, &args, databases).await?,
            "move" => node.move_key(&database, current, &args, databases).await?,
            _ => node.copy_to_db(&database, &args, databases).await?,
        };
        Ok(Reply::Frame(frame))
    }))
}

pub(super) fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

pub(super) fn wrong_arity(name: &str) -> Frame {
    Frame::error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// Calls on the service below, as database 0 of the backend.
pub(super) struct Node<S> {
    pub(super) steps: Steps<S>,
    pub(super) shards: usize,
}

impl<S> Node<S>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// Sends `args`, to the primary of `shard` or (`None`) wherever the
    /// keys route, and reads the reply.
    pub(super) async fn call(&mut self, args: Vec<Bytes>, shard: Option<usize>) -> Result<Frame, Error> {
        match shard {
            Some(shard) => self.steps.call_on(shard, args).await,
            None => self.steps.call(args).await,
        }
    }

    /// Every stored key of `database` on `shard`, a batch at a time.
    async fn scan(
        &mut self,
        shard: usize,
        database: &Scope,
        mut visit: impl FnMut(Bytes, Bytes) + Send,
    ) -> Result<(), Error> {
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let mut args = vec![Bytes::from_static(b"SCAN"), cursor.clone()];
            if let Some(glob) = database.glob() {
                args.extend([Bytes::from_static(b"MATCH"), glob]);
            }
            args.extend([Bytes::from_static(b"COUNT"), Bytes::from(BATCH.to_string())]);
            let reply = self.call(args, Some(shard)).await?;
            let (next, keys) = scan_reply(reply)?;
            for stored in keys {
                if let Some(key) = database.decode(&stored) {
                    visit(stored, key);
                }
            }
            if &next[..] == b"0" {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Every `(stored, key)` of `database` on every primary.
    pub(super) async fn all_keys(&mut self, database: &Scope) -> Result<Vec<(Bytes, Bytes)>, Error> {
        let mut keys = Vec::new();
        for shard in 0..self.shards {
            self.scan(shard, database, |stored, key| keys.push((stored, key)))
                .await?;
        }
        Ok(keys)
    }

    /// KEYS: the reply is encoded as it is built (an array of bulk
    /// strings reads the same in RESP2 and RESP3), pausing between
    /// batches, so a million keys never hold the worker for long.
    async fn keys(&mut self, database: &Scope, args: &[Bytes]) -> Result<Reply, Error> {
        let [_, pattern] = args else {
            return Ok(Reply::Frame(wrong_arity("keys")));
        };
        let server_pattern = database.glob().unwrap_or_else(|| pattern.clone());
        // Room for the array header, written once the count is known, so
        // that the keys are not copied again behind it.
        let mut body = BytesMut::zeroed(HEADER_ROOM);
        let mut count = 0;
        for shard in 0..self.shards {
            let reply = self
                .call(
                    vec![Bytes::from_static(b"KEYS"), server_pattern.clone()],
                    Some(shard),
                )
                .await?;
            let (Frame::Array(items) | Frame::Set(items)) = reply else {
                return Ok(Reply::Frame(reply));
            };
            for (index, item) in items.into_iter().enumerate() {
                aggregate::steps::pace(index).await;
                let Some(stored) = item.as_bytes() else { continue };
                if let Some(key) = database.decode(stored) {
                    if glob::matches(pattern, &key) {
                        put_bulk(&mut body, &key);
                        count += 1;
                    }
                }
            }
        }
        let mut header = BytesMut::with_capacity(HEADER_ROOM);
        put_header(&mut header, b'*', count);
        let start = HEADER_ROOM - header.len();
        body[start..HEADER_ROOM].copy_from_slice(&header);
        body.advance(start);
        Ok(Reply::Raw(body.freeze()))
    }

    async fn dbsize(&mut self, database: &Scope, args: &[Bytes]) -> Result<Frame, Error> {
        if args.len() != 1 {
            return Ok(wrong_arity("dbsize"));
        }
        let mut count = 0i64;
        match database.is_root() {
            false => {
                for shard in 0..self.shards {
                    self.scan(shard, database, |_, _| count += 1).await?;
                }
            }
            true => {
                // Everything, minus the emulated databases' keys.
                for shard in 0..self.shards {
                    let size = self
                        .call(vec![Bytes::from_static(b"DBSIZE")], Some(shard))
                        .await?;
                    count += size.as_integer().unwrap_or(0);
                    let mut hidden = 0i64;
                    let prefix = Bytes::from_static(b"\x00");
                    self.scan_raw(shard, prefix, |stored| {
                        hidden += i64::from(is_database_key(&stored))
                    })
                    .await?;
                    count -= hidden;
                }
            }
        }
        Ok(Frame::Integer(count))
    }

    /// Every stored key matching `prefix*` on `shard`, undecoded.
    async fn scan_raw(
        &mut self,
        shard: usize,
        prefix: Bytes,
        mut visit: impl FnMut(Bytes) + Send,
    ) -> Result<(), Error> {
        let mut glob = prefix.to_vec();
        glob.push(b'*');
        let glob = Bytes::from(glob);
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let args = vec![
                Bytes::from_static(b"SCAN"),
                cursor.clone(),
                Bytes::from_static(b"MATCH"),
                glob.clone(),
                Bytes::from_static(b"COUNT"),
                Bytes::from(BATCH.to_string()),
            ];
            let (next, keys) = scan_reply(self.call(args, Some(shard)).await?)?;
            keys.into_iter().for_each(&mut visit);
            if &next[..] == b"0" {
                return Ok(());
            }
            cursor = next;
        }
    }

    async fn flushdb(&mut self, database: &Scope, args: &[Bytes]) -> Result<Frame, Error> {
        if let Some(error) = flush_arguments("flushdb", args) {
            return Ok(error);
        }
        self.unlink_all(database).await
    }

    /// Deletes every stored key of `database`.
    async fn unlink_all(&mut self, database: &Scope) -> Result<Frame, Error> {
        for shard in 0..self.shards {
            let mut doomed = Vec::new();
            self.scan(shard, database, |stored, _| doomed.push(stored))
                .await?;
            for chunk in doomed.chunks(BATCH) {
                let mut unlink = vec![Bytes::from_static(b"UNLINK")];
                unlink.extend(chunk.iter().cloned());
                let reply = self.call(unlink, None).await?;
                if reply.is_error() {
                    return Ok(reply);
                }
            }
        }
        Ok(Frame::simple("OK"))
    }

    async fn randomkey(&mut self, database: &Scope, args: &[Bytes]) -> Result<Frame, Error> {
        if args.len() != 1 {
            return Ok(wrong_arity("randomkey"));
        }
        let mut shards: Vec<usize> = (0..self.shards).collect();
        shards.shuffle(&mut rand::rng());
        if database.is_root() {
            // The server's own pick, unless it lands on an emulated key.
            for &shard in shards.iter().cycle().take(self.shards * 8) {
                let reply = self
                    .call(vec![Bytes::from_static(b"RANDOMKEY")], Some(shard))
                    .await?;
                match reply.as_bytes() {
                    Some(stored) if !is_hidden_from_root(stored) => return Ok(reply),
                    _ => continue,
                }
            }
        }
        for shard in shards {
            let mut found = Vec::new();
            self.scan(shard, database, |_, key| found.push(key)).await?;
            if let Some(key) = found.choose(&mut rand::rng()) {
                return Ok(Frame::Bulk(key.clone()));
            }
        }
        Ok(Frame::Null)
    }
}

/// FLUSHALL for a tenant: FLUSHDB of all its keys in each backend
/// database (`nodes`, one per database).
async fn flushall<S>(nodes: Vec<Node<S>>, scope: &Scope, args: &[Bytes]) -> Result<Frame, Error>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    if let Some(error) = flush_arguments("flushall", args) {
        return Ok(error);
    }
    let Some(whole) = scope.whole_tenant() else {
        return Ok(Frame::error("ERR proxy: FLUSHALL of no tenant"));
    };
    for mut node in nodes {
        let reply = node.unlink_all(&whole).await?;
        if reply.is_error() {
            return Ok(reply);
        }
    }
    Ok(Frame::simple("OK"))
}

/// The error for FLUSHDB's or FLUSHALL's arguments (`[ASYNC | SYNC]`), if
/// they are wrong.
fn flush_arguments(name: &str, args: &[Bytes]) -> Option<Frame> {
    match args {
        [_] => None,
        [_, mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => None,
        [_, _] => Some(syntax_error()),
        _ => Some(wrong_arity(name)),
    }
}

/// `[cursor, [key ...]]`
fn scan_reply(reply: Frame) -> Result<(Bytes, Vec<Bytes>), Error> {
    let invalid = || Error::InvalidReply("SCAN did not answer [cursor, keys]".into());
    let Frame::Array(mut parts) = reply else {
        return Err(invalid());
    };
    if parts.len() != 2 {
        return Err(invalid());
    }
    let keys = match parts.pop() {
        Some(Frame::Array(keys)) | Some(Frame::Set(keys)) => keys,
        _ => return Err(invalid()),
    };
    let cursor = parts
        .pop()
        .and_then(|c| c.as_bytes().cloned())
        .ok_or_else(invalid)?;
    let keys = keys.into_iter().filter_map(|k| k.as_bytes().cloned()).collect();
    Ok((cursor, keys))
}

#[cfg(test)]
#[path = "keyspace_tests.rs"]
mod tests;
