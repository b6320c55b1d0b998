//! Starting a client's requests: each is decoded, admitted, answered by
//! the proxy or sent down the stack, or held until it may start.

use std::time::Instant;

use bytes::BytesMut;
use resp::{Request, RequestDecoder};
use router::Reply;

use super::admission::{paused_for, show_to_monitors, timed, SessionGate};
use super::io::hook_view;
use super::reply::{ready, Pending, Watched};
use super::stacks::{StackService, Stacks};
use super::start::start;
use crate::commands::{self, Local};
use crate::context::{SessionState, Shared};
use crate::guard::Admitted;

use crate::handling::Handling;
use crate::hooks::{Hooked, Session};

/// What the session does after a request was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// Go on with the next request.
    Continue,
    /// Start nothing more until every reply in flight is written (a
    /// stateful command is running or waiting to run).
    Fence,
    /// Close once the queued replies are written.
    Close,
    /// A CLIENT PAUSE holds the next request (kept in `deferred`).
    Paused,
    /// The tenant's rate limit holds the next request (kept in `deferred`)
    /// until [`SessionState::throttled_until`].
    Throttled,
}

/// Starts the request kept in `deferred`, if any, then decodes every
/// complete request in `input` and starts each one, until a request fences
/// or closes the session. A stateful request that must wait for earlier
/// replies is kept in `deferred`.
#[allow(clippy::too_many_arguments)]
pub(super) fn dispatch_all<S: StackService, G: StackService>(
    decoder: &mut RequestDecoder,
    input: &mut BytesMut,
    received: Instant,
    state: &mut SessionState,
    shared: &Shared,
    stacks: &mut Stacks<S, G>,
    pending: &mut Pending<S::Fut>,
    deferred: &mut Option<Request>,
    hooked: &mut Option<Hooked>,
) -> Flow {
    // Every request of the batch was received at once: one threshold.
    let slow_from = shared.slowlog.slow_from(received);
    if let Some(request) = deferred.take() {
        let watched = watch(&request, received, slow_from);
        let before = pending.len();
        let flow = hooked_dispatch(
            request, received, state, shared, stacks, pending, deferred, hooked,
        );
        tag(pending, before, watched);
        stacks.follow(state.group);
        if flow != Flow::Continue {
            return flow;
        }
    }
    // The last command's name, for CLIENT LIST: copied (names are short)
    // rather than kept as a reference-counted slice, as this runs per
    // request. A longer, made-up name is shown cut.
    let mut last_name = [0u8; SHOWN_NAME];
    let mut last_len = None;
    let flow = loop {
        match decoder.decode(input) {
            Ok(Some(request)) => {
                let name = request.name();
                let len = name.len().min(SHOWN_NAME);
                last_name[..len].copy_from_slice(&name[..len]);
                last_len = Some(len);
                let watched = watch(&request, received, slow_from);
                let before = pending.len();
                let flow = match hooked.as_mut() {
                    None => dispatch_one(request, received, state, shared, stacks, pending, deferred),
                    Some(hooks) => match hooks.filter(&request, &hook_view(state)) {
                        Some(answer) => {
                            hooks.started(Some(request), received, &hook_view(state));
                            pending.push_back(ready(Ok(Reply::Frame(answer)), state.protocol, false, false));
                            Flow::Continue
                        }
                        None => hooked_dispatch(
                            request, received, state, shared, stacks, pending, deferred, hooked,
                        ),
                    },
                };
                tag(pending, before, watched);
                decoder.set_authenticated(state.authenticated);
                // AUTH may have made the client a tenant's with a backend
                // of its own: its next command goes there.
                stacks.follow(state.group);
                if flow != Flow::Continue {
                    break flow;
                }
            }
            Ok(None) => break Flow::Continue,
            Err(error) => {
                state.protocol_error = true;
                if let Some(hooked) = hooked.as_mut() {
                    hooked.started(None, received, &hook_view(state));
                }
                if let Some(reply) = error.client_reply() {
                    pending.push_back(ready(Ok(Reply::Raw(reply)), state.protocol, true, false));
                } else {
                    pending.push_back(ready(
                        Ok(Reply::Raw(Default::default())),
                        state.protocol,
                        true,
                        false,
                    ));
                }
                tracing::debug!(client = state.info.id, %error, "protocol error; closing the client");
                break Flow::Close;
            }
        }
    };
    if let Some(len) = last_len {
        state.info.touch(
            state.client_db(),
            state.protocol.version() as u8,
            &last_name[..len],
        );
    }
    flow
}

/// [`dispatch_one`], telling the session's hooks (if any) of the request
/// once its reply is queued: a request kept in `deferred` is told of when
/// it starts.
#[allow(clippy::too_many_arguments)]
fn hooked_dispatch<S: StackService, G: StackService>(
    request: Request,
    received: Instant,
    state: &mut SessionState,
    shared: &Shared,
    stacks: &mut Stacks<S, G>,
    pending: &mut Pending<S::Fut>,
    deferred: &mut Option<Request>,
    hooked: &mut Option<Hooked>,
) -> Flow {
    let Some(hooks) = hooked.as_mut() else {
        return dispatch_one(request, received, state, shared, stacks, pending, deferred);
    };
    // As the request found the session (a SELECT's own database is the
    // one it left).
    let view = hook_view(state);
    let (user, db, protocol, in_multi, tenant) = (
        hooks.user(view.user),
        view.db,
        view.protocol,
        view.in_multi,
        view.tenant,
    );
    let queued = pending.len();
    let copy = request.clone();
    let flow = dispatch_one(request, received, state, shared, stacks, pending, deferred);
    if pending.len() > queued {
        let view = Session {
            user: &user,
            db,
            protocol,
            in_multi,
            tenant,
            ..hook_view(state)
        };
        hooks.started(Some(copy), received, &view);
    }
    flow
}

