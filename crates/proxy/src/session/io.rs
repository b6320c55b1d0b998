//! The read / write loop of a session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use futures::future;
use resp::{Limits, Request, RequestDecoder};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::dispatch::{dispatch_all, Flow};
use super::holds::{audit_room, held_by_audit, room};
use super::input::{self, Quiet};
use super::output::ClientOutput;
use super::reply::{write_reply, Pending};
use super::stacks::{StackService, Stacks};
use super::Lane;
use crate::context::{SessionState, Shared};
use crate::hooks::{Gone, Hooked, Session};

/// Replies collected into the output buffer before it is written and
/// counted against the limits ([`ClientOutput::account`]).
const OUTPUT_CHUNK: usize = 1024 * 1024;

/// Serves one client until it disconnects, is killed, or `shutdown` fires
/// (then the replies in flight are written first). Every layer of `stacks`
/// must be always ready (see DESIGN.md): `call` is used without
/// `poll_ready`, so that each request is started in arrival order.
pub async fn serve<S: StackService, G: StackService>(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stacks: Stacks<S, G>,
    shutdown: CancellationToken,
    lane: Lane,
) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let info = shared.clients.add(peer, local);
    let id = info.id;
    let kill = info.kill.clone();
    let mut state = SessionState::new(info, shared.config().requires_auth());
    state.users_version = shared.users_version.load(std::sync::atomic::Ordering::Acquire);
    state.affinity = lane.affinity(id);
    state.info.set_affinity(state.affinity);
    if let Some(role) = shared.listeners.iter().find(|role| role.addr == local) {
        // A tenant's listener: its clients are the tenant's, logged in as
        // its user when it names one.
        state.listener_tenant = Some(role.tenant);
        if let Some(user) = &role.user {
            let entered = crate::commands::auth::log_in_as(user, &mut state, &shared);
            if entered.is_error() {
                let mut output = BytesMut::new();
                entered.encode(state.protocol, &mut output);
                let mut stream = stream;
                let _ = stream.write_all_buf(&mut output).await;
                shared.clients.remove(id);
                return;
            }
        }
    }
    let limits = Limits {
        max_bulk_len: shared.config().max_bulk_len,
        max_query_buffer: shared.config().query_buffer_limit,
        ..Limits::default()
    };
    let mut hooked = match Hooked::start(&shared.hooks, &hook_view(&state)) {
        None => None,
        Some(Ok(hooked)) => Some(hooked),
        Some(Err(refusal)) => {
            // Refused by the hooks: told why, then closed.
            let mut output = BytesMut::new();
            refusal.encode(state.protocol, &mut output);
            let mut stream = stream;
            let _ = stream.write_all_buf(&mut output).await;
            shared.clients.remove(id);
            return;
        }
    };
    let mut decoder = RequestDecoder::new(limits);
    decoder.set_authenticated(state.authenticated);
    let (read, write) = stream.into_split();
    // Both buffers are allocated when data comes, and given back when the
    // client is quiet ([`input`]).
    let mut input = BytesMut::new();
    let mut quiet = Quiet::new();
    let mut output = ClientOutput::new();
    let mut pending = Pending::new();
    // Set by a reply after which the connection closes (QUIT): the
    // session ends once it is written.
    let mut last_reply_queued = false;
    let mut closing = false;
    let idle = match shared.config().client_idle_timeout_secs {
        0 => None,
        secs => Some(Duration::from_secs(secs)),
    };
    let mut last_read = tokio::time::Instant::now();
    // Registered once per client: counting is then one atomic add per
    // read or write (nothing without an exporter installed).
    let net_in = metrics::counter!("redis_net_input_bytes_total");
    let mut flow = Flow::Continue;
    // Why the session closes once its replies are written: the client's
    // QUIT (or a protocol error) unless a drain began first.
    let mut closed_for = Gone::Client;
    let mut deferred: Option<Request> = None;
    // This session's requests in flight, as its tenant's `max_inflight`
    // counts them.
    let mut reported = crate::tenants::inflight::Reported::default();
    // Made once, not per turn of the loop: each one made anew registers
    // with its token when polled and unregisters when dropped.
    let killed = kill.cancelled();
    let shutting_down = shutdown.cancelled();
    tokio::pin!(killed, shutting_down);
    let gone = loop {
        if output.is_empty() && (last_reply_queued || (closing && pending.is_empty())) {
            break closed_for;
        }
        // The select below prefers replies: while they keep arriving for a
        // client that does not read, it would not see the kill until the
        // client reached its own limit, holding on to everything meanwhile.
        if !output.is_empty() && kill.is_cancelled() {
            break killed_for(&state);
        }
        if flow == Flow::Fence && pending.is_empty() {
            // A blocking command, which runs alone, has answered.
            state.set_blocked(false);
            // The stateful command answered (or may now start): go on with
            // what is already buffered before reading more.
            flow = dispatch_all(
                &mut decoder,
                &mut input,
                Instant::now(),
                &mut state,
                &shared,
                &mut stacks,
                &mut pending,
                &mut deferred,
                &mut hooked,
            );
            closing |= flow == Flow::Close;
            continue;
        }
        // Under a fence (a stateful or blocking command running alone) the
        // session still reads, so that a client that leaves is noticed at
        // once and what it held is freed; what it sends meanwhile waits in
        // the buffer, up to the query buffer limit, as on Valkey.
        reported.sync(shared.tenants.inflight(state.tenant), pending.len());
        let tenant_full = reported.blocking().cloned();
        let audit_full = shared
            .audit
            .as_deref()
            .filter(|audit| held_by_audit(audit, &state, &shared));
        // A client with replies not yet written is read no more until it
        // takes them: backpressure, as its writes then fill its socket.
        let can_read = !closing
            && output.is_empty()
            && matches!(flow, Flow::Continue | Flow::Fence)
            && pending.len() < shared.turn_limits.max_pipeline()
            && tenant_full.is_none()
            && audit_full.is_none();
        let subscribed = state.pubsub.is_active();
        let idle_deadline = idle.filter(|_| !subscribed).map(|d| last_read + d);
        let retry_at = state.pubsub.retry_at();
        let throttled_until = state.throttled_until.map(tokio::time::Instant::from_std);
        let soft_deadline = output.soft_deadline(&shared);
        tokio::select! {
            biased;
            // The replies collected in one pass share one clock reading
            // for their latency.
            _ = future::poll_fn(|cx| middleware::with_shared_clock(|| {
                // One clock reading for the slow log per pass, as for the
                // statistics.
                let mut now = None;
                pending.poll_ready(cx, |reply, watched| {
                    if let Some(watched) = watched {
                        let now = *now.get_or_insert_with(Instant::now);
                        if now >= watched.slow_from {
                            let took = now.saturating_duration_since(watched.received);
                            shared.slowlog.offer(&watched.raw, took, &state.info, shared.stack.router.table());
                        }
                    }
                    if let Some(hooked) = hooked.as_mut() {
                        hooked.replied(reply.reply(), peer, id);
                    }
                    last_reply_queued = write_reply(reply, &mut output);
                    // Past a chunk, what is held is written and counted
                    // before more replies are taken.
                    last_reply_queued || output.len() >= OUTPUT_CHUNK
                })
            })),
                if !pending.is_empty() && !last_reply_queued =>
            {
                if let Err(gone) = output.flush(&write, &input, &shared, &state) {
                    break gone;
                }
            }
            written = write.writable(), if !output.is_empty() => {
                if written.is_err() {
                    break Gone::Client;
                }
                if let Err(gone) = output.flush(&write, &input, &shared, &state) {
                    break gone;
                }
            }
            event = state.pubsub.next_event(), if subscribed => {
                forward_events(event, &mut state, &shared, output.buffer());
                if let Err(gone) = output.flush(&write, &input, &shared, &state) {
                    break gone;
                }
            }
            read_result = future::poll_fn(|cx| input::poll_read(&read, &mut input, cx)), if can_read => {
                match read_result {
                    Ok(0) | Err(_) => break Gone::Client,
                    Ok(bytes) => {
                        net_in.increment(bytes as u64);
                        last_read = tokio::time::Instant::now();
                        quiet.read_at(last_read);
                    }
                }
                // A client killed while its next request was arriving runs
                // nothing more, as on Valkey (the select polls reads first).
                if kill.is_cancelled() {
                    break Gone::Killed;
                }
                if flow == Flow::Fence {
                    if let Err(gone) = output.account(&input, &shared, &state) {
                        break gone;
                    }
                    if input.len() > shared.config().query_buffer_limit {
                        tracing::info!(client = state.info.id, bytes = input.len(), "closing a client over the query buffer limit");
                        break Gone::QueryBuffer;
                    }
                    continue;
                }
                flow = dispatch_all(&mut decoder, &mut input, last_read.into_std(), &mut state, &shared, &mut stacks, &mut pending, &mut deferred, &mut hooked);
                input::shrink_if_large(&mut input);
                if let Err(gone) = output.account(&input, &shared, &state) {
                    break gone;
                }
                closing |= flow == Flow::Close;
            }
            _ = shared.clients.pause.wait(), if flow == Flow::Paused => {
                flow = Flow::Fence;
            }
            _ = room(tenant_full.as_deref()), if tenant_full.is_some() => {}
            _ = audit_room(audit_full), if audit_full.is_some() => {}
            _ = sleep_until(throttled_until), if flow == Flow::Throttled => {
                // Its turn: the request kept back starts, then what follows.
                flow = dispatch_all(&mut decoder, &mut input, Instant::now(), &mut state, &shared, &mut stacks, &mut pending, &mut deferred, &mut hooked);
                closing |= flow == Flow::Close;
            }
            _ = sleep_until(retry_at), if retry_at.is_some() => {
                state.pubsub.restore(&shared.stack_of(state.group).router, state.protocol);
            }
            _ = &mut killed => break killed_for(&state),
            _ = quiet.fired(), if quiet.is_armed() => {
                if quiet.settle(last_read, pending.is_empty() && output.is_empty() && input.is_empty()) {
                    input = BytesMut::new();
                    output.give_back();
                }
            }
            _ = sleep_until(soft_deadline), if soft_deadline.is_some() => {
                if let Err(gone) = output.account(&input, &shared, &state) {
                    break gone;
                }
            }
            _ = &mut shutting_down, if !closing => {
                closing = true;
                closed_for = Gone::Drain;
            }
            _ = sleep_until(idle_deadline), if idle_deadline.is_some() && pending.is_empty() => break Gone::Idle,
        }
        if closing && closed_for == Gone::Client {
            closed_for = if state.protocol_error {
                Gone::Protocol
            } else {
                Gone::Quit
            };
        }
    };
    output.release(&shared);
    // Everything the client held goes now: links, the watch connection,
    // and (dropped with `pending`) any blocked command's connection.
    state.pubsub.clear();
    state.transaction.reset();
    if let Some(hooked) = hooked {
        hooked.disconnected(&hook_view(&state), gone);
    }
    metrics::counter!("valkey_proxy_clients_closed_total", "reason" => gone.name()).increment(1);
    shared.clients.remove(id);
}

