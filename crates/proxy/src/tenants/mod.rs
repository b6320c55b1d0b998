//! Tenants: applications that share the proxy, each with its own key
//! namespace, its own client limit and its own rate limits.
//!
//! A tenant is configured with `[[tenants]]` and a user joins it with
//! `tenant = "name"` in its `[[users]]` entry; a user without a tenant (or
//! with `tenant = "*"`) is an operator, who sees every key as stored. A
//! client takes its tenant when it authenticates (AUTH, HELLO ... AUTH),
//! never from CLIENT SETNAME. Its keys then live under the tenant's prefix
//! ([`middleware::Scope`], applied by the namespace layer and the door),
//! and the commands whose effects the proxy cannot yet keep inside the
//! tenant are refused ([`refusal`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use middleware::limit::{Admission, Rate};
use resp::Frame;
use router::{CommandSpec, CommandTable};

mod config;
pub mod inflight;

pub use config::{channel_prefixes, check, prefixes, Isolation, TenantConfig};
pub use inflight::InFlight;

/// The configured tenants, as sessions use them. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Tenants {
    all: Arc<[Tenant]>,
    /// [`refusal`] for every command of the table, by [`CommandSpec::id`]:
    /// outside MULTI, inside, and the same for tenants that may run
    /// scripts.
    refused: Arc<[[Option<Refusal>; 4]]>,
}

#[derive(Debug)]
struct Tenant {
    name: String,
    prefix: Bytes,
    key_prefix: Bytes,
    /// The limits below change on a reload ([`Tenants::set_limits`]).
    max_clients: AtomicUsize,
    clients: AtomicUsize,
    ops: Rate,
    bytes: Rate,
    max_queue_ms: AtomicU64,
    databases: Option<(u32, u32)>,
    /// Its backend group (0: the default backend).
    group: usize,
    /// Whether it may run scripts ([`refusal`]).
    scripts: bool,
    isolation: Isolation,
    inflight: Arc<InFlight>,
}

impl Tenants {
    /// From the configuration (checked with [`check`]), for the commands
    /// of `table`.
    pub fn new(config: &[TenantConfig], table: &CommandTable) -> Tenants {
        let refused = table
            .all()
            .iter()
            .map(|spec| {
                [(false, false), (true, false), (false, true), (true, true)]
                    .map(|(in_multi, scripts)| refusal(spec, in_multi, scripts))
            })
            .collect();
        Tenants {
            refused,
            all: config
                .iter()
                .map(|tenant| Tenant {
                    name: tenant.name.clone(),
                    prefix: Bytes::from(tenant.channel_prefix()),
                    key_prefix: Bytes::from(tenant.key_prefix()),
                    max_clients: AtomicUsize::new(tenant.max_clients),
                    clients: AtomicUsize::new(0),
                    ops: Rate::new(tenant.max_ops_per_sec),
                    bytes: Rate::new(tenant.max_bytes_per_sec),
                    max_queue_ms: AtomicU64::new(tenant.max_queue_ms),
                    databases: tenant.database_range(),
                    group: 0,
                    scripts: tenant.isolation == Isolation::Dedicated,
                    isolation: tenant.isolation,
                    inflight: Arc::new(InFlight::new(tenant.max_inflight)),
                })
                .collect(),
        }
    }

    /// The number of the tenant named `name` (from 1); 0 for none or `*`.
    pub fn number(&self, name: Option<&str>) -> u16 {
        name.and_then(|name| self.all.iter().position(|tenant| tenant.name == name))
            .map_or(0, |index| index as u16 + 1)
    }

    /// The prefix of the keys of tenant `number`: empty for a tenant with
    /// databases of its own; `None` for no tenant.
    pub fn key_prefix(&self, number: u16) -> Option<Bytes> {
        self.get(number).map(|tenant| tenant.key_prefix.clone())
    }

    /// The channel prefix of tenant `number` (its key prefix too, when
    /// isolated by prefix; empty with a backend of its own), if it is one.
    pub fn prefix(&self, number: u16) -> Option<Bytes> {
        let index = usize::from(number).checked_sub(1)?;
        self.all.get(index).map(|tenant| tenant.prefix.clone())
    }

