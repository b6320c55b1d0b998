//! The audit log in the session: [`AuditHooks`], the session hooks that
//! make the [`audit`] crate's records of what clients do.
//!
//! Hooks see what a tower layer cannot: who the client is (user, tenant,
//! address, name, library), every request in every state with its reply,
//! and why the client left. A command the filters select gets a place in
//! the queue before it runs ([`audit::Audit::reserve`]): under `fail`, no
//! place means the command is refused before anything runs; under
//! `block`, the session waits for one. Its record is made when its reply
//! is about to be written. Commands queued in MULTI are recorded when
//! EXEC answers, each with its own outcome and the transaction's id; a
//! transaction discarded (or left behind by a client that goes) ran
//! nothing and gives its places back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use audit::{Audit, EventKind, Outcome, Payload, Record};
use bytes::Bytes;
use resp::{Frame, Request};
use router::command::RequestPolicy;
use router::{CommandSpec, CommandTable, Reply, Router};
use topology::Topology;

use crate::hooks::{Done, Gone, Session, SessionHooks};
use crate::tenants::Tenants;

mod classify;

use classify::{auth_user, frame_head, is_admin, is_denial};

/// Transaction ids, unique in the process.
static TRANSACTIONS: AtomicU64 = AtomicU64::new(1);

/// The reply to an audited command refused under `on_full = "fail"`.
pub const UNAVAILABLE: &str = "ERR audit log unavailable";

/// The audit log's session hooks.
#[derive(Debug)]
pub struct AuditHooks {
    audit: Arc<Audit>,
    table: Arc<CommandTable>,
    tenants: Tenants,
    /// The router of each backend group (0: the default), to name the
    /// nodes a command's keys live on.
    routers: Vec<Router>,
}

/// What the hooks keep per session.
#[derive(Debug, Default)]
pub struct AuditCtx {
    /// Places promised to its audited requests not recorded yet.
    reserved: usize,
    /// The id of its open transaction.
    txn: Option<u64>,
    /// The commands queued in it, recorded when EXEC answers.
    queued: Vec<Queued>,
    /// The client's address, as records show it.
    client: String,
    /// CLIENT SETNAME's name.
    name: String,
    /// CLIENT SETINFO's library, `name/version`.
    lib: String,
}

/// A command queued in MULTI: its record written up to its outcome.
#[derive(Debug)]
struct Queued {
    head: Vec<u8>,
    latency_us: u64,
    /// A place was promised to it.
    promised: bool,
}

impl AuditHooks {
    /// Hooks that record into `audit`, with the proxy's command table,
    /// tenants and backend routers.
    pub fn new(
        audit: Arc<Audit>,
        table: Arc<CommandTable>,
        tenants: Tenants,
        routers: Vec<Router>,
    ) -> AuditHooks {
        AuditHooks {
            audit,
            table,
            tenants,
            routers,
        }
    }

    fn tenant_name(&self, number: u16) -> &str {
        self.tenants.name(number).unwrap_or("")
    }

    fn selects_client(&self, session: &Session<'_>) -> bool {
        self.audit
            .filter()
            .selects_client(session.user, self.tenant_name(session.tenant), session.addr.ip())
    }

