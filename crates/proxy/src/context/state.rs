//! What the proxy remembers about one client connection.

use std::sync::Arc;

use resp::Protocol;

use super::recent::RecentCommand;
use crate::clients::{ClientInfo, SessionView};
use crate::pubsub::{Kind, Subscriptions};
use crate::transaction::Transaction;

/// Connection state that changes how the client's commands are handled.
#[derive(Debug)]
pub struct SessionState {
    /// Protocol chosen with HELLO.
    pub protocol: Protocol,
    /// Database chosen with SELECT, as the backend numbers it.
    pub db: u32,
    /// The backend's number of the client's database 0: its tenant's
    /// `base` when it has databases of its own ([`crate::databases`]),
    /// else 0.
    pub db_base: u32,
    /// Whether the client has authenticated (or needs not).
    pub authenticated: bool,
    /// The user it authenticated as.
    pub user: String,
    /// Its tenant: 0 for none (the whole keyspace), else the tenant's
    /// number, from 1 ([`router::Command::tenant`]).
    pub tenant: u16,
    /// Its tenant's backend group (0: the default backend), whose stack
    /// carries its commands ([`crate::context::Shared::stack_of`]).
    pub group: usize,
    /// The tenant of the listener it came in on ([`crate::listeners`]),
    /// whose users only it may log in as.
    pub listener_tenant: Option<u16>,
    /// Its user's ACL, when it restricts anything ([`crate::guard`]).
    pub acl: Option<Arc<middleware::acl::User>>,
    /// The users' version ([`crate::reload`]) `acl` was taken from.
    pub users_version: u64,
    /// The request kept back by its tenant's rate limit has its slot.
    pub admitted: bool,
    /// It sent what RESP cannot read: the session answers and closes.
    pub protocol_error: bool,
    /// Until when its tenant's rate limit holds its next request.
    pub throttled_until: Option<std::time::Instant>,
    /// Its place among its tenant's clients, held while it is one.
    pub seat: Option<crate::tenants::Seat>,
    /// Its entry in the client registry.
    pub info: Arc<ClientInfo>,
    /// Picks the shared backend connections its requests travel on
    /// ([`crate::session::Lane::affinity`]).
    pub affinity: u64,
    /// MULTI queue and WATCH connection.
    pub transaction: Transaction,
    /// Subscriptions and the links that carry them.
    pub pubsub: Subscriptions,
    /// CLIENT REPLY's setting.
    pub reply_mode: ReplyMode,
    /// The request being handled is CLIENT REPLY OFF / SKIP, which gets no
    /// reply itself.
    pub silence_current: bool,
    /// The spec of the command looked up last.
    pub recent: RecentCommand,
    /// A blocking command of the client waits.
    blocked: bool,
}

/// CLIENT REPLY ON / OFF / SKIP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyMode {
    /// Every reply is written.
    #[default]
    On,
    /// No reply is written.
    Off,
    /// The next command's reply is not written.
    Skip,
}

impl SessionState {
    /// A fresh connection.
    pub fn new(info: Arc<ClientInfo>, requires_auth: bool) -> Self {
        SessionState {
            protocol_error: false,
            protocol: Protocol::Resp2,
            db: 0,
            db_base: 0,
            authenticated: !requires_auth,
            user: "default".into(),
            tenant: 0,
            group: 0,
            listener_tenant: None,
            acl: None,
            users_version: 0,
            admitted: false,
            throttled_until: None,
            seat: None,
            affinity: info.id,
            info,
            transaction: Transaction::default(),
            pubsub: Subscriptions::default(),
            reply_mode: ReplyMode::On,
            silence_current: false,
            recent: RecentCommand::default(),
            blocked: false,
        }
    }

    /// The database as the client numbers it.
    pub fn client_db(&self) -> u32 {
        self.db - self.db_base
    }

    /// Whether the reply of the request just handled is to be dropped
    /// (CLIENT REPLY), consuming a SKIP.
    pub fn take_silence(&mut self) -> bool {
        if std::mem::take(&mut self.silence_current) {
            return true;
        }
        match self.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::Skip => {
                self.reply_mode = ReplyMode::On;
                true
            }
        }
    }

    /// Tells CLIENT LIST what the session holds now.
    pub fn publish_view(&self) {
        self.info.set_view(SessionView {
            sub: self.pubsub.set(Kind::Channel).len(),
            psub: self.pubsub.set(Kind::Pattern).len(),
            ssub: self.pubsub.set(Kind::Shard).len(),
            multi: self.transaction.queued(),
            watching: self.transaction.is_watching(),
            blocked: self.blocked,
            tracking: self.pubsub.tracking().is_some(),
            multi_mem: self.transaction.queued_bytes(),
        });
    }

    /// Records whether a blocking command of the client waits (for CLIENT
    /// LIST's `b` flag and INFO's `blocked_clients`).
    pub fn set_blocked(&mut self, blocked: bool) {
        if self.blocked != blocked {
            self.blocked = blocked;
            self.publish_view();
        }
    }

    /// True while a blocking command of the client waits.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }
}