    /// The name of tenant `number`, if it is one.
    pub fn name(&self, number: u16) -> Option<&str> {
        let index = usize::from(number).checked_sub(1)?;
        self.all.get(index).map(|tenant| tenant.name.as_str())
    }

    /// The same tenants, tenant `t` on backend group `backends[t - 1].0`
    /// (0: the default backend), allowed scripts when `backends[t - 1].1`
    /// ([`crate::config::ProxyConfig::scripts_confined`]). Only while
    /// nothing else holds them.
    pub fn with_backends(mut self, backends: impl IntoIterator<Item = (usize, bool)>) -> Self {
        if let Some(all) = Arc::get_mut(&mut self.all) {
            for (tenant, (group, scripts)) in all.iter_mut().zip(backends) {
                tenant.group = group;
                tenant.scripts = scripts;
            }
        }
        self
    }

    /// How tenant `number` is kept apart; `None` for no tenant.
    pub fn isolation(&self, number: u16) -> Option<Isolation> {
        self.get(number).map(|tenant| tenant.isolation)
    }

    /// The `max_inflight` of tenant `number`, when it has one.
    pub fn inflight(&self, number: u16) -> Option<&Arc<InFlight>> {
        self.get(number)
            .map(|tenant| &tenant.inflight)
            .filter(|inflight| inflight.max() > 0)
    }

    /// The `max_clients` of tenant `number`, when it has one.
    pub fn max_clients(&self, number: u16) -> Option<usize> {
        self.get(number)
            .map(|tenant| tenant.max_clients.load(Ordering::Relaxed))
            .filter(|max| *max > 0)
    }

    /// Takes the limits of `config`, which names the same tenants in the
    /// same order (a reload that changed only limits): clients already
    /// over a lower `max_clients` stay, new ones wait for room.
    pub fn set_limits(&self, config: &[TenantConfig]) {
        for (tenant, limits) in self.all.iter().zip(config) {
            tenant.max_clients.store(limits.max_clients, Ordering::Relaxed);
            tenant.ops.set(limits.max_ops_per_sec);
            tenant.bytes.set(limits.max_bytes_per_sec);
            tenant.max_queue_ms.store(limits.max_queue_ms, Ordering::Relaxed);
            tenant.inflight.set_max(limits.max_inflight);
        }
    }

    /// The backend group of tenant `number` (0: the default backend).
    pub fn group(&self, number: u16) -> usize {
        self.get(number).map_or(0, |tenant| tenant.group)
    }

    /// Why a client of tenant `number` may not run `spec` ([`refusal`]),
    /// looked up; `None` for an operator (`number` 0).
    pub fn refusal(&self, number: u16, spec: &CommandSpec, in_multi: bool) -> Option<Refusal> {
        let scripts = self.get(number)?.scripts;
        match self.refused.get(spec.id) {
            Some(row) => row[usize::from(in_multi) | usize::from(scripts) << 1],
            None => refusal(spec, in_multi, scripts),
        }
    }

    /// The backend databases of tenant `number` (first, count), when it
    /// has databases of its own.
    pub fn databases(&self, number: u16) -> Option<(u32, u32)> {
        self.get(number)?.databases
    }

    /// True when tenant `number` has a rate limit.
    pub fn is_limited(&self, number: u16) -> bool {
        self.get(number)
            .is_some_and(|tenant| tenant.ops.per_second() > 0 || tenant.bytes.per_second() > 0)
    }

    /// When a command of `bytes` bytes from a client of tenant `number`,
    /// read at `now`, may start under the tenant's rate limits; the error
    /// to answer when it would wait longer than `max_queue_ms`.
    ///
    /// # Errors
    /// The reply for a command over the limit.
    pub fn admit(&self, number: u16, bytes: usize, now: Instant) -> Result<Option<Instant>, Frame> {
        let Some(tenant) = self.get(number) else {
            return Ok(None);
        };
        let mut start = None;
        let max_queue = Duration::from_millis(tenant.max_queue_ms.load(Ordering::Relaxed));
        for (rate, cost, what) in [
            (&tenant.ops, 1, "max_ops_per_sec"),
            (&tenant.bytes, bytes as u64, "max_bytes_per_sec"),
        ] {
            match rate.admit(cost, now, max_queue) {
                Admission::Now => {}
                Admission::At(at) => start = start.max(Some(at)),
                Admission::Refused => {
                    return Err(Frame::error(format!("ERR tenant '{}' over {what}", tenant.name)));
                }
            }
        }
        Ok(start)
    }

