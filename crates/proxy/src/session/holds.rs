//! What holds a session from reading its client, besides its own state:
//! its tenant's `max_inflight`, and a full audit log under `on_full =
//! "block"`. Each comes with the wait for room.

use std::time::{Duration, Instant};

use futures::future;

use crate::context::{SessionState, Shared};

/// Resolves when the tenant's requests in flight may have fallen below its
/// `max_inflight`: woken by a reply, or after a short while in case the
/// wake-up came just before this waited.
pub(super) async fn room(limit: Option<&crate::tenants::InFlight>) {
    let Some(limit) = limit else {
        return future::pending().await;
    };
    tokio::select! {
        _ = limit.room() => {}
        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
    }
}

/// True when the audit log's queue is full under `on_full = "block"` and
/// records this client: the session reads nothing more until there is
/// room ([`audit::Audit::holds_clients`]).
pub(super) fn held_by_audit(audit: &audit::Audit, state: &SessionState, shared: &Shared) -> bool {
    audit.holds_clients()
        && audit.filter().selects_client(
            &state.user,
            shared.tenants.name(state.tenant).unwrap_or(""),
            state.info.addr.ip(),
        )
}

/// Completes when the audit log may have room again (checked every 10 ms
/// too, in case a wake-up was missed).
pub(super) async fn audit_room(audit: Option<&audit::Audit>) {
    let Some(audit) = audit else {
        return future::pending().await;
    };
    let started = Instant::now();
    tokio::select! {
        _ = audit.room() => {}
        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
    }
    audit.add_blocked(started.elapsed());
}
