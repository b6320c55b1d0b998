//! CLIENT TRACKING for the proxy's clients (client-side caching).
//!
//! The client's reads travel on shared backend connections, so the
//! backend cannot track them per client. The proxy does it: it opens a
//! RESP3 stream link to every primary with `CLIENT TRACKING ON BCAST`
//! (with the client's prefixes in BCAST mode), which reports every key
//! changed on that node, and
//!
//! - in the default mode, remembers the keys of the read commands the
//!   client sends (all of them, or with OPTIN only after `CLIENT CACHING
//!   yes`, or with OPTOUT not after `CLIENT CACHING no`), and passes on the
//!   invalidation of a key it remembers, forgetting it then, as Valkey does;
//! - in BCAST mode, passes on every invalidation (the prefixes already
//!   narrowed them).
//!
//! Invalidations reach the client as RESP3 `invalidate` pushes, or, with
//! REDIRECT, the target client (another client of this proxy, subscribed
//! to `__redis__:invalidate`, as RESP2 clients do) as Pub/Sub messages.
//! NOLOOP is accepted, but the client is also told about its own writes
//! (the backend cannot tell them from other clients' on a shared
//! connection): an extra invalidation costs a cache miss, never a stale
//! read.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use middleware::Scope;
use resp::{encode, Args, Frame, Protocol, Request};
use router::command::keys::for_each_key;
use router::command::Flags;
use router::Router;
use rustc_hash::FxHashMap;

use super::{Waiting, INVALIDATE_CHANNEL};
use crate::clients::ClientInfo;

/// The settings of CLIENT TRACKING ON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// BCAST: every change under the prefixes, read or not.
    pub bcast: bool,
    /// Prefixes for BCAST.
    pub prefixes: Vec<Bytes>,
    /// OPTIN: track reads only after CLIENT CACHING yes.
    pub optin: bool,
    /// OPTOUT: track reads except after CLIENT CACHING no.
    pub optout: bool,
    /// NOLOOP (accepted; see the module docs).
    pub noloop: bool,
    /// REDIRECT: the client id that gets the invalidations.
    pub redirect: Option<u64>,
}

/// A client's tracking state.
#[derive(Debug)]
pub struct Tracking {
    /// The options it was turned on with.
    pub options: Options,
    /// Keys read and not invalidated since (default mode), by the name the
    /// backend stores them under (a database emulated by namespace stores
    /// them prefixed), with the name the client knows.
    remembered: FxHashMap<Bytes, Bytes>,
    /// CLIENT CACHING for the next command only.
    caching_next: Option<bool>,
    /// Tags of the stream links to the primaries.
    pub links: Vec<u64>,
    /// Links whose `+OK` is still awaited, with the reply waiting for it.
    pub confirming: FxHashMap<u64, Arc<Waiting>>,
    /// The client invalidations are redirected to.
    pub redirect: Option<Arc<ClientInfo>>,
}

impl Tracking {
    /// Tracking with `options`, links to be opened by the caller.
    pub fn new(options: Options) -> Self {
        Tracking {
            options,
            remembered: FxHashMap::default(),
            caching_next: None,
            links: Vec::new(),
            confirming: FxHashMap::default(),
            redirect: None,
        }
    }

    /// The command that turns tracking on on a link to a primary.
    pub fn link_command(&self) -> Bytes {
        let mut args: Vec<&[u8]> = vec![b"CLIENT", b"TRACKING", b"ON", b"BCAST"];
        if self.options.bcast {
            for prefix in &self.options.prefixes {
                args.push(b"PREFIX");
                args.push(prefix);
            }
        }
        let mut out = BytesMut::new();
        encode::encode_command(&args, &mut out);
        out.freeze()
    }

    /// CLIENT CACHING yes|no, for the next command.
    pub fn set_caching(&mut self, yes: bool) {
        self.caching_next = Some(yes);
    }

    /// Notes the keys of `request` if it reads and the mode says it is
    /// tracked. Consumes a CLIENT CACHING setting. `space` is the client's
    /// database namespace where databases are emulated.
    pub fn note_request(&mut self, request: &Request, router: &Router, space: Option<&Scope>) {
        let caching = self.caching_next.take();
        if self.options.bcast {
            return;
        }
        let tracked = match (self.options.optin, self.options.optout) {
            (true, _) => caching == Some(true),
            (_, true) => caching != Some(false),
            _ => true,
        };
        if !tracked {
            return;
        }
        let Some(spec) = router.table().lookup(request) else {
            return;
        };
        if !spec.flags.contains(Flags::READONLY) {
            return;
        }
        for_each_key(spec, request.args(), |position| {
            let key = request.args().bytes(position).unwrap_or_default();
            let stored = space.map_or_else(|| key.clone(), |space| space.encode(&key));
            self.remembered.insert(stored, key.clone());
        });
    }

    /// An invalidation from a link, as the Pub/Sub message a REDIRECT
    /// target subscribed to `__redis__:invalidate` gets.
    pub fn invalidation_message(&mut self, frame: &Bytes, protocol: Protocol) -> Option<Bytes> {
        let keys = self.invalidated_keys(frame)?;
        let mut out = BytesMut::new();
        Frame::Push(vec![
            Frame::bulk("message"),
            Frame::bulk(INVALIDATE_CHANNEL),
            keys,
        ])
        .encode(protocol, &mut out);
        Some(out.freeze())
    }

