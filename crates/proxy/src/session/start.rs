//! Queuing a request's reply once the session knows what becomes of it:
//! the proxy's own answer, a future of its own, or the stack's reply.

use std::sync::Arc;
use std::time::Instant;

use resp::{Frame, Protocol, Request};
use router::{Command, Purpose, Reply};

use super::dispatch::Flow;
use super::reply::{ready, InFlight, Pending};
use super::stacks::StackService;
use crate::commands::Local;
use crate::context::{SessionState, Shared};

/// What the session already knows of a request it passes down: the
/// command's spec, and when the request was read.
pub(super) type Known = (Option<Arc<router::CommandSpec>>, Instant);

/// Queues the reply of a request: the proxy's own answer, or the stack's.
/// Inlined: it runs per request, and a call would move the request and
/// what is known of it once more.
#[inline(always)]
pub(super) fn start<S: StackService>(
    request: Request,
    local: Option<Local>,
    known: Known,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
) -> Flow {
    let protocol = state.protocol;
    let silent = state.take_silence();
    match local {
        Some(Local::Reply(frame)) => {
            let silent = silent && !(matches!(frame, Frame::Push(_)) && pushes_pass(protocol));
            pending.push_back(ready(Ok(Reply::Frame(frame)), protocol, false, silent));
            Flow::Continue
        }
        Some(Local::Close(frame)) => {
            pending.push_back(ready(Ok(Reply::Frame(frame)), protocol, true, silent));
            Flow::Close
        }
        Some(Local::Later(future)) => {
            pending.push_back(InFlight::Later {
                future,
                protocol,
                silent,
            });
            Flow::Fence
        }
        Some(Local::Pushes(future)) => {
            pending.push_back(InFlight::Later {
                future,
                protocol,
                silent: silent && !pushes_pass(protocol),
            });
            Flow::Fence
        }
        // Only asked for while replies are in flight, which `dispatch_one`
        // rules out; answered rather than trusted.
        Some(Local::Wait) => {
            let error = Frame::error("ERR proxy: internal ordering error; please retry");
            pending.push_back(ready(Ok(Reply::Frame(error)), protocol, false, silent));
            Flow::Continue
        }
        Some(Local::Alone) => {
            forward(request, known, state, shared, service, pending, silent);
            Flow::Fence
        }
        None => {
            forward(request, known, state, shared, service, pending, silent);
            Flow::Continue
        }
    }
}

/// True when push messages reach the client whatever CLIENT REPLY says:
/// in RESP3, where they are pushes (in RESP2 they are plain replies).
fn pushes_pass(protocol: Protocol) -> bool {
    protocol == Protocol::Resp3
}

/// Sends a request down the stack and queues its reply (inlined, as
/// [`start`]).
#[inline(always)]
fn forward<S: StackService>(
    request: Request,
    (spec, received): Known,
    state: &mut SessionState,
    shared: &Shared,
    service: &mut S,
    pending: &mut Pending<S::Fut>,
    silent: bool,
) {
    let protocol = state.protocol;
    if state.pubsub.tracking().is_some() {
        let space = crate::door::space(state, shared);
        if let Some(tracking) = state.pubsub.tracking_mut() {
            tracking.note_request(&request, &shared.stack_of(state.group).router, space.as_ref());
        }
    }
    let command = Command {
        request,
        protocol,
        db: state.db,
        spec,
        route: None,
        affinity: state.affinity,
        received: Some(received),
        purpose: Purpose::Run,
        tenant: state.tenant,
    };
    // Every layer of the stack is always ready (see DESIGN.md), so `call`
    // needs no `poll_ready` first.
    pending.push_back(InFlight::Stack {
        future: service.call(command),
        protocol,
        silent,
    });
}