    /// The record of `session`, with no command.
    fn record<'a>(&'a self, event: EventKind, session: &Session<'a>, ctx: &'a AuditCtx) -> Record<'a> {
        let mut record = Record::new(event.name(), SystemTime::now(), self.audit.node());
        record.conn = session.id;
        record.client = &ctx.client;
        record.user = session.user;
        record.tenant = self.tenant_name(session.tenant);
        record.db = Some(session.db);
        record.name = &ctx.name;
        record.lib = &ctx.lib;
        record.max_arg_bytes = self.audit.filter().max_arg_bytes;
        record
    }

    /// True when a place must be promised to `request` before it runs: a
    /// command the rules select, or an administrative one.
    fn promised(&self, request: &Request, spec: Option<&CommandSpec>) -> bool {
        let filter = self.audit.filter();
        (filter.wants(EventKind::Admin) && is_admin(request, spec))
            || spec.is_some_and(|spec| {
                filter.wants(EventKind::Command) && filter.rules_select(spec, request.args())
            })
    }

    /// The topology of the backend group of `tenant`'s clients.
    fn topology(&self, tenant: u16) -> Option<Arc<Topology>> {
        let group = self.tenants.group(tenant);
        let router = self.routers.get(group).or(self.routers.first())?;
        Some(router.topology().current())
    }

    /// The command part of a record: name, keys, arguments, size, and the
    /// nodes of `topology` its keys live on.
    fn describe<'a>(
        &self,
        record: &mut Record<'a>,
        (request, spec): (&'a Request, Option<&'a CommandSpec>),
        topology: Option<&'a Topology>,
        tenant: u16,
    ) {
        let filter = self.audit.filter();
        record.cmd = Some(match spec {
            Some(spec) => spec.name.as_str(),
            // The proxy's own (PROXY), or one the table does not know: its
            // name when it is a plain word.
            None => std::str::from_utf8(request.name())
                .ok()
                .filter(|name| {
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                })
                .unwrap_or("unknown"),
        });
        record.argc = Some(request.len());
        record.bytes_in = Some(request.raw().len());
        let (Some(spec), false) = (spec, filter.payload == Payload::None) else {
            return;
        };
        let args = request.args();
        let mut keys = Vec::new();
        router::command::keys::for_each_key(spec, args, |position| {
            keys.push(request.arg(position).unwrap_or_default())
        });
        if let Some(topology) = topology {
            record.backends = Some(self.backends(topology, request, spec, tenant, record.db.unwrap_or(0)));
        }
        record.keys = Some(keys);
        if filter.payload == Payload::Args {
            let secrets = crate::gate::secrets(request);
            record.args = Some(
                (1..request.len())
                    .map(|i| match secrets.contains(&i) {
                        true => crate::gate::REDACTED,
                        false => request.arg(i).unwrap_or_default(),
                    })
                    .collect(),
            );
        }
    }

    /// The nodes `request`'s keys live on now (every primary, or every
    /// node, for a command sent to all of them).
    fn backends<'t>(
        &self,
        topology: &'t Topology,
        request: &Request,
        spec: &CommandSpec,
        tenant: u16,
        db: u32,
    ) -> Vec<&'t str> {
        let mut nodes: Vec<&str> = match spec.request_policy {
            RequestPolicy::AllShards => topology.shards().iter().map(|s| &*s.primary).collect(),
            RequestPolicy::AllNodes => topology
                .shards()
                .iter()
                .flat_map(|s| std::iter::once(&s.primary).chain(&s.replicas))
                .map(|addr| &**addr)
                .collect(),
            _ => {
                let emulated = middleware::namespace::emulates(topology.mode(), topology.databases());
                let prefix = self.tenants.key_prefix(tenant).unwrap_or_default();
                let scope = middleware::Scope::new(prefix, db, emulated);
                let mut nodes = Vec::new();
                router::command::keys::for_each_key(spec, request.args(), |position| {
                    let key = &request.args()[position];
                    let slot = match scope.is_root() {
                        true => router::slot::key_slot(key),
                        false => router::slot::key_slot(&scope.encode(key)),
                    };
                    if let Some(shard) = topology.shard_for_slot(slot) {
                        nodes.push(&*shard.primary);
                    }
                });
                nodes
            }
        };
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Records the commands queued in the transaction EXEC (or DISCARD)
    /// ended, each with its outcome in `reply`.
    fn end_transaction(&self, ctx: &mut AuditCtx, reply: Option<&Reply>, discarded: bool) {
        let outcomes: Option<Vec<bool>> = match reply {
            Some(Reply::Raw(raw)) => match Frame::parse_complete(&Bytes::clone(raw)) {
                Ok(Frame::Array(items)) => Some(items.iter().map(Frame::is_error).collect()),
                _ => None,
            },
            Some(Reply::Frame(Frame::Array(items))) => Some(items.iter().map(Frame::is_error).collect()),
            _ => None,
        };
        let txn = ctx.txn.take();
        for (index, mut queued) in std::mem::take(&mut ctx.queued).into_iter().enumerate() {
            let failed = outcomes
                .as_ref()
                .and_then(|outcomes| outcomes.get(index).copied());
            let (status, reply) = match (discarded, failed) {
                (true, _) => ("discarded", None),
                (false, None) => ("aborted", None),
                (false, Some(true)) => ("error", Some("error")),
                (false, Some(false)) => ("ok", None),
            };
            let outcome = Outcome {
                status: Some(status),
                reply,
                latency_us: Some(queued.latency_us),
                txn,
                ..Outcome::default()
            };
            outcome.write_tail(&mut queued.head);
            let reserved = take_place(queued.promised, ctx);
            self.audit.record_json(&queued.head, reserved);
        }
    }
}

/// Whether a record takes a place promised to its request: when one was,
/// and the session still holds it.
fn take_place(promised: bool, ctx: &mut AuditCtx) -> bool {
    let reserved = promised && ctx.reserved > 0;
    ctx.reserved -= usize::from(reserved);
    reserved
}

impl SessionHooks for AuditHooks {
    type Ctx = AuditCtx;

    fn new_ctx(&self, session: &Session<'_>) -> AuditCtx {
        AuditCtx {
            client: session.addr.to_string(),
            ..AuditCtx::default()
        }
    }

