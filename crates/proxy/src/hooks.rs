//! Hooks into client sessions, for what a tower layer alone cannot do.
//!
//! A layer ([`crate::Proxy::layer`]) sees commands, one at a time. Hooks
//! see sessions: who connected, each request with the session it came in
//! (user, database, transaction), each reply with its latency, and the
//! end. In the manner of pingora's `ProxyHttp`, every hook has a default
//! that does nothing, and each session carries a context of the
//! embedder's own type ([`SessionHooks::Ctx`]) from its first hook to its
//! last: per-client counters, a tenant, an audit trail's buffer.
//!
//! ```no_run
//! use valkey_proxy::hooks::{Done, Gone, Session, SessionHooks};
//!
//! /// Counts each client's errors and logs them when it leaves.
//! struct CountErrors;
//!
//! impl SessionHooks for CountErrors {
//!     type Ctx = u64;
//!     fn new_ctx(&self, _session: &Session<'_>) -> u64 {
//!         0
//!     }
//!     fn logging(&self, done: &Done<'_>, errors: &mut u64) {
//!         *errors += u64::from(done.error.is_some());
//!     }
//!     fn disconnected(&self, session: &Session<'_>, _gone: Gone, errors: &mut u64) {
//!         println!("client {} left after {errors} errors", session.id);
//!     }
//! }
//! # async fn run(config: valkey_proxy::ProxyConfig) -> std::io::Result<()> {
//! let proxy = valkey_proxy::Proxy::bind(config).await?.hooks(CountErrors);
//! # Ok(()) }
//! ```
//!
//! Hooks run on the session's task, in its order: keep them short (hand
//! slow work to a task of your own). A session without hooks pays one
//! branch per request for them.

use std::any::Any;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resp::{Frame, Protocol, Request};
use router::Reply;

/// Hooks into every client session. Every hook but [`new_ctx`] has a
/// default that does nothing.
///
/// [`new_ctx`]: SessionHooks::new_ctx
pub trait SessionHooks: Send + Sync + 'static {
    /// What the hooks keep per session.
    type Ctx: Send + 'static;

    /// The context of a session that has just connected.
    fn new_ctx(&self, session: &Session<'_>) -> Self::Ctx;

    /// A client connected. An error refuses it: the client gets the frame
    /// and the connection closes.
    fn connected(&self, _session: &Session<'_>, _ctx: &mut Self::Ctx) -> Result<(), Frame> {
        Ok(())
    }

    /// A request arrived, before the proxy does anything with it (the
    /// layers' gate included). `Some(reply)` answers it instead.
    fn request_filter(
        &self,
        _request: &Request,
        _session: &Session<'_>,
        _ctx: &mut Self::Ctx,
    ) -> Option<Frame> {
        None
    }

    /// A request's reply is about to be written: once per request, in the
    /// client's order, whoever answered it (a backend, the proxy, a layer
    /// or [`SessionHooks::request_filter`]).
    fn logging(&self, _done: &Done<'_>, _ctx: &mut Self::Ctx) {}

    /// The client is gone, for `gone`; the session's last hook.
    fn disconnected(&self, _session: &Session<'_>, _gone: Gone, _ctx: &mut Self::Ctx) {}
}

/// Why a client session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// The client closed its connection (or it broke).
    Client,
    /// QUIT, answered, then closed.
    Quit,
    /// CLIENT KILL.
    Killed,
    /// A protocol error, answered as Valkey does, then closed.
    Protocol,
    /// Idle past `client_idle_timeout_secs`.
    Idle,
    /// Over `client_output_buffer_limit`.
    OutputBuffer,
    /// Over the query buffer limit while a command ran alone.
    QueryBuffer,
    /// Holding the most when every client's buffers together passed
    /// `maxmemory_clients`.
    Evicted,
    /// The proxy shut down (drained).
    Drain,
}

impl Gone {
    /// The reason in words, as the audit log shows it.
    pub fn name(self) -> &'static str {
        match self {
            Gone::Client => "client",
            Gone::Quit => "quit",
            Gone::Killed => "kill",
            Gone::Protocol => "protocol",
            Gone::Idle => "idle",
            Gone::OutputBuffer => "output-buffer",
            Gone::QueryBuffer => "query-buffer",
            Gone::Evicted => "evicted",
            Gone::Drain => "drain",
        }
    }
}

