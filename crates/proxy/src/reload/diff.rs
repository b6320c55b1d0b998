//! What differs between two configurations, and how each difference
//! takes effect: one list of every setting ([`changes`], [`copy_live`]),
//! and the users by name.

use std::fmt::Debug;

use audit::AuditConfig;

use crate::config::ProxyConfig;
use crate::tenants::TenantConfig;
use crate::users::UserConfig;

/// How a setting's change takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// At once (or for what starts afterwards).
    Live,
    /// After a restart: reported, not applied.
    Restart,
}

/// One setting that differs.
pub(super) struct Change {
    pub(super) key: &'static str,
    pub(super) effect: Effect,
    pub(super) from: String,
    pub(super) to: String,
}

/// The users whose clients a change from `old` to `new` disconnects:
/// removed, or with other passwords, tenant or password-only flag.
pub(super) fn disconnected(old: &[UserConfig], new: &[UserConfig]) -> Vec<String> {
    old.iter()
        .filter(
            |before| match new.iter().find(|after| after.name == before.name) {
                None => true,
                Some(after) => {
                    (
                        &before.password,
                        &before.passwords_sha256,
                        &before.tenant,
                        before.password_only,
                    ) != (
                        &after.password,
                        &after.passwords_sha256,
                        &after.tenant,
                        after.password_only,
                    )
                }
            },
        )
        .map(|user| user.name.clone())
        .collect()
}

/// When `old` and `new` name the same tenants in the same order, with the
/// same namespace and backend, and differ in limits only: one line per
/// limit changed (`~ tenants: shop (max_clients 0 -> 1)`); else `None`.
pub(super) fn tenant_limit_changes(old: &[TenantConfig], new: &[TenantConfig]) -> Option<Vec<String>> {
    /// The entry without its limits.
    fn shape(tenant: &TenantConfig) -> TenantConfig {
        TenantConfig {
            max_clients: 0,
            max_ops_per_sec: 0,
            max_bytes_per_sec: 0,
            max_inflight: 0,
            max_queue_ms: 0,
            ..tenant.clone()
        }
    }
    if old.len() != new.len() || old.iter().zip(new).any(|(a, b)| shape(a) != shape(b)) {
        return None;
    }
    let mut lines = Vec::new();
    for (before, after) in old.iter().zip(new) {
        let limits = [
            ("max_clients", before.max_clients as u64, after.max_clients as u64),
            ("max_ops_per_sec", before.max_ops_per_sec, after.max_ops_per_sec),
            (
                "max_bytes_per_sec",
                before.max_bytes_per_sec,
                after.max_bytes_per_sec,
            ),
            (
                "max_inflight",
                before.max_inflight as u64,
                after.max_inflight as u64,
            ),
            ("max_queue_ms", before.max_queue_ms, after.max_queue_ms),
        ];
        for (limit, from, to) in limits {
            if from != to {
                lines.push(format!("~ tenants: {} ({limit} {from} -> {to})", before.name));
            }
        }
    }
    Some(lines)
}

/// When `old` and `new` differ only in the audit log's filters (same
/// sinks, queue, `on_full` and node, and the log on in both): one line per
/// filter changed (`~ audit: commands "+@write" -> "+@write +@admin"`);
/// else `None`.
pub(super) fn audit_filter_changes(old: &AuditConfig, new: &AuditConfig) -> Option<Vec<String>> {
    let same_log = old.enabled()
        && new.enabled()
        && (&old.sinks, old.queue_records, old.on_full, &old.node)
            == (&new.sinks, new.queue_records, new.on_full, &new.node);
    if !same_log {
        return None;
    }
    let mut lines = Vec::new();
    let mut compare = |name: &str, from: String, to: String| {
        if from != to {
            lines.push(format!("~ audit: {name} {from} -> {to}"));
        }
    };
    compare("events", shown(&old.events), shown(&new.events));
    compare("commands", shown(&old.commands), shown(&new.commands));
    compare("read_sample", shown(&old.read_sample), shown(&new.read_sample));
    compare("users", shown(&old.users), shown(&new.users));
    compare(
        "users_exclude",
        shown(&old.users_exclude),
        shown(&new.users_exclude),
    );
    compare("tenants", shown(&old.tenants), shown(&new.tenants));
    compare(
        "tenants_exclude",
        shown(&old.tenants_exclude),
        shown(&new.tenants_exclude),
    );
    compare("networks", shown(&old.networks), shown(&new.networks));
    compare(
        "networks_exclude",
        shown(&old.networks_exclude),
        shown(&new.networks_exclude),
    );
    compare("keys", shown(&old.keys), shown(&new.keys));
    compare("payload", shown(&old.payload), shown(&new.payload));
    compare(
        "max_arg_bytes",
        shown(&old.max_arg_bytes),
        shown(&new.max_arg_bytes),
    );
    Some(lines)
}

/// `+ users: name`, `- users: name`, `~ users: name (what)`.
pub(super) fn user_changes(old: &[UserConfig], new: &[UserConfig]) -> Vec<String> {
    let mut lines = Vec::new();
    for before in old {
        match new.iter().find(|after| after.name == before.name) {
            None => lines.push(format!("- users: {}", before.name)),
            Some(after) if after != before => {
                let mut what = Vec::new();
                if (&before.password, &before.passwords_sha256) != (&after.password, &after.passwords_sha256)
                {
                    what.push("passwords");
                }
                if before.tenant != after.tenant {
                    what.push("tenant");
                }
                if before.acl != after.acl {
                    what.push("rules");
                }
                if before.password_only != after.password_only {
                    what.push("password_only");
                }
                lines.push(format!("~ users: {} ({})", before.name, what.join(", ")));
            }
            Some(_) => {}
        }
    }
    for after in new {
        if !old.iter().any(|before| before.name == after.name) {
            lines.push(format!("+ users: {}", after.name));
        }
    }
    lines
}