    fn get(&self, number: u16) -> Option<&Tenant> {
        self.all.get(usize::from(number).checked_sub(1)?)
    }

    /// A place for one more client of tenant `number`, held until the
    /// [`Seat`] is dropped; `None` when the tenant is at its limit.
    pub fn seat(&self, number: u16) -> Option<Seat> {
        let index = usize::from(number).checked_sub(1)?;
        let tenant = self.all.get(index)?;
        let taken = tenant.clients.fetch_add(1, Ordering::AcqRel);
        let seat = Seat {
            tenants: self.clone(),
            index,
        };
        let max_clients = tenant.max_clients.load(Ordering::Relaxed);
        if max_clients > 0 && taken >= max_clients {
            drop(seat);
            return None;
        }
        Some(seat)
    }
}

/// One client of a tenant, counted against its `max_clients`.
#[derive(Debug)]
pub struct Seat {
    tenants: Tenants,
    index: usize,
}

impl Seat {
    /// The tenant's number.
    pub fn tenant(&self) -> u16 {
        self.index as u16 + 1
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.tenants.all[self.index]
            .clients
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// Valkey's reply when there is no room for another client.
pub fn max_clients_reached() -> Frame {
    Frame::error("ERR max number of clients reached")
}

/// Why a client of a tenant may not run a command ([`refusal`]). The
/// proxy answers with Valkey's NOPERM text and this reason after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `@admin`, and the `@dangerous` commands the proxy does not scope
    /// to the tenant.
    Administration,
    /// It changes what every tenant shares: the loaded functions, the
    /// script cache, a running script.
    Shared,
    /// A script or function, for a tenant whose backend user the server
    /// does not confine to its keys.
    Scripts,
    /// It would show other tenants' keys or channels.
    OtherTenants,
    /// Inside MULTI, a command the proxy carries out in several steps.
    Steps,
}

impl Refusal {
    /// Why, as the client is told.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Administration => "server administration is for operator users",
            Refusal::Shared => "it changes what every tenant shares",
            Refusal::Scripts => {
                "a tenant runs scripts only on a backend group whose user the server confines to its keys"
            }
            Refusal::OtherTenants => "it would show other tenants' keys",
            Refusal::Steps => "the proxy carries it out in several steps, which MULTI cannot hold",
        }
    }
}

