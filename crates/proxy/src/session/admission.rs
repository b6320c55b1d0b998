//! What the session does around a request the proxy answers itself: the
//! gate it asks to admit the request, the statistics of the answer, what
//! MONITOR shows of it, and the CLIENT PAUSE that may hold it.

use std::sync::Arc;
use std::time::Instant;

use resp::{Frame, Protocol, Request};
use router::{Command, Purpose, Reply};

use super::stacks::StackService;
use crate::commands::{self, Local};
use crate::context::{SessionState, Shared};
use crate::gate::{self, Gate};

/// Shows `request` to the clients in MONITOR, as Valkey does once it has
/// run it ([`crate::monitor`]).
#[cold]
pub(super) fn show_to_monitors(
    request: &Request,
    spec: Option<&router::CommandSpec>,
    was_in_multi: bool,
    state: &SessionState,
    shared: &Shared,
) {
    if crate::monitor::shown(request, spec, was_in_multi) {
        shared.monitors.feed(
            [request],
            state.client_db(),
            &state.info.addr.to_string(),
            state.tenant,
        );
    }
}

/// The gate as [`commands::handle`] asks it about one request of this
/// session, with the session's state as the request found it.
pub(super) struct SessionGate<'a, S> {
    pub(super) service: &'a mut S,
    pub(super) protocol: Protocol,
    pub(super) db: u32,
    pub(super) tenant: u16,
    pub(super) affinity: u64,
    pub(super) received: Instant,
    pub(super) spec: Option<Arc<router::CommandSpec>>,
    /// Asked to admit the request.
    pub(super) asked: bool,
}

impl<S: StackService> Gate for SessionGate<'_, S> {
    fn admit(&mut self, request: &Request) -> Option<Frame> {
        self.asked = true;
        gate::admit(
            self.service,
            Command {
                request: request.clone(),
                protocol: self.protocol,
                db: self.db,
                spec: self.spec.clone(),
                route: None,
                affinity: self.affinity,
                received: Some(self.received),
                purpose: Purpose::Admit,
                tenant: self.tenant,
            },
        )
    }
}

/// `local`, recorded in the statistics of `spec` (its `tenant`'s and
/// everyone's) when it has answered: at once, or when its future is done
/// (EXEC, WATCH, WAIT, SUBSCRIBE, ...). `work`, for a request in the
/// sample, timed the proxy's work to answer it (for a future, the work to
/// start it). The session's poll that answers it, and the one that
/// started it, are charged to it too ([`cpu::touch`]).
pub(super) fn timed(
    local: Option<Local>,
    spec: Option<&router::CommandSpec>,
    (received, tenant): (Instant, u16),
    work: Option<middleware::stats::WorkTimer>,
    shared: &Shared,
) -> Option<Local> {
    let work = work.map(|timer| timer.elapsed());
    let stats = match spec {
        Some(spec) => shared.stack.stats.of_tenant(tenant).for_spec(spec),
        None => return local,
    };
    let is_error = |reply: &Result<Reply, router::Error>| reply.as_ref().map_or(true, Reply::is_error);
    let local = local?;
    let touch = |stats: &Arc<middleware::CommandStats>| cpu::touch(|| stats.clone());
    touch(&stats);
    match local {
        Local::Reply(frame) => {
            touch(&stats);
            stats.record(received.elapsed(), work, frame.is_error());
            Some(Local::Reply(frame))
        }
        Local::Close(frame) => {
            touch(&stats);
            stats.record(received.elapsed(), work, frame.is_error());
            Some(Local::Close(frame))
        }
        Local::Later(future) => Some(Local::Later(Box::pin(async move {
            let reply = future.await;
            touch(&stats);
            stats.record(received.elapsed(), work, is_error(&reply));
            reply
        }))),
        Local::Pushes(future) => Some(Local::Pushes(Box::pin(async move {
            let reply = future.await;
            touch(&stats);
            stats.record(received.elapsed(), work, is_error(&reply));
            reply
        }))),
        other => Some(other),
    }
}

/// True when a CLIENT PAUSE in force holds `request` (every command, or
/// only writes with `WRITE`). One atomic load when nothing is paused.
pub(super) fn paused_for(request: &Request, shared: &Shared) -> bool {
    let Some((_, writes_only)) = shared.clients.pause.remaining() else {
        return false;
    };
    if !writes_only {
        // CLIENT UNPAUSE itself must get through.
        return !commands::client::is_unpause(request);
    }
    shared
        .stack
        .router
        .table()
        .lookup(request)
        .is_some_and(|spec| spec.flags.contains(router::command::Flags::WRITE))
}
