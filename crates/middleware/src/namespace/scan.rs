//! SCAN inside an emulated database, or a tenant's keys.

use bytes::Bytes;
use futures::future::BoxFuture;
use resp::{Frame, Request};
use router::{Command, Error, Reply};
use tower::Service;

use super::glob;
use super::scope::Scope;

/// Sends SCAN for the client's keys, in `scope`, and filters what comes
/// back. `emulated`: the backend has no databases (SCAN runs in its 0).
pub fn call<S>(
    command: Command,
    inner: &mut S,
    scope: Scope,
    emulated: bool,
) -> BoxFuture<'static, Result<Reply, Error>>
where
    S: Service<Command, Response = Reply, Error = Error>,
    S::Future: Send + 'static,
{
    let database = scope;
    let (request, pattern) = narrow(&command.request.args().to_vec(), &database);
    let mut node_command = command.with_request(request, None);
    if emulated {
        node_command.db = 0;
    }
    let call = inner.call(node_command);
    Box::pin(async move {
        let reply = call.await?;
        if reply.is_error() {
            return Ok(reply);
        }
        let frame = reply
            .into_frame()
            .map_err(|e| Error::InvalidReply(e.to_string()))?;
        Ok(Reply::Frame(filter(frame, &database, pattern.as_deref())))
    })
}

/// The SCAN to send: MATCH replaced by the database's glob (for an
/// emulated database). Returns the client's own pattern, applied later.
fn narrow(args: &[Bytes], database: &Scope) -> (Request, Option<Bytes>) {
    let Some(glob) = database.glob() else {
        return (Request::from_args(args.to_vec()), None);
    };
    let mut out: Vec<Bytes> = Vec::with_capacity(args.len() + 2);
    let mut pattern = None;
    let mut i = 0;
    while i < args.len() {
        if i >= 2 && args[i].eq_ignore_ascii_case(b"match") && i + 1 < args.len() {
            pattern = Some(args[i + 1].clone());
            i += 2;
            continue;
        }
        out.push(args[i].clone());
        i += 1;
    }
    out.extend([Bytes::from_static(b"MATCH"), glob]);
    (Request::from_args(out), pattern)
}

/// `[cursor, keys]` with the keys of other databases dropped and the rest
/// translated back and matched against the client's pattern.
fn filter(frame: Frame, database: &Scope, pattern: Option<&[u8]>) -> Frame {
    let Frame::Array(mut parts) = frame else {
        return frame;
    };
    if let Some(Frame::Array(keys)) = parts.get_mut(1) {
        let kept = std::mem::take(keys)
            .into_iter()
            .filter_map(|key| {
                let stored = key.as_bytes()?;
                let key = database.decode(stored)?;
                pattern
                    .is_none_or(|p| glob::matches(p, &key))
                    .then_some(Frame::Bulk(key))
            })
            .collect();
        *keys = kept;
    }
    Frame::Array(parts)
}