/// Why a client of a tenant may not run `spec` (in MULTI when `in_multi`;
/// `scripts` when the tenant's backend user is confined to its keys,
/// [`crate::config::ProxyConfig::scripts_confined`]); `None` when it may.
/// Refused, until the proxy can keep their effects inside the tenant:
/// - server administration: `@admin`, and the `@dangerous` commands other
///   than those the proxy scopes to the tenant (KEYS, FLUSHDB, FLUSHALL,
///   SORT; ACL LOG, LIST, USERS, GETUSER and DRYRUN; CLIENT LIST and KILL;
///   INFO's server and clients sections; MONITOR of its own clients);
/// - what every tenant shares: FUNCTION LOAD, DELETE, FLUSH, RESTORE and
///   KILL, SCRIPT FLUSH and KILL;
/// - other scripts and functions, unless `scripts`: a script builds key
///   names the proxy cannot see, so only the server can confine them;
/// - what would show other tenants' key names: CLIENT TRACKING, CLUSTER
///   GETKEYSINSLOT and COUNTKEYSINSLOT, PUBSUB NUMPAT (which counts every
///   tenant's patterns);
/// - inside MULTI, the commands the layer carries out in several steps:
///   KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB, FLUSHALL, and SORT (whose BY and GET
///   patterns are followed by copying keys).
pub fn refusal(spec: &CommandSpec, in_multi: bool, scripts: bool) -> Option<Refusal> {
    use router::command::Categories;
    let named = |name: &[u8]| Categories::named(name).unwrap_or(Categories::NONE);
    let name = spec.name.as_str();
    let scoped = middleware::namespace::keyspace::scoped_by_scan(&spec.name)
        || matches!(name, "scan" | "sort" | "sort_ro" | "flushall");
    // Answered by the proxy with what belongs to the tenant.
    let answered_for_tenant = matches!(
        name,
        "acl|log"
            | "acl|list"
            | "acl|users"
            | "acl|getuser"
            | "acl|dryrun"
            | "client|list"
            | "client|kill"
            | "info"
            | "monitor"
    );
    // What every tenant has: invalidations for a BCAST prefix, the keys
    // of a slot, the count of patterns.
    let shows_any_keys = matches!(
        name,
        "client|tracking" | "cluster|getkeysinslot" | "cluster|countkeysinslot" | "pubsub|numpat"
    );
    let shared = matches!(
        name,
        "function|load"
            | "function|delete"
            | "function|flush"
            | "function|restore"
            | "function|kill"
            | "script|flush"
            | "script|kill"
    );
    if scoped {
        in_multi.then_some(Refusal::Steps)
    } else if answered_for_tenant {
        None
    } else if shows_any_keys {
        Some(Refusal::OtherTenants)
    } else if spec
        .categories
        .intersects(named(b"admin").union(named(b"dangerous")))
    {
        Some(Refusal::Administration)
    } else if shared {
        Some(Refusal::Shared)
    } else if !scripts && spec.categories.intersects(named(b"scripting")) {
        Some(Refusal::Scripts)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_counted_and_given_back() {
        let mut config = TenantConfig {
            name: "shop".into(),
            ..TenantConfig::default()
        };
        config.max_clients = 2;
        let tenants = Tenants::new(&[config], &CommandTable::builtin());
        let shop = tenants.number(Some("shop"));
        assert_eq!(shop, 1);
        let (a, b) = (tenants.seat(shop), tenants.seat(shop));
        assert!(a.is_some() && b.is_some());
        assert!(tenants.seat(shop).is_none());
        drop(a);
        assert!(tenants.seat(shop).is_some());
        assert_eq!(tenants.number(Some("*")), 0);
    }

    #[test]
    fn refusals_say_why_and_scripts_follow_the_backend_user() {
        let table = CommandTable::builtin();
        let spec = |name: &str| {
            let request = resp::Request::from_args(name.split(' ').collect::<Vec<_>>());
            table.lookup(&request).unwrap().clone()
        };
        let shop = TenantConfig {
            name: "shop".into(),
            ..TenantConfig::default()
        };
        let tenants = Tenants::new(&[shop.clone(), shop], &table).with_backends([(0, false), (1, true)]);
        let (plain, confined) = (1, 2);
        for name in ["EVAL", "EVALSHA_RO", "FCALL", "SCRIPT LOAD", "FUNCTION LIST"] {
            assert_eq!(
                tenants.refusal(plain, &spec(name), false),
                Some(Refusal::Scripts),
                "{name}"
            );
            assert_eq!(tenants.refusal(confined, &spec(name), false), None, "{name}");
        }
        for name in ["FUNCTION LOAD", "FUNCTION FLUSH", "SCRIPT FLUSH", "SCRIPT KILL"] {
            assert_eq!(
                tenants.refusal(confined, &spec(name), false),
                Some(Refusal::Shared),
                "{name}"
            );
        }
        let admin = tenants.refusal(confined, &spec("CONFIG SET"), false);
        assert_eq!(admin, Some(Refusal::Administration));
        assert_eq!(tenants.refusal(plain, &spec("KEYS"), false), None);
        assert_eq!(tenants.refusal(plain, &spec("KEYS"), true), Some(Refusal::Steps));
        let numpat = tenants.refusal(plain, &spec("PUBSUB NUMPAT"), false);
        assert_eq!(numpat, Some(Refusal::OtherTenants));
        // An operator is refused nothing.
        assert_eq!(tenants.refusal(0, &spec("CONFIG SET"), false), None);
    }
}
