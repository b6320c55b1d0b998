//! CLIENT, for the proxy's own clients.

use std::time::Duration;

use bytes::Bytes;
use resp::number::parse_i64;
use resp::{Frame, Request};
use router::Reply;

use super::client_filter::ClientFilter;
use super::text::{arg, help, verbatim};
use super::Local;
use crate::context::ReplyMode;
use crate::context::{SessionState, Shared};
use crate::edge::{not_supported, unknown_subcommand, wrong_arity};
use crate::pubsub::tracking;

/// `CLIENT <subcommand> ...`
pub fn client(request: &Request, state: &mut SessionState, shared: &Shared) -> Option<Local> {
    let Some(sub) = request.arg(1) else {
        return Some(Local::Reply(wrong_arity("client")));
    };
    let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
    let argc = request.len();
    let reply = match sub.as_str() {
        "id" if argc == 2 => Frame::Integer(state.info.id as i64),
        "getname" if argc == 2 => match state.info.name() {
            name if name.is_empty() => Frame::Null,
            name => Frame::Bulk(Bytes::from(name)),
        },
        "setname" if argc == 3 => match valid_name(&request.args().bytes(2).unwrap_or_default()) {
            Ok(()) => {
                state.info.set_name(&arg(request, 2));
                Frame::simple("OK")
            }
            Err(error) => error,
        },
        "setinfo" if argc == 4 => setinfo(request, state),
        "info" if argc == 2 => verbatim(format!("{}\n", state.info.describe())),
        "list" => list(request, state, shared),
        "kill" if argc >= 3 => kill(request, state, shared),
        "help" => help(&[
            "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
            "ID, GETNAME, SETNAME <name>, SETINFO <LIB-NAME|LIB-VER> <value>, INFO, LIST [<filter> ...],",
            "KILL <ip:port> | KILL <filter> [<filter> ...]. Filters: ID <id> [<id> ...], TYPE, ADDR, LADDR, IP,",
            "USER, DB, NAME, LIB-NAME, LIB-VER (each also as NOT-...), MAXAGE <s>, IDLE <s>, SKIPME yes|no.",
            "UNBLOCK <id> [TIMEOUT|ERROR]",
            "REPLY ON|OFF|SKIP, NO-EVICT ON|OFF, NO-TOUCH ON|OFF, PAUSE <ms> [WRITE|ALL], UNPAUSE,",
            "TRACKING ON|OFF [BCAST] [PREFIX <p>] [OPTIN] [OPTOUT] [NOLOOP], CACHING YES|NO, TRACKINGINFO, GETREDIR",
        ]),
        "id" | "getname" | "setname" | "setinfo" | "info" | "kill" => wrong_arity(&format!("client|{sub}")),
        "reply" if argc == 3 => return Some(reply(request, state)),
        "no-evict" if argc == 3 => on_off(request, |on| state.info.set_no_evict(on)),
        "no-touch" if argc == 3 => on_off(request, |on| state.info.set_no_touch(on)),
        "pause" if argc == 3 || argc == 4 => pause(request, shared),
        "unpause" if argc == 2 => {
            shared.clients.pause.unpause();
            Frame::simple("OK")
        }
        "trackinginfo" if argc == 2 => tracking_info(state),
        "getredir" if argc == 2 => Frame::Integer(redirect_of(state)),
        "tracking" if argc >= 3 => match tracking::parse(request.args()) {
            Ok(Some(options)) => {
                let target = match options.redirect {
                    Some(id) => match shared.clients.get(id) {
                        Some(target) => Some(target),
                        None => {
                            return Some(Local::Reply(Frame::error(
                                "ERR The client ID you want redirect to does not exist",
                            )))
                        }
                    },
                    None => None,
                };
                let waiting = state.pubsub.start_tracking(options, &shared.stack_of(state.group).router, target);
                let ok = Bytes::from_static(b"+OK\r\n");
                return Some(Local::Later(Box::pin(waiting.reply(ok))));
            }
            Ok(None) => {
                state.pubsub.stop_tracking();
                Frame::simple("OK")
            }
            Err(error) => error,
        },
        "caching" if argc == 3 => caching(request, state),
        "reply" | "no-evict" | "no-touch" | "pause" | "unpause" | "trackinginfo" | "getredir" | "caching" => {
            wrong_arity(&format!("client|{sub}"))
        }
        "tracking" => wrong_arity("client|tracking"),
        "unblock" if argc >= 3 => return Some(unblock(request, shared)),
        "unblock" => wrong_arity("client|unblock"),
        "capa" | "import-source" => not_supported(&format!("CLIENT {sub}")),
        _ => unknown_subcommand("client", &request.args().bytes(1).unwrap_or_default()),
    };
    Some(Local::Reply(reply))
}

