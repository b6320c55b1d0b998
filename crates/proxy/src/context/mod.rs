//! What a client's commands are carried out with: the state every session
//! shares ([`Shared`]) and the state of one session ([`SessionState`]).
//!
//! These types sit below everything that handles a command (the session
//! loop, `commands`, `door`), so that those modules depend on them and not
//! on each other.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use crate::clients::Clients;
use crate::config::ProxyConfig;
use crate::stack::Stack;

pub mod recent;
pub mod state;

pub use state::{ReplyMode, SessionState};

/// `max_pipeline`, the output buffer limits, `maxmemory_clients` and
/// `maxmemory` of the configuration in force.
#[derive(Debug, Default)]
pub(crate) struct TurnLimits {
    max_pipeline: AtomicUsize,
    output_buffer: AtomicUsize,
    output_soft: AtomicUsize,
    output_soft_seconds: AtomicU64,
    maxmemory_clients: AtomicUsize,
    maxmemory: AtomicUsize,
}

impl TurnLimits {
    /// Takes the limits of `config`.
    pub(crate) fn set(&self, config: &ProxyConfig) {
        self.max_pipeline.store(config.max_pipeline, Relaxed);
        self.output_buffer
            .store(config.client_output_buffer_limit, Relaxed);
        self.output_soft
            .store(config.client_output_buffer_soft_limit, Relaxed);
        self.output_soft_seconds
            .store(config.client_output_buffer_soft_seconds, Relaxed);
        self.maxmemory_clients.store(config.maxmemory_clients, Relaxed);
        self.maxmemory.store(config.maxmemory, Relaxed);
    }

    /// Requests one client may have in flight.
    pub(crate) fn max_pipeline(&self) -> usize {
        self.max_pipeline.load(Relaxed)
    }

    /// Bytes of replies a client may leave unread (0: no limit).
    pub(crate) fn output_buffer(&self) -> usize {
        self.output_buffer.load(Relaxed)
    }

    /// Bytes of replies a client may leave unread for a while (0: no
    /// limit), and for how long.
    pub(crate) fn output_soft(&self) -> (usize, std::time::Duration) {
        (
            self.output_soft.load(Relaxed),
            std::time::Duration::from_secs(self.output_soft_seconds.load(Relaxed)),
        )
    }

    /// What every client's buffers may hold together, and what the proxy
    /// may hold resident (0: no limit).
    pub(crate) fn memory_budget(&self) -> crate::memory::Budget {
        crate::memory::Budget {
            clients: self.maxmemory_clients.load(Relaxed),
            resident: self.maxmemory.load(Relaxed),
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("clients", &self.clients)
            .field("tenants", &self.tenants)
            .field("reloader", &self.reloader.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The stack of backend group `group` (0: the default backend): a
    /// session's is its tenant's ([`SessionState::group`]).
    pub fn stack_of(&self, group: usize) -> &Stack {
        group
            .checked_sub(1)
            .and_then(|index| self.groups.get(index))
            .unwrap_or(&self.stack)
    }
}

impl Shared {
    /// The configuration in force: what the proxy started with, as the
    /// last reload changed it.
    pub fn config(&self) -> arc_swap::Guard<Arc<ProxyConfig>> {
        self.config.load()
    }

    /// The users clients log in as, as the last reload left them.
    pub fn users(&self) -> arc_swap::Guard<Arc<crate::users::Users>> {
        self.users.load()
    }

    /// Whether the proxy can serve: it is not draining, and every backend
    /// (the default one and each group) has a topology whose last refresh
    /// worked. Else why not, for a load balancer's log.
    ///
    /// # Errors
    /// The reason the proxy is not ready.
    pub fn readiness(&self) -> Result<(), String> {
        if self.draining.is_cancelled() {
            return Err("draining".into());
        }
        let config = self.config();
        let names =
            std::iter::once("default").chain(config.backend_groups.iter().map(|group| group.name.as_str()));
        for (stack, name) in std::iter::once(&self.stack).chain(&self.groups).zip(names) {
            let topology = stack.router.topology();
            if let Some(error) = topology.last_error() {
                return Err(format!("backend {name} unreachable: {error}"));
            }
            if topology.current().is_empty() {
                return Err(format!("backend {name} not discovered yet"));
            }
        }
        Ok(())
    }
}

/// What every session shares.
pub struct Shared {
    /// The assembled stack, of the default backend.
    pub stack: Stack,
    /// The stacks of the `[[backend_groups]]`, in their order.
    pub groups: Vec<Stack>,
    /// Connected clients.
    pub clients: Clients,
    /// The configuration in force ([`Shared::config`]); a reload swaps it
    /// ([`crate::reload`]).
    pub(crate) config: arc_swap::ArcSwap<ProxyConfig>,
    /// When the proxy started.
    pub started: Instant,
    /// How the session treats each command: sent as it comes, alone (a
    /// blocking command), or looked at by [`crate::commands::handle`].
    pub handling: crate::handling::CommandHandling,
    /// The clients in MONITOR, and what they are shown.
    pub monitors: Arc<crate::monitor::Monitors>,
    /// The session hooks: the audit log's and the embedder's
    /// ([`crate::hooks`]).
    pub(crate) hooks: crate::hooks::Installed,
    /// The audit log, when it is on ([`crate::audit`]).
    pub audit: Option<Arc<audit::Audit>>,
    /// The tenants, and how many clients each has.
    pub tenants: crate::tenants::Tenants,
    /// The users clients log in as ([`Shared::users`]); a reload swaps
    /// them.
    pub(crate) users: arc_swap::ArcSwap<crate::users::Users>,
    /// Bumped when a reload swaps the users: sessions then take their
    /// user's new rules before their next command.
    pub(crate) users_version: std::sync::atomic::AtomicU64,
    /// Where a reload reads the configuration ([`crate::reload`]).
    pub(crate) reloader: std::sync::OnceLock<Arc<dyn crate::reload::Reloader>>,
    /// Held while a reload applies: one at a time.
    pub(crate) reloading: std::sync::Mutex<()>,
    /// The limits every session checks on every turn, copied out of the
    /// configuration (and by each reload) to be read with one relaxed load.
    pub(crate) turn_limits: TurnLimits,
    /// What every client's buffers hold together, against
    /// `maxmemory_clients`.
    pub client_memory: crate::memory::ClientMemory,
    /// The refusals `ACL LOG` shows.
    pub acl_log: Arc<middleware::acl::AclLog>,
    /// The `[[listeners]]` bound to tenants.
    pub listeners: Vec<crate::listeners::Role>,
    /// The proxy's slow log (`SLOWLOG`).
    pub slowlog: crate::slowlog::SlowLog,
    /// Cancelled when the proxy stops accepting clients and drains.
    pub draining: tokio_util::sync::CancellationToken,
}
