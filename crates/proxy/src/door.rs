//! The door: the one place where the session's own commands reach a
//! backend other than by sending a request down the stack. It knows which
//! database the client's commands run in on the backend, the namespace of
//! an emulated database, and the endpoint a connection for the client
//! takes; the commands that hold connections or links of their own (EXEC,
//! WATCH, WAIT, SUBSCRIBE, ...) ask it rather than working these out, and
//! a command the proxy answers after asking the backend (INFO) runs
//! through it.

use std::sync::Arc;

use futures::future::BoxFuture;
use middleware::namespace::{emulates, rewrite};
use middleware::Scope;
use pool::Endpoint;
use resp::Request;
use router::{Command, Purpose, Reply};
use tower::ServiceExt;

use crate::context::{SessionState, Shared};

/// True when the backend has no databases of its own, so that the proxy
/// emulates them by key namespace (a cluster without `cluster-databases`).
pub fn emulated(state: &SessionState, shared: &Shared) -> bool {
    let topology = shared.stack_of(state.group).router.topology().current();
    emulates(topology.mode(), topology.databases())
}

/// The databases a client may SELECT: the backend's, or the emulated ones.
pub fn databases(state: &SessionState, shared: &Shared) -> u32 {
    if emulated(state, shared) {
        shared.config().emulated_databases
    } else {
        shared
            .stack_of(state.group)
            .router
            .topology()
            .current()
            .databases()
    }
}

/// The backend database the client's commands run in: its own, or 0 where
/// databases are emulated.
pub fn backend_db(state: &SessionState, shared: &Shared) -> u32 {
    if emulated(state, shared) {
        0
    } else {
        state.db
    }
}

/// Where the client's keys are stored, unless as they are: under its
/// tenant's prefix ([`crate::tenants`]), in its emulated database's
/// namespace where databases are emulated and it is not in database 0.
pub fn space(state: &SessionState, shared: &Shared) -> Option<Scope> {
    let keys = shared.tenants.key_prefix(state.tenant).unwrap_or_default();
    let channels = shared.tenants.prefix(state.tenant).unwrap_or_default();
    let scope = Scope::new(keys, state.db, emulated(state, shared)).with_channel_prefix(channels);
    (!scope.is_root() || !scope.channels_are_root()).then_some(scope)
}

/// The request as the backend must get it: a client of a tenant has its
/// keys under the tenant's prefix, and on a cluster with emulated
/// databases a client in database N has them in N's namespace (as the
/// [`middleware::Namespace`] layer does for commands that go down the
/// stack).
pub fn backend_form(request: &Request, state: &SessionState, shared: &Shared) -> Request {
    let Some(space) = space(state, shared) else {
        return request.clone();
    };
    match shared.stack.router.table().lookup(request) {
        Some(spec) => rewrite::request(spec, request, &space),
        None => request.clone(),
    }
}

/// The endpoint for a connection of the client's to the primary `addr`: in
/// its protocol and backend database.
pub fn endpoint(addr: &Arc<str>, state: &SessionState, shared: &Shared) -> Endpoint {
    Endpoint {
        addr: addr.clone(),
        protocol: state.protocol,
        db: backend_db(state, shared),
        readonly: false,
    }
}

/// Runs `request` as the client's through the stack below the gate
/// (namespace, fan-out, router): for a command the session answers after
/// asking the backend. The gate admitted it already, and counted it.
pub fn run(
    request: &Request,
    state: &SessionState,
    shared: &Shared,
) -> BoxFuture<'static, Result<Reply, router::Error>> {
    Box::pin(
        shared
            .stack_of(state.group)
            .core
            .clone()
            .oneshot(command(request, state)),
    )
}

/// `request` as a command of the client's, with its connection state (for
/// routing, or for the stack below the gate).
pub fn command(request: &Request, state: &SessionState) -> Command {
    Command {
        request: request.clone(),
        protocol: state.protocol,
        db: state.db,
        spec: None,
        route: None,
        affinity: state.affinity,
        received: None,
        purpose: Purpose::Run,
        tenant: state.tenant,
    }
}
