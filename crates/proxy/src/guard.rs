//! What a restricted client may run, and when, decided before anything is
//! routed or queued: its tenant's rate limits ([`throttle`]), the commands
//! a tenant's client may not run ([`crate::tenants::refuses`]) and the
//! user's ACL rules ([`middleware::acl::User::check`]). A refusal is
//! answered with Valkey's NOPERM text, lands in `ACL LOG`, and inside
//! MULTI makes EXEC answer EXECABORT, as on Valkey.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use middleware::acl::{Context, Denied, Event, Reason};
use resp::{Frame, Request};
use router::CommandSpec;

use crate::context::{SessionState, Shared};

/// When a request may start under its tenant's rate limits.
#[derive(Debug)]
pub enum Throttle {
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
pub fn throttle(request: &Request, state: &mut SessionState, shared: &Shared) -> Throttle {
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
pub fn refusal(
    request: &Request,
    spec: Option<&CommandSpec>,
    state: &mut SessionState,
    shared: &Shared,
) -> Option<Frame> {
    let Some(spec) = spec else {
        if state.tenant == 0 {
            return None;
        }
        state.transaction.mark_failed();
        return Some(crate::edge::unknown_command(request));
    };
    if !spec.arity_ok(request.len()) {
        return None;
    }
    let in_multi = state.transaction.in_multi();
    let denied = if state.tenant != 0 && shared.tenants.refuses(spec, in_multi) {
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
    Some(Frame::error(format!(
        "NOPERM {}",
        denied.message(&state.user, spec, argument, false)
    )))
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
        .users
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
