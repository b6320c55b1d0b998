//! RESET, SELECT, READONLY / READWRITE.

use resp::number::parse_i64;
use resp::{Frame, Protocol, Request};

use crate::context::ReplyMode;
use crate::context::{SessionState, Shared};
use crate::edge::{not_an_integer, wrong_arity};

/// RESET: back to a fresh connection's state.
pub fn reset(state: &mut SessionState, shared: &Shared) -> Frame {
    state.protocol = Protocol::Resp2;
    state.db = 0;
    state.db_base = 0;
    state.authenticated = !shared.config().requires_auth();
    state.user = "default".into();
    state.tenant = 0;
    state.group = 0;
    state.acl = None;
    state.seat = None;
    state.info.set_user("default");
    state.info.set_tenant(0, "");
    state.info.set_name("");
    state.transaction.reset();
    state.pubsub.clear();
    state.info.set_invalidation_sink(None);
    state.reply_mode = ReplyMode::On;
    state.info.set_no_evict(false);
    state.info.set_no_touch(false);
    // On a tenant's listener that names a user, back to that user.
    let laddr = state.info.laddr;
    if let Some(user) = shared
        .listeners
        .iter()
        .find(|role| role.addr == laddr)
        .and_then(|role| role.user.clone())
    {
        crate::commands::auth::log_in_as(&user, state, shared);
    }
    Frame::simple("RESET")
}

/// SELECT index: the database every later command of this client uses.
pub fn select(request: &Request, state: &mut SessionState, shared: &Shared) -> Frame {
    let [_, index] = &request.args().to_vec()[..] else {
        return wrong_arity("select");
    };
    let Some(index) = parse_i64(index) else {
        return not_an_integer();
    };
    // On a cluster without databases the proxy emulates them; a tenant
    // with databases of its own has its range of the backend's.
    let (base, databases) = shared
        .tenants
        .databases(state.tenant)
        .unwrap_or((0, crate::door::databases(state, shared)));
    if index < 0 || index >= i64::from(databases) {
        return Frame::error("ERR DB index is out of range");
    }
    state.db = base + index as u32;
    Frame::simple("OK")
}

/// READONLY / READWRITE, sent by cluster clients: the proxy decides where
/// reads go, so both are accepted and change nothing.
pub fn readonly(request: &Request) -> Frame {
    if request.len() != 1 {
        return wrong_arity(&String::from_utf8_lossy(request.name()));
    }
    Frame::simple("OK")
}