/// A session as its hooks see it.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    /// The client's id (CLIENT ID).
    pub id: u64,
    /// The client's address.
    pub addr: SocketAddr,
    /// The user it is authenticated as.
    pub user: &'a str,
    /// The database it has selected.
    pub db: u32,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// True between MULTI and EXEC.
    pub in_multi: bool,
    /// Its tenant's number (from 1, in the configuration's order); 0 for
    /// none.
    pub tenant: u16,
}

/// A request answered.
#[derive(Debug)]
pub struct Done<'a> {
    /// The request, as the client sent it.
    pub request: &'a Request,
    /// The session when the request arrived.
    pub session: Session<'a>,
    /// From the request's arrival to its reply being ready.
    pub elapsed: Duration,
    /// The error the client gets, if the reply is one (its text, without
    /// the leading `-`).
    pub error: Option<String>,
    /// The reply, unless the request failed in the proxy (then `error`
    /// says why).
    pub reply: Option<&'a Reply>,
}

/// [`SessionHooks`] with the context's type erased, as the proxy keeps
/// them for every session.
pub(crate) trait ErasedHooks: Send + Sync {
    fn start(&self, session: &Session<'_>) -> Result<Box<dyn Any + Send>, Frame>;
    fn request_filter(
        &self,
        request: &Request,
        session: &Session<'_>,
        ctx: &mut (dyn Any + Send),
    ) -> Option<Frame>;
    fn logging(&self, done: &Done<'_>, ctx: &mut (dyn Any + Send));
    fn disconnected(&self, session: &Session<'_>, gone: Gone, ctx: &mut (dyn Any + Send));
}

impl<H: SessionHooks> ErasedHooks for H {
    fn start(&self, session: &Session<'_>) -> Result<Box<dyn Any + Send>, Frame> {
        let mut ctx = self.new_ctx(session);
        self.connected(session, &mut ctx)?;
        Ok(Box::new(ctx))
    }

    fn request_filter(
        &self,
        request: &Request,
        session: &Session<'_>,
        ctx: &mut (dyn Any + Send),
    ) -> Option<Frame> {
        let ctx = ctx.downcast_mut::<H::Ctx>()?;
        SessionHooks::request_filter(self, request, session, ctx)
    }

    fn logging(&self, done: &Done<'_>, ctx: &mut (dyn Any + Send)) {
        if let Some(ctx) = ctx.downcast_mut::<H::Ctx>() {
            SessionHooks::logging(self, done, ctx);
        }
    }

    fn disconnected(&self, session: &Session<'_>, gone: Gone, ctx: &mut (dyn Any + Send)) {
        if let Some(ctx) = ctx.downcast_mut::<H::Ctx>() {
            SessionHooks::disconnected(self, session, gone, ctx);
        }
    }
}

/// The hooks of one session (the audit log's, then the embedder's), each
/// with its context, and its requests waiting for their replies (replies
/// are written in request order).
pub(crate) struct Hooked {
    hooks: Vec<(Arc<dyn ErasedHooks>, Box<dyn Any + Send>)>,
    waiting: VecDeque<Option<Waiting>>,
    /// The user of the last request, shared by the waiting requests of
    /// that user (a client rarely changes users: no copy per request).
    user: Arc<str>,
}

/// A request whose reply is not written yet, with its session then.
struct Waiting {
    request: Request,
    received: Instant,
    user: Arc<str>,
    db: u32,
    protocol: Protocol,
    in_multi: bool,
    tenant: u16,
}

impl Hooked {
    /// The hooks of a session that has just connected, or the frame that
    /// refuses it. `None` when there are none.
    pub(crate) fn start(installed: &Installed, session: &Session<'_>) -> Option<Result<Hooked, Frame>> {
        let all = [installed.audit.get(), installed.embedder.get()];
        let mut hooks = Vec::new();
        for one in all.into_iter().flatten() {
            let ctx = match one.start(session) {
                Ok(ctx) => ctx,
                Err(refusal) => return Some(Err(refusal)),
            };
            hooks.push((one.clone(), ctx));
        }
        (!hooks.is_empty()).then(|| {
            Ok(Hooked {
                hooks,
                waiting: VecDeque::new(),
                user: Arc::from(session.user),
            })
        })
    }

    /// [`SessionHooks::request_filter`]: the first answer wins.
    pub(crate) fn filter(&mut self, request: &Request, session: &Session<'_>) -> Option<Frame> {
        self.hooks
            .iter_mut()
            .find_map(|(hooks, ctx)| hooks.request_filter(request, session, ctx.as_mut()))
    }

    /// `user`, shared with the requests before it when it is theirs.
    pub(crate) fn user(&mut self, user: &str) -> Arc<str> {
        if &*self.user != user {
            self.user = Arc::from(user);
        }
        self.user.clone()
    }

    /// A reply for `request` (`None`: a protocol error's) is now waiting
    /// behind the earlier ones.
    pub(crate) fn started(&mut self, request: Option<Request>, received: Instant, session: &Session<'_>) {
        let user = self.user(session.user);
        self.waiting.push_back(request.map(|request| Waiting {
            request,
            received,
            user,
            db: session.db,
            protocol: session.protocol,
            in_multi: session.in_multi,
            tenant: session.tenant,
        }));
    }

    /// The oldest waiting request's reply is about to be written.
    pub(crate) fn replied(&mut self, reply: &Result<Reply, router::Error>, addr: SocketAddr, id: u64) {
        let Some(Some(waiting)) = self.waiting.pop_front() else {
            return;
        };
        let done = Done {
            request: &waiting.request,
            session: Session {
                id,
                addr,
                user: &waiting.user,
                db: waiting.db,
                protocol: waiting.protocol,
                in_multi: waiting.in_multi,
                tenant: waiting.tenant,
            },
            elapsed: waiting.received.elapsed(),
            error: error_text(reply),
            reply: reply.as_ref().ok(),
        };
        for (hooks, ctx) in &mut self.hooks {
            hooks.logging(&done, ctx.as_mut());
        }
    }

    /// [`SessionHooks::disconnected`].
    pub(crate) fn disconnected(mut self, session: &Session<'_>, gone: Gone) {
        for (hooks, ctx) in &mut self.hooks {
            hooks.disconnected(session, gone, ctx.as_mut());
        }
    }
}

/// The hooks the proxy runs in every session: the audit log's
/// ([`crate::audit`]) and the embedder's ([`crate::Proxy::hooks`]).
#[derive(Default)]
pub(crate) struct Installed {
    pub(crate) audit: std::sync::OnceLock<Arc<dyn ErasedHooks>>,
    pub(crate) embedder: std::sync::OnceLock<Arc<dyn ErasedHooks>>,
}

impl std::fmt::Debug for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installed")
            .field("audit", &self.audit.get().is_some())
            .field("embedder", &self.embedder.get().is_some())
            .finish()
    }
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked")
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

/// The text of `reply` if the client gets an error.
fn error_text(reply: &Result<Reply, router::Error>) -> Option<String> {
    match reply {
        Ok(Reply::Raw(raw)) => {
            let text = match raw.first() {
                Some(b'-') => &raw[1..],
                // A RESP3 bulk error: `!<length>\r\n<text>\r\n`.
                Some(b'!') => raw
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(&raw[..0], |at| &raw[at + 1..]),
                _ => return None,
            };
            let end = text.iter().position(|&b| b == b'\r').unwrap_or(text.len());
            Some(String::from_utf8_lossy(&text[..end]).into_owned())
        }
        Ok(Reply::Frame(Frame::Error(text) | Frame::BulkError(text))) => {
            Some(String::from_utf8_lossy(text).into_owned())
        }
        Ok(_) => None,
        Err(error) => match crate::edge::reply_for(error) {
            Frame::Error(text) => Some(String::from_utf8_lossy(&text).into_owned()),
            _ => Some(error.to_string()),
        },
    }
}