/// Why a killed session ends: evicted for the clients' memory, or killed.
fn killed_for(state: &SessionState) -> Gone {
    if state.info.buffers.evicted() {
        Gone::Evicted
    } else {
        Gone::Killed
    }
}

/// The session as its hooks see it ([`crate::hooks`]).
pub(super) fn hook_view(state: &SessionState) -> Session<'_> {
    Session {
        id: state.info.id,
        addr: state.info.addr,
        user: &state.user,
        db: state.client_db(),
        protocol: state.protocol,
        in_multi: state.transaction.in_multi(),
        tenant: state.tenant,
    }
}

/// Most link events handled in one go before the replies are looked at.
const EVENT_BATCH: usize = 64;

/// Handles `event` and whatever else the links have queued, up to a batch:
/// messages go to `output`; a completed subscription reply stops the batch
/// so that it is written before the messages after it.
fn forward_events(
    event: pool::StreamEvent,
    state: &mut SessionState,
    shared: &Shared,
    output: &mut BytesMut,
) {
    let router = &shared.stack_of(state.group).router;
    let mut next = Some(event);
    let mut handled = 0;
    while let Some(event) = next.take() {
        let outcome = state.pubsub.handle(event, router, state.protocol, output);
        handled += 1;
        if outcome.completed || handled >= EVENT_BATCH {
            break;
        }
        next = state.pubsub.try_event();
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => future::pending().await,
    }
}
