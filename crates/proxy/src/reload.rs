//! Live reload: SIGHUP and `PROXY CONFIG RELOAD [DRYRUN]` read the
//! configuration again ([`Reloader`], installed by whoever knows where it
//! comes from: the binary reads its file, environment and flags) and apply
//! the difference at once.
//!
//! The whole new configuration is validated first (the reloader does it);
//! a bad one changes nothing and the reply says why. Then each setting
//! that differs is either applied live, or reported as needing a restart
//! and left as it runs:
//!
//! - live: `users` (a user removed, or whose passwords, tenant or
//!   password-only flag changed, has its clients disconnected, as Valkey's
//!   `ACL DELUSER` does; changed rules apply to its clients' next command),
//!   `read_policy`, `retry_budget_ms`, `max_redirects`, the slow log, the
//!   client limits (`max_clients`, `max_pipeline`, the buffers; the idle
//!   timeout and the largest bulk for new clients), and `log` (through the
//!   reloader);
//! - after a restart: everything else (addresses, threads, backends and
//!   their credentials, tenants, listeners, the audit log, pool and
//!   topology timings). Users of a tenant the running proxy does not know
//!   wait for that restart too.
//!
//! The running configuration is then the one started with, with the live
//! changes of every reload since: `PROXY CONFIG GET` shows it (secrets
//! masked) with its hash.

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use router::{ReadPolicy, RouterConfig};
use sha2::{Digest, Sha256};

use crate::config::{ProxyConfig, ReadPolicySetting};
use crate::context::Shared;
use crate::users::{UserConfig, Users};

/// Where a reload gets the configuration from.
pub trait Reloader: Send + Sync {
    /// The configuration as it is now written, validated.
    ///
    /// # Errors
    /// Why it cannot be used (unreadable, unparsable, invalid).
    fn load(&self) -> Result<ProxyConfig, String>;

    /// Called with the configuration in force after a reload applied
    /// something: for what only the reloader can change (the log filter).
    fn applied(&self, _config: &ProxyConfig) {}
}

/// What a reload found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One line per difference: `~ key: old -> new` (applied), `+`/`-`/`~
    /// users: name`, or `! key: old -> new (restart required, not
    /// applied)`. Secrets are never shown.
    pub lines: Vec<String>,
    /// The hash of the configuration in force afterwards.
    pub hash: String,
}

/// How a setting's change takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Live,
    Restart,
}

/// One setting that differs.
struct Change {
    key: &'static str,
    effect: Effect,
    from: String,
    to: String,
}

/// Reads the configuration again through the installed [`Reloader`] and
/// applies it (or, with `dry_run`, only says what it would do).
///
/// # Errors
/// No reloader is installed, or the new configuration is not usable:
/// nothing changed.
pub fn reload(shared: &Shared, dry_run: bool) -> Result<Report, String> {
    let reloader = shared
        .reloader
        .get()
        .ok_or("this proxy has no configuration file to reload")?;
    let outcome = reloader.load().and_then(|new| apply(shared, new, dry_run));
    let result = match (&outcome, dry_run) {
        (Err(_), _) => "error",
        (Ok(_), true) => "dryrun",
        (Ok(_), false) => "ok",
    };
    metrics::counter!("valkey_proxy_config_reloads_total", "result" => result).increment(1);
    if let Some(audit) = &shared.audit {
        let (changes, hash, error) = match &outcome {
            Ok(report) => (&report.lines[..], Some(report.hash.as_str()), None),
            Err(error) => (&[][..], None, Some(error.as_str())),
        };
        audit.record_config_reload(&audit::ConfigReload {
            result,
            changes,
            hash,
            error,
        });
    }
    match &outcome {
        Ok(report) if !dry_run => {
            tracing::info!(changes = ?report.lines, hash = %report.hash, "configuration reloaded");
            reloader.applied(&shared.config());
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "configuration reload refused; nothing changed"),
    }
    outcome
}

