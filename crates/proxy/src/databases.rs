//! Tenants with databases of their own (`isolation = "database"`): the
//! tenant's database `k` is the backend's `base + k`. The session keeps the
//! backend's number (so that every command, dedicated connection and
//! scope uses it as it is) and shows the client its own; here the
//! commands that name databases in their arguments are put in the
//! tenant's range (MOVE, COPY ... DB, SWAPDB), and its FLUSHALL empties
//! its databases and no other.

use bytes::Bytes;
use futures::future::BoxFuture;
use resp::number::parse_i64;
use resp::{Frame, Request};
use router::{CommandSpec, Reply};
use tower::ServiceExt;

use crate::context::{SessionState, Shared};

const OUT_OF_RANGE: &str = "ERR DB index is out of range";

/// What the session does with a command of a tenant with databases
/// `(base, count)`.
pub enum Adapted {
    /// Runs as it came.
    AsIs,
    /// Runs with its database arguments moved into the tenant's range.
    Request(Request),
    /// Answered with this, before anything runs.
    Reply(Frame),
    /// FLUSHALL: carried out by this future.
    Later(BoxFuture<'static, Result<Reply, router::Error>>),
}

/// `request` for a client of a tenant whose databases are the backend's
/// `base .. base + count`.
pub fn adapt(
    spec: &CommandSpec,
    request: &Request,
    (base, count): (u32, u32),
    state: &SessionState,
    shared: &Shared,
) -> Adapted {
    let positions: Vec<usize> = match spec.name.as_str() {
        "move" => vec![2],
        "swapdb" => vec![1, 2],
        "copy" => (3..request.len().saturating_sub(1))
            .filter(|&i| request.args()[i].eq_ignore_ascii_case(b"db"))
            .map(|i| i + 1)
            .collect(),
        "flushall" => return Adapted::Later(flushall(request, base, count, state, shared)),
        _ => return Adapted::AsIs,
    };
    let mut replaced = Vec::with_capacity(positions.len());
    for position in positions {
        let Some(index) = request.arg(position).and_then(parse_i64) else {
            // Not a number (or missing): the server says so.
            continue;
        };
        if index < 0 || index >= i64::from(count) {
            return Adapted::Reply(Frame::error(OUT_OF_RANGE));
        }
        replaced.push((
            position,
            Bytes::from((u64::from(base) + index as u64).to_string()),
        ));
    }
    Adapted::Request(request.with_replaced(&replaced))
}

/// FLUSHALL [ASYNC | SYNC] as FLUSHDB in each of the tenant's databases,
/// one after the other; the first error ends it.
fn flushall(
    request: &Request,
    base: u32,
    count: u32,
    state: &SessionState,
    shared: &Shared,
) -> BoxFuture<'static, Result<Reply, router::Error>> {
    let mut args = request.args().to_vec();
    args[0] = Bytes::from_static(b"FLUSHDB");
    let flushdb = Request::from_args(args);
    let core = shared.stack_of(state.group).core.clone();
    let template = crate::door::command(&flushdb, state);
    Box::pin(async move {
        let mut last = Reply::Frame(Frame::simple("OK"));
        for db in base..base + count {
            let mut command = template.clone();
            command.db = db;
            last = core.clone().oneshot(command).await?;
            if last.is_error() {
                break;
            }
        }
        Ok(last)
    })
}