/// A value as a reload line shows it.
fn shown<T: Debug>(value: &T) -> String {
    format!("{value:?}")
}

/// A secret: never shown.
fn secret<T>(_: &T) -> String {
    "(redacted)".into()
}

/// A setting too long to show in one line.
fn summary<T>(_: &T) -> String {
    "(...)".into()
}

/// Every setting, how it shows, and whether it changes live: one list, so
/// that a new setting is classified where it is declared here or the
/// build fails (`copy_live` and `changes` are generated from it).
macro_rules! settings {
    ($($field:ident: $show:ident, $effect:ident;)*) => {
        pub(super) fn changes(old: &ProxyConfig, new: &ProxyConfig) -> Vec<Change> {
            // Every field is listed: adding one to `ProxyConfig` without
            // listing it here does not compile.
            let ProxyConfig { $($field: _,)* } = old;
            let mut out = Vec::new();
            $(
                if old.$field != new.$field {
                    out.push(Change {
                        key: stringify!($field),
                        effect: Effect::$effect,
                        from: $show(&old.$field),
                        to: $show(&new.$field),
                    });
                }
            )*
            out
        }

        pub(super) fn copy_live(running: &mut ProxyConfig, new: &ProxyConfig, live: &dyn Fn(&str) -> bool) {
            $(
                if live(stringify!($field)) {
                    running.$field = new.$field.clone();
                }
            )*
        }
    };
}

settings! {
    listen: shown, Restart;
    admin_listen: shown, Restart;
    log: shown, Live;
    slowlog_log_slower_than: shown, Live;
    slowlog_max_len: shown, Live;
    backends: shown, Restart;
    backend_groups: summary, Restart;
    mode: shown, Restart;
    threads: shown, Restart;
    backend_username: shown, Restart;
    backend_password: secret, Restart;
    users: summary, Live;
    tenants: summary, Restart;
    listeners: summary, Restart;
    audit: summary, Restart;
    connections_per_node: shown, Restart;
    connect_timeout_ms: shown, Restart;
    request_timeout_ms: shown, Live;
    retry_budget_ms: shown, Live;
    max_redirects: shown, Live;
    read_policy: shown, Live;
    refresh_interval_ms: shown, Restart;
    refresh_min_interval_ms: shown, Restart;
    max_clients: shown, Live;
    max_pipeline: shown, Live;
    client_idle_timeout_secs: shown, Live;
    client_output_buffer_limit: shown, Live;
    client_output_buffer_soft_limit: shown, Live;
    client_output_buffer_soft_seconds: shown, Live;
    maxmemory_clients: shown, Live;
    maxmemory: shown, Live;
    max_bulk_len: shown, Live;
    query_buffer_limit: shown, Live;
    emulated_databases: shown, Restart;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReadPolicySetting;
    use crate::reload::{hash, masked};

    fn tenant(name: &str) -> TenantConfig {
        TenantConfig {
            name: name.into(),
            isolation: Default::default(),
            prefix: None,
            backend: None,
            base: None,
            databases: 1,
            max_clients: 5,
            max_ops_per_sec: 0,
            max_bytes_per_sec: 0,
            max_inflight: 0,
            max_queue_ms: 1000,
        }
    }

    fn user(name: &str, password: &str) -> UserConfig {
        UserConfig {
            name: name.into(),
            password: Some(password.into()),
            ..UserConfig::default()
        }
    }

    #[test]
    fn differences_are_listed_by_effect_and_users_by_name() {
        let old = ProxyConfig {
            users: vec![user("a", "1"), user("b", "2")],
            ..ProxyConfig::default()
        };
        let mut new = old.clone();
        new.threads = 8;
        new.read_policy = ReadPolicySetting::PreferReplica;
        new.backend_password = Some("hidden".into());
        new.users = vec![user("a", "changed"), user("c", "3")];
        let changes = changes(&old, &new);
        let shown: Vec<(&str, Effect, &str, &str)> = changes
            .iter()
            .map(|c| (c.key, c.effect, c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("threads", Effect::Restart, "0", "8"),
                ("backend_password", Effect::Restart, "(redacted)", "(redacted)"),
                ("users", Effect::Live, "(...)", "(...)"),
                ("read_policy", Effect::Live, "Primary", "PreferReplica"),
            ]
        );
        assert_eq!(
            user_changes(&old.users, &new.users),
            ["~ users: a (passwords)", "- users: b", "+ users: c"]
        );
        assert_eq!(disconnected(&old.users, &new.users), ["a", "b"]);
        let shop = tenant("shop");
        let mut limited = shop.clone();
        limited.max_ops_per_sec = 100;
        assert_eq!(
            tenant_limit_changes(std::slice::from_ref(&shop), &[limited]),
            Some(vec!["~ tenants: shop (max_ops_per_sec 0 -> 100)".to_string()])
        );
        let mut renamed = shop.clone();
        renamed.prefix = Some("other:".into());
        assert_eq!(
            tenant_limit_changes(std::slice::from_ref(&shop), &[renamed]),
            None
        );
        assert_eq!(tenant_limit_changes(&[shop], &[]), None);
        let mut running = old.clone();
        copy_live(&mut running, &new, &|key| key == "read_policy");
        assert_eq!(running.read_policy, ReadPolicySetting::PreferReplica);
        assert_eq!(running.threads, 0);
        assert_ne!(hash(&running), hash(&old));
        assert_eq!(masked(&new).backend_password.as_deref(), Some("(redacted)"));
        assert_eq!(masked(&new).users[0].password.as_deref(), Some("(redacted)"));
    }
}
