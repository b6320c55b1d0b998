//! What kind of record a request makes ([`audit::EventKind`]), and what
//! the client says of itself.

use resp::{Frame, Request};
use router::CommandSpec;

/// The user AUTH or HELLO ... AUTH logs in as (`default` for AUTH with a
/// password alone); `None` for a HELLO without AUTH.
pub(super) fn auth_user(request: &Request) -> Option<String> {
    let args = request.args();
    let text = |i: usize| String::from_utf8_lossy(args.get(i).unwrap_or_default()).into_owned();
    if request.is("auth") {
        return Some(if request.len() >= 3 {
            text(1)
        } else {
            "default".into()
        });
    }
    let at = (2..request.len()).find(|&i| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(b"auth")))?;
    Some(text(at + 1))
}

/// True for an administrative command: the proxy's own, CONFIG, ACL,
/// CLIENT KILL / PAUSE / UNPAUSE, and whatever Valkey files under `@admin`.
pub(super) fn is_admin(request: &Request, spec: Option<&CommandSpec>) -> bool {
    let Some(spec) = spec else {
        return request.is("proxy");
    };
    let admin = router::command::Categories::named(b"admin").unwrap_or(router::command::Categories::NONE);
    spec.categories.intersects(admin)
        || spec.name.starts_with("config|")
        || spec.name.starts_with("acl|")
        || spec.name.starts_with("proxy")
        || matches!(
            spec.name.as_str(),
            "client|kill" | "client|pause" | "client|unpause"
        )
}

/// True for the errors that refuse a command rather than report its
/// failure: an ACL's, a tenant's limit.
pub(super) fn is_denial(error: &str) -> bool {
    error.starts_with("NOPERM")
        || error.starts_with("ERR max number of clients reached")
        || (error.starts_with("ERR tenant '") && error.contains(" over max_"))
}

/// The first bytes of `frame` as RESP writes it, for its type.
pub(super) fn frame_head(frame: &Frame) -> [u8; 3] {
    let mut encoded = bytes::BytesMut::new();
    frame.encode(resp::Protocol::Resp3, &mut encoded);
    let mut head = [0u8; 3];
    for (to, from) in head.iter_mut().zip(encoded.iter()) {
        *to = *from;
    }
    head
}

/// Follows what the client says of itself (CLIENT SETNAME, SETINFO,
/// HELLO SETNAME) into the records.
pub(super) fn follow_identity(request: &Request, name: &mut String, lib: &mut String) {
    let args = request.args();
    let arg = |i: usize| String::from_utf8_lossy(args.get(i).unwrap_or_default()).into_owned();
    let is = |i: usize, word: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word));
    if request.is("client") && is(1, b"setname") {
        *name = arg(2);
    } else if request.is("client") && is(1, b"setinfo") && is(2, b"lib-name") {
        *lib = arg(3);
    } else if request.is("client") && is(1, b"setinfo") && is(2, b"lib-ver") {
        *lib = format!("{}/{}", lib.split('/').next().unwrap_or_default(), arg(3));
    } else if request.is("hello") {
        if let Some(at) = (2..request.len()).find(|&i| is(i, b"setname")) {
            *name = arg(at + 1);
        }
    }
}