    /// An invalidation from a link: the push to send the client, if any.
    pub fn invalidation(&mut self, frame: &Bytes, protocol: Protocol) -> Option<Bytes> {
        if protocol != Protocol::Resp3 {
            return None;
        }
        let keys = self.invalidated_keys(frame)?;
        let mut out = BytesMut::new();
        Frame::Push(vec![Frame::bulk("invalidate"), keys]).encode(protocol, &mut out);
        Some(out.freeze())
    }

    /// The keys of an invalidation push that concern the client (a null
    /// for a flush), forgetting them; `None` when none do.
    fn invalidated_keys(&mut self, frame: &Bytes) -> Option<Frame> {
        let Ok(Frame::Push(items)) = Frame::parse_complete(frame) else {
            return None;
        };
        if items.first().and_then(Frame::as_bytes).map(|b| &b[..]) != Some(b"invalidate") {
            return None;
        }
        let keys = match items.get(1) {
            // A flush: every key at once.
            Some(Frame::Null) | Some(Frame::NullArray) => {
                self.remembered.clear();
                None
            }
            Some(Frame::Array(keys)) => Some(
                keys.iter()
                    .filter_map(Frame::as_bytes)
                    .filter_map(|stored| match self.options.bcast {
                        true => Some(stored.clone()),
                        false => self.remembered.remove(stored),
                    })
                    .map(Frame::Bulk)
                    .collect::<Vec<_>>(),
            ),
            _ => return None,
        };
        if keys.as_ref().is_some_and(Vec::is_empty) {
            return None;
        }
        Some(keys.map_or(Frame::Null, Frame::Array))
    }
}

/// Parses `CLIENT TRACKING ON|OFF [options]`: `Ok(None)` for OFF.
///
/// # Errors
/// Valkey's error texts for bad options; a proxy error for REDIRECT.
pub fn parse(args: Args<'_>) -> Result<Option<Options>, Frame> {
    let Some(switch) = args.get(2) else {
        return Err(Frame::error(
            "ERR wrong number of arguments for 'client|tracking' command",
        ));
    };
    let on = if switch.eq_ignore_ascii_case(b"on") {
        true
    } else if switch.eq_ignore_ascii_case(b"off") {
        false
    } else {
        return Err(Frame::error("ERR syntax error"));
    };
    let mut options = Options::default();
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_lowercase();
        match option.as_slice() {
            b"bcast" => options.bcast = true,
            b"optin" => options.optin = true,
            b"optout" => options.optout = true,
            b"noloop" => options.noloop = true,
            b"prefix" if i + 1 < args.len() => {
                i += 1;
                options.prefixes.push(args.bytes(i).unwrap_or_default());
            }
            b"redirect" if i + 1 < args.len() => {
                i += 1;
                let id = resp::number::parse_i64(&args[i])
                    .filter(|id| *id > 0)
                    .ok_or_else(|| Frame::error("ERR Invalid client ID"))?;
                options.redirect = Some(id as u64);
            }
            _ => return Err(Frame::error("ERR syntax error")),
        }
        i += 1;
    }
    if options.optin && options.optout {
        return Err(Frame::error(
            "ERR You can't use both OPTIN and OPTOUT options at the same time",
        ));
    }
    if !options.prefixes.is_empty() && !options.bcast {
        return Err(Frame::error(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if options.bcast && (options.optin || options.optout) {
        return Err(Frame::error("ERR OPTIN and OPTOUT are not compatible with BCAST"));
    }
    Ok(on.then_some(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> Request {
        Request::from_args(line.split(' '))
    }

    #[test]
    fn options_as_valkey_checks_them() {
        assert_eq!(parse(request("CLIENT TRACKING OFF").args()), Ok(None));
        let bcast = parse(request("CLIENT TRACKING ON BCAST PREFIX user: PREFIX x").args())
            .unwrap()
            .unwrap();
        assert!(bcast.bcast && bcast.prefixes.len() == 2);
        assert!(parse(request("CLIENT TRACKING ON PREFIX a").args()).is_err());
        assert!(parse(request("CLIENT TRACKING ON OPTIN OPTOUT").args()).is_err());
        assert_eq!(
            parse(request("CLIENT TRACKING ON REDIRECT 5").args())
                .unwrap()
                .unwrap()
                .redirect,
            Some(5)
        );
        assert!(parse(request("CLIENT TRACKING ON REDIRECT x").args()).is_err());
    }

    #[test]
    fn keys_of_an_emulated_database_come_back_by_the_clients_name() {
        let mut tracking = Tracking::new(Options::default());
        let space = Scope::database(3);
        let stored = space.encode(b"k");
        tracking
            .remembered
            .insert(stored.clone(), Bytes::from_static(b"k"));
        let mut push = BytesMut::new();
        Frame::Push(vec![
            Frame::bulk("invalidate"),
            Frame::Array(vec![Frame::Bulk(stored)]),
        ])
        .encode(Protocol::Resp3, &mut push);
        let out = tracking.invalidation(&push.freeze(), Protocol::Resp3).unwrap();
        assert_eq!(&out[..], b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
    }

    #[test]
    fn default_mode_passes_on_only_remembered_keys() {
        let mut tracking = Tracking::new(Options::default());
        tracking
            .remembered
            .insert(Bytes::from_static(b"a"), Bytes::from_static(b"a"));
        let push = Bytes::from_static(b">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        let out = tracking.invalidation(&push, Protocol::Resp3).unwrap();
        assert_eq!(&out[..], b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n");
        // Forgotten once invalidated.
        assert_eq!(tracking.invalidation(&push, Protocol::Resp3), None);
    }
}
