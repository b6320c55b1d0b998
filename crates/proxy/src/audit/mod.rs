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

use audit::{Audit, EventKind, Payload, Record};
use bytes::Bytes;
use resp::{Frame, Request};
use router::command::RequestPolicy;
use router::{CommandSpec, CommandTable, Reply, Router};

use crate::hooks::{Done, Gone, Session, SessionHooks};

mod classify;

use crate::tenants::Tenants;
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
    /// Records of the commands queued in it, made when EXEC answers, each
    /// with whether a place was promised to it.
    queued: Vec<(Record, bool)>,
    /// CLIENT SETNAME's name.
    name: String,
    /// CLIENT SETINFO's library, `name/version`.
    lib: String,
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
    fn record(&self, event: EventKind, session: &Session<'_>, ctx: &AuditCtx) -> Record {
        Record {
            time: audit::record::timestamp(SystemTime::now()),
            node: self.audit.node().to_string(),
            event: event.name(),
            conn: session.id,
            client: session.addr.to_string(),
            user: session.user.to_string(),
            tenant: self.tenant_name(session.tenant).to_string(),
            db: Some(session.db),
            name: ctx.name.clone(),
            lib: ctx.lib.clone(),
            ..Record::default()
        }
    }

    /// The event a request makes before it runs, if its place must be
    /// promised: a command the rules select, or an administrative one.
    fn promised(&self, request: &Request, spec: Option<&CommandSpec>) -> bool {
        let filter = self.audit.filter();
        (filter.wants(EventKind::Admin) && is_admin(request, spec))
            || spec.is_some_and(|spec| {
                filter.wants(EventKind::Command) && filter.rules_select(spec, request.args())
            })
    }

    /// The command part of a record: name, keys, arguments, size.
    fn describe(&self, record: &mut Record, request: &Request, spec: Option<&CommandSpec>, tenant: u16) {
        let filter = self.audit.filter();
        record.cmd = Some(match spec {
            Some(spec) => spec.name.replace('|', " ").to_uppercase(),
            None => String::from_utf8_lossy(request.name()).to_uppercase(),
        });
        record.argc = Some(request.len());
        record.bytes_in = Some(request.raw().len());
        if filter.payload == Payload::None {
            return;
        }
        if let Some(spec) = spec {
            let mut keys = Vec::new();
            router::command::keys::for_each_key(spec, request.args(), |position| {
                keys.push(audit::record::shown(
                    &request.args()[position],
                    filter.max_arg_bytes,
                ));
            });
            record.backends = Some(self.backends(request, spec, tenant, record.db.unwrap_or(0)));
            record.keys = Some(keys);
        }
        if filter.payload == Payload::Args {
            let redacted = crate::gate::redacted(request.clone());
            let args = redacted.args();
            record.args = Some(
                (1..redacted.len())
                    .map(|i| audit::record::shown(args.get(i).unwrap_or_default(), filter.max_arg_bytes))
                    .collect(),
            );
        }
    }

    /// The nodes `request`'s keys live on now (every primary, or every
    /// node, for a command sent to all of them).
    fn backends(&self, request: &Request, spec: &CommandSpec, tenant: u16, db: u32) -> Vec<String> {
        let group = self.tenants.group(tenant);
        let Some(router) = self.routers.get(group).or(self.routers.first()) else {
            return Vec::new();
        };
        let topology = router.topology().current();
        let mut nodes: Vec<String> = match spec.request_policy {
            RequestPolicy::AllShards => topology.shards().iter().map(|s| s.primary.to_string()).collect(),
            RequestPolicy::AllNodes => topology.addrs().iter().map(|a| a.to_string()).collect(),
            _ => {
                let emulated = middleware::namespace::emulates(topology.mode(), topology.databases());
                let prefix = self.tenants.key_prefix(tenant).unwrap_or_default();
                let scope = middleware::Scope::new(prefix, db, emulated);
                let mut nodes = Vec::new();
                router::command::keys::for_each_key(spec, request.args(), |position| {
                    let stored = scope.encode(&request.args()[position]);
                    if let Some(shard) = topology.shard_for_slot(router::slot::key_slot(&stored)) {
                        nodes.push(shard.primary.to_string());
                    }
                });
                nodes
            }
        };
        nodes.sort();
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
        for (index, (mut record, promised)) in std::mem::take(&mut ctx.queued).into_iter().enumerate() {
            let failed = outcomes
                .as_ref()
                .and_then(|outcomes| outcomes.get(index).copied());
            (record.status, record.reply) = match (discarded, failed) {
                (true, _) => (Some("discarded"), None),
                (false, None) => (Some("aborted"), None),
                (false, Some(true)) => (Some("error"), Some("error")),
                (false, Some(false)) => (Some("ok"), None),
            };
            self.push(record, promised, ctx);
        }
        ctx.txn = None;
    }

    /// Hands `record` to the log, in the place promised to it if
    /// `promised`.
    fn push(&self, record: Record, promised: bool, ctx: &mut AuditCtx) {
        let reserved = promised && ctx.reserved > 0;
        ctx.reserved -= usize::from(reserved);
        self.audit.record(&record, reserved);
    }
}

impl SessionHooks for AuditHooks {
    type Ctx = AuditCtx;

    fn new_ctx(&self, _session: &Session<'_>) -> AuditCtx {
        AuditCtx::default()
    }

    fn connected(&self, session: &Session<'_>, ctx: &mut AuditCtx) -> Result<(), Frame> {
        if self.audit.filter().wants(EventKind::Connect) && self.selects_client(session) {
            let record = self.record(EventKind::Connect, session, ctx);
            self.audit.record(&record, false);
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
        let tenant = self.tenant_name(session.tenant);
        let user = login.as_deref().unwrap_or(session.user);
        if !filter.selects_client(user, tenant, session.addr.ip()) {
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
        let mut record = self.record(event, session, ctx);
        if event == EventKind::Auth {
            record.user = login.unwrap_or_default();
        } else {
            self.describe(&mut record, request, spec, session.tenant);
        }
        record.status = Some(if done.error.is_some() { "error" } else { "ok" });
        record.error = done
            .error
            .as_deref()
            .map(|text| text.split(' ').next().unwrap_or_default().to_string());
        record.reply = done.reply.map(|reply| match reply {
            Reply::Raw(raw) => audit::record::reply_type(raw),
            Reply::Frame(frame) => audit::record::reply_type(&frame_head(frame)),
            Reply::Admitted => "none",
        });
        record.latency_us = Some(done.elapsed.as_micros() as u64);
        record.txn = txn.or(ctx.txn);
        let queued = session.in_multi
            && match done.reply {
                Some(Reply::Raw(raw)) => raw.starts_with(b"+QUEUED"),
                Some(Reply::Frame(Frame::Simple(text))) => &text[..] == b"QUEUED",
                _ => false,
            };
        if queued {
            record.status = Some("queued");
            record.reply = None;
            ctx.queued.push((record, promised));
        } else {
            self.push(record, promised, ctx);
        }
    }

    fn disconnected(&self, session: &Session<'_>, gone: Gone, ctx: &mut AuditCtx) {
        // A transaction never executed ran nothing: its places go back.
        ctx.queued.clear();
        self.audit.release(std::mem::take(&mut ctx.reserved));
        if self.audit.filter().wants(EventKind::Disconnect) && self.selects_client(session) {
            let mut record = self.record(EventKind::Disconnect, session, ctx);
            record.reason = Some(gone.name());
            self.audit.record(&record, false);
        }
    }
}