/// How long CLIENT UNBLOCK waits for a blocked connection's id on its node
/// (asked for just before the blocking command, so normally already in).
const BACKEND_ID_WAIT: Duration = Duration::from_secs(1);

/// `CLIENT UNBLOCK <id> [TIMEOUT|ERROR]`: the client's blocking command
/// waits on a dedicated connection (one per slot when its keys span
/// slots); each node is asked to unblock its connection ([`Pool::unblock`]).
/// The blocked command then answers as Valkey's own would (nil or
/// `-UNBLOCKED`). Checks as Valkey 9.1 does: the reason (only when it is
/// the last argument), then the id.
///
/// [`Pool::unblock`]: pool::Pool::unblock
fn unblock(request: &Request, shared: &Shared) -> Local {
    let reason = match request.arg(3).filter(|_| request.len() == 4) {
        None => "TIMEOUT",
        Some(reason) if reason.eq_ignore_ascii_case(b"timeout") => "TIMEOUT",
        Some(reason) if reason.eq_ignore_ascii_case(b"error") => "ERROR",
        Some(_) => {
            return Local::Reply(Frame::error(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let Some(id) = request.arg(2).and_then(parse_i64) else {
        return Local::Reply(Frame::error("ERR value is not an integer or out of range"));
    };
    let target = u64::try_from(id).ok().and_then(|id| shared.clients.get(id));
    // The target's blocked command is on its own backend's pool, whichever
    // backend group that is.
    let Some((pool, blocked)) = target.and_then(|target| {
        std::iter::once(&shared.stack)
            .chain(&shared.groups)
            .map(|stack| stack.router.pool())
            .map(|pool| (pool, pool.blocked(target.affinity())))
            .find(|(_, blocked)| !blocked.is_empty())
    }) else {
        return Local::Reply(Frame::Integer(0));
    };
    let pool = pool.clone();
    Local::Later(Box::pin(async move {
        let mut unblocked = false;
        for connection in &blocked {
            unblocked |= pool.unblock(connection, reason, BACKEND_ID_WAIT).await?;
        }
        Ok(Reply::Frame(Frame::Integer(i64::from(unblocked))))
    }))
}

/// CLIENT TRACKINGINFO.
fn tracking_info(state: &SessionState) -> Frame {
    let mut flags = Vec::new();
    let mut prefixes = Vec::new();
    match state.pubsub.tracking() {
        None => flags.push(Frame::bulk("off")),
        Some(tracking) => {
            let options = &tracking.options;
            flags.push(Frame::bulk("on"));
            for (set, name) in [
                (options.bcast, "bcast"),
                (options.optin, "optin"),
                (options.optout, "optout"),
                (options.noloop, "noloop"),
            ] {
                if set {
                    flags.push(Frame::bulk(name));
                }
            }
            prefixes.extend(options.prefixes.iter().cloned().map(Frame::Bulk));
        }
    }
    let redirect = redirect_of(state);
    Frame::Map(vec![
        (Frame::bulk("flags"), Frame::Set(flags)),
        (Frame::bulk("redirect"), Frame::Integer(redirect)),
        (Frame::bulk("prefixes"), Frame::Array(prefixes)),
    ])
}

/// CLIENT GETREDIR: -1 without tracking, 0 without redirection, else the
/// target's id.
fn redirect_of(state: &SessionState) -> i64 {
    match state.pubsub.tracking() {
        None => -1,
        Some(tracking) => tracking.options.redirect.map_or(0, |id| id as i64),
    }
}

/// CLIENT CACHING YES|NO, for the next command of an OPTIN / OPTOUT client.
fn caching(request: &Request, state: &mut SessionState) -> Frame {
    let yes = match &request.args().bytes(2).unwrap_or_default() {
        v if v.eq_ignore_ascii_case(b"yes") => true,
        v if v.eq_ignore_ascii_case(b"no") => false,
        _ => return Frame::error("ERR syntax error"),
    };
    let Some(tracking) = state.pubsub.tracking_mut() else {
        return Frame::error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        );
    };
    let allowed = if yes {
        tracking.options.optin
    } else {
        tracking.options.optout
    };
    if !allowed {
        return Frame::error(if yes {
            "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
        } else {
            "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
        });
    }
    tracking.set_caching(yes);
    Frame::simple("OK")
}

/// True for `CLIENT UNPAUSE`, which a pause must let through.
pub fn is_unpause(request: &Request) -> bool {
    request.is("client")
        && request
            .arg(1)
            .is_some_and(|sub| sub.eq_ignore_ascii_case(b"unpause"))
}

/// `CLIENT REPLY ON|OFF|SKIP`: OFF and SKIP are not answered.
fn reply(request: &Request, state: &mut SessionState) -> Local {
    let mode = &request.args().bytes(2).unwrap_or_default();
    let (mode, silent) = if mode.eq_ignore_ascii_case(b"on") {
        (ReplyMode::On, false)
    } else if mode.eq_ignore_ascii_case(b"off") {
        (ReplyMode::Off, true)
    } else if mode.eq_ignore_ascii_case(b"skip") {
        (ReplyMode::Skip, true)
    } else {
        return Local::Reply(Frame::error("ERR syntax error"));
    };
    state.reply_mode = mode;
    state.silence_current = silent;
    Local::Reply(Frame::simple("OK"))
}

/// `ON` or `OFF`, handed to `set`.
fn on_off(request: &Request, set: impl FnOnce(bool)) -> Frame {
    let value = &request.args().bytes(2).unwrap_or_default();
    if value.eq_ignore_ascii_case(b"on") {
        set(true);
    } else if value.eq_ignore_ascii_case(b"off") {
        set(false);
    } else {
        return Frame::error("ERR syntax error");
    }
    Frame::simple("OK")
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`: holds the commands of every client
/// of this proxy (only writes with WRITE) until the timeout or UNPAUSE.
fn pause(request: &Request, shared: &Shared) -> Frame {
    let Some(timeout) = parse_i64(&request.args().bytes(2).unwrap_or_default()).filter(|t| *t >= 0) else {
        return Frame::error("ERR timeout is not an integer or out of range");
    };
    let writes_only = match request.arg(3) {
        None => false,
        Some(mode) if mode.eq_ignore_ascii_case(b"all") => false,
        Some(mode) if mode.eq_ignore_ascii_case(b"write") => true,
        Some(_) => return Frame::error("ERR syntax error"),
    };
    shared
        .clients
        .pause
        .pause(std::time::Duration::from_millis(timeout as u64), writes_only);
    Frame::simple("OK")
}

/// Valkey's rule for client names: printable ASCII without spaces.
pub fn valid_name(name: &[u8]) -> Result<(), Frame> {
    if name.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        Ok(())
    } else {
        Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

fn setinfo(request: &Request, state: &SessionState) -> Frame {
    let attribute = arg(request, 2).to_ascii_lowercase();
    let value = arg(request, 3);
    if value.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
        return Frame::error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            attribute
        ));
    }
    match attribute.as_str() {
        "lib-name" => state.info.set_lib(Some(&value), None),
        "lib-ver" => state.info.set_lib(None, Some(&value)),
        _ => return Frame::error(format!("ERR Unrecognized option '{}'", arg(request, 2))),
    }
    Frame::simple("OK")
}

/// `CLIENT LIST [filters]`
fn list(request: &Request, state: &SessionState, shared: &Shared) -> Frame {
    let filter = match filter_of(request, shared) {
        Ok(filter) => filter,
        Err(error) => return error,
    };
    let me = state.info.id;
    let mut text = String::new();
    for client in shared.clients.list() {
        if (filter.skip_me() == Some(true) && client.id == me)
            || !filter.matches(&client)
            || !sees(state, &client)
        {
            continue;
        }
        text.push_str(&client.describe());
        text.push('\n');
    }
    verbatim(text)
}

/// The filters after CLIENT LIST or CLIENT KILL.
fn filter_of(request: &Request, shared: &Shared) -> Result<ClientFilter, Frame> {
    let args = request.args().to_vec();
    ClientFilter::parse(&args[2..], |user| {
        user == "default" || shared.users().get(user).is_some()
    })
}

/// `CLIENT KILL addr`, or `CLIENT KILL <filters>` (SKIPME yes unless said).
fn kill(request: &Request, state: &SessionState, shared: &Shared) -> Frame {
    if request.len() == 3 {
        // The old form: CLIENT KILL ip:port.
        let addr = arg(request, 2);
        return match shared
            .clients
            .kill(|c| sees(state, c) && c.addr.to_string() == addr)
        {
            0 => Frame::error("ERR No such client"),
            _ => Frame::simple("OK"),
        };
    }
    let filter = match filter_of(request, shared) {
        Ok(filter) => filter,
        Err(error) => return error,
    };
    let skip_me = filter.skip_me().unwrap_or(true);
    let me = state.info.id;
    let killed = shared
        .clients
        .kill(|c| (!skip_me || c.id != me) && sees(state, c) && filter.matches(c));
    Frame::Integer(killed as i64)
}

/// True when the session may see (and kill) `client`: a tenant's client
/// sees its tenant's clients only.
fn sees(state: &SessionState, client: &crate::clients::ClientInfo) -> bool {
    state.tenant == 0 || client.tenant() == state.tenant
}