/// Applies `new` (validated) to the running proxy: what can change live
/// does, at once; the rest is reported.
///
/// # Errors
/// Never for a validated configuration; the type leaves room for checks
/// against the running proxy.
pub fn apply(shared: &Shared, new: ProxyConfig, dry_run: bool) -> Result<Report, String> {
    let _one_at_a_time = shared.reloading.lock().unwrap_or_else(|e| e.into_inner());
    let old = shared.config();
    let mut changes = changes(&old, &new);
    let users_live = users_fit(shared, &new.users);
    let mut lines = Vec::new();
    for change in &mut changes {
        if change.key == "users" && !users_live {
            change.effect = Effect::Restart;
        }
        lines.push(match change.effect {
            Effect::Live => format!("~ {}: {} -> {}", change.key, change.from, change.to),
            Effect::Restart => format!(
                "! {}: {} -> {} (restart required, not applied)",
                change.key, change.from, change.to
            ),
        });
    }
    if changes.iter().any(|change| change.key == "users") {
        let at = lines
            .iter()
            .position(|line| line.contains(" users: "))
            .unwrap_or(0);
        let mark = if users_live {
            ""
        } else {
            " (restart required, not applied)"
        };
        let detail: Vec<String> = user_changes(&old.users, &new.users)
            .into_iter()
            .map(|line| format!("{line}{mark}"))
            .collect();
        lines.splice(at..=at, detail);
    }
    let mut running = ProxyConfig::clone(&old);
    let live = |key: &str| {
        changes
            .iter()
            .any(|change| change.key == key && change.effect == Effect::Live)
    };
    copy_live(&mut running, &new, &live);
    let report = Report {
        lines,
        hash: hash(&running),
    };
    if dry_run || !changes.iter().any(|change| change.effect == Effect::Live) {
        return Ok(Report {
            hash: hash(&old),
            ..report
        });
    }
    let old_users = old.users.clone();
    drop(old);
    shared.config.store(Arc::new(running));
    let running = shared.config();
    if live("users") {
        let users = Users::new(&running.users, &shared.tenants, shared.stack.router.table());
        shared.users.store(Arc::new(users));
        shared.users_version.fetch_add(1, Ordering::Release);
        for name in disconnected(&old_users, &running.users) {
            let closed = shared.clients.kill(|client| client.user() == name);
            tracing::info!(user = %name, closed, "user removed or its credentials changed: its clients are disconnected");
        }
    }
    let router = router_config(&running);
    for stack in std::iter::once(&shared.stack).chain(&shared.groups) {
        stack.router.reconfigure(router);
    }
    shared
        .slowlog
        .configure(running.slowlog_log_slower_than, running.slowlog_max_len);
    shared.turn_limits.set(&running);
    Ok(report)
}

/// The router settings of `config`.
pub fn router_config(config: &ProxyConfig) -> RouterConfig {
    RouterConfig {
        max_redirects: config.max_redirects,
        retry_budget: std::time::Duration::from_millis(config.retry_budget_ms),
        read_policy: match config.read_policy {
            ReadPolicySetting::Primary => ReadPolicy::Primary,
            ReadPolicySetting::PreferReplica => ReadPolicy::PreferReplica,
        },
    }
}

/// The SHA-256 of `config`, in hex: the same settings give the same hash.
pub fn hash(config: &ProxyConfig) -> String {
    let digest = Sha256::digest(format!("{config:?}").as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `config` with every secret replaced by `(redacted)`, for showing.
pub fn masked(config: &ProxyConfig) -> ProxyConfig {
    let mut shown = config.clone();
    let redacted = || Some("(redacted)".to_string());
    if shown.backend_password.is_some() {
        shown.backend_password = redacted();
    }
    for user in &mut shown.users {
        if user.password.is_some() {
            user.password = redacted();
        }
    }
    for group in &mut shown.backend_groups {
        if group.password.is_some() {
            group.password = redacted();
        }
    }
    shown
}

/// Whether the users of `new` can replace the running ones now: every
/// tenant they name is one the running proxy has.
fn users_fit(shared: &Shared, new: &[UserConfig]) -> bool {
    new.iter().all(|user| match user.tenant.as_deref() {
        None | Some("*") => true,
        Some(tenant) => shared.tenants.number(Some(tenant)) != 0,
    })
}

/// The users whose clients a change from `old` to `new` disconnects:
/// removed, or with other passwords, tenant or password-only flag.
fn disconnected(old: &[UserConfig], new: &[UserConfig]) -> Vec<String> {
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

/// `+ users: name`, `- users: name`, `~ users: name (what)`.
fn user_changes(old: &[UserConfig], new: &[UserConfig]) -> Vec<String> {
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
        fn changes(old: &ProxyConfig, new: &ProxyConfig) -> Vec<Change> {
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

        fn copy_live(running: &mut ProxyConfig, new: &ProxyConfig, live: &dyn Fn(&str) -> bool) {
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
    request_timeout_ms: shown, Restart;
    retry_budget_ms: shown, Live;
    max_redirects: shown, Live;
    read_policy: shown, Live;
    refresh_interval_ms: shown, Restart;
    refresh_min_interval_ms: shown, Restart;
    max_clients: shown, Live;
    max_pipeline: shown, Live;
    client_idle_timeout_secs: shown, Live;
    client_output_buffer_limit: shown, Live;
    max_bulk_len: shown, Live;
    query_buffer_limit: shown, Live;
    emulated_databases: shown, Restart;
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut running = old.clone();
        copy_live(&mut running, &new, &|key| key == "read_policy");
        assert_eq!(running.read_policy, ReadPolicySetting::PreferReplica);
        assert_eq!(running.threads, 0);
        assert_ne!(hash(&running), hash(&old));
        assert_eq!(masked(&new).backend_password.as_deref(), Some("(redacted)"));
        assert_eq!(masked(&new).users[0].password.as_deref(), Some("(redacted)"));
    }
}
