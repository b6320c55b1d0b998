//! [`TenantConfig`]: one `[[tenants]]` entry, and the checks of a
//! tenants configuration as a whole.

use bytes::Bytes;
use serde::Deserialize;

/// How a tenant is kept apart from the others.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Its keys carry its prefix on the shared backend.
    #[default]
    Prefix,
    /// Its databases 0..`databases` are the backend's `base`.. (a
    /// standalone server, or Valkey 9 with `cluster-databases`); its keys
    /// are as the client names them. Its channels, which no database
    /// holds, carry its prefix.
    Database,
    /// It has a backend of its own (`backend`, a `[[backend_groups]]`
    /// entry): nothing is rewritten.
    Dedicated,
}

/// One `[[tenants]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Its name, which users name in their `tenant`.
    pub name: String,
    /// How it is isolated.
    #[serde(default)]
    pub isolation: Isolation,
    /// The prefix of its keys on the backend; `name:` when not given. No
    /// `{` or `}`, so that hash tags keep their slots.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The `[[backend_groups]]` entry its keys live on; the default
    /// backend (`backends`) when not given. Required by `dedicated`.
    #[serde(default)]
    pub backend: Option<String>,
    /// `database` isolation: its first backend database.
    #[serde(default)]
    pub base: Option<u32>,
    /// `database` isolation: how many databases it has (SELECT 0 to
    /// `databases - 1`).
    #[serde(default = "one")]
    pub databases: u32,
    /// Most clients authenticated as its users at once; 0 for no limit.
    #[serde(default)]
    pub max_clients: usize,
    /// Most commands a second from its clients together; 0 for no limit.
    /// Over it the proxy stops reading their sockets until their turn
    /// comes, so that they slow down rather than fail.
    #[serde(default)]
    pub max_ops_per_sec: u64,
    /// Most request bytes a second from its clients together; 0 for no
    /// limit. Held back the same way.
    #[serde(default)]
    pub max_bytes_per_sec: u64,
    /// Most requests of its clients together awaiting their replies; 0 for
    /// no limit. At it, its clients are not read until replies free room.
    #[serde(default)]
    pub max_inflight: usize,
    /// The longest a command waits for its turn under those limits, in
    /// milliseconds, before it is answered with an error instead.
    #[serde(default = "default_max_queue_ms")]
    pub max_queue_ms: u64,
}

fn default_max_queue_ms() -> u64 {
    1000
}

fn one() -> u32 {
    1
}

impl TenantConfig {
    /// The prefix its channels (and, isolated by prefix, its keys) are
    /// stored under.
    pub fn prefix(&self) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{}:", self.name))
    }

    /// The prefix of its keys: none for a tenant with databases or a
    /// backend of its own.
    pub fn key_prefix(&self) -> String {
        match self.isolation {
            Isolation::Prefix => self.prefix(),
            Isolation::Database | Isolation::Dedicated => String::new(),
        }
    }

    /// The prefix of its channels: none for a tenant with a backend of its
    /// own.
    pub fn channel_prefix(&self) -> String {
        match self.isolation {
            Isolation::Dedicated => String::new(),
            _ => self.prefix(),
        }
    }

    /// Its backend databases, first and count, under `database` isolation.
    pub fn database_range(&self) -> Option<(u32, u32)> {
        (self.isolation == Isolation::Database).then(|| (self.base.unwrap_or(0), self.databases))
    }
}

/// The key prefixes of the configured tenants, tenant 1 first
/// ([`middleware::NamespaceLayer::with_tenants`]).
pub fn prefixes(config: &[TenantConfig]) -> Vec<Bytes> {
    config
        .iter()
        .map(|tenant| Bytes::from(tenant.key_prefix()))
        .collect()
}

/// The channel prefixes of the configured tenants, tenant 1 first
/// ([`middleware::NamespaceLayer::with_channel_prefixes`]).
pub fn channel_prefixes(config: &[TenantConfig]) -> Vec<Bytes> {
    config
        .iter()
        .map(|tenant| Bytes::from(tenant.channel_prefix()))
        .collect()
}

