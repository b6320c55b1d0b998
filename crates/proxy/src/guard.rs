//! What a restricted client may run, and when, decided before anything is
//! routed or queued ([`admit`]): its tenant's rate limits
//! ([`crate::tenants::Tenants::admit`]), the commands a tenant's client
//! may not run ([`crate::tenants::refusal`]), the user's ACL rules
//! ([`middleware::acl::User::check`]), and the database range of a tenant
//! with databases of its own ([`crate::databases`]). A refusal is answered
//! with Valkey's NOPERM text, lands in `ACL LOG`, and inside MULTI makes
//! EXEC answer EXECABORT, as on Valkey.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use middleware::acl::{Context, Denied, Event, Reason};
use resp::{Frame, Request};
use router::{CommandSpec, Reply};

use crate::context::{SessionState, Shared};
use crate::databases::Adapted;

/// What becomes of a request of a restricted client ([`admit`]).
pub enum Admitted {
    /// It runs as it came.
    Go,
    /// It runs as this (its database arguments in its tenant's range).
    Rewritten(Request),
    /// It waits its turn under its tenant's rate limit, until then.
    Wait(Instant),
    /// It is answered with this, and nothing runs.
    Reply(Frame),
    /// It is carried out by this future (a tenant's FLUSHALL over its
    /// databases).
    Later(BoxFuture<'static, Result<Reply, router::Error>>),
}

/// Admits a request of a client of a tenant or of a user with ACL rules:
/// its turn under the rate limits, then the refusals, then the database
/// range of a tenant with databases of its own.
pub fn admit(
    request: &Request,
    spec: Option<&CommandSpec>,
    state: &mut SessionState,
    shared: &Shared,
) -> Admitted {
    let refusal = match throttle(request, state, shared) {
        Throttle::Go => refusal(request, spec, state, shared),
        Throttle::Wait(at) => return Admitted::Wait(at),
        Throttle::Refuse(frame) => Some(frame),
    };
    if let Some(frame) = refusal {
        return Admitted::Reply(frame);
    }
    let (Some(range), Some(spec)) = (shared.tenants.databases(state.tenant), spec) else {
        return Admitted::Go;
    };
    match crate::databases::adapt(spec, request, range, state, shared) {
        Adapted::AsIs => Admitted::Go,
        Adapted::Request(adapted) => Admitted::Rewritten(adapted),
        Adapted::Reply(frame) => Admitted::Reply(frame),
        Adapted::Later(future) => Admitted::Later(future),
    }
}

/// When a request may start under its tenant's rate limits.
#[derive(Debug)]
enum Throttle {
    /// Now.
    Go,
    /// At this instant: the session reads nothing more until then, and the
    /// request, its slot taken, starts then.
    Wait(Instant),
    /// Not within the tenant's `max_queue_ms`: answer this.
    Refuse(Frame),
}

/// When `request` may start: a client of a rate-limited tenant waits its
/// turn ([`crate::tenants::Tenants::admit`]); a request that already
/// waited starts at once.
fn throttle(request: &Request, state: &mut SessionState, shared: &Shared) -> Throttle {
    if state.tenant == 0 || std::mem::take(&mut state.admitted) || !shared.tenants.is_limited(state.tenant) {
        return Throttle::Go;
    }
    match shared
        .tenants
        .admit(state.tenant, request.raw().len(), Instant::now())
    {
        Ok(None) => Throttle::Go,
        Ok(Some(at)) => {
            state.admitted = true;
            Throttle::Wait(at)
        }
        Err(refusal) => {
            state.transaction.mark_failed();
            Throttle::Refuse(refusal)
        }
    }
}

/// Why the session may not run `request`; `None` when it may. Called only
/// for a client of a tenant or a user with ACL rules.
///
/// A command the table does not know is refused to a tenant's client as
/// unknown (its keys could not be put under the tenant's prefix) and left
/// to the backend otherwise; a command with the wrong number of arguments
/// is left to the path that answers Valkey's arity error (Valkey checks
/// arity before ACLs).
#[cold]
fn refusal(
    request: &Request,
    spec: Option<&CommandSpec>,
    state: &mut SessionState,
    shared: &Shared,
) -> Option<Frame> {
    let Some(spec) = spec else {
        // PROXY, the proxy's own, shows a tenant its own statistics.
        if state.tenant == 0 || request.name().eq_ignore_ascii_case(b"proxy") {
            return None;
        }
        state.transaction.mark_failed();
        return Some(crate::edge::unknown_command(request));
    };
    if !spec.arity_ok(request.len()) {
        return None;
    }
    let in_multi = state.transaction.in_multi();
    let refused = shared.tenants.refusal(state.tenant, spec, in_multi);
    let denied = if refused.is_some() {
        Denied::Command
    } else {
        state.acl.as_ref()?.check(spec, request.args()).err()?
    };
    let argument = &request.args()[denied.position()];
    let object = match denied {
        Denied::Command => spec.name.clone(),
        Denied::Key(_) | Denied::Channel(_) => String::from_utf8_lossy(argument).into_owned(),
    };
    log(
        shared,
        state,
        denied.reason(),
        if in_multi {
            Context::Multi
        } else {
            Context::TopLevel
        },
        object,
        state.user.clone(),
    );
    state.transaction.mark_failed();
    let message = denied.message(&state.user, spec, argument, false);
    Some(Frame::error(match refused {
        Some(refused) => format!("NOPERM {message}: {}", refused.reason()),
        None => format!("NOPERM {message}"),
    }))
}

/// Records a refusal in the proxy's `ACL LOG`, for `username` (the user
/// refused, or the name a failed login tried).
pub fn log(
    shared: &Shared,
    state: &SessionState,
    reason: Reason,
    context: Context,
    object: String,
    username: String,
) {
    let tenant = shared
        .users()
        .get(&username)
        .map_or(state.tenant, |account| account.tenant);
    let event = Event {
        reason,
        context,
        object,
        username,
        tenant,
        client_info: state.info.describe(),
    };
    shared.acl_log.record(event, now_ms());
}

/// Milliseconds since the epoch, as `ACL LOG` shows times.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
