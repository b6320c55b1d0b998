//! The proxy's clients, for CLIENT ID / LIST / INFO / KILL.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

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
    lib: Mutex<(String, String)>,
    last_command: Mutex<String>,
    /// Cancelled by CLIENT KILL.
    pub kill: CancellationToken,
}

impl ClientInfo {
    /// The name set with CLIENT SETNAME (empty if none).
    pub fn name(&self) -> String {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the name.
    pub fn set_name(&self, name: &str) {
        *self.name.lock().unwrap_or_else(|e| e.into_inner()) = name.to_string();
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

    /// One CLIENT LIST line (without the newline), with Valkey's field names.
    pub fn describe(&self) -> String {
        let age = self.created.elapsed().as_secs();
        let idle_ms = (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Ordering::Relaxed));
        let lib = self.lib.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut line = String::with_capacity(256);
        let _ = write!(
            line,
            "id={} addr={} laddr={} fd=-1 name={} age={age} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 \
             watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
             cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.name(),
            idle_ms / 1000,
            self.db.load(Ordering::Relaxed),
            self.last_command.lock().unwrap_or_else(|e| e.into_inner()),
            self.resp.load(Ordering::Relaxed),
            lib.0,
            lib.1,
        );
        line
    }
}

/// Every connected client. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    next_id: Arc<AtomicU64>,
    all: Arc<Mutex<HashMap<u64, Arc<ClientInfo>>>>,
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
            lib: Mutex::new((String::new(), String::new())),
            last_command: Mutex::new("NULL".into()),
            kill: CancellationToken::new(),
        });
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info.clone());
        info
    }

    /// Unregisters a client.
    pub fn remove(&self, id: u64) {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every client, by id.
    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        let mut all: Vec<_> = self
            .all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|c| c.id);
        all
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
