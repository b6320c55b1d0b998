//! The proxy's clients, for CLIENT ID / LIST / INFO / KILL.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::buffers::Buffers;
use crate::pause::Pause;

/// The tag of events another session delivers (tracking invalidations
/// redirected to this client); no link has it.
pub const REDIRECTED: u64 = u64::MAX;

/// What the proxy knows about one connected client.
#[derive(Debug)]
pub struct ClientInfo {
    /// Unique id, as CLIENT ID returns.
    pub id: u64,
    /// The client's address.
    pub addr: SocketAddr,
    /// The proxy address it connected to.
    pub laddr: SocketAddr,
    created: Instant,
    last_active_ms: AtomicU64,
    db: AtomicU32,
    resp: AtomicU8,
    name: Mutex<String>,
    /// The user it authenticated as.
    user: Mutex<String>,
    /// Its tenant's number (0 for none) and name.
    tenant: AtomicU16,
    tenant_name: Mutex<String>,
    lib: Mutex<(String, String)>,
    last_command: Mutex<String>,
    /// Subscriptions, MULTI and WATCH, as CLIENT LIST shows them.
    session: Mutex<SessionView>,
    no_evict: AtomicBool,
    no_touch: AtomicBool,
    /// Where other clients' tracking invalidations go while this client is
    /// subscribed to `__redis__:invalidate` (CLIENT TRACKING REDIRECT).
    invalidations: Mutex<Option<tokio::sync::mpsc::Sender<pool::StreamEvent>>>,
    /// Cancelled by CLIENT KILL.
    pub kill: CancellationToken,
    /// The sizes of the connection's buffers.
    pub buffers: Buffers,
    /// The affinity of the client's requests, under which the pool
    /// registers a connection its blocking command holds (CLIENT UNBLOCK).
    affinity: AtomicU64,
}

/// The parts of a session's state CLIENT LIST shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionView {
    /// Channels subscribed.
    pub sub: usize,
    /// Patterns subscribed.
    pub psub: usize,
    /// Shard channels subscribed.
    pub ssub: usize,
    /// Commands queued since MULTI, or `None` outside a transaction.
    pub multi: Option<u32>,
    /// True while keys are watched.
    pub watching: bool,
    /// True while a blocking command of the client waits.
    pub blocked: bool,
    /// True while CLIENT TRACKING is on.
    pub tracking: bool,
    /// Bytes of the commands queued since MULTI.
    pub multi_mem: usize,
}

impl ClientInfo {
    /// The affinity of the client's requests ([`router::Command::affinity`]).
    pub fn affinity(&self) -> u64 {
        self.affinity.load(Ordering::Relaxed)
    }

    /// Sets the affinity of the client's requests; the session does so
    /// before its first request.
    pub fn set_affinity(&self, affinity: u64) {
        self.affinity.store(affinity, Ordering::Relaxed);
    }