/// What is wrong with a tenants configuration.
pub fn check(tenants: &[TenantConfig], user_tenants: &[Option<&str>]) -> Result<(), String> {
    if tenants.len() >= usize::from(u16::MAX) {
        return Err("too many tenants".into());
    }
    for (i, tenant) in tenants.iter().enumerate() {
        if tenant.name.is_empty() || tenant.name == "*" {
            return Err(format!("tenant name {:?} is reserved", tenant.name));
        }
        if tenants[..i].iter().any(|other| other.name == tenant.name) {
            return Err(format!("tenant {:?} is configured twice", tenant.name));
        }
        if tenant.isolation == Isolation::Dedicated {
            if tenant.backend.as_deref().is_none_or(|name| name == "default") {
                return Err(format!(
                    "tenant {:?}: dedicated isolation needs `backend`, a backend group of its own",
                    tenant.name
                ));
            }
            continue;
        }
        let prefix = tenant.prefix();
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            return Err(format!(
                "tenant {:?}: the prefix must be non-empty, without braces",
                tenant.name
            ));
        }
        if let Some((base, count)) = tenant.database_range() {
            if tenant.base.is_none() || count == 0 {
                return Err(format!(
                    "tenant {:?}: database isolation needs `base` (its first backend database) and `databases` > 0",
                    tenant.name
                ));
            }
            let overlapping = tenants[..i].iter().find(|other| {
                other.database_range().is_some_and(|(other_base, other_count)| {
                    base < other_base + other_count && other_base < base + count
                })
            });
            if let Some(other) = overlapping {
                return Err(format!(
                    "tenants {:?} and {:?}: their databases overlap",
                    other.name, tenant.name
                ));
            }
        }
        if let Some(other) = tenants[..i]
            .iter()
            .filter(|other| other.isolation != Isolation::Dedicated)
            .find(|other| {
                let other = other.prefix();
                other.starts_with(&prefix) || prefix.starts_with(&other)
            })
        {
            return Err(format!(
                "tenants {:?} and {:?}: one prefix starts the other, so their keys or channels would mix",
                other.name, tenant.name
            ));
        }
    }
    for name in user_tenants.iter().flatten() {
        if *name != "*" && !tenants.iter().any(|tenant| tenant.name == *name) {
            return Err(format!("a user names tenant {name:?}, which is not configured"));
        }
    }
    Ok(())
}

impl Default for TenantConfig {
    fn default() -> TenantConfig {
        TenantConfig {
            name: String::new(),
            isolation: Isolation::Prefix,
            prefix: None,
            backend: None,
            base: None,
            databases: one(),
            max_clients: 0,
            max_ops_per_sec: 0,
            max_bytes_per_sec: 0,
            max_inflight: 0,
            max_queue_ms: default_max_queue_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, prefix: Option<&str>) -> TenantConfig {
        TenantConfig {
            name: name.into(),
            prefix: prefix.map(Into::into),
            ..TenantConfig::default()
        }
    }

    #[test]
    fn prefixes_must_keep_tenants_apart() {
        assert!(check(
            &[tenant("shop", None), tenant("blog", None)],
            &[Some("shop"), None, Some("*")]
        )
        .is_ok());
        assert!(check(&[tenant("shop", Some("s")), tenant("blog", Some("sh"))], &[]).is_err());
        assert!(check(&[tenant("shop", Some("{s}"))], &[]).is_err());
        assert!(check(&[tenant("shop", None), tenant("shop", Some("x"))], &[]).is_err());
        assert!(check(&[tenant("shop", None)], &[Some("blog")]).is_err());
    }

    #[test]
    fn database_tenants_need_a_range_of_their_own() {
        let ranged = |name: &str, base: Option<u32>, databases: u32| TenantConfig {
            isolation: Isolation::Database,
            base,
            databases,
            ..tenant(name, None)
        };
        assert!(check(
            &[
                ranged("a", Some(8), 4),
                ranged("b", Some(12), 4),
                tenant("c", None)
            ],
            &[]
        )
        .is_ok());
        assert!(check(&[ranged("a", Some(8), 4), ranged("b", Some(11), 4)], &[])
            .unwrap_err()
            .contains("overlap"));
        assert!(check(&[ranged("a", None, 4)], &[])
            .unwrap_err()
            .contains("needs `base`"));
        assert_eq!(ranged("a", Some(8), 4).key_prefix(), "");
        assert_eq!(ranged("a", Some(8), 4).prefix(), "a:");
    }
}
