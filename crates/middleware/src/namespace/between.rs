//! MOVE, COPY ... DB and SWAPDB between emulated databases: keys renamed
//! or copied from one database's namespace to another's.

use bytes::Bytes;
use resp::number::parse_i64;
use resp::Frame;
use router::{Command, Error, Reply};
use tower::Service;

use super::keyspace::{syntax_error, wrong_arity, Node};
use super::scope::Scope;

/// A database index argument, checked as Valkey checks it.
fn database_index(arg: &[u8], databases: u32) -> Result<u32, Frame> {
    let index = parse_i64(arg).ok_or_else(|| Frame::error("ERR value is not an integer or out of range"))?;
    if index < 0 || index >= i64::from(databases) {
        return Err(Frame::error("ERR DB index is out of range"));
    }
    Ok(index as u32)
}

impl<S> Node<S>
where
    S: Service<Command, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    pub(super) async fn move_key(
        &mut self,
        database: &Scope,
        current: u32,
        args: &[Bytes],
        databases: u32,
    ) -> Result<Frame, Error> {
        let [_, key, target] = args else {
            return Ok(wrong_arity("move"));
        };
        let target_db = match database_index(target, databases) {
            Ok(db) => db,
            Err(error) => return Ok(error),
        };
        if target_db == current {
            return Ok(Frame::error("ERR source and destination objects are the same"));
        }
        let from = database.encode(key);
        let to = database.in_database(target_db).encode(key);
        let reply = self
            .call(vec![Bytes::from_static(b"RENAMENX"), from, to], None)
            .await?;
        Ok(match reply {
            // MOVE of a missing key answers 0, where RENAMENX complains.
            Frame::Error(text) if text.ends_with(b"no such key") => Frame::Integer(0),
            other => other,
        })
    }

    pub(super) async fn copy_to_db(
        &mut self,
        database: &Scope,
        args: &[Bytes],
        databases: u32,
    ) -> Result<Frame, Error> {
        if args.len() < 3 {
            return Ok(wrong_arity("copy"));
        }
        let mut target = None;
        let mut rest = Vec::new();
        let mut i = 3;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"db") {
                let Some(index) = args.get(i + 1) else {
                    return Ok(syntax_error());
                };
                match database_index(index, databases) {
                    Ok(db) => target = Some(db),
                    Err(error) => return Ok(error),
                }
                i += 2;
            } else {
                rest.push(args[i].clone());
                i += 1;
            }
        }
        let target = target.map_or_else(|| database.clone(), |db| database.in_database(db));
        let mut copy = vec![
            Bytes::from_static(b"COPY"),
            database.encode(&args[1]),
            target.encode(&args[2]),
        ];
        copy.extend(rest);
        self.call(copy, None).await
    }

    pub(super) async fn swapdb(
        &mut self,
        database: &Scope,
        args: &[Bytes],
        databases: u32,
    ) -> Result<Frame, Error> {
        let [_, a, b] = args else {
            return Ok(wrong_arity("swapdb"));
        };
        let (a, b) = match (database_index(a, databases), database_index(b, databases)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(error), _) | (_, Err(error)) => return Ok(error),
        };
        if a == b {
            return Ok(Frame::simple("OK"));
        }
        // Three renames per key through a parking space no client sees:
        // a -> parking, b -> a, parking -> b. Not atomic.
        let parking = database.in_database(u32::MAX);
        let (first, second) = (database.in_database(a), database.in_database(b));
        for (from, to) in [(&first, &parking), (&second, &first), (&parking, &second)] {
            for (stored, key) in self.all_keys(from).await? {
                let reply = self
                    .call(vec![Bytes::from_static(b"RENAME"), stored, to.encode(&key)], None)
                    .await?;
                if reply.is_error() {
                    return Ok(reply);
                }
            }
        }
        Ok(Frame::simple("OK"))
    }
}