    /// The name set with CLIENT SETNAME (empty if none).
    pub fn name(&self) -> String {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the name.
    pub fn set_name(&self, name: &str) {
        *self.name.lock().unwrap_or_else(|e| e.into_inner()) = name.to_string();
    }

    /// The user the client authenticated as.
    pub fn user(&self) -> String {
        self.user.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Its tenant's number; 0 for none.
    pub fn tenant(&self) -> u16 {
        self.tenant.load(Ordering::Relaxed)
    }

    /// Records its tenant (number 0 and an empty name for none).
    pub fn set_tenant(&self, number: u16, name: &str) {
        self.tenant.store(number, Ordering::Relaxed);
        *self.tenant_name.lock().unwrap_or_else(|e| e.into_inner()) = name.to_string();
    }

    /// Records the user the client authenticated as.
    pub fn set_user(&self, user: &str) {
        *self.user.lock().unwrap_or_else(|e| e.into_inner()) = user.to_string();
    }

    /// The library name and version (CLIENT SETINFO).
    pub fn lib(&self) -> (String, String) {
        self.lib.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The database of the client's last command.
    pub fn db(&self) -> u32 {
        self.db.load(Ordering::Relaxed)
    }

    /// How long the client has been connected.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// How long since the client's last command.
    pub fn idle(&self) -> Duration {
        let active = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(active)
    }

    /// What the session holds now.
    pub fn view(&self) -> SessionView {
        *self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while the client is subscribed to anything (Valkey's `pubsub`
    /// client type).
    pub fn is_pubsub(&self) -> bool {
        let view = self.view();
        view.sub + view.psub + view.ssub > 0
    }

    /// Sets the library name or version (CLIENT SETINFO).
    pub fn set_lib(&self, name: Option<&str>, version: Option<&str>) {
        let mut lib = self.lib.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(name) = name {
            lib.0 = name.to_string();
        }
        if let Some(version) = version {
            lib.1 = version.to_string();
        }
    }

    /// Records what CLIENT LIST shows of the session's state.
    pub fn set_view(&self, view: SessionView) {
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = view;
    }

    /// CLIENT NO-EVICT / NO-TOUCH: recorded and shown in the flags. Shared
    /// backend connections carry many clients, so neither reaches the
    /// backend: the proxy's connections are never evicted anyway, and
    /// reads through the proxy touch keys as any client's reads do.
    pub fn set_no_evict(&self, on: bool) {
        self.no_evict.store(on, Ordering::Relaxed);
    }

    /// See [`ClientInfo::set_no_evict`].
    pub fn set_no_touch(&self, on: bool) {
        self.no_touch.store(on, Ordering::Relaxed);
    }

    /// Starts (`Some`) or stops receiving other clients' invalidations.
    pub fn set_invalidation_sink(&self, sink: Option<tokio::sync::mpsc::Sender<pool::StreamEvent>>) {
        *self.invalidations.lock().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    /// Delivers an invalidation message (already encoded for this client)
    /// if it listens; false when it does not (or is too far behind).
    pub fn deliver_invalidation(&self, message: bytes::Bytes) -> bool {
        let sink = self.invalidations.lock().unwrap_or_else(|e| e.into_inner());
        sink.as_ref().is_some_and(|sink| {
            sink.try_send(pool::StreamEvent {
                tag: REDIRECTED,
                frame: Some(message),
            })
            .is_ok()
        })
    }

    /// The protocol the client last spoke (2 or 3).
    pub fn resp(&self) -> u8 {
        self.resp.load(Ordering::Relaxed)
    }

    /// Valkey's `flags=` letters for this client.
    fn flags(&self, view: &SessionView) -> String {
        let mut flags = String::new();
        if view.sub + view.psub + view.ssub > 0 {
            flags.push('P');
        }
        if view.multi.is_some() {
            flags.push('x');
        }
        if view.blocked {
            flags.push('b');
        }
        if view.tracking {
            flags.push('t');
        }
        if self.no_evict.load(Ordering::Relaxed) {
            flags.push('e');
        }
        if self.no_touch.load(Ordering::Relaxed) {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        flags
    }

    /// Records activity: the database, the protocol and the last command.
    pub fn touch(&self, db: u32, resp: u8, command: &[u8]) {
        self.db.store(db, Ordering::Relaxed);
        self.resp.store(resp, Ordering::Relaxed);
        self.last_active_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        let mut last = self.last_command.lock().unwrap_or_else(|e| e.into_inner());
        last.clear();
        last.extend(
            String::from_utf8_lossy(command)
                .chars()
                .map(|c| c.to_ascii_lowercase()),
        );
    }

    /// One CLIENT LIST line (without the newline), with Valkey's field names
    /// and the proxy's `tenant=` last.
    pub fn describe(&self) -> String {
        let age = self.age().as_secs();
        let lib = self.lib();
        let view = *self.session.lock().unwrap_or_else(|e| e.into_inner());
        let mut line = String::with_capacity(256);
        let _ = write!(
            line,
            "id={} addr={} laddr={} fd=-1 name={} age={age} idle={} flags={} db={} sub={} psub={} ssub={} \
             multi={} watch={} {} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={} tenant={}",
            self.id,
            self.addr,
            self.laddr,
            self.name(),
            self.idle().as_secs(),
            self.flags(&view),
            self.db.load(Ordering::Relaxed),
            view.sub,
            view.psub,
            view.ssub,
            view.multi.map_or(-1, i64::from),
            u8::from(view.watching),
            self.buffers.fields(view.multi_mem),
            self.last_command.lock().unwrap_or_else(|e| e.into_inner()),
            self.user(),
            self.resp.load(Ordering::Relaxed),
            lib.0,
            lib.1,
            self.tenant_name.lock().unwrap_or_else(|e| e.into_inner()),
        );
        line
    }
}

/// Every connected client. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    next_id: Arc<AtomicU64>,
    all: Arc<Mutex<HashMap<u64, Arc<ClientInfo>>>>,
    /// CLIENT PAUSE / UNPAUSE.
    pub pause: Arc<Pause>,
}

impl Clients {
    /// Registers a new client; it stays listed until [`Clients::remove`].
    pub fn add(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            db: AtomicU32::new(0),
            resp: AtomicU8::new(2),
            name: Mutex::new(String::new()),
            user: Mutex::new("default".into()),
            tenant: AtomicU16::new(0),
            tenant_name: Mutex::new(String::new()),
            lib: Mutex::new((String::new(), String::new())),
            last_command: Mutex::new("NULL".into()),
            session: Mutex::new(SessionView::default()),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            invalidations: Mutex::new(None),
            kill: CancellationToken::new(),
            buffers: Buffers::default(),
            affinity: AtomicU64::new(id),
        });
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info.clone());
        info
    }

    /// The client with this id, if connected.
    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Unregisters a client.
    pub fn remove(&self, id: u64) {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Client connections registered since start (`total_connections_received`).
    pub fn received(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every client, by id. A client already killed is not one, though its
    /// session (on another worker, maybe) has not yet closed: on Valkey it
    /// is gone once CLIENT KILL answers.
    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        let mut all: Vec<_> = self
            .all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|client| !client.kill.is_cancelled())
            .cloned()
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Every client registered, those killed but not yet gone included.
    pub fn list_all(&self) -> Vec<Arc<ClientInfo>> {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Closes every client that `matches`; returns how many.
    pub fn kill(&self, matches: impl Fn(&ClientInfo) -> bool) -> usize {
        let victims: Vec<_> = self.list().into_iter().filter(|c| matches(c)).collect();
        for victim in &victims {
            victim.kill.cancel();
        }
        victims.len()
    }
}