/// Longest command name CLIENT LIST shows.
const SHOWN_NAME: usize = 32;

/// `request`, kept for the slow log when it is on (when its replies are
/// slow from `slow_from`).
fn watch(request: &Request, received: Instant, slow_from: Option<Instant>) -> Option<Watched> {
    slow_from.map(|slow_from| Watched {
        raw: request.raw().clone(),
        received,
        slow_from,
    })
}

/// Tags the reply queued for a request (if one was: it may wait in
/// `deferred`) with the request, for the slow log.
fn tag<F>(pending: &mut Pending<F>, before: usize, watched: Option<Watched>)
where
    F: std::future::Future<Output = Result<Reply, router::Error>> + Unpin,
{
    if let Some(watched) = watched.filter(|_| pending.len() > before) {
        pending.tag_back(watched);
    }
}

/// Starts one request, or keeps it in `deferred`: a stateful request while
/// others are in flight waits for them, and any request waits out a CLIENT
/// PAUSE that holds it, or its turn under its tenant's rate limits.
fn dispatch_one<S: StackService, G: StackService>(
    mut request: Request,
    received: Instant,
    state: &mut SessionState,
    shared: &Shared,
    stacks: &mut Stacks<S, G>,
    pending: &mut Pending<S::Fut>,
    deferred: &mut Option<Request>,
) -> Flow {
    if paused_for(&request, shared) {
        *deferred = Some(request);
        return Flow::Paused;
    }
    let idle = pending.is_empty();
    let spec = state.recent.lookup(shared.stack.router.table(), &request);
    let users_version = shared.users_version.load(std::sync::atomic::Ordering::Acquire);
    if users_version != state.users_version {
        crate::commands::auth::take_new_rules(state, shared, users_version);
    }
    if state.tenant != 0 || state.acl.is_some() {
        let local = match crate::guard::admit(&request, spec.as_deref(), state, shared) {
            Admitted::Go => None,
            Admitted::Rewritten(adapted) => {
                request = adapted;
                None
            }
            Admitted::Wait(at) => {
                state.throttled_until = Some(at);
                *deferred = Some(request);
                return Flow::Throttled;
            }
            Admitted::Reply(frame) => Some(Local::Reply(frame)),
            Admitted::Later(future) => Some(Local::Later(future)),
        };
        if local.is_some() {
            return start(
                request,
                local,
                (spec, received),
                state,
                shared,
                &mut stacks.run,
                pending,
            );
        }
    }
    let plain_state =
        state.authenticated && !state.transaction.in_multi() && !state.pubsub.restricts(state.protocol);
    let handling = match &spec {
        Some(spec) if plain_state => shared.handling.of(spec, &request),
        _ => Handling::Local,
    };
    match handling {
        Handling::Data => {
            // The common case: nothing for the proxy to answer or hold.
            if shared.monitors.active() {
                show_to_monitors(&request, spec.as_deref(), false, state, shared);
            }
            #[cfg(debug_assertions)]
            assert!(
                commands::handle(&request, state, shared, idle, &mut crate::gate::Open).is_none(),
                "{} is answered by the proxy but missing from commands::PLAIN",
                String::from_utf8_lossy(request.name())
            );
            return start(
                request,
                None,
                (spec, received),
                state,
                shared,
                &mut stacks.run,
                pending,
            );
        }
        Handling::Blocking if !idle => {
            *deferred = Some(request);
            return Flow::Fence;
        }
        Handling::Blocking => {
            if shared.monitors.active() {
                show_to_monitors(&request, spec.as_deref(), false, state, shared);
            }
            state.set_blocked(true);
            let alone = Some(Local::Alone);
            return start(
                request,
                alone,
                (spec, received),
                state,
                shared,
                &mut stacks.run,
                pending,
            );
        }
        Handling::Local => {}
    }
    let mut gate = SessionGate {
        service: &mut stacks.gate,
        protocol: state.protocol,
        db: state.db,
        tenant: state.tenant,
        affinity: state.affinity,
        received,
        spec: spec.clone(),
        asked: false,
    };
    let was_in_multi = state.transaction.in_multi();
    let work = middleware::stats::WorkTimer::sample();
    let local = commands::handle(&request, state, shared, idle, &mut gate);
    // An admitted command is recorded in the statistics once it has
    // answered (the layers only admitted it).
    let local = match gate.asked {
        true => timed(local, spec.as_deref(), (received, state.tenant), work, shared),
        false => local,
    };
    match local {
        Some(Local::Wait) if !idle => {
            *deferred = Some(request);
            Flow::Fence
        }
        local => {
            if shared.monitors.active() {
                show_to_monitors(&request, spec.as_deref(), was_in_multi, state, shared);
            }
            start(
                request,
                local,
                (spec, received),
                state,
                shared,
                &mut stacks.run,
                pending,
            )
        }
    }
}
