//! AUTH and HELLO, checked against the users in the proxy's configuration.

use bytes::Bytes;
use middleware::acl::{Context, Reason};
use resp::number::parse_i64;
use resp::{Frame, Protocol, Request};

use crate::context::{SessionState, Shared};
use crate::edge::wrong_arity;
use crate::users::Account;

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// `AUTH [username] password`
pub fn auth(request: &Request, state: &mut SessionState, shared: &Shared) -> Frame {
    let args = request.args().to_vec();
    let (user, password) = match &args[..] {
        [_, password] => {
            // A password-only user's password names its user.
            let users = shared.users();
            let named = users.log_in_by_password(password);
            let user = named.map_or("default", |account| account.acl.name());
            (user.to_string(), password)
        }
        [_, user, password] => (String::from_utf8_lossy(user).into_owned(), password),
        _ => return wrong_arity("auth"),
    };
    if !shared.config().requires_auth() && request.len() == 2 {
        return Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    }
    check(request, &user, password, state, shared)
}

/// Logs the session in as `user`, or answers WRONGPASS and records the
/// failure in `ACL LOG` (reason `auth`, the command as the client typed
/// it, as Valkey does).
fn check(request: &Request, user: &str, password: &[u8], state: &mut SessionState, shared: &Shared) -> Frame {
    // On a tenant's listener, only the tenant's users.
    let here = |account: &&Account| {
        state
            .listener_tenant
            .is_none_or(|tenant| account.tenant == tenant)
    };
    let users = shared.users();
    let Some(account) = users.log_in(user, password).filter(here) else {
        let object = String::from_utf8_lossy(request.name()).into_owned();
        crate::guard::log(
            shared,
            state,
            Reason::Auth,
            Context::TopLevel,
            object,
            user.to_string(),
        );
        return Frame::error(WRONGPASS);
    };
    enter(account, state, shared)
}

/// Logs the session in as the user its listener names, without a
/// password ([`crate::listeners`]).
pub fn log_in_as(user: &str, state: &mut SessionState, shared: &Shared) -> Frame {
    let users = shared.users();
    match users.get(user) {
        Some(account) => enter(account, state, shared),
        None => Frame::error(WRONGPASS),
    }
}

/// The session becomes `account`'s: its tenant (a place among the
/// tenant's clients, its databases), its ACL, its name in CLIENT LIST.
fn enter(account: &Account, state: &mut SessionState, shared: &Shared) -> Frame {
    let user = account.acl.name();
    let tenant = account.tenant;
    if tenant == 0 {
        state.seat = None;
    } else if state.seat.as_ref().map(|seat| seat.tenant()) != Some(tenant) {
        match shared.tenants.seat(tenant) {
            Some(seat) => state.seat = Some(seat),
            None => return crate::tenants::max_clients_reached(),
        }
    }
    let base = shared.tenants.databases(tenant).map_or(0, |(base, _)| base);
    if base != state.db_base {
        // Another range of databases: the client starts in its database 0.
        state.db = base;
        state.db_base = base;
    }
    state.tenant = tenant;
    state.group = shared.tenants.group(tenant);
    state.acl = (!account.acl.is_unrestricted()).then(|| account.acl.clone());
    state.authenticated = true;
    state.user = user.to_string();
    state.info.set_user(user);
    state
        .info
        .set_tenant(tenant, shared.tenants.name(tenant).unwrap_or_default());
    Frame::simple("OK")
}

/// After a reload swapped the users (`version` is theirs now): the
/// session's user's new rules, for its next command. A user that is gone
/// keeps what it had until the reload's disconnection reaches its session.
pub fn take_new_rules(state: &mut SessionState, shared: &Shared, version: u64) {
    let users = shared.users();
    if let Some(account) = users.get(&state.user) {
        state.acl = (!account.acl.is_unrestricted()).then(|| account.acl.clone());
    }
    state.users_version = version;
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
pub fn hello(request: &Request, state: &mut SessionState, shared: &Shared) -> Frame {
    let args = request.args().to_vec();
    let mut protocol = state.protocol;
    let mut i = 1;
    if let Some(version) = args.get(1) {
        protocol = match parse_i64(version) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Frame::error("NOPROTO unsupported protocol version"),
            None => return Frame::error("ERR Protocol version is not an integer or out of range"),
        };
        i = 2;
    }
    let mut name = None;
    let mut credentials = None;
    while i < args.len() {
        let option = &args[i];
        let rest = args.len() - i - 1;
        if option.eq_ignore_ascii_case(b"AUTH") && rest >= 2 {
            credentials = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if option.eq_ignore_ascii_case(b"SETNAME") && rest >= 1 {
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Frame::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            ));
        }
    }
    if let Some((user, password)) = credentials {
        let reply = check(request, &String::from_utf8_lossy(&user), &password, state, shared);
        if reply.is_error() {
            return reply;
        }
    }
    if !state.authenticated {
        return Frame::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> \
             AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol \
             version at the same time",
        );
    }
    if let Some(name) = name {
        if let Err(error) = super::client::valid_name(&name) {
            return error;
        }
        state.info.set_name(&String::from_utf8_lossy(&name));
    }
    state.protocol = protocol;
    let text = |s: &str| Frame::Bulk(Bytes::from(s.to_string()));
    Frame::Map(vec![
        (text("server"), text("valkey")),
        (
            text("version"),
            text(&shared.stack_of(state.group).backend_version),
        ),
        (text("proto"), Frame::Integer(protocol.version())),
        (text("id"), Frame::Integer(state.info.id as i64)),
        (text("mode"), text("standalone")),
        (text("role"), text("master")),
        (text("modules"), Frame::Array(Vec::new())),
    ])
}