    fn connected(&self, session: &Session<'_>, ctx: &mut AuditCtx) -> Result<(), Frame> {
        if self.audit.filter().wants(EventKind::Connect) && self.selects_client(session) {
            self.audit
                .record(&self.record(EventKind::Connect, session, ctx), false);
        }
        Ok(())
    }

    fn request_filter(&self, request: &Request, session: &Session<'_>, ctx: &mut AuditCtx) -> Option<Frame> {
        let spec = self.table.lookup(request).map(|spec| &**spec);
        if !self.promised(request, spec) || !self.selects_client(session) {
            return None;
        }
        if self.audit.reserve() {
            ctx.reserved += 1;
            None
        } else {
            Some(Frame::error(UNAVAILABLE))
        }
    }

    fn logging(&self, done: &Done<'_>, ctx: &mut AuditCtx) {
        let request = done.request;
        let session = &done.session;
        let spec = self.table.lookup(request).map(|spec| &**spec);
        if done.error.is_none() {
            classify::follow_identity(request, &mut ctx.name, &mut ctx.lib);
        }
        if done.error.as_deref() == Some(UNAVAILABLE) {
            return;
        }
        let filter = self.audit.filter();
        let auth = request.is("auth") || (request.is("hello") && request.len() > 3);
        // A login is the user's it logs in as.
        let login = auth.then(|| auth_user(request)).flatten();
        let user = login.as_deref().unwrap_or(session.user);
        if !filter.selects_client(user, self.tenant_name(session.tenant), session.addr.ip()) {
            return;
        }
        let event = if auth {
            EventKind::Auth
        } else if done.error.as_deref().is_some_and(is_denial) {
            EventKind::Denied
        } else if is_admin(request, spec) {
            EventKind::Admin
        } else {
            EventKind::Command
        };
        let promised = self.promised(request, spec);
        let selected = filter.wants(event)
            && match event {
                EventKind::Command => {
                    promised || spec.is_some_and(|spec| filter.sampled(spec, request.args()))
                }
                EventKind::Auth => login.is_some(),
                _ => true,
            };
        // The transaction: MULTI opens it, EXEC or DISCARD records its
        // queued commands with their outcomes and closes it.
        let txn = ctx.txn;
        if request.is("multi") && done.error.is_none() && ctx.txn.is_none() {
            ctx.txn = Some(TRANSACTIONS.fetch_add(1, Ordering::Relaxed));
        } else if (request.is("exec") || request.is("discard")) && ctx.txn.is_some() {
            self.end_transaction(ctx, done.reply, request.is("discard"));
        }
        if !selected {
            return;
        }
        let txn = txn.or(ctx.txn);
        let queued = session.in_multi
            && match done.reply {
                Some(Reply::Raw(raw)) => raw.starts_with(b"+QUEUED"),
                Some(Reply::Frame(Frame::Simple(text))) => &text[..] == b"QUEUED",
                _ => false,
            };
        let topology = self.topology(session.tenant);
        let latency_us = done.elapsed.as_micros() as u64;
        // A queued command takes its place when EXEC records it.
        let reserved = !queued && take_place(promised, ctx);
        let mut record = self.record(event, session, ctx);
        match event {
            EventKind::Auth => record.user = login.as_deref().unwrap_or_default(),
            _ => self.describe(&mut record, (request, spec), topology.as_deref(), session.tenant),
        }
        if queued {
            let mut head = Vec::with_capacity(256);
            record.write_head(&mut head);
            ctx.queued.push(Queued {
                head,
                latency_us,
                promised,
            });
            return;
        }
        record.outcome = Outcome {
            status: Some(if done.error.is_some() { "error" } else { "ok" }),
            error: done
                .error
                .as_deref()
                .map(|text| text.split(' ').next().unwrap_or_default()),
            reply: done.reply.map(|reply| match reply {
                Reply::Raw(raw) => audit::record::reply_type(raw),
                Reply::Frame(frame) => audit::record::reply_type(&frame_head(frame)),
                Reply::Admitted => "none",
            }),
            latency_us: Some(latency_us),
            txn,
            reason: None,
        };
        self.audit.record(&record, reserved);
    }

    fn disconnected(&self, session: &Session<'_>, gone: Gone, ctx: &mut AuditCtx) {
        // A transaction never executed ran nothing: its places go back.
        ctx.queued.clear();
        self.audit.release(std::mem::take(&mut ctx.reserved));
        if self.audit.filter().wants(EventKind::Disconnect) && self.selects_client(session) {
            let mut record = self.record(EventKind::Disconnect, session, ctx);
            record.outcome.reason = Some(gone.name());
            self.audit.record(&record, false);
        }
    }
}
